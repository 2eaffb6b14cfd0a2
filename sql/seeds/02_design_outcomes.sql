-- The outcomes of the warehouse contract (the instrument score each is, its direction) and the
-- design's primary outcome: followup_scores, the models and the report read them from here.
-- key: outcome
CREATE TABLE design_outcomes AS
SELECT outcome, "position", instrument, score, higher_is_better, is_primary
FROM seed_outcomes
ORDER BY "position";

COMMENT ON TABLE design_outcomes IS 'One row per outcome: the instrument score it is, its direction, and whether it is the primary outcome of the analysis design this warehouse was built with.';
COMMENT ON COLUMN design_outcomes.outcome IS 'Outcome code, as in followup_scores and model_estimates.';
COMMENT ON COLUMN design_outcomes."position" IS 'Order of the outcome in tables and reports.';
COMMENT ON COLUMN design_outcomes.instrument IS 'Instrument code (instrument_scores.instrument).';
COMMENT ON COLUMN design_outcomes.score IS 'Score code within the instrument (instrument_scores.score).';
COMMENT ON COLUMN design_outcomes.higher_is_better IS 'The outcome''s direction: true where a higher score is better.';
COMMENT ON COLUMN design_outcomes.is_primary IS 'True for the primary outcome of the design: tested first, and the report''s first answer.';
