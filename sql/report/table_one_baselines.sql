-- Table 1: the baseline score of each outcome in $outcomes, one row per classifiable patient and outcome.
SELECT f.site_id, f.patient_id, f.outcome, max(f."value") AS "value"
FROM followup_scores AS f
INNER JOIN modality_combinations AS m USING (site_id, patient_id)
WHERE m.classifiable AND f.timepoint = 'baseline' AND list_contains($outcomes, f.outcome)
GROUP BY ALL
ORDER BY f.site_id, f.patient_id, f.outcome
