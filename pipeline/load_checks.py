"""A load that went through but went wrong: said loudly, never a quiet success.

Four alerts, each a coordinator's sentence (file, rule, count, share, what to do; never a cell value):

- a loaded file with more than ``IngestSettings.max_quarantine_share`` of its rows quarantined;
- a published warehouse with fewer analysable patients than the one it replaced;
- a model run that fitted no estimate at all;
- a method whose every estimate failed to fit (the others stand: the run is not a quiet success).

Each is kept in the store's ``load_alerts`` (pipeline/store/ledger.py; ``synk status`` lists the standing
ones first), fails the run's check (the DAG's check task, ``synk run``'s exit code) and so is sent as
the failure notice. An alert stands until a later drop of its site loads (for the warehouse's alerts, any later drop):
like a refusal it is told once (a model run with no estimate again, while its alert stands, is not told
again), and stays in ``synk status`` until the clinic's next export.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd

from pipeline.store.ledger import FileOutcome, LoadAlert

QUARANTINE_SHARE = "quarantine_share"
FEWER_ANALYSABLE = "fewer_analysable_patients"
NO_ESTIMATES = "no_estimates"
METHOD_FAILED = "method_failed"
FIT_FAILED = "fit failed"  # how pipeline/models/fit.py begins the note of an estimate whose fit raised
_SHOWN_RULES = 5  # the largest rules by count; the rest are in `synk status`

# Patients a comparison can use: classifiable, with a baseline and a change at some follow-up
# (the last step of the warehouse's attrition table, for any outcome and timepoint).
ANALYSABLE_PATIENTS_SQL = """
SELECT count(*) FROM (
    SELECT DISTINCT f.site_id, f.patient_id
    FROM followup_scores AS f
    INNER JOIN modality_combinations AS m USING (site_id, patient_id)
    WHERE m.classifiable AND f.change IS NOT NULL
)
"""


def _rule_counts(quarantined: list[pd.DataFrame]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for frame in quarantined:
        for rules in frame["rule"]:
            for rule in str(rules).split("; "):
                counts[rule] = counts.get(rule, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


UNKNOWN_PATIENT = "unknown_patient"  # the rule (pipeline/validation/suites.py) a row of an unknown patient breaks


def _failed_patients(quarantined: dict[str, pd.DataFrame]) -> set[tuple[object, object]]:
    """The patients (site_id, patient_id: identifiers) whose own patients row was quarantined."""
    frame = quarantined.get("patients")
    if frame is None or frame.empty:
        return set()
    rows = [json.loads(row) for row in frame["row"]]
    return {(row.get("site_id"), row.get("patient_id")) for row in rows}


def _knock_on(frames: list[pd.DataFrame], failed: set[tuple[object, object]]) -> int:
    """Rows quarantined as unknown_patient only because their patient's own row was: one cause, not many."""
    count = 0
    for frame in frames:
        for rules, row in zip(frame["rule"], frame["row"], strict=True):
            if UNKNOWN_PATIENT in str(rules).split("; "):
                cells = json.loads(row)
                count += (cells.get("site_id"), cells.get("patient_id")) in failed
    return count


def quarantine_share_alert(
    drop_id: str, outcomes: list[FileOutcome], quarantined: dict[str, pd.DataFrame], limit: float
) -> LoadAlert | None:
    """The drop's files that quarantined more than ``limit`` of their rows, with their largest rules; the
    unknown_patient rows of patients whose own patients row was quarantined are said to be so."""
    parts = []
    failed = _failed_patients(quarantined)
    for outcome in outcomes:
        if outcome.status != "loaded" or not outcome.rows_in:
            continue
        share = outcome.rows_quarantined / outcome.rows_in
        if share <= limit:
            continue
        frames = [quarantined[t] for t in outcome.tables if t in quarantined]
        rules = _rule_counts(frames)
        knock_on = _knock_on(frames, failed) if failed else 0
        because = f" ({knock_on:,} only because their patient's own row was quarantined)" if knock_on else ""
        shown = ", ".join(
            f"{rule} {count:,}{because if rule == UNKNOWN_PATIENT else ''}"
            for rule, count in list(rules.items())[:_SHOWN_RULES]
        )
        more = f" and {len(rules) - _SHOWN_RULES} more" if len(rules) > _SHOWN_RULES else ""
        parts.append(
            f"{outcome.file.file} had {outcome.rows_quarantined:,} of {outcome.rows_in:,} rows quarantined "
            f"({share:.1%}, above the {limit:.0%} limit), by rule: {shown}{more}"
        )
    if not parts:
        return None
    return LoadAlert(
        QUARANTINE_SHARE,
        f"Drop {drop_id} loaded, but {'; '.join(parts)}. The rest of it is in the warehouse. To fix: "
        f"`synk status --drop {drop_id}` lists the rows by file and rule; look the rules up in the runbook "
        "(docs/runbook.md, 'Rows in quarantine'), correct the export and send it again "
        "as a new drop; its rows replace these.",
        drop_id,
    )


def analysable_patients(warehouse: Path) -> int | None:
    """Analysable patients in a published warehouse; None where there is none yet."""
    if not warehouse.exists():
        return None
    try:
        con = duckdb.connect(str(warehouse), read_only=True)
    except duckdb.Error:
        return None  # unreadable (restored from elsewhere, damaged): the build replaces it whole
    try:
        return int(con.execute(ANALYSABLE_PATIENTS_SQL).fetchone()[0])
    except duckdb.Error:
        return None  # built by a version without these tables: nothing to compare with
    finally:
        con.close()


def fewer_analysable_alert(before: int | None, after: int) -> LoadAlert | None:
    if before is None or after >= before:
        return None
    return LoadAlert(
        FEWER_ANALYSABLE,
        f"The warehouse published now has {after:,} analysable patients (classifiable, with a baseline and a "
        f"follow-up score), {before - after:,} fewer than the {before:,} before this load. To fix: check "
        "`synk status` for quarantined rows and retired patients; if an export was cut short or spelled "
        "differently, send the corrected export as a new drop. If the patients really left, nothing is wrong.",
    )


def no_estimates_alert(warehouse: Path, min_group_size: int) -> LoadAlert:
    patients = analysable_patients(warehouse) or 0
    why = (
        "no patient is analysable (classifiable, with a baseline and a follow-up score)"
        if patients == 0
        else f"of its {patients:,} analysable patients, no group compared holds {min_group_size} or more"
    )
    return LoadAlert(
        NO_ESTIMATES,
        f"The model run fitted no estimate: {why}. To fix: check `synk status` for quarantined assessments "
        "and the warehouse's attrition table for where patients drop out; the models run again on the next load.",
    )


def failed_methods_alert(estimates: pd.DataFrame) -> LoadAlert | None:
    """The methods of which no comparison (the claims aside) has an estimate and some fit failed: a
    setting or the data broke the method itself, which groups too small to fit do not."""
    from pipeline.models.pairs import is_claim

    rows = estimates[~estimates["contrast"].map(is_claim).astype(bool)]
    failed = []
    for method, group in rows.groupby("method", sort=True):
        fitted = pd.to_numeric(group["estimate"], errors="coerce").notna()
        broke = group["note"].fillna("").str.contains(FIT_FAILED, regex=False)
        if not fitted.any() and broke.any():
            failed.append(f"{method} ({int(broke.sum()):,} of its {len(group):,} estimates failed to fit)")
    if not failed:
        return None
    return LoadAlert(
        METHOD_FAILED,
        f"The model run fitted no estimate of {', '.join(failed)}; the other methods' estimates stand. To fix: "
        "each failure's reason is in model_estimates.note; check models.json in the data home against its rules "
        "(docs/runbook.md, 'Settings files'); the models run again on the next load.",
    )
