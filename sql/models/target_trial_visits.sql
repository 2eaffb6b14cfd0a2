-- Every visit with the target trial's outcomes (the Sunnybrook composite and the SAQ) as columns, one patient
-- key across sites. Read by pipeline/models/target_trial.py (its time-varying scores and outcomes).
SELECT
    s.site_id || '/' || s.patient_id AS patient_id,
    s.visit_day,
    max(s."value") FILTER (WHERE o.outcome = 'sunnybrook_composite') AS sunnybrook_composite,
    max(s."value") FILTER (WHERE o.outcome = 'saq') AS saq
FROM instrument_scores AS s
INNER JOIN design_outcomes AS o USING (instrument, score)
WHERE o.outcome IN ('sunnybrook_composite', 'saq') AND s."value" IS NOT NULL
GROUP BY ALL
ORDER BY patient_id, s.visit_day
