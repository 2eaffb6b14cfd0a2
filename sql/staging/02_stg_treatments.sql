-- Treatment events as of the build's as-of time.
CREATE OR REPLACE TEMP VIEW stg_treatments AS
SELECT site_id, patient_id, treatment_id, "day", modality, botox_units, pt_sessions, target
FROM store.treatments_history
SEMI JOIN build_scope USING (site_id, patient_id)
WHERE valid_from <= getvariable('as_of') AND (valid_to IS NULL OR valid_to > getvariable('as_of'));
