-- Table 1: one row per classifiable patient, with the group and the characteristics.
SELECT
    p.site_id, p.patient_id,
    CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS "group",
    p.age_at_onset, p.sex, p.etiology, p.onset_to_index_days, p.prior_treatment
FROM modality_combinations AS m
INNER JOIN patients AS p USING (site_id, patient_id)
WHERE m.classifiable
ORDER BY p.site_id, p.patient_id
