-- One row per current patient; prior_treatment says a treatment came before the index visit.
-- key: site_id, patient_id
CREATE TABLE patients AS
WITH prior AS (
    SELECT site_id, patient_id, true AS prior_treatment
    FROM stg_treatments
    WHERE "day" < 0
    GROUP BY ALL
)

SELECT
    p.site_id, p.patient_id, p.sex, p.age_at_onset, p.side, p.etiology, p.index_year, p.onset_to_index_days,
    coalesce(prior.prior_treatment, false) AS prior_treatment,
    p.first_drop_id,
    p.last_drop_id
FROM stg_patients AS p
LEFT JOIN prior USING (site_id, patient_id)
ORDER BY p.site_id, p.patient_id;

COMMENT ON TABLE patients IS 'One row per current patient of every site (the latest version loaded; retired patients are only in the staging history).';
COMMENT ON COLUMN patients.site_id IS 'Site (clinic) code from the export.';
COMMENT ON COLUMN patients.patient_id IS 'Pseudonymous patient id, unique within the site; key with site_id.';
COMMENT ON COLUMN patients.sex IS 'F, M, X (other) or U (unknown).';
COMMENT ON COLUMN patients.age_at_onset IS 'Age in years at palsy onset; 90 means 90 or older (HIPAA top code).';
COMMENT ON COLUMN patients.side IS 'Affected side: L, R or B (bilateral).';
COMMENT ON COLUMN patients.etiology IS 'Cause of the palsy: bell, ramsay_hunt, tumor, trauma, iatrogenic, infection, other, unknown.';
COMMENT ON COLUMN patients.index_year IS 'Year of the index visit (day 0); only years may appear in the data.';
COMMENT ON COLUMN patients.onset_to_index_days IS 'Days from palsy onset to the index visit.';
COMMENT ON COLUMN patients.prior_treatment IS 'True when any treatment is recorded before day 0 (before the index visit).';
COMMENT ON COLUMN patients.first_drop_id IS 'Drop that first brought this patient.';
COMMENT ON COLUMN patients.last_drop_id IS 'Drop that brought the current version of this patient''s row.';
