-- Every model run, with what it ran on, so a published number can be traced and refitted.
-- key: run_id
CREATE TABLE model_runs AS
SELECT run_id, started_at, data_snapshot, code_version, settings, packages
FROM store.model_runs
ORDER BY started_at;

COMMENT ON TABLE model_runs IS 'One row per model run, with what it ran on so any estimate can be traced and refitted.';
COMMENT ON COLUMN model_runs.run_id IS 'Model run id.';
COMMENT ON COLUMN model_runs.started_at IS 'When the run started (UTC).';
COMMENT ON COLUMN model_runs.data_snapshot IS 'Hash of the loaded inputs the run used (see build_info.data_snapshot).';
COMMENT ON COLUMN model_runs.code_version IS 'Version of the pipeline code.';
COMMENT ON COLUMN model_runs.settings IS 'Model settings as JSON.';
COMMENT ON COLUMN model_runs.packages IS 'Versions of the statistical packages as JSON.';
