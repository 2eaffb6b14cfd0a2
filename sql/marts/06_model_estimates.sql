-- Every comparative estimate of every model run.
-- key: run_id, contrast, outcome, timepoint, method
CREATE TABLE model_estimates AS
SELECT
    run_id, method, outcome, timepoint, contrast, estimate, std_error, ci_low, ci_high, p_value, p_adjusted,
    n_treated, n_control, higher_is_better, diagnostics_ok, note, e_value, e_value_ci, mdd
FROM store.model_estimates
ORDER BY run_id, method, contrast, outcome, timepoint;

COMMENT ON TABLE model_estimates IS 'One row per comparative estimate: first group minus second, in the outcome''s own units.';
COMMENT ON COLUMN model_estimates.run_id IS 'Model run id.';
COMMENT ON COLUMN model_estimates.method IS 'unadjusted, ancova, iptw, aipw (doubly robust: augmented inverse-probability weighting), mixed or mice (difference in mean change); responder (adjusted difference in the share of responders, percentage points: a patient responds when their own improvement reaches the individual smallest detectable change, else the minimal important change; linear probability model on the ANCOVA terms); ordinal (House-Brackmann: odds ratio of a better grade from a proportional-odds model on the ANCOVA terms, 1 = no difference).';
COMMENT ON COLUMN model_estimates.outcome IS 'Outcome code.';
COMMENT ON COLUMN model_estimates.timepoint IS '3m, 6m or 12m.';
COMMENT ON COLUMN model_estimates.contrast IS 'combined_vs_single or <COMBINATION>_vs_<REFERENCE>.';
COMMENT ON COLUMN model_estimates.estimate IS 'Difference in mean change from baseline, first group minus second; for method responder the difference in the share of responders (percentage points), for ordinal the odds ratio of a better grade.';
COMMENT ON COLUMN model_estimates.std_error IS 'Standard error of the estimate (mixed: patient-clustered sandwich on the same fit, the model-based SE in note; ordinal: of the log odds ratio).';
COMMENT ON COLUMN model_estimates.ci_low IS 'Lower bound of the 95% confidence interval.';
COMMENT ON COLUMN model_estimates.ci_high IS 'Upper bound of the 95% confidence interval.';
COMMENT ON COLUMN model_estimates.p_value IS 'Raw p-value.';
COMMENT ON COLUMN model_estimates.p_adjusted IS 'Adjusted for multiplicity within one method, contrast and timepoint: the design''s primary outcome tested first (its own p), then Holm over the secondary outcomes, each at least the primary''s p; a composite''s subscores by Holm among themselves, at least their composite''s adjusted p; missing for rows not fitted or not converged (outside every family) and where the gate (primary or composite) has no p.';
COMMENT ON COLUMN model_estimates.n_treated IS 'Patients in the first group (mixed: with any follow-up; mice: with a baseline value).';
COMMENT ON COLUMN model_estimates.n_control IS 'Patients in the second group (as n_treated).';
COMMENT ON COLUMN model_estimates.higher_is_better IS 'The outcome''s direction; always true for responder and ordinal rows (more responders, higher odds of a better grade).';
COMMENT ON COLUMN model_estimates.diagnostics_ok IS 'Whether the diagnostics passed: the contrast''s overlap (for every method: false for all where too few patients are in equipoise), iptw balance, mixed convergence; false with a reason in note, and for estimates not made.';
COMMENT ON COLUMN model_estimates.note IS 'Why diagnostics failed or no estimate was made, and what else a reader must know (robust errors, pooled levels, imputed share, the contrast''s overlap; unadjusted: leads with ''confounded:'' and the largest baseline differences where the groups differ; ancova: the site by group interaction test and per-site estimates with two or more sites; mice: the tipping-point shift of each group''s imputed changes that brings the estimate to 0).';
COMMENT ON COLUMN model_estimates.e_value IS 'E-value (VanderWeele & Ding): the risk ratio an unmeasured confounder would need with both group and outcome to explain the estimate away (difference put on the RR scale as exp(0.91 x estimate / pooled SD of change)).';
COMMENT ON COLUMN model_estimates.e_value_ci IS 'E-value of the confidence limit nearer the null (1 when the CI contains 0).';
COMMENT ON COLUMN model_estimates.mdd IS 'Minimum detectable difference at 80% power and 5% two-sided, from this estimate''s standard error: (z 0.975 + z 0.80) x SE, in the outcome''s units.';
