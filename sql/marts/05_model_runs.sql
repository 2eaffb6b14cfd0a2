-- Every model run, with what it ran on, so a published number can be traced and refitted.
CREATE TABLE model_runs AS
SELECT run_id, started_at, data_snapshot, code_version, settings, packages
FROM store.model_runs
ORDER BY started_at;
