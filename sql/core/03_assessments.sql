-- One row per item (or recorded total) of an instrument at a visit, with the days since the
-- last BoNT injection before that visit (a score at peak effect and one at the trough differ).
-- key: site_id, patient_id, visit_day, instrument, item
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

COMMENT ON TABLE assessments IS 'One row per scored item or recorded total of an instrument at a visit, as received.';
COMMENT ON COLUMN assessments.site_id IS 'Site code.';
COMMENT ON COLUMN assessments.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN assessments.visit_day IS 'Day of the visit from the index visit; a visit is (site_id, patient_id, visit_day).';
COMMENT ON COLUMN assessments.instrument IS 'sunnybrook, eface, saq, face, fdi or house_brackmann.';
COMMENT ON COLUMN assessments.item IS 'Item or recorded-total code of the instrument (see the clinic-export contract).';
COMMENT ON COLUMN assessments."value" IS 'The item''s value in its own range.';
COMMENT ON COLUMN assessments.days_since_last_botox IS 'Days since the last BoNT injection before this visit; null when none came earlier.';
