-- One row per patient, outcome and timepoint: the baseline (latest score in [t0 - lookback, t0])
-- and each follow-up (the score nearest the timepoint's target within its window; on a tie, the
-- earlier), with the change from baseline.
-- key: site_id, patient_id, outcome, timepoint
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

COMMENT ON TABLE followup_scores IS 'One row per patient, outcome and timepoint: the baseline and the follow-up scores chosen by the analysis design.';
COMMENT ON COLUMN followup_scores.site_id IS 'Site code.';
COMMENT ON COLUMN followup_scores.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN followup_scores.outcome IS 'Outcome code (sunnybrook_composite, saq, eface_total, ...).';
COMMENT ON COLUMN followup_scores.timepoint IS 'baseline, 3m, 6m or 12m.';
COMMENT ON COLUMN followup_scores.visit_day IS 'Day of the visit used, from the index visit.';
COMMENT ON COLUMN followup_scores.days_from_t0 IS 'Days of that visit from t0.';
COMMENT ON COLUMN followup_scores."value" IS 'The outcome''s value at that visit.';
COMMENT ON COLUMN followup_scores.baseline_value IS 'The patient''s baseline value of the outcome (latest in [t0 - 90, t0]); null without a baseline.';
COMMENT ON COLUMN followup_scores.change IS 'value - baseline_value; null on baseline rows and without a baseline.';
