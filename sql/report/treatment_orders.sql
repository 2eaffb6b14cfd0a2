-- One row per classifiable patient: the group and the order in which each modality was first given (from t0 on,
-- over all follow-up), e.g. 'PT → BTX → SN'; modalities started the same day are joined by '+'.
WITH firsts AS (
    SELECT t.site_id, t.patient_id, c.code, c."position", min(t."day") AS first_day
    FROM treatments AS t
    INNER JOIN modality_combinations AS m USING (site_id, patient_id)
    INNER JOIN modality_codes AS c USING (modality)
    WHERE m.classifiable AND t."day" >= m.t0_day
    GROUP BY ALL
),

days AS (
    SELECT site_id, patient_id, first_day, string_agg(code, '+' ORDER BY "position") AS codes
    FROM firsts
    GROUP BY ALL
)

SELECT
    d.site_id, d.patient_id,
    CASE WHEN m.is_combined THEN 'combined' ELSE 'single modality' END AS "group",
    string_agg(d.codes, ' → ' ORDER BY d.first_day) AS "order"
FROM days AS d
INNER JOIN modality_combinations AS m USING (site_id, patient_id)
GROUP BY ALL
ORDER BY d.site_id, d.patient_id
