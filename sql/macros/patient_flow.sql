-- The patient flow's steps, in one place: the build's attrition (counted per outcome and timepoint) and the
-- report's patient flow (its patients, for the primary outcome at the primary timepoint) both call it.
-- One row per patient received, outcome and follow-up timepoint: treated (a treatment on or after the index
-- visit: a t0), classifiable (followed up to the end of the exposure window), with_baseline (classifiable, with
-- a baseline score of the outcome) and analysable (with_baseline, and a score in the timepoint's window: a
-- change from baseline, as the models' analysis frames take it). The tables are named by the caller: patients,
-- modality_combinations, followup_scores and the design's timepoints (seed_timepoints or design_timepoints);
-- only_outcome: one outcome (whether or not any patient has a score of it), or NULL for every outcome scored.
CREATE OR REPLACE TEMP MACRO patient_flow_steps(
    patients_table, combinations_table, scores_table, timepoints_table, only_outcome
) AS TABLE
WITH outcomes AS (
    SELECT DISTINCT outcome FROM query_table(scores_table) WHERE only_outcome IS NULL
    UNION ALL
    SELECT only_outcome AS outcome WHERE only_outcome IS NOT NULL
),

baselines AS (
    SELECT DISTINCT site_id, patient_id, outcome
    FROM query_table(scores_table)
    WHERE timepoint = 'baseline'
),

followups AS (
    SELECT DISTINCT site_id, patient_id, outcome, timepoint
    FROM query_table(scores_table)
    WHERE timepoint <> 'baseline'
)

SELECT
    o.outcome, t.timepoint, p.site_id, p.patient_id,
    m.t0_day IS NOT NULL AS treated,
    coalesce(m.classifiable, false) AS classifiable,
    coalesce(m.classifiable, false) AND b.patient_id IS NOT NULL AS with_baseline,
    coalesce(m.classifiable, false) AND b.patient_id IS NOT NULL AND f.patient_id IS NOT NULL AS analysable
FROM query_table(patients_table) AS p
CROSS JOIN outcomes AS o
CROSS JOIN (SELECT timepoint FROM query_table(timepoints_table)) AS t
LEFT JOIN query_table(combinations_table) AS m ON m.site_id = p.site_id AND m.patient_id = p.patient_id
LEFT JOIN baselines AS b ON b.site_id = p.site_id AND b.patient_id = p.patient_id AND b.outcome = o.outcome
LEFT JOIN followups AS f
    ON f.site_id = p.site_id AND f.patient_id = p.patient_id AND f.outcome = o.outcome AND f.timepoint = t.timepoint;
