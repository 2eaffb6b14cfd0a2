-- The target trial "surgery or more injections?" as emulated (issue 31; docs/target_trial.md): per run,
-- outcome, trial (the time zero's session number, and all) and strategy, the clones, censoring and weights.
-- key: run_id, outcome, trial, arm
CREATE TABLE target_trial_summary AS
SELECT
    run_id, outcome, trial, arm, clones, censored_share, followed, largest_weight, effective_sample_size, flagged
FROM store.target_trial_summary
ORDER BY run_id, outcome, trial, arm;

COMMENT ON TABLE target_trial_summary IS 'One row per model run, outcome, trial and strategy of the emulated target trial surgery_within_90d_vs_continue_bont (docs/target_trial.md): clone-censor-weight''s clones, censoring and weights; its estimates are in model_estimates (method ccw).';
COMMENT ON COLUMN target_trial_summary.run_id IS 'Model run id.';
COMMENT ON COLUMN target_trial_summary.outcome IS 'Outcome code (sunnybrook_composite or saq).';
COMMENT ON COLUMN target_trial_summary.trial IS 'The trials by the session number of their time zero (2 for the second BoNT session, ...), or all.';
COMMENT ON COLUMN target_trial_summary.arm IS 'A_surgery_within_90d (selective neurectomy or myectomy within 90 days of time zero) or B_continue_bont (no surgery for 12 months).';
COMMENT ON COLUMN target_trial_summary.clones IS 'Patient-trials cloned into this strategy (every eligible one).';
COMMENT ON COLUMN target_trial_summary.censored_share IS 'Share of the clones censored for deviating from the strategy.';
COMMENT ON COLUMN target_trial_summary.followed IS 'Clones that followed the strategy (not censored).';
COMMENT ON COLUMN target_trial_summary.largest_weight IS 'Largest stabilized inverse-probability-of-censoring weight of a followed clone, before truncation.';
COMMENT ON COLUMN target_trial_summary.effective_sample_size IS 'Kish effective sample size of the followed clones'' (truncated) weights.';
COMMENT ON COLUMN target_trial_summary.flagged IS 'Followed clones whose weight exceeded models.json''s weight_truncation (truncated to it, and counted in the ccw estimate''s note).';
