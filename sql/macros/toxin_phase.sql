-- The toxin-cycle phase of assessments, in one place: scores_table (any rows with site_id, patient_id and
-- visit_day) with days_since_injection, the days since the patient's last BoNT injection strictly before
-- the visit's day (null before the first), from treatments_table. An injection on the visit's day does not
-- count: the clinic assesses before it injects, so a session's own assessment is a trough. instrument_scores
-- and followup_scores carry it (issue 31).
CREATE OR REPLACE TEMP MACRO with_toxin_phase(scores_table, treatments_table) AS TABLE
SELECT s.*, s.visit_day - b."day" AS days_since_injection
FROM query_table(scores_table) AS s
ASOF LEFT JOIN (
    SELECT site_id, patient_id, "day" + 1 AS after_day, "day"
    FROM query_table(treatments_table)
    WHERE modality = 'botox'
) AS b
    ON s.site_id = b.site_id AND s.patient_id = b.patient_id AND s.visit_day >= b.after_day;
