-- BoNT units by session number (1 = the first injection from t0 on) for classifiable patients, one row per patient
-- and session; sessions from $max_session on pooled (their mean per patient).
WITH sessions AS (
    SELECT
        t.site_id, t.patient_id, t.botox_units,
        row_number() OVER (PARTITION BY t.site_id, t.patient_id ORDER BY t."day", t.treatment_id) AS session
    FROM treatments AS t
    INNER JOIN modality_combinations AS m USING (site_id, patient_id)
    WHERE m.classifiable AND t.modality = 'botox' AND t."day" >= m.t0_day
)

SELECT site_id, patient_id, least(session, $max_session) AS session, avg(botox_units) AS units
FROM sessions
WHERE botox_units IS NOT NULL
GROUP BY ALL
ORDER BY site_id, patient_id, session
