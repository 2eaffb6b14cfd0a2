-- Every BoNT injection after a patient's first, from the index visit on, with its units, whether surgery came
-- before it and its session number from the index visit. Read by pipeline/models/reliance.py (units per session).
SELECT site_id, patient_id, session_from_index AS session, botox_units AS units, surgery_before, patient_group
FROM botox_intervals
WHERE "day" >= 0 AND botox_units IS NOT NULL
ORDER BY site_id, patient_id, injection_number
