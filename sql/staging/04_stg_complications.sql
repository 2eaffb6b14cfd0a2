-- Complications as of the build's as-of time (contract 1.2; none where no drop carried the file).
CREATE OR REPLACE TEMP VIEW stg_complications AS
SELECT site_id, patient_id, complication_id, treatment_id, "day", code, grade, resolved_day
FROM store.complications_history
SEMI JOIN build_scope USING (site_id, patient_id)
WHERE valid_from <= getvariable('as_of') AND (valid_to IS NULL OR valid_to > getvariable('as_of'));
