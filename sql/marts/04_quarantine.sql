-- One row per row refused at validation, with the rule it broke and the row itself.
CREATE TABLE quarantine AS
SELECT drop_id, file, row_number, rule, columns, "row"
FROM store.quarantine
WHERE quarantined_at <= getvariable('as_of')
ORDER BY drop_id, file, row_number;
