-- Assessment items and recorded totals as of the build's as-of time.
CREATE OR REPLACE TEMP VIEW stg_assessments AS
SELECT site_id, patient_id, visit_day, instrument, item, "value"
FROM store.assessments_history
SEMI JOIN build_scope USING (site_id, patient_id)
WHERE valid_from <= getvariable('as_of') AND (valid_to IS NULL OR valid_to > getvariable('as_of'));
