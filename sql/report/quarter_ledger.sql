-- The load ledger of the drops received in [$start, $end): one row per file.
SELECT drop_id, file, status, received_at, rows_loaded, rows_quarantined
FROM load_ledger
WHERE received_at >= $start AND received_at < $end
ORDER BY received_at, drop_id, file
