-- Every gap between BoNT injections from the index visit on (event 1), and each patient's last one, from the
-- last injection to the last contact (event 0, censored), with the phase and session number it began in.
-- Read by pipeline/models/reliance.py (time to the next injection, days between injections).
WITH intervals AS (
    SELECT * REPLACE (session_from_index AS injection_number)
    FROM botox_intervals
    WHERE "day" - days_since_previous >= 0
),

contact AS (
    SELECT site_id, patient_id, max(d) AS last_day
    FROM (
        SELECT site_id, patient_id, "day" AS d FROM treatments
        UNION ALL
        SELECT site_id, patient_id, visit_day AS d FROM assessments
    )
    GROUP BY ALL
),

last_injection AS (
    SELECT site_id, patient_id, max("day") AS "day", max(injection_number) AS injection_number,
        any_value(surgery_day) AS surgery_day, any_value(patient_group) AS patient_group
    FROM intervals
    GROUP BY ALL
)

SELECT site_id, patient_id, days_since_previous AS days, 1 AS event, injection_number - 1 AS start_session,
    interval_phase AS phase, patient_group
FROM intervals
WHERE days_since_previous > 0
UNION ALL
SELECT l.site_id, l.patient_id, c.last_day - l."day" AS days, 0 AS event, l.injection_number AS start_session,
    CASE
        WHEN l.surgery_day IS NULL THEN 'no_surgery'
        WHEN l.surgery_day <= l."day" THEN 'after_surgery'
        ELSE 'before_surgery'
    END AS phase,
    l.patient_group
FROM last_injection AS l
INNER JOIN contact AS c USING (site_id, patient_id)
WHERE c.last_day > l."day"
ORDER BY site_id, patient_id, start_session
