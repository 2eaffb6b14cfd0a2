-- The follow-up timepoints of the analysis design this warehouse was built with (from the design
-- settings): the models and the report read them from here, so a design change reaches both.
-- key: timepoint
CREATE TABLE design_timepoints AS
SELECT timepoint, "position", target_days, window_low_days, window_high_days, months, label, is_primary
FROM seed_timepoints
ORDER BY "position";

COMMENT ON TABLE design_timepoints IS 'One row per follow-up timepoint of the analysis design this warehouse was built with (its design settings); followup_scores places scores on these windows and the models estimate at each.';
COMMENT ON COLUMN design_timepoints.timepoint IS 'Timepoint code, as in followup_scores and model_estimates (e.g. 3m, 6m, 12m).';
COMMENT ON COLUMN design_timepoints."position" IS 'Order of the timepoint, 1 for the earliest.';
COMMENT ON COLUMN design_timepoints.target_days IS 'Target, in days from t0: the assessment nearest it within the window is used (the earlier on a tie).';
COMMENT ON COLUMN design_timepoints.window_low_days IS 'First day of the window, from t0.';
COMMENT ON COLUMN design_timepoints.window_high_days IS 'Last day of the window, from t0.';
COMMENT ON COLUMN design_timepoints.months IS 'The target in whole months (for labels and plots).';
COMMENT ON COLUMN design_timepoints.label IS 'The timepoint in words (e.g. 12 months).';
COMMENT ON COLUMN design_timepoints.is_primary IS 'True for the primary timepoint: the comparison the report answers first.';
