-- Every BoNT session and operation, one patient key across sites. Read by pipeline/models/target_trial.py
-- (time zeros, the strategies' adherence, units so far).
SELECT site_id || '/' || patient_id AS patient_id, "day", modality, botox_units
FROM treatments
WHERE modality IN ('botox', 'selective_neurectomy', 'selective_myectomy')
ORDER BY patient_id, "day", treatment_id
