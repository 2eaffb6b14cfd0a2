-- Covariate balance before and after weighting, per weighted comparison.
-- key: run_id, contrast, outcome, timepoint, covariate
CREATE TABLE covariate_balance AS
SELECT run_id, contrast, outcome, timepoint, covariate, smd_unweighted, smd_weighted
FROM store.covariate_balance
ORDER BY run_id, contrast, outcome, timepoint, covariate;

COMMENT ON TABLE covariate_balance IS 'One row per term of the propensity model of an iptw comparison: standardized mean differences before and after weighting.';
COMMENT ON COLUMN covariate_balance.run_id IS 'Model run id.';
COMMENT ON COLUMN covariate_balance.contrast IS 'Contrast code.';
COMMENT ON COLUMN covariate_balance.outcome IS 'Outcome code.';
COMMENT ON COLUMN covariate_balance.timepoint IS '3m, 6m or 12m: the comparison is of the patients with the outcome at that timepoint.';
COMMENT ON COLUMN covariate_balance.covariate IS 'Covariate (or level, as name[level]) name, or baseline_value; severity[<outcome>] another baseline severity measure, missing[<outcome>] its missing indicator, spline[<term>,<j>] a restricted cubic spline term of a continuous one.';
COMMENT ON COLUMN covariate_balance.smd_unweighted IS 'Standardized mean difference before weighting (difference in means over the pooled SD).';
COMMENT ON COLUMN covariate_balance.smd_weighted IS 'Standardized mean difference after weighting, same denominator (pass: |SMD| < 0.1).';
