-- The propensity side of every iptw comparison: model, overlap, effective sample size, verdict.
-- key: run_id, contrast, outcome, timepoint
CREATE TABLE propensity_diagnostics AS
SELECT
    run_id, contrast, outcome, timepoint, covariates, auc, equipoise_share, ess_treated, ess_control,
    max_abs_smd_weighted, n_truncated, diagnostics_ok, note
FROM store.propensity_diagnostics
ORDER BY run_id, contrast, outcome, timepoint;

COMMENT ON TABLE propensity_diagnostics IS 'One row per iptw comparison: the propensity model and the balance and overlap checks behind its diagnostics_ok.';
COMMENT ON COLUMN propensity_diagnostics.run_id IS 'Model run id.';
COMMENT ON COLUMN propensity_diagnostics.contrast IS 'Contrast code.';
COMMENT ON COLUMN propensity_diagnostics.outcome IS 'Outcome code.';
COMMENT ON COLUMN propensity_diagnostics.timepoint IS '3m, 6m or 12m.';
COMMENT ON COLUMN propensity_diagnostics.covariates IS 'Terms whose balance is checked (JSON list; levels as name[level], spline[<term>,<j>] spline terms, in the propensity model where they balance better, the note says when not).';
COMMENT ON COLUMN propensity_diagnostics.auc IS 'Area under the ROC curve of the propensity model (0.5: no separation; near 1: little overlap).';
COMMENT ON COLUMN propensity_diagnostics.equipoise_share IS 'Share of patients with a preference score (Walker et al. 2013) in the equipoise range (pass: above the setting, 0.2).';
COMMENT ON COLUMN propensity_diagnostics.ess_treated IS 'Kish effective sample size of the first group after weighting.';
COMMENT ON COLUMN propensity_diagnostics.ess_control IS 'Kish effective sample size of the second group after weighting.';
COMMENT ON COLUMN propensity_diagnostics.max_abs_smd_weighted IS 'Largest |SMD| after weighting (pass: below 0.1).';
COMMENT ON COLUMN propensity_diagnostics.n_truncated IS 'Stabilized weights truncated at the setting weight_truncation.';
COMMENT ON COLUMN propensity_diagnostics.diagnostics_ok IS 'Balance (every |SMD| below the pass mark, spline terms too, and every continuous term''s weighted variance ratio within 0.5-2), overlap and propensity-model convergence all passed.';
COMMENT ON COLUMN propensity_diagnostics.note IS 'Which check failed and by how much, with the model facts.';
