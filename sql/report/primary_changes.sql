-- Each classifiable patient's change from baseline in every outcome at one timepoint ($timepoint): the
-- responder shares of the report (a patient responds when the own improvement reaches the threshold) and the
-- sites' funnel plot (the primary outcome's change, adjusted for its baseline).
WITH changes AS (
    SELECT f.site_id, f.patient_id, f.outcome, f.baseline_value, f.change
    FROM followup_scores AS f
    WHERE f.timepoint = $timepoint AND f.change IS NOT NULL
)

SELECT c.site_id, c.patient_id, c.outcome, c.baseline_value, c.change
FROM changes AS c
INNER JOIN modality_combinations AS m USING (site_id, patient_id)
WHERE m.classifiable
ORDER BY c.outcome, c.site_id, c.patient_id
