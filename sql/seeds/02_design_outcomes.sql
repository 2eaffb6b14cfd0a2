-- The outcomes of the warehouse contract (the instrument score each is, its direction) and the
-- design's primary outcome: followup_scores, the models and the report read them from here.
-- key: outcome
CREATE TABLE design_outcomes AS
SELECT outcome, "position", instrument, score, higher_is_better, is_primary,
    CASE WHEN isnan(yardstick) THEN NULL ELSE yardstick END AS yardstick, yardstick_kind, yardstick_source
FROM seed_outcomes
ORDER BY "position";

COMMENT ON TABLE design_outcomes IS 'One row per outcome: the instrument score it is, its direction, and whether it is the primary outcome of the analysis design this warehouse was built with.';
COMMENT ON COLUMN design_outcomes.outcome IS 'Outcome code, as in followup_scores and model_estimates.';
COMMENT ON COLUMN design_outcomes."position" IS 'Order of the outcome in tables and reports.';
COMMENT ON COLUMN design_outcomes.instrument IS 'Instrument code (instrument_scores.instrument).';
COMMENT ON COLUMN design_outcomes.score IS 'Score code within the instrument (instrument_scores.score).';
COMMENT ON COLUMN design_outcomes.higher_is_better IS 'The outcome''s direction: true where a higher score is better.';
COMMENT ON COLUMN design_outcomes.is_primary IS 'True for the primary outcome of the design: tested first, and the report''s first answer.';
COMMENT ON COLUMN design_outcomes.yardstick IS 'The smallest difference between groups read as important, in the outcome''s units (positive), fixed in the design: design.json''s yardsticks, else a published anchor-based minimal important change at least the group''s measurement error, else half a reference baseline SD (Norman 2003); NULL where none (House-Brackmann). Never recomputed from the data.';
COMMENT ON COLUMN design_outcomes.yardstick_kind IS 'Which rule gave the yardstick: minimal important change, half the reference baseline SD, or fixed in design.json; empty where none.';
COMMENT ON COLUMN design_outcomes.yardstick_source IS 'Where the yardstick comes from, in words (the publication, or the reference SD and its source).';
