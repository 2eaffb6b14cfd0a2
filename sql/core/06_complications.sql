-- One row per current complication of a current patient (contract 1.2), with the treatment it
-- followed (where the clinic named one) and its days to resolution.
-- key: site_id, patient_id, complication_id
CREATE TABLE complications AS
WITH complications_in AS (
    SELECT c.*
    FROM stg_complications AS c
    SEMI JOIN patients USING (site_id, patient_id)
),

followed AS (
    SELECT site_id, patient_id, treatment_id, modality AS treatment_modality, "day" AS treatment_day
    FROM treatments
)

SELECT
    c.site_id, c.patient_id, c.complication_id, c.treatment_id, c."day", c.code, c.grade, c.resolved_day,
    f.treatment_modality,
    c."day" - f.treatment_day AS days_after_treatment,
    c.resolved_day IS NOT NULL AS resolved,
    c.resolved_day - c."day" AS days_to_resolution
FROM complications_in AS c
LEFT JOIN followed AS f USING (site_id, patient_id, treatment_id)
ORDER BY c.site_id, c.patient_id, c."day", c.complication_id;

COMMENT ON TABLE complications IS 'One row per current complication or adverse event of a current patient (input contract 1.2, optional complications file or REDCap complication instrument).';
COMMENT ON COLUMN complications.site_id IS 'Site code.';
COMMENT ON COLUMN complications.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN complications.complication_id IS 'Complication id; key with site_id and patient_id (REDCap: cx_id).';
COMMENT ON COLUMN complications.treatment_id IS 'The treatment it followed, where the clinic named one (a treatments.treatment_id of the patient); null when not known.';
COMMENT ON COLUMN complications."day" IS 'Day the event was noted, counted from the index visit.';
COMMENT ON COLUMN complications.code IS 'incomplete_eye_closure, oral_incompetence, lower_lip_weakness, eyelid_ptosis, brow_ptosis, drooling, dry_eye, haematoma, infection, revision_surgery or other.';
COMMENT ON COLUMN complications.grade IS 'Clavien-Dindo grade 1 to 5 (surgical events); null for BoNT effects or when not graded.';
COMMENT ON COLUMN complications.resolved_day IS 'Day it resolved; null while unresolved.';
COMMENT ON COLUMN complications.treatment_modality IS 'Modality of the treatment it followed; null when none is named (or that treatment is no longer current).';
COMMENT ON COLUMN complications.days_after_treatment IS 'Days from that treatment to the event; null when no treatment is named.';
COMMENT ON COLUMN complications.resolved IS 'True when a resolution day is recorded.';
COMMENT ON COLUMN complications.days_to_resolution IS 'resolved_day - day; null while unresolved.';
