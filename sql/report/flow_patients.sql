-- One row per patient received: the steps of the patient flow for the primary outcome $outcome at the primary
-- timepoint $timepoint (sql/macros/patient_flow.sql, the attrition table's definition: treated, classifiable, with
-- a baseline score, in the primary analysis), the group, the combination and why a patient is not classifiable;
-- with_primary: a change in any outcome at the primary timepoint.
WITH primary_scores AS (
    SELECT site_id, patient_id, bool_or("value" IS NOT NULL AND baseline_value IS NOT NULL) AS with_primary
    FROM followup_scores
    WHERE timepoint = $timepoint
    GROUP BY ALL
)

SELECT
    p.site_id, p.patient_id,
    f.treated,
    f.classifiable,
    CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS "group",
    m.combination,
    coalesce(m.exclusion_reason, 'not classifiable') AS reason,
    m.patient_id IS NOT NULL AS in_combinations,
    coalesce(s.with_primary, false) AS with_primary,
    f.with_baseline,
    f.analysable AS in_primary
FROM patients AS p
INNER JOIN patient_flow_steps('patients', 'modality_combinations', 'followup_scores', 'design_timepoints', $outcome) AS f
    ON f.site_id = p.site_id AND f.patient_id = p.patient_id AND f.timepoint = $timepoint
LEFT JOIN modality_combinations AS m ON m.site_id = p.site_id AND m.patient_id = p.patient_id
LEFT JOIN primary_scores AS s ON s.site_id = p.site_id AND s.patient_id = p.patient_id
ORDER BY p.site_id, p.patient_id
