-- Every comparative estimate of every model run.
CREATE TABLE model_estimates AS
SELECT * FROM store.model_estimates
ORDER BY run_id, method, contrast, outcome, timepoint;
