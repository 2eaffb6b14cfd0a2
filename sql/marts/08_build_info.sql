-- One row: when this warehouse was built, from which data, and with which design settings.
CREATE TABLE build_info AS
SELECT
    getvariable('built_at') AS built_at,
    getvariable('as_of') AS as_of,
    getvariable('data_snapshot') AS data_snapshot,
    getvariable('code_version') AS code_version,
    getvariable('design_settings')::JSON AS design_settings;
