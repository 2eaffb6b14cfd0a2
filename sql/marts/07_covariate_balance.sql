-- Covariate balance before and after weighting, per weighted comparison.
CREATE TABLE covariate_balance AS
SELECT * FROM store.covariate_balance
ORDER BY run_id, contrast, outcome, covariate;

COMMENT ON TABLE covariate_balance IS 'One row per covariate of a weighted comparison: standardized mean differences before and after weighting.';
COMMENT ON COLUMN covariate_balance.run_id IS 'Model run id.';
COMMENT ON COLUMN covariate_balance.contrast IS 'Contrast code.';
COMMENT ON COLUMN covariate_balance.outcome IS 'Outcome code.';
COMMENT ON COLUMN covariate_balance.covariate IS 'Covariate (or level) name.';
COMMENT ON COLUMN covariate_balance.smd_unweighted IS 'Standardized mean difference before weighting.';
COMMENT ON COLUMN covariate_balance.smd_weighted IS 'Standardized mean difference after weighting (pass: |SMD| < 0.1).';
