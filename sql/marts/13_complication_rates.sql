-- Complication rates per modality combination (the one started in the exposure window) and per
-- modality (every patient who ever had it): patients at risk, patients with each code, the rate with
-- its exact (Clopper-Pearson) 95% interval, and how the events resolved. Who is at risk and whose
-- events count: the macros of sql/macros/complication_events.sql (the report's Safety section uses them
-- too). The interval functions are Python's (pipeline/intervals.py), registered on the build's connection.
-- key: grouping, group_code, code
CREATE TABLE complication_rates AS
WITH group_sizes AS (
    SELECT grouping, group_code, count(*) AS patients_at_risk
    FROM complication_at_risk('modality_combinations', 'treatments', 'modality_codes')
    GROUP BY ALL
),

codes AS (
    SELECT DISTINCT code FROM complications
),

first_events AS (
    SELECT *
    FROM complication_first_events('modality_combinations', 'treatments', 'modality_codes', 'complications')
),

counted AS (
    SELECT
        grouping, group_code, code,
        count(*) AS patients_with,
        count(*) FILTER (WHERE resolved) AS patients_resolved,
        median(days_to_resolution) FILTER (WHERE resolved) AS median_days_to_resolution
    FROM first_events
    GROUP BY ALL
),

rates AS (
    SELECT
        g.grouping, g.group_code, k.code, g.patients_at_risk,
        coalesce(c.patients_with, 0) AS patients_with,
        coalesce(c.patients_resolved, 0) AS patients_resolved,
        c.median_days_to_resolution
    FROM group_sizes AS g
    CROSS JOIN codes AS k
    LEFT JOIN counted AS c USING (grouping, group_code, code)
)

SELECT
    grouping, group_code, code, patients_at_risk, patients_with,
    patients_with / patients_at_risk AS rate,
    clopper_pearson_low(patients_with, patients_at_risk) AS ci_low,
    clopper_pearson_high(patients_with, patients_at_risk) AS ci_high,
    patients_resolved,
    CASE WHEN patients_with > 0 THEN patients_resolved / patients_with END AS share_resolved,
    median_days_to_resolution
FROM rates
ORDER BY grouping, group_code, code;

COMMENT ON TABLE complication_rates IS 'Complication rates per modality combination and per modality, with exact (Clopper-Pearson) 95% intervals and resolution; one row per group and code recorded anywhere.';
COMMENT ON COLUMN complication_rates.grouping IS 'combination (the combination started in the exposure window, as in modality_combinations) or modality (every patient who had that modality at any time).';
COMMENT ON COLUMN complication_rates.group_code IS 'The combination (BTX+SN, ...) or the modality''s short code (BTX, PT, SN, MY, OS).';
COMMENT ON COLUMN complication_rates.code IS 'Complication code (a code recorded for at least one patient).';
COMMENT ON COLUMN complication_rates.patients_at_risk IS 'Current patients in the group.';
COMMENT ON COLUMN complication_rates.patients_with IS 'Patients of the group with at least one event of the code (under a modality: one that followed it).';
COMMENT ON COLUMN complication_rates.rate IS 'patients_with / patients_at_risk.';
COMMENT ON COLUMN complication_rates.ci_low IS 'Lower end of the exact (Clopper-Pearson) 95% interval of the rate.';
COMMENT ON COLUMN complication_rates.ci_high IS 'Upper end of the exact (Clopper-Pearson) 95% interval of the rate.';
COMMENT ON COLUMN complication_rates.patients_resolved IS 'Patients whose first event of the code has a resolution day.';
COMMENT ON COLUMN complication_rates.share_resolved IS 'patients_resolved / patients_with; null when no patient had the code.';
COMMENT ON COLUMN complication_rates.median_days_to_resolution IS 'Median days from the first event to its resolution, over the resolved ones; null when none resolved.';
