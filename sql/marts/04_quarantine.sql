-- One row per row refused at validation: where it is and the rule it broke. The row's cells stay in
-- the staging store, for the coordinator: a value that slipped the screen must not be published.
-- key: drop_id, file, row_number
CREATE TABLE quarantine AS
SELECT drop_id, file, row_number, rule, columns
FROM store.quarantine
WHERE quarantined_at <= getvariable('as_of')
ORDER BY drop_id, file, row_number;

COMMENT ON TABLE quarantine IS 'One row per row refused at validation: where it is and the rule it broke (the row''s cells stay in the staging store, for the coordinator).';
COMMENT ON COLUMN quarantine.drop_id IS 'Drop the row came in.';
COMMENT ON COLUMN quarantine.file IS 'File the row came in.';
COMMENT ON COLUMN quarantine.row_number IS 'The row''s number as a spreadsheet shows it (the header is row 1).';
COMMENT ON COLUMN quarantine.rule IS 'Rule(s) the row broke, separated by ''; '' (e.g. range:age_at_onset, unknown_patient).';
COMMENT ON COLUMN quarantine.columns IS 'Columns the rule concerns.';
