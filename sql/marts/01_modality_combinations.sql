-- One row per patient: the modality combination started in the exposure window [t0, t0 + window],
-- where t0 is the first treatment on or after day 0. The window end is also the landmark: a
-- patient followed for less cannot be classified and is excluded from comparisons, with the reason.
-- key: site_id, patient_id
CREATE TABLE modality_combinations AS
WITH index_treatment AS (
    SELECT site_id, patient_id, min("day") AS t0_day
    FROM treatments
    WHERE "day" >= 0
    GROUP BY ALL
),

exposed AS (
    SELECT
        t.site_id, t.patient_id,
        bool_or(t.modality = 'botox') AS btx,
        bool_or(t.modality = 'physical_therapy') AS pt,
        bool_or(t.modality = 'selective_neurectomy') AS sn,
        bool_or(t.modality = 'selective_myectomy') AS my,
        bool_or(t.modality = 'other_surgery') AS os
    FROM treatments AS t
    INNER JOIN index_treatment AS i USING (site_id, patient_id)
    WHERE t."day" BETWEEN i.t0_day AND i.t0_day + getvariable('exposure_window_days')
    GROUP BY ALL
),

-- The combination's codes in the contract's order (seed_modality_codes).
combination_codes AS (
    SELECT w.site_id, w.patient_id, string_agg(c.code, '+' ORDER BY c."position") AS combination
    FROM (
        SELECT DISTINCT t.site_id, t.patient_id, t.modality
        FROM treatments AS t
        INNER JOIN index_treatment AS i USING (site_id, patient_id)
        WHERE t."day" BETWEEN i.t0_day AND i.t0_day + getvariable('exposure_window_days')
    ) AS w
    INNER JOIN seed_modality_codes AS c USING (modality)
    GROUP BY ALL
),

last_contact AS (
    SELECT site_id, patient_id, max(contact_day) AS last_day
    FROM (
        SELECT site_id, patient_id, visit_day AS contact_day FROM assessments
        UNION ALL
        SELECT site_id, patient_id, "day" AS contact_day FROM treatments
    )
    GROUP BY ALL
),

combined AS (
    SELECT
        p.site_id, p.patient_id, i.t0_day,
        k.combination,
        e.btx::INTEGER + e.pt::INTEGER + e.sn::INTEGER + e.my::INTEGER + e.os::INTEGER AS n_modalities,
        coalesce(e.btx, false) AS btx, coalesce(e.pt, false) AS pt, coalesce(e.sn, false) AS sn,
        coalesce(e.my, false) AS my, coalesce(e.os, false) AS os,
        c.last_day - i.t0_day AS followup_days
    FROM patients AS p
    LEFT JOIN index_treatment AS i USING (site_id, patient_id)
    LEFT JOIN exposed AS e USING (site_id, patient_id)
    LEFT JOIN combination_codes AS k USING (site_id, patient_id)
    LEFT JOIN last_contact AS c USING (site_id, patient_id)
)

SELECT
    site_id, patient_id, t0_day, combination, n_modalities,
    n_modalities >= 2 AS is_combined,
    btx, pt, sn, my, os, followup_days,
    t0_day IS NOT NULL AND followup_days >= getvariable('exposure_window_days') AS classifiable,
    CASE
        WHEN t0_day IS NULL THEN 'no treatment on or after day 0'
        WHEN followup_days < getvariable('exposure_window_days')
            THEN 'follow-up ends before the ' || getvariable('exposure_window_days') || '-day landmark'
    END AS exclusion_reason
FROM combined
ORDER BY site_id, patient_id;

COMMENT ON TABLE modality_combinations IS 'One row per patient: the modality combination started in the exposure window [t0, t0 + window] and whether the patient can be classified.';
COMMENT ON COLUMN modality_combinations.site_id IS 'Site code.';
COMMENT ON COLUMN modality_combinations.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN modality_combinations.t0_day IS 'Index treatment day: the first treatment on or after day 0; null when there is none.';
COMMENT ON COLUMN modality_combinations.combination IS 'Modality short codes started in the window, joined by + in the order BTX, PT, SN, MY, OS.';
COMMENT ON COLUMN modality_combinations.n_modalities IS 'Number of modalities in the combination.';
COMMENT ON COLUMN modality_combinations.is_combined IS 'True for two or more modalities (combined), false for one (single).';
COMMENT ON COLUMN modality_combinations.btx IS 'BoNT started in the window.';
COMMENT ON COLUMN modality_combinations.pt IS 'Physical therapy started in the window.';
COMMENT ON COLUMN modality_combinations.sn IS 'Selective neurectomy in the window.';
COMMENT ON COLUMN modality_combinations.my IS 'Selective myectomy in the window.';
COMMENT ON COLUMN modality_combinations.os IS 'Other surgery in the window.';
COMMENT ON COLUMN modality_combinations.followup_days IS 'Days from t0 to the patient''s last contact (visit or treatment).';
COMMENT ON COLUMN modality_combinations.classifiable IS 'True when follow-up reaches the landmark (the end of the exposure window): only these enter comparisons.';
COMMENT ON COLUMN modality_combinations.exclusion_reason IS 'Why the patient is not classifiable; null when classifiable.';
