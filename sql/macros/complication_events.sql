-- Who is at risk of a complication and who had one, in one place: the build's complication_rates and
-- the report's Safety section (which registers the patients behind every count) both call these.
-- At risk: per modality combination (the one started in the exposure window, modality_combinations)
-- and per modality (every patient who had it, from their first treatment of it). An event counts
-- under a combination whenever it came; under a modality where it names a treatment of that modality,
-- or names none and came on or after the patient's first one. A patient counts once per code: their
-- first event of it in the group (its resolution with it). The tables are named by the caller (the
-- build's, or the published warehouse's): modality_combinations, treatments, modality_codes, complications
-- and complication_sites.
-- Only the patients of the sites that report complications (complication_sites) are at risk.
CREATE OR REPLACE TEMP MACRO complication_at_risk(
    combinations_table, treatments_table, codes_table, sites_table := 'complication_sites'
) AS TABLE
SELECT site_id, patient_id, 'combination' AS grouping, combination AS group_code, NULL::INTEGER AS first_day
FROM query_table(combinations_table)
WHERE combination IS NOT NULL AND site_id IN (SELECT site_id FROM query_table(sites_table))
UNION ALL
SELECT t.site_id, t.patient_id, 'modality' AS grouping, m.code AS group_code, min(t."day") AS first_day
FROM query_table(treatments_table) AS t
INNER JOIN query_table(codes_table) AS m USING (modality)
WHERE t.site_id IN (SELECT site_id FROM query_table(sites_table))
GROUP BY ALL;

CREATE OR REPLACE TEMP MACRO complication_first_events(
    combinations_table, treatments_table, codes_table, complications_table
) AS TABLE
WITH events AS (
    SELECT r.grouping, r.group_code, c.site_id, c.patient_id, c.code, c."day", c.resolved, c.days_to_resolution
    FROM complication_at_risk(combinations_table, treatments_table, codes_table) AS r
    INNER JOIN query_table(complications_table) AS c USING (site_id, patient_id)
    LEFT JOIN query_table(codes_table) AS m ON m.modality = c.treatment_modality
    WHERE r.grouping = 'combination'
        OR m.code = r.group_code
        OR (c.treatment_modality IS NULL AND c."day" >= r.first_day)
)

SELECT
    grouping, group_code, site_id, patient_id, code,
    arg_min(resolved, "day") AS resolved,
    arg_min(days_to_resolution, "day") AS days_to_resolution
FROM events
GROUP BY ALL;
