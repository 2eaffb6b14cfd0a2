-- One row per patient, outcome and timepoint: the baseline (latest score in [t0 - lookback, t0])
-- and each follow-up (the score nearest the timepoint's target within its window; on a tie, the
-- earlier), with the change from baseline: sql/macros/placed_on_timepoints.sql. Outcomes and
-- timepoints are the design's (sql/seeds/).
-- key: site_id, patient_id, outcome, timepoint
CREATE TABLE followup_scores AS
WITH scores AS (
    SELECT s.site_id, s.patient_id, o.outcome, s.visit_day, s."value", s.visit_day - m.t0_day AS days_from_t0
    FROM instrument_scores AS s
    INNER JOIN seed_outcomes AS o USING (instrument, score)
    INNER JOIN modality_combinations AS m USING (site_id, patient_id)
    WHERE m.t0_day IS NOT NULL AND s."value" IS NOT NULL
),

placed AS (
    SELECT site_id, patient_id, outcome, timepoint, visit_day, days_from_t0, "value", baseline_value, change
    FROM placed_on_timepoints('scores', 'seed_timepoints', getvariable('baseline_lookback_days'))
)

-- The toxin-cycle phase of each chosen visit: sql/macros/toxin_phase.sql.
SELECT *
FROM with_toxin_phase('placed', 'treatments')
ORDER BY site_id, patient_id, outcome, timepoint;

COMMENT ON TABLE followup_scores IS 'One row per patient, outcome and timepoint: the baseline and the follow-up scores chosen by the analysis design.';
COMMENT ON COLUMN followup_scores.site_id IS 'Site code.';
COMMENT ON COLUMN followup_scores.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN followup_scores.outcome IS 'Outcome code (sunnybrook_composite, saq, eface_total, ...).';
COMMENT ON COLUMN followup_scores.timepoint IS 'baseline, or a follow-up timepoint of design_timepoints (3m, 6m, 12m by default).';
COMMENT ON COLUMN followup_scores.visit_day IS 'Day of the visit used, from the index visit.';
COMMENT ON COLUMN followup_scores.days_from_t0 IS 'Days of that visit from t0.';
COMMENT ON COLUMN followup_scores."value" IS 'The outcome''s value at that visit.';
COMMENT ON COLUMN followup_scores.baseline_value IS 'The patient''s baseline value of the outcome (latest in [t0 - lookback, t0], 90 days by default); null without a baseline.';
COMMENT ON COLUMN followup_scores.change IS 'value - baseline_value; null on baseline rows and without a baseline.';
COMMENT ON COLUMN followup_scores.days_since_injection IS 'Days since the patient''s last BoNT injection before that visit (the toxin-cycle phase; sql/macros/toxin_phase.sql); null before the first. design.json''s outcome_phase_min_days (90) marks the trough assessments.';
