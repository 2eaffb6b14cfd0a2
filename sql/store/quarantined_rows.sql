-- The quarantined rows of one drop ($drop_id; null: every drop) by file and rule, each with its cause: an
-- unknown_patient row whose patient's own row (in the patients file) was quarantined in the same drop is
-- there only because of that row, and carries its patient's key (site_id/patient_id: identifiers, never a
-- cell value) so the cause is counted once. A patients row is known by a column only patients has.
WITH failed_patients AS (
    SELECT DISTINCT
        drop_id,
        file,
        json_extract_string("row", '$.site_id') AS site_id,
        json_extract_string("row", '$.patient_id') AS patient_id
    FROM quarantine
    WHERE ($drop_id IS NULL OR drop_id = $drop_id) AND json_exists("row", '$.' || $patients_only_column)
),
by_rule AS (
    SELECT drop_id, file, row_number, unnest(string_split(rule, '; ')) AS rule, columns, "row"
    FROM quarantine
    WHERE $drop_id IS NULL OR drop_id = $drop_id
)
SELECT
    r.file,
    r.rule,
    r.columns,
    r.row_number,
    p.file AS patients_file,
    p.site_id || '/' || p.patient_id AS patient_key,
    r.drop_id
FROM by_rule AS r
LEFT JOIN failed_patients AS p
    ON r.rule = 'unknown_patient'
    AND p.drop_id = r.drop_id
    AND p.site_id IS NOT DISTINCT FROM json_extract_string(r."row", '$.site_id')
    AND p.patient_id IS NOT DISTINCT FROM json_extract_string(r."row", '$.patient_id')
ORDER BY r.drop_id, r.file, r.rule, r.row_number
