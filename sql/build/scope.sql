-- The patients a build computes. A full build (no variable 'since'): every patient ever loaded.
-- An incremental one: the patients with a record, in any of the histories, that began or
-- ended after the published build's as-of time ('since'); the others are copied as published.
CREATE OR REPLACE TEMP TABLE build_scope AS
SELECT DISTINCT site_id, patient_id
FROM store.patients_history
WHERE getvariable('since') IS NULL
UNION
SELECT site_id, patient_id
FROM (
    SELECT site_id, patient_id, valid_from, valid_to FROM store.patients_history
    UNION ALL
    SELECT site_id, patient_id, valid_from, valid_to FROM store.treatments_history
    UNION ALL
    SELECT site_id, patient_id, valid_from, valid_to FROM store.assessments_history
    UNION ALL
    SELECT site_id, patient_id, valid_from, valid_to FROM store.complications_history
)
WHERE getvariable('since') IS NOT NULL
    AND (
        (valid_from > getvariable('since') AND valid_from <= getvariable('as_of'))
        OR (valid_to > getvariable('since') AND valid_to <= getvariable('as_of'))
    );
