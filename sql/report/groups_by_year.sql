-- One row per classifiable patient: the year of the index visit and the group.
SELECT
    p.site_id, p.patient_id, p.index_year AS year,
    CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS "group"
FROM modality_combinations AS m
INNER JOIN patients AS p USING (site_id, patient_id)
WHERE m.classifiable
ORDER BY p.site_id, p.patient_id
