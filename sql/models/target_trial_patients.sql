-- The target trial's baseline covariates, one patient key across sites. Read by pipeline/models/target_trial.py.
SELECT site_id || '/' || patient_id AS patient_id, sex, age_at_onset, onset_to_index_days
FROM patients
ORDER BY patient_id
