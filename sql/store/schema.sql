-- The staging store: the pipeline's own record of everything received, kept for good.
-- History tables hold every version of every record: valid_to is null for the current one.
CREATE TABLE IF NOT EXISTS drops (
    drop_id VARCHAR PRIMARY KEY,
    source VARCHAR,
    snapshot VARCHAR,
    site_ids VARCHAR[],
    status VARCHAR,            -- loaded, rejected, held
    reason VARCHAR,
    received_at TIMESTAMP,
    loaded_at TIMESTAMP,
    summary JSON               -- counts by table and by quarantine rule; never a cell value
);

CREATE TABLE IF NOT EXISTS load_ledger (
    drop_id VARCHAR,
    file VARCHAR,
    sha256 VARCHAR,
    rows_in BIGINT,
    rows_loaded BIGINT,
    rows_quarantined BIGINT,
    status VARCHAR,
    reason VARCHAR,
    received_at TIMESTAMP,
    loaded_at TIMESTAMP,
    archive_path VARCHAR,
    CHECK (rows_in = rows_loaded + rows_quarantined)
);

CREATE TABLE IF NOT EXISTS quarantine (
    drop_id VARCHAR,
    file VARCHAR,
    row_number BIGINT,
    rule VARCHAR,
    columns VARCHAR,
    "row" JSON,
    quarantined_at TIMESTAMP
);

-- Loads that went through but went wrong (pipeline/load_checks.py): a file mostly quarantined, fewer
-- analysable patients, no estimate. The message is the coordinator's sentence; never a cell value.
CREATE TABLE IF NOT EXISTS load_alerts (
    raised_at TIMESTAMP,
    drop_id VARCHAR,           -- null: about the published warehouse as a whole
    kind VARCHAR,              -- quarantine_share, fewer_analysable_patients, no_estimates
    message VARCHAR
);

CREATE TABLE IF NOT EXISTS patients_history (
    site_id VARCHAR, patient_id VARCHAR, sex VARCHAR, age_at_onset INTEGER, side VARCHAR,
    etiology VARCHAR, index_year INTEGER, onset_to_index_days INTEGER,
    drop_id VARCHAR, row_number BIGINT, row_hash VARCHAR,
    valid_from TIMESTAMP, valid_to TIMESTAMP, ended_by_drop VARCHAR, end_reason VARCHAR
);

CREATE TABLE IF NOT EXISTS treatments_history (
    site_id VARCHAR, patient_id VARCHAR, treatment_id VARCHAR, "day" INTEGER, modality VARCHAR,
    botox_units DOUBLE, pt_sessions INTEGER, target VARCHAR,
    drop_id VARCHAR, row_number BIGINT, row_hash VARCHAR,
    valid_from TIMESTAMP, valid_to TIMESTAMP, ended_by_drop VARCHAR, end_reason VARCHAR
);

CREATE TABLE IF NOT EXISTS assessments_history (
    site_id VARCHAR, patient_id VARCHAR, visit_day INTEGER, instrument VARCHAR, item VARCHAR,
    "value" DOUBLE,
    drop_id VARCHAR, row_number BIGINT, row_hash VARCHAR,
    valid_from TIMESTAMP, valid_to TIMESTAMP, ended_by_drop VARCHAR, end_reason VARCHAR
);

-- Contract 1.2: complications (optional file; a store made before it gains the table, empty).
CREATE TABLE IF NOT EXISTS complications_history (
    site_id VARCHAR, patient_id VARCHAR, complication_id VARCHAR, treatment_id VARCHAR, "day" INTEGER,
    code VARCHAR, grade INTEGER, resolved_day INTEGER,
    drop_id VARCHAR, row_number BIGINT, row_hash VARCHAR,
    valid_from TIMESTAMP, valid_to TIMESTAMP, ended_by_drop VARCHAR, end_reason VARCHAR
);

CREATE TABLE IF NOT EXISTS model_runs (
    run_id VARCHAR, started_at TIMESTAMP, data_snapshot VARCHAR, code_version VARCHAR,
    settings JSON, packages JSON
);

CREATE TABLE IF NOT EXISTS model_estimates (
    run_id VARCHAR, method VARCHAR, outcome VARCHAR, timepoint VARCHAR, contrast VARCHAR,
    estimate DOUBLE, std_error DOUBLE, ci_low DOUBLE, ci_high DOUBLE, p_value DOUBLE, p_adjusted DOUBLE,
    n_treated BIGINT, n_control BIGINT, higher_is_better BOOLEAN, diagnostics_ok BOOLEAN, note VARCHAR,
    e_value DOUBLE, e_value_ci DOUBLE, mdd DOUBLE, estimand VARCHAR, "role" VARCHAR,
    site_spread DOUBLE,
    converged BOOLEAN, boundary BOOLEAN, balance_ok BOOLEAN, overlap_ok BOOLEAN
);

CREATE TABLE IF NOT EXISTS covariate_balance (
    run_id VARCHAR, contrast VARCHAR, outcome VARCHAR, timepoint VARCHAR, covariate VARCHAR,
    smd_unweighted DOUBLE, smd_weighted DOUBLE
);

CREATE TABLE IF NOT EXISTS propensity_diagnostics (
    run_id VARCHAR, contrast VARCHAR, outcome VARCHAR, timepoint VARCHAR, covariates JSON,
    auc DOUBLE, equipoise_share DOUBLE, ess_treated DOUBLE, ess_control DOUBLE,
    max_abs_smd_weighted DOUBLE, n_truncated BIGINT, diagnostics_ok BOOLEAN, note VARCHAR
);

CREATE TABLE IF NOT EXISTS estimate_patients (
    run_id VARCHAR, contrast VARCHAR, outcome VARCHAR, timepoint VARCHAR, method VARCHAR, site_id VARCHAR,
    patient_id VARCHAR, first_group BOOLEAN
);

CREATE TABLE IF NOT EXISTS preference_scores (
    run_id VARCHAR, contrast VARCHAR, site_id VARCHAR, patient_id VARCHAR, first_group BOOLEAN,
    preference_score DOUBLE
);

CREATE TABLE IF NOT EXISTS target_trial_summary (
    run_id VARCHAR, outcome VARCHAR, trial VARCHAR, arm VARCHAR, clones BIGINT, censored_share DOUBLE,
    followed BIGINT, largest_weight DOUBLE, effective_sample_size DOUBLE, flagged BIGINT
);

-- Stores made before warehouse contract 1.1 gain its columns (new columns go last in the store;
-- the marts select them in the published order).
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS e_value DOUBLE;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS e_value_ci DOUBLE;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS mdd DOUBLE;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS estimand VARCHAR;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS "role" VARCHAR;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS site_spread DOUBLE;
-- The diagnostics as fields (issue 27): NULL on the rows of runs made before them.
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS converged BOOLEAN;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS boundary BOOLEAN;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS balance_ok BOOLEAN;
ALTER TABLE model_estimates ADD COLUMN IF NOT EXISTS overlap_ok BOOLEAN;
ALTER TABLE covariate_balance ADD COLUMN IF NOT EXISTS timepoint VARCHAR;
