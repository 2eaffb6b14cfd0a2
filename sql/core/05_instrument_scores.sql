-- One row per score of an instrument at a visit. Recorded totals are the authority where given
-- (items and totals that disagree were quarantined at ingest); otherwise the score is derived
-- from a complete set of items. An incomplete instrument is kept with a flag and no value.
-- key: site_id, patient_id, visit_day, instrument, score
CREATE TABLE instrument_scores AS
WITH recorded AS (
    SELECT site_id, patient_id, visit_day, instrument, item AS score, "value", 'recorded' AS provenance
    FROM assessments
    WHERE (instrument, item) IN (
        SELECT * FROM (VALUES
            ('sunnybrook', 'resting_score'), ('sunnybrook', 'voluntary_score'),
            ('sunnybrook', 'synkinesis_score'), ('sunnybrook', 'composite'),
            ('eface', 'static_score'), ('eface', 'dynamic_score'), ('eface', 'synkinesis_score'), ('eface', 'total'),
            ('saq', 'total_pct'),
            ('face', 'movement'), ('face', 'comfort'), ('face', 'oral_function'), ('face', 'eye_comfort'),
            ('face', 'lacrimal_control'), ('face', 'social_function'), ('face', 'total'),
            ('fdi', 'physical'), ('fdi', 'social'),
            ('house_brackmann', 'grade')
        )
    )
),

-- The raw SAQ form becomes the scored percentage form: sum / 45 x 100.
saq_from_raw AS (
    SELECT r.site_id, r.patient_id, r.visit_day, 'saq' AS instrument, 'total_pct' AS score,
        round(r."value" / 45 * 100, 6) AS "value", 'recorded' AS provenance
    FROM assessments AS r
    WHERE r.instrument = 'saq' AND r.item = 'total_raw'
),

derived AS (
    SELECT site_id, patient_id, visit_day, instrument, score, "value", 'derived' AS provenance, complete
    FROM item_scores
    WHERE NOT (instrument = 'saq' AND score = 'total_raw')
),

candidates AS (
    SELECT *, 1 AS priority, true AS complete FROM recorded
    UNION ALL
    SELECT *, 2 AS priority, true AS complete FROM saq_from_raw
    UNION ALL
    SELECT site_id, patient_id, visit_day, instrument, score, "value", provenance, 3 AS priority, complete
    FROM derived
),

chosen AS (
    SELECT *
    FROM candidates
    QUALIFY row_number() OVER (
        PARTITION BY site_id, patient_id, visit_day, instrument, score ORDER BY priority
    ) = 1
),

flagged AS (
    SELECT
        site_id, patient_id, visit_day, instrument, score, "value", provenance,
        CASE
            WHEN NOT complete THEN 'incomplete_items'
            WHEN instrument = 'sunnybrook' AND score = 'composite' AND "value" < 0 THEN 'negative_composite'
        END AS flag
    FROM chosen
)

-- The toxin-cycle phase of each score's visit: sql/macros/toxin_phase.sql.
SELECT *
FROM with_toxin_phase('flagged', 'treatments')
ORDER BY site_id, patient_id, visit_day, instrument, score;

COMMENT ON TABLE instrument_scores IS 'One row per score of an instrument at a visit: recorded totals where given, otherwise derived from a complete set of items.';
COMMENT ON COLUMN instrument_scores.site_id IS 'Site code.';
COMMENT ON COLUMN instrument_scores.patient_id IS 'Patient pseudonym.';
COMMENT ON COLUMN instrument_scores.visit_day IS 'Day of the visit from the index visit.';
COMMENT ON COLUMN instrument_scores.instrument IS 'Instrument code.';
COMMENT ON COLUMN instrument_scores.score IS 'Score code within the instrument (e.g. composite, resting_score, total_pct, total).';
COMMENT ON COLUMN instrument_scores."value" IS 'The score; null when the instrument''s items were incomplete. Sunnybrook, eFACE, FaCE, FDI: higher is better; SAQ, House-Brackmann: higher is worse.';
COMMENT ON COLUMN instrument_scores.provenance IS 'recorded (given in the export, SAQ raw totals converted to percent) or derived (computed from items).';
COMMENT ON COLUMN instrument_scores.flag IS 'incomplete_items (not scored) or negative_composite (kept, for review); null otherwise.';
COMMENT ON COLUMN instrument_scores.days_since_injection IS 'Days since the patient''s last BoNT injection before this visit''s day (the toxin-cycle phase: 14-56 about the peak, 90 or more a trough); null before the first. An injection on the visit''s day comes after the assessment.';
