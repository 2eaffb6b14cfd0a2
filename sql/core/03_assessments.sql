-- One row per item (or recorded total) of an instrument at a visit, with the days since the
-- last BoNT injection before that visit (a score at peak effect and one at the trough differ).
CREATE TABLE assessments AS
WITH injections AS (
    SELECT site_id, patient_id, "day" AS injection_day
    FROM treatments
    WHERE modality = 'botox'
),

visits AS (
    SELECT DISTINCT site_id, patient_id, visit_day
    FROM stg_assessments
),

last_injection AS (
    SELECT v.site_id, v.patient_id, v.visit_day, max(i.injection_day) AS injection_day
    FROM visits AS v
    INNER JOIN injections AS i
        ON v.site_id = i.site_id AND v.patient_id = i.patient_id AND i.injection_day < v.visit_day
    GROUP BY ALL
)

SELECT
    a.site_id, a.patient_id, a.visit_day, a.instrument, a.item, a."value",
    a.visit_day - l.injection_day AS days_since_last_botox
FROM stg_assessments AS a
SEMI JOIN patients USING (site_id, patient_id)
LEFT JOIN last_injection AS l USING (site_id, patient_id, visit_day)
ORDER BY a.site_id, a.patient_id, a.visit_day, a.instrument, a.item;
