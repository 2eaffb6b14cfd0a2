-- Each patient's preference score in every contrast's overlap model: the report's overlap plot.
-- key: run_id, contrast, site_id, patient_id
CREATE TABLE preference_scores AS
SELECT run_id, contrast, site_id, patient_id, first_group, preference_score
FROM store.preference_scores
ORDER BY run_id, contrast, site_id, patient_id;

COMMENT ON TABLE preference_scores IS 'One row per patient of a contrast''s overlap model (the contrast''s patients with a baseline severity measure and every covariate): the preference score behind propensity_diagnostics'' and the estimates'' overlap verdict.';
COMMENT ON COLUMN preference_scores.run_id IS 'Model run id.';
COMMENT ON COLUMN preference_scores.contrast IS 'Contrast code.';
COMMENT ON COLUMN preference_scores.site_id IS 'Site code.';
COMMENT ON COLUMN preference_scores.patient_id IS 'Patient id within the site.';
COMMENT ON COLUMN preference_scores.first_group IS 'True for the contrast''s first group (combined treatment in combined_vs_single), false for the second.';
COMMENT ON COLUMN preference_scores.preference_score IS 'Preference score (Walker et al. 2013): the propensity score with the first group''s share taken out, logit(F) = logit(e) - logit(P); 0.3-0.7 is equipoise.';
