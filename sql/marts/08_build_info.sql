-- One row: when this warehouse was built, from which data, and with which design settings.
-- key: one row
CREATE TABLE build_info AS
SELECT
    getvariable('built_at') AS built_at,
    getvariable('as_of') AS as_of,
    getvariable('data_snapshot') AS data_snapshot,
    getvariable('code_version') AS code_version,
    getvariable('design_settings')::JSON AS design_settings;

COMMENT ON TABLE build_info IS 'One row: when this warehouse was built, from which data, and with which analysis design settings.';
COMMENT ON COLUMN build_info.built_at IS 'When the build ran (UTC).';
COMMENT ON COLUMN build_info.as_of IS 'Data as loaded by this time (UTC) was used.';
COMMENT ON COLUMN build_info.data_snapshot IS 'Hash of the checksums of every file loaded by as_of.';
COMMENT ON COLUMN build_info.code_version IS 'Version of the pipeline code.';
COMMENT ON COLUMN build_info.design_settings IS 'The analysis design values used (exposure window, baseline lookback, timepoints) as JSON.';
