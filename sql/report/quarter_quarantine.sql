-- Rows quarantined from the drops received in [$start, $end), by rule (a row breaking two rules counts under each).
WITH quarter_drops AS (
    SELECT drop_id FROM load_ledger WHERE received_at >= $start AND received_at < $end
),

rules AS (
    SELECT unnest(string_split(q.rule, '; ')) AS r
    FROM quarantine AS q
    WHERE q.drop_id IN (SELECT drop_id FROM quarter_drops)
)

SELECT trim(r) AS rule, count(*) AS "rows"
FROM rules
GROUP BY ALL
ORDER BY rule
