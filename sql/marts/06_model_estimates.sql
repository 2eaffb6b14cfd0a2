-- Every comparative estimate of every model run.
-- key: run_id, contrast, outcome, timepoint, method
CREATE TABLE model_estimates AS
SELECT
    run_id, method, outcome, timepoint, contrast, estimate, std_error, ci_low, ci_high, p_value, p_adjusted,
    n_treated, n_control, higher_is_better, diagnostics_ok, note, e_value, e_value_ci, mdd,
    converged, boundary, balance_ok, overlap_ok,
    -- The same difference signed so that above 0 is better (the report's convention); none on a ratio scale.
    CASE WHEN method IN ('ordinal', 'phreg', 'phreg_vs_bont_alone') THEN NULL
        WHEN higher_is_better THEN estimate ELSE -estimate END AS benefit,
    CASE WHEN method IN ('ordinal', 'phreg', 'phreg_vs_bont_alone') THEN NULL
        WHEN higher_is_better THEN ci_low ELSE -ci_high END AS benefit_ci_low,
    CASE WHEN method IN ('ordinal', 'phreg', 'phreg_vs_bont_alone') THEN NULL
        WHEN higher_is_better THEN ci_high ELSE -ci_low END AS benefit_ci_high
FROM store.model_estimates
ORDER BY run_id, method, contrast, outcome, timepoint;

COMMENT ON TABLE model_estimates IS 'One row per comparative estimate: first group minus second, in the outcome''s own units.';
COMMENT ON COLUMN model_estimates.run_id IS 'Model run id.';
COMMENT ON COLUMN model_estimates.method IS 'unadjusted, ancova, iptw, aipw (doubly robust: augmented inverse-probability weighting), mixed or mice (difference in mean change); responder (adjusted difference in the share of responders, percentage points: a patient responds when their own improvement, in the outcomes own direction (a fall in SAQ), reaches the individual smallest detectable change, else the minimal important change; linear probability model on the ANCOVA terms; not estimated, note "too few responders to compare", where a group has fewer than `min_group_size` (11) responders or non-responders); ordinal (House-Brackmann: odds ratio of a better grade from a proportional-odds model on the ANCOVA terms, 1 = no difference). Issue 19: ancova for synergy contrasts; for after_vs_before_surgery, mixed and mixed_vs_bont_alone (linear mixed model, random intercept per patient) and phreg and phreg_vs_bont_alone (Cox model of the time to the next injection); the _vs_bont_alone fits add the patients on BoNT alone with session-number windows as fixed effects (strata for phreg), taking out the drift over sessions that comes without surgery.';
COMMENT ON COLUMN model_estimates.outcome IS 'Outcome code. after_vs_before_surgery: botox_interval_days (days between injections), botox_units_per_session (units per injection) or time_to_next_botox (hazard of the next injection).';
COMMENT ON COLUMN model_estimates.timepoint IS '3m, 6m or 12m. The design''s primary timepoint for synergy contrasts; all for after_vs_before_surgery (every injection from the index visit on).';
COMMENT ON COLUMN model_estimates.contrast IS 'combined_vs_single or <COMBINATION>_vs_<REFERENCE>. synergy:A+B|C: the interaction of adding A and B together on the background combination C (nothing after | for no background), E[C+A+B] - E[C+A] - E[C+B] + E[C], for every pair whose four groups each have 11 or more patients; after_vs_before_surgery: within patients with a selective neurectomy or myectomy, after vs before it.';
COMMENT ON COLUMN model_estimates.estimate IS 'Difference in mean change from baseline, first group minus second; for method responder the difference in the share of responders (percentage points), for ordinal the odds ratio of a better grade. synergy: the interaction in the outcome''s units (positive in its better direction: more than the sum); botox_interval_days and botox_units_per_session: the change after vs before surgery in days or units; time_to_next_botox: the hazard ratio after vs before surgery (below 1: the next injection comes later).';
COMMENT ON COLUMN model_estimates.std_error IS 'Standard error of the estimate (mixed: patient-clustered sandwich on the same fit, the model-based SE in note; ordinal: of the log odds ratio). time_to_next_botox: of the log hazard ratio.';
COMMENT ON COLUMN model_estimates.ci_low IS 'Lower bound of the 95% confidence interval.';
COMMENT ON COLUMN model_estimates.ci_high IS 'Upper bound of the 95% confidence interval.';
COMMENT ON COLUMN model_estimates.p_value IS 'Raw p-value.';
COMMENT ON COLUMN model_estimates.p_adjusted IS 'Adjusted for multiplicity within one method, contrast and timepoint: the design''s primary outcome tested first (its own p), then Holm over the secondary outcomes, each at least the primary''s p; a composite''s subscores by Holm among themselves, at least their composite''s adjusted p; missing for rows not fitted or not converged (outside every family) and where the gate (primary or composite) has no p. Synergy: each pair its own family (per method, contrast and timepoint, as above), apart from the comparative contrasts; after_vs_before_surgery: Holm over its three outcomes within the within-patient fits (mixed, phreg) and within the fits against BoNT alone.';
COMMENT ON COLUMN model_estimates.n_treated IS 'Patients in the first group (mixed: with any follow-up; mice: with a baseline value). synergy: patients on C+A+B; after_vs_before_surgery: patients with surgery and a gap or session after it.';
COMMENT ON COLUMN model_estimates.n_control IS 'Patients in the second group (as n_treated). synergy: patients on C; after_vs_before_surgery: patients with surgery and a gap or session before it (the _vs_bont_alone fits: patients on BoNT alone).';
COMMENT ON COLUMN model_estimates.higher_is_better IS 'The outcome''s direction; always true for responder and ordinal rows (more responders, higher odds of a better grade): to count responders, read the outcomes own direction from `design_outcomes.higher_is_better`, not this flag. after_vs_before_surgery: true for botox_interval_days, false for botox_units_per_session and time_to_next_botox (less BoNT is better).';
COMMENT ON COLUMN model_estimates.diagnostics_ok IS 'Whether the diagnostics passed: the contrast''s overlap (for every method: false for all where too few patients are in equipoise), iptw balance, mixed convergence; false with a reason in note, and for estimates not made.';
COMMENT ON COLUMN model_estimates.note IS 'Why diagnostics failed or no estimate was made, and what else a reader must know (robust errors, pooled levels, imputed share, the contrast''s overlap; unadjusted: leads with ''confounded:'' and the largest baseline differences where the groups differ; ancova: the site by group interaction test and per-site estimates with two or more sites; mice: the tipping-point shift of each group''s imputed changes that brings the estimate to 0).';
COMMENT ON COLUMN model_estimates.e_value IS 'E-value (VanderWeele & Ding): the risk ratio an unmeasured confounder would need with both group and outcome to explain the estimate away (difference put on the RR scale as exp(0.91 x estimate / pooled SD of change)).';
COMMENT ON COLUMN model_estimates.e_value_ci IS 'E-value of the confidence limit nearer the null (1 when the CI contains 0).';
COMMENT ON COLUMN model_estimates.mdd IS 'Minimum detectable difference at 80% power and 5% two-sided, from this estimate''s standard error: (z 0.975 + z 0.80) x SE, in the outcome''s units.';
COMMENT ON COLUMN model_estimates.converged IS 'Whether the fit converged (false also for estimates not made): a fit that did not is outside every multiplicity family. NULL for runs made before the column.';
COMMENT ON COLUMN model_estimates.boundary IS 'A variance component estimated at zero (mixed: the patient variance; a singular fit): the numbers stand, the report flags them. NULL for runs made before the column.';
COMMENT ON COLUMN model_estimates.balance_ok IS 'iptw: whether the weighted groups are balanced (every |SMD| below max_smd, every variance ratio within bounds). NULL for methods without a balance check.';
COMMENT ON COLUMN model_estimates.overlap_ok IS 'Whether the contrast has enough patients in equipoise (the same for every method of the contrast); false makes diagnostics_ok false. NULL where no overlap was computed (an estimate not made, the claims).';
COMMENT ON COLUMN model_estimates.benefit IS 'The estimate signed so that above 0 means the first group did better, whatever the outcome''s direction: estimate where higher_is_better, else -estimate (SAQ ANCOVA -6.2 as fitted is benefit +6.2). The report prints this one. NULL for the ratios (ordinal odds ratio, phreg hazard ratios), which the report prints as fitted.';
COMMENT ON COLUMN model_estimates.benefit_ci_low IS 'Lower end of the 95% CI of benefit.';
COMMENT ON COLUMN model_estimates.benefit_ci_high IS 'Upper end of the 95% CI of benefit.';
