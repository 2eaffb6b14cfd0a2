-- Rows of an instrument at a visit whose recorded totals disagree with the totals derived
-- from its items: the whole instrument at that visit is quarantined, as the contract says.
WITH recorded AS (
    SELECT site_id, patient_id, visit_day, instrument, item AS score, value
    FROM assessments
),

disagreeing AS (
    SELECT DISTINCT
        d.site_id, d.patient_id, d.visit_day, d.instrument,
        'totals_disagree:' || d.instrument || '.' || d.score AS rule
    FROM item_scores AS d
    INNER JOIN recorded AS r USING (site_id, patient_id, visit_day, instrument, score)
    WHERE d.complete AND abs(d.value - r.value) > $tolerance
)

SELECT a.frame_index, min(g.rule) AS rule
FROM assessments AS a
INNER JOIN disagreeing AS g USING (site_id, patient_id, visit_day, instrument)
GROUP BY a.frame_index
ORDER BY a.frame_index;
