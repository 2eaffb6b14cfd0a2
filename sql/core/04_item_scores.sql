-- Scores derived from an instrument's items at one visit, by the contract's formulas.
-- Every score is sum(weight x item), with eFACE static items first folded to 100 - |x - 100|;
-- a score is derived only from a complete set of its items (`complete` says whether it was).
-- A temporary view: the ingest check and the warehouse build both read it; it is not published.
CREATE OR REPLACE TEMP VIEW item_scores AS
WITH score_items (instrument, score, item, weight, fold) AS (
    SELECT * FROM (VALUES
        ('sunnybrook', 'resting_score', 'rest_eye', 5.0, false),
        ('sunnybrook', 'resting_score', 'rest_cheek', 5.0, false),
        ('sunnybrook', 'resting_score', 'rest_mouth', 5.0, false),
        ('sunnybrook', 'voluntary_score', 'vm_brow', 4.0, false),
        ('sunnybrook', 'voluntary_score', 'vm_eye_closure', 4.0, false),
        ('sunnybrook', 'voluntary_score', 'vm_smile', 4.0, false),
        ('sunnybrook', 'voluntary_score', 'vm_snarl', 4.0, false),
        ('sunnybrook', 'voluntary_score', 'vm_pucker', 4.0, false),
        ('sunnybrook', 'synkinesis_score', 'syn_brow', 1.0, false),
        ('sunnybrook', 'synkinesis_score', 'syn_eye_closure', 1.0, false),
        ('sunnybrook', 'synkinesis_score', 'syn_smile', 1.0, false),
        ('sunnybrook', 'synkinesis_score', 'syn_snarl', 1.0, false),
        ('sunnybrook', 'synkinesis_score', 'syn_pucker', 1.0, false),
        -- composite = voluntary - resting - synkinesis
        ('sunnybrook', 'composite', 'vm_brow', 4.0, false),
        ('sunnybrook', 'composite', 'vm_eye_closure', 4.0, false),
        ('sunnybrook', 'composite', 'vm_smile', 4.0, false),
        ('sunnybrook', 'composite', 'vm_snarl', 4.0, false),
        ('sunnybrook', 'composite', 'vm_pucker', 4.0, false),
        ('sunnybrook', 'composite', 'rest_eye', -5.0, false),
        ('sunnybrook', 'composite', 'rest_cheek', -5.0, false),
        ('sunnybrook', 'composite', 'rest_mouth', -5.0, false),
        ('sunnybrook', 'composite', 'syn_brow', -1.0, false),
        ('sunnybrook', 'composite', 'syn_eye_closure', -1.0, false),
        ('sunnybrook', 'composite', 'syn_smile', -1.0, false),
        ('sunnybrook', 'composite', 'syn_snarl', -1.0, false),
        ('sunnybrook', 'composite', 'syn_pucker', -1.0, false),
        ('eface', 'static_score', 'static_brow', 1 / 4, true),
        ('eface', 'static_score', 'static_palpebral_fissure', 1 / 4, true),
        ('eface', 'static_score', 'static_nasolabial_fold', 1 / 4, true),
        ('eface', 'static_score', 'static_oral_commissure', 1 / 4, true),
        ('eface', 'dynamic_score', 'dyn_brow_elevation', 1 / 7, false),
        ('eface', 'dynamic_score', 'dyn_gentle_eye_closure', 1 / 7, false),
        ('eface', 'dynamic_score', 'dyn_full_eye_closure', 1 / 7, false),
        ('eface', 'dynamic_score', 'dyn_nlf_depth_smile', 1 / 7, false),
        ('eface', 'dynamic_score', 'dyn_nlf_orientation_smile', 1 / 7, false),
        ('eface', 'dynamic_score', 'dyn_commissure_smile', 1 / 7, false),
        ('eface', 'dynamic_score', 'dyn_lower_lip_eee', 1 / 7, false),
        ('eface', 'synkinesis_score', 'syn_ocular', 1 / 4, false),
        ('eface', 'synkinesis_score', 'syn_midfacial', 1 / 4, false),
        ('eface', 'synkinesis_score', 'syn_mentalis', 1 / 4, false),
        ('eface', 'synkinesis_score', 'syn_platysmal', 1 / 4, false),
        ('eface', 'total', 'static_brow', 1 / 15, true),
        ('eface', 'total', 'static_palpebral_fissure', 1 / 15, true),
        ('eface', 'total', 'static_nasolabial_fold', 1 / 15, true),
        ('eface', 'total', 'static_oral_commissure', 1 / 15, true),
        ('eface', 'total', 'dyn_brow_elevation', 1 / 15, false),
        ('eface', 'total', 'dyn_gentle_eye_closure', 1 / 15, false),
        ('eface', 'total', 'dyn_full_eye_closure', 1 / 15, false),
        ('eface', 'total', 'dyn_nlf_depth_smile', 1 / 15, false),
        ('eface', 'total', 'dyn_nlf_orientation_smile', 1 / 15, false),
        ('eface', 'total', 'dyn_commissure_smile', 1 / 15, false),
        ('eface', 'total', 'dyn_lower_lip_eee', 1 / 15, false),
        ('eface', 'total', 'syn_ocular', 1 / 15, false),
        ('eface', 'total', 'syn_midfacial', 1 / 15, false),
        ('eface', 'total', 'syn_mentalis', 1 / 15, false),
        ('eface', 'total', 'syn_platysmal', 1 / 15, false),
        ('saq', 'total_raw', 'q1', 1.0, false),
        ('saq', 'total_raw', 'q2', 1.0, false),
        ('saq', 'total_raw', 'q3', 1.0, false),
        ('saq', 'total_raw', 'q4', 1.0, false),
        ('saq', 'total_raw', 'q5', 1.0, false),
        ('saq', 'total_raw', 'q6', 1.0, false),
        ('saq', 'total_raw', 'q7', 1.0, false),
        ('saq', 'total_raw', 'q8', 1.0, false),
        ('saq', 'total_raw', 'q9', 1.0, false),
        ('saq', 'total_pct', 'q1', 100 / 45, false),
        ('saq', 'total_pct', 'q2', 100 / 45, false),
        ('saq', 'total_pct', 'q3', 100 / 45, false),
        ('saq', 'total_pct', 'q4', 100 / 45, false),
        ('saq', 'total_pct', 'q5', 100 / 45, false),
        ('saq', 'total_pct', 'q6', 100 / 45, false),
        ('saq', 'total_pct', 'q7', 100 / 45, false),
        ('saq', 'total_pct', 'q8', 100 / 45, false),
        ('saq', 'total_pct', 'q9', 100 / 45, false)
    )
),

score_sizes AS (
    SELECT instrument, score, count(*) AS items_expected
    FROM score_items
    GROUP BY ALL
),

given_items AS (
    SELECT
        a.site_id, a.patient_id, a.visit_day, a.instrument, s.score, a.item,
        s.weight * CASE WHEN s.fold THEN 100 - abs(a.value - 100) ELSE a.value END AS weighted
    FROM assessments AS a
    INNER JOIN score_items AS s ON a.instrument = s.instrument AND a.item = s.item
),

scored AS (
    SELECT
        site_id, patient_id, visit_day, instrument, score,
        sum(weighted) AS raw_value,
        count(DISTINCT item) AS items_present
    FROM given_items
    GROUP BY ALL
)

SELECT
    scored.site_id,
    scored.patient_id,
    scored.visit_day,
    scored.instrument,
    scored.score,
    CASE WHEN scored.items_present = sizes.items_expected THEN round(scored.raw_value, 6) END AS value,
    scored.items_present,
    sizes.items_expected,
    scored.items_present = sizes.items_expected AS complete
FROM scored
INNER JOIN score_sizes AS sizes USING (instrument, score);
