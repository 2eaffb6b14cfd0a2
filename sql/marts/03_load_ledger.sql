-- One row per received file: its checksum, how its rows were accounted for, and its status.
-- key: drop_id, file
CREATE TABLE load_ledger AS
SELECT drop_id, file, sha256, rows_in, rows_loaded, rows_quarantined, status, reason, received_at, loaded_at
FROM store.load_ledger
WHERE received_at <= getvariable('as_of')
ORDER BY received_at, drop_id, file;

COMMENT ON TABLE load_ledger IS 'One row per received file of a drop: checksum and how its rows were accounted for (rows_in = rows_loaded + rows_quarantined).';
COMMENT ON COLUMN load_ledger.drop_id IS 'Drop (folder) name.';
COMMENT ON COLUMN load_ledger.file IS 'File name within the drop.';
COMMENT ON COLUMN load_ledger.sha256 IS 'SHA-256 of the file as received (kept in archive/).';
COMMENT ON COLUMN load_ledger.rows_in IS 'Data rows read from the file.';
COMMENT ON COLUMN load_ledger.rows_loaded IS 'Rows loaded into the current tables.';
COMMENT ON COLUMN load_ledger.rows_quarantined IS 'Rows refused: in quarantine (a row of a REDCap export when anything taken from it is), or the whole file when the drop was rejected or held.';
COMMENT ON COLUMN load_ledger.status IS 'loaded, rejected or held (duplicate: a file skipped for a checksum loaded before, in ledgers written before the change the CHANGELOG notes; such files are now loaded again).';
COMMENT ON COLUMN load_ledger.reason IS 'Why the file was not loaded, in words a coordinator can act on.';
COMMENT ON COLUMN load_ledger.received_at IS 'When the drop was received (UTC).';
COMMENT ON COLUMN load_ledger.loaded_at IS 'When it was loaded (UTC); null unless loaded.';
