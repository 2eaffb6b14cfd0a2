-- The toxin-cycle phase of each comparison patient's primary outcome assessment at the primary timepoint,
-- by group (combined or single): the report's phase mix (pipeline/report/target_trial.py).
SELECT m.site_id, m.patient_id, m.is_combined, f.days_since_injection
FROM followup_scores AS f
INNER JOIN modality_combinations AS m USING (site_id, patient_id)
WHERE m.classifiable AND f.outcome = $outcome AND f.timepoint = $timepoint AND f."value" IS NOT NULL
ORDER BY m.site_id, m.patient_id
