-- Covariate balance before and after weighting, per weighted comparison.
CREATE TABLE covariate_balance AS
SELECT * FROM store.covariate_balance
ORDER BY run_id, contrast, outcome, covariate;
