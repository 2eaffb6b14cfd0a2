-- eFACE item scores ($items) by group at baseline and each timepoint, one row per patient, placed on the timepoints
-- as followup_scores places outcome scores (the same macro, the warehouse's design; $lookback: its baseline window).
WITH scores AS (
    SELECT
        a.site_id, a.patient_id, a.item AS outcome, a.visit_day, a.visit_day - m.t0_day AS days_from_t0, a."value"
    FROM assessments AS a
    INNER JOIN modality_combinations AS m USING (site_id, patient_id)
    WHERE m.classifiable AND a.instrument = 'eface' AND list_contains($items, a.item) AND a."value" IS NOT NULL
)

SELECT
    p.site_id, p.patient_id, p.outcome,
    CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS "group",
    p.timepoint, p."value"
FROM placed_on_timepoints('scores', 'design_timepoints', $lookback) AS p
INNER JOIN modality_combinations AS m USING (site_id, patient_id)
ORDER BY p.outcome, "group", p.timepoint, p.site_id, p.patient_id
