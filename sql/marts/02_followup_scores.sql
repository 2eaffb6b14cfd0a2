-- One row per patient, outcome and timepoint: the baseline (latest score in [t0 - lookback, t0])
-- and each follow-up (the score nearest the timepoint's target within its window; on a tie, the
-- earlier), with the change from baseline.
CREATE TABLE followup_scores AS
WITH outcome_scores (instrument, score, outcome) AS (
    SELECT * FROM (VALUES
        ('sunnybrook', 'composite', 'sunnybrook_composite'),
        ('sunnybrook', 'voluntary_score', 'sunnybrook_voluntary'),
        ('sunnybrook', 'resting_score', 'sunnybrook_resting'),
        ('sunnybrook', 'synkinesis_score', 'sunnybrook_synkinesis'),
        ('eface', 'total', 'eface_total'),
        ('eface', 'static_score', 'eface_static'),
        ('eface', 'dynamic_score', 'eface_dynamic'),
        ('eface', 'synkinesis_score', 'eface_synkinesis'),
        ('saq', 'total_pct', 'saq'),
        ('face', 'total', 'face_total'),
        ('fdi', 'physical', 'fdi_physical'),
        ('fdi', 'social', 'fdi_social'),
        ('house_brackmann', 'grade', 'house_brackmann')
    )
),

scores AS (
    SELECT s.site_id, s.patient_id, o.outcome, s.visit_day, s."value", s.visit_day - m.t0_day AS days_from_t0
    FROM instrument_scores AS s
    INNER JOIN outcome_scores AS o USING (instrument, score)
    INNER JOIN modality_combinations AS m USING (site_id, patient_id)
    WHERE m.t0_day IS NOT NULL AND s."value" IS NOT NULL
),

baseline AS (
    SELECT site_id, patient_id, outcome, 'baseline' AS timepoint, visit_day, days_from_t0, "value"
    FROM scores
    WHERE days_from_t0 BETWEEN -getvariable('baseline_lookback_days') AND 0
    QUALIFY row_number() OVER (PARTITION BY site_id, patient_id, outcome ORDER BY visit_day DESC) = 1
),

followup AS (
    SELECT s.site_id, s.patient_id, s.outcome, t.timepoint, s.visit_day, s.days_from_t0, s."value"
    FROM scores AS s
    INNER JOIN design_timepoints AS t ON s.days_from_t0 BETWEEN t.low AND t.high
    QUALIFY row_number() OVER (
        PARTITION BY s.site_id, s.patient_id, s.outcome, t.timepoint
        ORDER BY abs(s.days_from_t0 - t.target), s.days_from_t0
    ) = 1
)

SELECT
    site_id, patient_id, outcome, timepoint, visit_day, days_from_t0, "value",
    "value" AS baseline_value,
    NULL::DOUBLE AS change
FROM baseline
UNION ALL
SELECT
    f.site_id, f.patient_id, f.outcome, f.timepoint, f.visit_day, f.days_from_t0, f."value",
    b."value" AS baseline_value,
    f."value" - b."value" AS change
FROM followup AS f
LEFT JOIN baseline AS b USING (site_id, patient_id, outcome)
ORDER BY site_id, patient_id, outcome, timepoint;
