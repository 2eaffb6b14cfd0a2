-- Every comparative estimate of every model run.
CREATE TABLE model_estimates AS
SELECT * FROM store.model_estimates
ORDER BY run_id, method, contrast, outcome, timepoint;

COMMENT ON TABLE model_estimates IS 'One row per comparative estimate: first group minus second, in the outcome''s own units.';
COMMENT ON COLUMN model_estimates.run_id IS 'Model run id.';
COMMENT ON COLUMN model_estimates.method IS 'unadjusted, ancova, iptw, mixed or mice.';
COMMENT ON COLUMN model_estimates.outcome IS 'Outcome code.';
COMMENT ON COLUMN model_estimates.timepoint IS '3m, 6m or 12m.';
COMMENT ON COLUMN model_estimates.contrast IS 'combined_vs_single or <COMBINATION>_vs_<REFERENCE>.';
COMMENT ON COLUMN model_estimates.estimate IS 'Difference in mean change from baseline, first group minus second.';
COMMENT ON COLUMN model_estimates.std_error IS 'Standard error of the estimate.';
COMMENT ON COLUMN model_estimates.ci_low IS 'Lower bound of the 95% confidence interval.';
COMMENT ON COLUMN model_estimates.ci_high IS 'Upper bound of the 95% confidence interval.';
COMMENT ON COLUMN model_estimates.p_value IS 'Raw p-value.';
COMMENT ON COLUMN model_estimates.p_adjusted IS 'Holm-adjusted p-value across the outcomes of one method, contrast and timepoint.';
COMMENT ON COLUMN model_estimates.n_treated IS 'Patients in the first group.';
COMMENT ON COLUMN model_estimates.n_control IS 'Patients in the second group.';
COMMENT ON COLUMN model_estimates.higher_is_better IS 'The outcome''s direction.';
COMMENT ON COLUMN model_estimates.diagnostics_ok IS 'Whether the run''s diagnostics passed.';
COMMENT ON COLUMN model_estimates.note IS 'Why diagnostics failed, or what else a reader must know.';
