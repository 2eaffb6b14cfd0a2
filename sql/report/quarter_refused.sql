-- The drops received in [$start, $end) that were rejected or held, with the reason.
SELECT drop_id, status, min(reason) AS reason, min(received_at) AS received_at
FROM load_ledger
WHERE status IN ('rejected', 'held') AND received_at >= $start AND received_at < $end
GROUP BY drop_id, status
ORDER BY received_at, drop_id
