-- One row per received file: its checksum, how its rows were accounted for, and its status.
CREATE TABLE load_ledger AS
SELECT drop_id, file, sha256, rows_in, rows_loaded, rows_quarantined, status, reason, received_at, loaded_at
FROM store.load_ledger
WHERE received_at <= getvariable('as_of')
ORDER BY received_at, drop_id, file;
