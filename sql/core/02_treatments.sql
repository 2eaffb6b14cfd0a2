-- One row per current treatment event of a current patient.
CREATE TABLE treatments AS
SELECT t.*
FROM stg_treatments AS t
SEMI JOIN patients USING (site_id, patient_id)
ORDER BY t.site_id, t.patient_id, t."day", t.treatment_id;
