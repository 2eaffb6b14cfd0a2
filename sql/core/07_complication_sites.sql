-- The sites that report complications: those with a loaded drop (by the as-of time) that carried the
-- optional complications file or REDCap's complication instrument (contract 1.2). Only their patients
-- are at risk in complication_rates and the report's Safety section: a clinic that sends no
-- complications has not recorded none, and its patients would dilute every rate.
-- key: site_id
CREATE TABLE complication_sites AS
WITH reported AS (
    SELECT unnest(site_ids) AS site_id, drop_id, received_at
    FROM store.drops
    WHERE status = 'loaded'
        AND received_at <= getvariable('as_of')
        -- "tables" since this release; a drop loaded before it reported complications if it validated some.
        AND (json_contains(summary -> '$.tables', '"complications"') OR json_exists(summary, '$.validation.complications'))
)

SELECT site_id, arg_min(drop_id, received_at) AS first_drop_id, min(received_at) AS first_received_at
FROM reported
GROUP BY site_id
ORDER BY site_id;

COMMENT ON TABLE complication_sites IS 'One row per site that reports complications (a loaded drop with the complications file or REDCap complication instrument): only their patients are at risk in complication_rates.';
COMMENT ON COLUMN complication_sites.site_id IS 'Site code.';
COMMENT ON COLUMN complication_sites.first_drop_id IS 'The first drop of the site that carried complications.';
COMMENT ON COLUMN complication_sites.first_received_at IS 'When that drop was received (UTC).';
