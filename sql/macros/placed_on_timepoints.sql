-- How the design places scores on timepoints, in one place: the build's followup_scores and the
-- report's item-level trajectories both call it. scores_table names a table, view or CTE with
-- site_id, patient_id, outcome, visit_day, days_from_t0 and "value"; timepoints_table one with
-- timepoint, target_days, window_low_days and window_high_days (design_timepoints). The baseline
-- is the latest score in [t0 - lookback_days, t0]; each follow-up the score nearest the target
-- within the window (the earlier on a tie); change = value - baseline value.
CREATE OR REPLACE TEMP MACRO placed_on_timepoints(scores_table, timepoints_table, lookback_days) AS TABLE
WITH scores AS (
    SELECT site_id, patient_id, outcome, visit_day, days_from_t0, "value" FROM query_table(scores_table)
),

baseline AS (
    SELECT site_id, patient_id, outcome, 'baseline' AS timepoint, visit_day, days_from_t0, "value"
    FROM scores
    WHERE days_from_t0 BETWEEN -lookback_days AND 0
    QUALIFY row_number() OVER (PARTITION BY site_id, patient_id, outcome ORDER BY visit_day DESC) = 1
),

followup AS (
    SELECT s.site_id, s.patient_id, s.outcome, t.timepoint, s.visit_day, s.days_from_t0, s."value"
    FROM scores AS s
    INNER JOIN query_table(timepoints_table) AS t ON s.days_from_t0 BETWEEN t.window_low_days AND t.window_high_days
    QUALIFY row_number() OVER (
        PARTITION BY s.site_id, s.patient_id, s.outcome, t.timepoint
        ORDER BY abs(s.days_from_t0 - t.target_days), s.days_from_t0
    ) = 1
)

SELECT
    site_id, patient_id, outcome, timepoint, visit_day, days_from_t0, "value",
    "value" AS baseline_value,
    NULL::DOUBLE AS change
FROM baseline
UNION ALL
SELECT
    f.site_id, f.patient_id, f.outcome, f.timepoint, f.visit_day, f.days_from_t0, f."value",
    b."value" AS baseline_value,
    f."value" - b."value" AS change
FROM followup AS f
LEFT JOIN baseline AS b USING (site_id, patient_id, outcome);
