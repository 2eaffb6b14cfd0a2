-- One row per classifiable patient, outcome (of $outcomes) and timepoint with a score: the trajectories.
SELECT
    f.site_id, f.patient_id, f.outcome,
    CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS "group",
    f.timepoint, f."value"
FROM followup_scores AS f
INNER JOIN modality_combinations AS m USING (site_id, patient_id)
WHERE m.classifiable AND f."value" IS NOT NULL AND list_contains($outcomes, f.outcome)
ORDER BY f.outcome, "group", f.timepoint, f.site_id, f.patient_id
