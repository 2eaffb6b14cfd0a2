-- Who is in each comparative estimate, as the model run fitted it: the report counts these, never choosing
-- them again.
-- key: run_id, contrast, outcome, timepoint, method, site_id, patient_id
CREATE TABLE estimate_patients AS
SELECT run_id, contrast, outcome, timepoint, method, site_id, patient_id, first_group
FROM store.estimate_patients
ORDER BY run_id, contrast, outcome, timepoint, method, site_id, patient_id;

COMMENT ON TABLE estimate_patients IS 'One row per patient of each comparative estimate in model_estimates (not the claims'' rows): unadjusted, ancova, aipw, iptw, responder and ordinal the patients with a change at the timepoint; mixed the patients at every timepoint fitted; mice every patient with a baseline; an estimate too small to fit keeps its timepoint''s patients. Its groups'' sizes are model_estimates.n_treated and n_control.';
COMMENT ON COLUMN estimate_patients.run_id IS 'Model run id.';
COMMENT ON COLUMN estimate_patients.contrast IS 'Contrast code (as model_estimates).';
COMMENT ON COLUMN estimate_patients.outcome IS 'Outcome code.';
COMMENT ON COLUMN estimate_patients.timepoint IS 'Timepoint code.';
COMMENT ON COLUMN estimate_patients.method IS 'Method (as model_estimates).';
COMMENT ON COLUMN estimate_patients.site_id IS 'Site code.';
COMMENT ON COLUMN estimate_patients.patient_id IS 'Patient id within the site.';
COMMENT ON COLUMN estimate_patients.first_group IS 'True for the contrast''s first group (combined treatment in combined_vs_single), false for the second.';
