-- One row per patient received: the steps of the patient flow (treated, classifiable, with a baseline score of the
-- primary outcome $outcome, in the primary analysis: a change in it at the primary timepoint $timepoint, as the
-- models' analysis frames take it), the group, the combination and why a patient is not classifiable.
WITH scores AS (
    SELECT site_id, patient_id, outcome, timepoint, "value", baseline_value, change
    FROM followup_scores
    WHERE timepoint IN ('baseline', $timepoint)
),

steps AS (
    SELECT
        site_id, patient_id,
        bool_or(timepoint = $timepoint AND "value" IS NOT NULL AND baseline_value IS NOT NULL) AS with_primary,
        bool_or(outcome = $outcome AND timepoint = 'baseline' AND "value" IS NOT NULL) AS with_baseline,
        bool_or(outcome = $outcome AND timepoint = $timepoint AND change IS NOT NULL) AS in_primary
    FROM scores
    GROUP BY ALL
)

SELECT
    p.site_id, p.patient_id,
    m.t0_day IS NOT NULL AS treated,
    coalesce(m.classifiable, false) AS classifiable,
    CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS "group",
    m.combination,
    coalesce(m.exclusion_reason, 'not classifiable') AS reason,
    m.patient_id IS NOT NULL AS in_combinations,
    coalesce(s.with_primary, false) AS with_primary,
    coalesce(s.with_baseline, false) AS with_baseline,
    coalesce(s.in_primary, false) AS in_primary
FROM patients AS p
LEFT JOIN modality_combinations AS m USING (site_id, patient_id)
LEFT JOIN steps AS s USING (site_id, patient_id)
ORDER BY p.site_id, p.patient_id
