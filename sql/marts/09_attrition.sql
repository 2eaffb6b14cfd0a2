-- Patient flow from received to analysable, per outcome and follow-up timepoint: how many
-- patients remain after each step, and how many the step excluded and why.
-- key: outcome, timepoint, step_order
CREATE TABLE attrition AS
-- The steps per patient: sql/macros/patient_flow.sql (the report's patient flow calls the same macro).
WITH counted AS (
    SELECT
        outcome, timepoint,
        count(*) AS received,
        count(*) FILTER (WHERE treated) AS treated,
        count(*) FILTER (WHERE classifiable) AS classifiable,
        count(*) FILTER (WHERE with_baseline) AS with_baseline,
        count(*) FILTER (WHERE analysable) AS analysable
    FROM patient_flow_steps('patients', 'modality_combinations', 'followup_scores', 'seed_timepoints', NULL::VARCHAR)
    GROUP BY ALL
)

SELECT outcome, timepoint, step_order, step, patients, excluded, reason
FROM counted,
    LATERAL (VALUES
        (1, 'received', received, 0, NULL),
        (2, 'treated on or after day 0', treated, received - treated, 'no treatment on or after day 0 (no t0)'),
        (3, 'classifiable', classifiable, treated - classifiable,
            'follow-up ends before the ' || getvariable('exposure_window_days') || '-day landmark'),
        (4, 'with a baseline score', with_baseline, classifiable - with_baseline,
            'no score in [t0 - ' || getvariable('baseline_lookback_days') || ', t0]'),
        (5, 'analysable', analysable, with_baseline - analysable, 'no score in the ' || timepoint || ' window')
    ) AS steps (step_order, step, patients, excluded, reason)
ORDER BY outcome, timepoint, step_order;

COMMENT ON TABLE attrition IS 'Patient flow from received to analysable, per outcome and follow-up timepoint, with the number each step excluded and why.';
COMMENT ON COLUMN attrition.outcome IS 'Outcome code.';
COMMENT ON COLUMN attrition.timepoint IS 'Follow-up timepoint (3m, 6m, 12m).';
COMMENT ON COLUMN attrition.step_order IS 'Order of the step, 1 = received.';
COMMENT ON COLUMN attrition.step IS 'The step: received, treated on or after day 0, classifiable, with a baseline score, analysable.';
COMMENT ON COLUMN attrition.patients IS 'Patients remaining after this step.';
COMMENT ON COLUMN attrition.excluded IS 'Patients this step excluded.';
COMMENT ON COLUMN attrition.reason IS 'Why this step excluded them.';
