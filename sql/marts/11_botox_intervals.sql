-- One row per BoNT injection after a patient's first: the days since the previous injection, the units,
-- and whether a selective neurectomy or myectomy came before it (which, and when). The models of
-- reliance on BoNT after surgery (pipeline/models/reliance.py) read it.
-- key: site_id, patient_id, treatment_id
CREATE TABLE botox_intervals AS
WITH injections AS (
    SELECT site_id, patient_id, treatment_id, "day", botox_units
    FROM treatments
    WHERE modality = 'botox'
),

sequenced AS (
    SELECT
        *,
        row_number() OVER w AS injection_number,
        -- The course counted from the index visit on: an injection before it is history, not the course.
        CASE WHEN "day" >= 0 THEN count(*) FILTER (WHERE "day" >= 0) OVER w END AS session_from_index,
        lag(treatment_id) OVER w AS previous_treatment_id,
        lag("day") OVER w AS previous_day,
        first_value("day") OVER w AS first_day
    FROM injections
    WINDOW w AS (PARTITION BY site_id, patient_id ORDER BY "day", treatment_id)
),

surgeries AS (
    SELECT site_id, patient_id, "day", modality
    FROM treatments
    WHERE modality IN ('selective_neurectomy', 'selective_myectomy')
),

first_surgery AS (
    SELECT site_id, patient_id, min("day") AS surgery_day
    FROM surgeries
    GROUP BY ALL
),

-- The kinds of surgery on or before each injection, in the contract's order (SN, MY).
surgery_before AS (
    SELECT
        s.site_id, s.patient_id, s.treatment_id,
        CASE
            WHEN bool_or(x.modality = 'selective_neurectomy') AND bool_or(x.modality = 'selective_myectomy')
                THEN 'SN+MY'
            WHEN bool_or(x.modality = 'selective_neurectomy') THEN 'SN'
            ELSE 'MY'
        END AS surgery
    FROM sequenced AS s
    INNER JOIN surgeries AS x ON x.site_id = s.site_id AND x.patient_id = s.patient_id AND x."day" <= s."day"
    GROUP BY ALL
),

patient_groups AS (
    SELECT
        site_id, patient_id,
        CASE
            WHEN bool_or(modality IN ('selective_neurectomy', 'selective_myectomy')) THEN 'surgery'
            WHEN bool_and(modality = 'botox') THEN 'bont_alone'
            ELSE 'other'
        END AS patient_group
    FROM treatments
    GROUP BY ALL
)

SELECT
    s.site_id, s.patient_id, s.treatment_id, s."day", s.injection_number, s.session_from_index,
    s.previous_treatment_id,
    s."day" - s.previous_day AS days_since_previous,
    s."day" - s.first_day AS days_since_first,
    s.botox_units,
    b.surgery IS NOT NULL AS surgery_before,
    b.surgery,
    f.surgery_day,
    CASE
        WHEN f.surgery_day IS NULL THEN 'no_surgery'
        WHEN f.surgery_day <= s.previous_day THEN 'after_surgery'
        WHEN f.surgery_day > s."day" THEN 'before_surgery'
        ELSE 'spans_surgery'
    END AS interval_phase,
    g.patient_group
FROM sequenced AS s
LEFT JOIN surgery_before AS b USING (site_id, patient_id, treatment_id)
LEFT JOIN first_surgery AS f USING (site_id, patient_id)
INNER JOIN patient_groups AS g USING (site_id, patient_id)
WHERE s.injection_number >= 2
ORDER BY s.site_id, s.patient_id, s."day", s.treatment_id;

COMMENT ON TABLE botox_intervals IS 'One row per BoNT injection after a patient''s first (in day order): the days since the previous one, the units, and whether a selective neurectomy or myectomy came before it.';
COMMENT ON COLUMN botox_intervals.site_id IS 'Site code.';
COMMENT ON COLUMN botox_intervals.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN botox_intervals.treatment_id IS 'The injection''s treatment event id (treatments.treatment_id).';
COMMENT ON COLUMN botox_intervals."day" IS 'Day of the injection, from the index visit.';
COMMENT ON COLUMN botox_intervals.injection_number IS 'The injection''s place among the patient''s BoNT injections, in day order (2 for the second; the first has no row).';
COMMENT ON COLUMN botox_intervals.session_from_index IS 'The injection''s place among those on or after the index visit (1 for the first of them); null for an injection before it.';
COMMENT ON COLUMN botox_intervals.previous_treatment_id IS 'The previous injection''s treatment event id.';
COMMENT ON COLUMN botox_intervals.days_since_previous IS 'Days since the previous injection (0 for two on one day).';
COMMENT ON COLUMN botox_intervals.days_since_first IS 'Days since the patient''s first injection.';
COMMENT ON COLUMN botox_intervals.botox_units IS 'Units of this injection (onabotulinumtoxinA-equivalent).';
COMMENT ON COLUMN botox_intervals.surgery_before IS 'True when a selective neurectomy or myectomy is recorded on or before the day of this injection.';
COMMENT ON COLUMN botox_intervals.surgery IS 'Which surgery came on or before it: SN, MY or SN+MY; null when none did.';
COMMENT ON COLUMN botox_intervals.surgery_day IS 'Day of the patient''s first selective neurectomy or myectomy, whenever it was; null for a patient with none.';
COMMENT ON COLUMN botox_intervals.interval_phase IS 'The interval since the previous injection: after_surgery (surgery on or before the previous injection), before_surgery (surgery after this one), spans_surgery (surgery between the two), no_surgery (the patient has none).';
COMMENT ON COLUMN botox_intervals.patient_group IS 'surgery (a selective neurectomy or myectomy at any time), bont_alone (no treatment but BoNT, ever) or other.';
