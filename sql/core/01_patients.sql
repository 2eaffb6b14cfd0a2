-- One row per current patient; prior_treatment says a treatment came before the index visit.
CREATE TABLE patients AS
WITH prior AS (
    SELECT site_id, patient_id, true AS prior_treatment
    FROM stg_treatments
    WHERE "day" < 0
    GROUP BY ALL
)

SELECT
    p.site_id, p.patient_id, p.sex, p.age_at_onset, p.side, p.etiology, p.index_year, p.onset_to_index_days,
    coalesce(prior.prior_treatment, false) AS prior_treatment,
    p.first_drop_id,
    p.last_drop_id
FROM stg_patients AS p
LEFT JOIN prior USING (site_id, patient_id)
ORDER BY p.site_id, p.patient_id;
