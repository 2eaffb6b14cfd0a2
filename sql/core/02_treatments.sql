-- One row per current treatment event of a current patient.
-- key: site_id, patient_id, treatment_id
CREATE TABLE treatments AS
SELECT t.*
FROM stg_treatments AS t
SEMI JOIN patients USING (site_id, patient_id)
ORDER BY t.site_id, t.patient_id, t."day", t.treatment_id;

COMMENT ON TABLE treatments IS 'One row per current treatment event (an injection session, a therapy course, an operation) of a current patient.';
COMMENT ON COLUMN treatments.site_id IS 'Site code.';
COMMENT ON COLUMN treatments.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN treatments.treatment_id IS 'Treatment event id; key with site_id and patient_id.';
COMMENT ON COLUMN treatments."day" IS 'Day of the event, counted from the index visit (negative: before it).';
COMMENT ON COLUMN treatments.modality IS 'botox, physical_therapy, selective_neurectomy, selective_myectomy or other_surgery.';
COMMENT ON COLUMN treatments.botox_units IS 'BoNT dose in onabotulinumtoxinA-equivalent units (botox only).';
COMMENT ON COLUMN treatments.pt_sessions IS 'Sessions in the physical-therapy course starting on this day (physical_therapy only; may be null).';
COMMENT ON COLUMN treatments.target IS 'Optional code of the treated muscle or nerve branch.';
