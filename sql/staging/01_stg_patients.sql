-- Patients as of the build's as-of time: the version valid then, with the drops that brought it.
-- Every staging view keeps only the patients of build_scope: all of them in a full build, those
-- whose records changed since the published build in an incremental one.
CREATE OR REPLACE TEMP VIEW stg_patients AS
WITH versions AS (
    SELECT * FROM store.patients_history
    WHERE valid_from <= getvariable('as_of') AND (valid_to IS NULL OR valid_to > getvariable('as_of'))
),

first_seen AS (
    SELECT site_id, patient_id, arg_min(drop_id, valid_from) AS first_drop_id
    FROM store.patients_history
    WHERE valid_from <= getvariable('as_of')
    GROUP BY ALL
)

SELECT
    v.site_id, v.patient_id, v.sex, v.age_at_onset, v.side, v.etiology, v.index_year, v.onset_to_index_days,
    f.first_drop_id,
    v.drop_id AS last_drop_id
FROM versions AS v
INNER JOIN first_seen AS f USING (site_id, patient_id)
SEMI JOIN build_scope USING (site_id, patient_id);
