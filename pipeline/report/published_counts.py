"""The patients behind every count the report prints, and the register filled from the printed tables.

:func:`read_members` reads, per patient, what each table counts (the patient flow, groups and combinations,
scores at each timepoint, BoNT sessions, the patients of each model estimate). :func:`fill_register` walks
the tables as printed and registers each count cell with its patients and how it was printed, refusing a
printed number that is not the count of its patients. :func:`apply_register` then prints "suppressed" where
the disclosure audit hid more. Row counts of the data-quality tables count rows of files, not patients, and
keep their per-table rule (docs/disclosure.md).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import duckdb
import pandas as pd

from pipeline.errors import PipelineError
from pipeline.report.register import Register
from pipeline.sql_files import FLOW_MACROS_SQL, read_sql
from pipeline.vocabulary import PRIMARY_CONTRAST

log = logging.getLogger("synk.report")
PATIENT = ["site_id", "patient_id"]
GROUP_COLUMNS = ("single modality", "combined")  # Table 1's count columns (the rest: SMDs, not counts)
FLOW_SQL = "report/flow_patients.sql"
PERCENT = re.compile(r" \(\d+%\)\Z")


@dataclass
class Members:
    patients: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per patient received
    estimates: dict[tuple[str, str, str, str], tuple[list, list]] = field(default_factory=dict)


def keys(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["site_id"].astype(str), frame["patient_id"].astype(str), strict=True))


def read_patients(con: duckdb.DuckDBPyConnection, primary_timepoint: str, primary_outcome: str) -> pd.DataFrame:
    """One row per patient received: the flow's steps (the primary analysis: a change in the primary outcome at
    the primary timepoint, as the models' analysis frames take it), group, combination and exclusion reason."""
    con.execute(read_sql(FLOW_MACROS_SQL))  # temporary macros: the published file stays read-only
    frame = con.execute(read_sql(FLOW_SQL), {"timepoint": primary_timepoint, "outcome": primary_outcome}).df()
    # Patients with no row in modality_combinations (no treatment at all) count as received only.
    frame["treated"] = frame["treated"].fillna(False).astype(bool)
    frame["classifiable"] = frame["classifiable"].fillna(False).astype(bool)
    frame["in_combinations"] = frame["in_combinations"].fillna(False).astype(bool)
    for column in ("with_primary", "with_baseline", "in_primary"):
        frame[column] = frame[column].fillna(False).astype(bool) & frame["classifiable"]
    return frame


def estimate_members(
    estimates: pd.DataFrame, patients: pd.DataFrame
) -> dict[tuple[str, str, str, str], tuple[list, list]]:
    """The patients of each estimate's two groups, as the model run fitted them (the warehouse's
    ``estimate_patients``, written by pipeline.models.fit): the report counts them, never choosing them again.
    A warehouse with estimates but no such table was built before it: the report refuses it, since counts
    without their patients could not be audited."""
    if estimates.empty:
        return {}
    if patients is None or "first_group" not in patients:
        raise PipelineError(
            "The warehouse's model run has no estimate_patients table (it was made before the models wrote it): "
            "run `synk run` again to refit the models, then build the report."
        )
    members: dict[tuple[str, str, str, str], tuple[list, list]] = {}
    wanted = set(
        zip(estimates["contrast"], estimates["outcome"], estimates["timepoint"], estimates["method"], strict=True)
    )
    for key, rows in patients.groupby(["contrast", "outcome", "timepoint", "method"], sort=False):
        if key not in wanted:
            continue
        first = rows["first_group"].astype(bool)
        members[tuple(str(k) for k in key)] = (keys(rows[first]), keys(rows[~first]))  # type: ignore[index]
    return members


def fill_register(
    register: Register,
    tables: dict[str, pd.DataFrame],
    members: Members,
    frames: dict[str, pd.DataFrame],
    labels: dict[str, object],
) -> None:
    """Register every patient count of ``tables`` as printed. ``frames``: the patient-level rows behind the
    tables (scores, sessions, orders, years, Table 1); ``labels``: how the tables name things."""
    patients = members.patients
    flow_steps: list[pd.DataFrame] = labels["flow_members"]  # type: ignore[assignment]
    flow = tables["patient_flow"]
    for i, step in enumerate(flow_steps[: len(flow)]):
        register.printed_count(
            f"flow|{i}",
            str(flow["step"].iloc[i]),
            keys(step),
            flow["patients"].iloc[i],
            ("patient_flow", i, "patients"),
        )
        if i:
            lost = flow_steps[i - 1].merge(step[PATIENT], on=PATIENT, how="left", indicator=True)
            lost = lost[lost["_merge"] == "left_only"]
            register.printed_count(
                f"flow_excluded|{i}",
                f"patients excluded at flow step {i + 1}",
                keys(lost),
                flow["excluded at this step"].iloc[i],
                ("patient_flow", i, "excluded at this step"),
            )
    not_classifiable = patients[~patients["classifiable"] & patients["in_combinations"]]
    exclusions = tables["exclusions"]
    for i, reason in enumerate(exclusions["reason"]):
        register.printed_count(
            f"exclusions|{reason}",
            f"patients not classifiable: {reason}",
            keys(not_classifiable[not_classifiable["reason"] == reason]),
            exclusions["patients"].iloc[i],
            ("exclusions", i, "patients"),
        )
    classifiable = patients[patients["classifiable"]]
    _grouped(register, tables["combinations"], "combinations", "combination", classifiable, "combination", None)
    orders = frames["orders"].rename(columns={"order": "order received"})
    _grouped(
        register,
        tables["treatment_order"],
        "treatment_order",
        "order received",
        orders,
        "order received",
        labels["other_orders"],
    )
    _table_one(register, tables["table1"], frames["table_one"], labels)
    _by_year(register, tables["groups_by_year"], frames["years"])
    _doses(register, tables["bont_dose_by_session"], frames["doses"])
    _trajectories(register, tables["trajectories"], frames["scores"], labels)
    for name in ("estimates", "estimates_primary"):
        _estimates(register, name, tables[name], frames["estimates"], members, labels)


def _grouped(
    register: Register,
    table: pd.DataFrame,
    name: str,
    label: str,
    rows: pd.DataFrame,
    column: str,
    pool_label: object,
) -> None:
    for i, (group, value, text) in enumerate(table[["group", label, "patients"]].itertuples(index=False)):
        in_group = rows[rows["group"] == group]
        if value == pool_label:  # the pooled rare values: every value not printed on a row of its own
            named = set(table.loc[(table["group"] == group) & (table[label] != pool_label), label])
            chosen = in_group[~in_group[column].isin(named)]
        else:
            chosen = in_group[in_group[column] == value]
        register.printed_count(
            f"{name}|{group}|{value}", f"{group} patients, {label} {value}", keys(chosen), text, (name, i, "patients")
        )


def _table_one(register: Register, table: pd.DataFrame, patients: pd.DataFrame, labels: dict[str, object]) -> None:
    groups = [c for c in table.columns if c in GROUP_COLUMNS]
    for g in groups:
        register.printed_count(
            f"table1|patients|{g}",
            f"{g} patients (Table 1)",
            keys(patients[patients["group"] == g]),
            table[g].iloc[0],
            ("table1", 0, g),
        )
    categorical: dict[str, tuple[str, dict[str, str]]] = labels["table1_categorical"]  # type: ignore[assignment]
    title = None
    for i, label in enumerate(table["characteristic"]):
        if label in categorical:
            title = label
            continue
        if not str(label).startswith("  ") or title is None or not str(label).endswith(", n (%)"):
            if not str(label).startswith("  "):
                title = None
            continue
        column, words = categorical[title]
        raw = patients["prior_treatment"].map({True: "yes", False: "no"}) if column == "prior" else patients[column]
        raw = raw.astype(object).where(raw.notna(), "not recorded").astype(str)
        values = raw.map({c: words.get(c, c.replace("_", " ")) for c in set(raw)})  # as table_one words them
        word = str(label).strip()[: -len(", n (%)")]
        for g in groups:
            chosen = patients[(values == word) & (patients["group"] == g)]
            register.printed_count(
                f"table1|{column}|{word}|{g}",
                f"{g} patients, {title}: {word}",
                keys(chosen),
                table[g].iloc[i],
                ("table1", i, g),
            )


def _by_year(register: Register, table: pd.DataFrame, years: pd.DataFrame) -> None:
    for i, year in enumerate(table["year"]):
        in_year = years[years["year"].astype(int).astype(str) == str(year)]
        for column in [c for c in table.columns if c != "year"]:
            chosen = in_year if column == "all" else in_year[in_year["group"] == column]
            register.printed_count(
                f"groups_by_year|{year}|{column}",
                f"{column} patients with an index visit in {year}",
                keys(chosen),
                table[column].iloc[i],
                ("groups_by_year", i, column),
            )


def _doses(register: Register, table: pd.DataFrame, doses: pd.DataFrame) -> None:
    for i, session in enumerate(table["session"]):
        number = int(str(session).split()[0])
        chosen = doses[doses["session"] == number]
        register.printed_count(
            f"bont_dose|{number}",
            f"patients with BoNT session {session}",
            keys(chosen),
            table["patients"].iloc[i],
            ("bont_dose_by_session", i, "patients"),
        )


def _trajectories(register: Register, table: pd.DataFrame, scores: pd.DataFrame, labels: dict[str, object]) -> None:
    outcome_of: dict[str, str] = labels["outcome_of"]  # type: ignore[assignment]
    timepoint_of: dict[str, str] = labels["timepoint_of"]  # type: ignore[assignment]
    groups = scores.groupby(["outcome", "group", "timepoint"], sort=False)
    by_key = {key: frame for key, frame in groups}
    for i, (outcome, group, timepoint, text) in enumerate(
        table[["outcome", "group", "timepoint", "patients"]].itertuples(index=False)
    ):
        o, t = outcome_of[outcome], timepoint_of[timepoint]
        chosen = by_key.get((o, group, t), scores.iloc[0:0])
        register.printed_count(
            f"trajectories|{o}|{group}|{t}",
            f"{group} patients with a {o} score at {t}",
            keys(chosen),
            text,
            ("trajectories", i, "patients"),
        )


def _estimates(
    register: Register,
    name: str,
    table: pd.DataFrame,
    estimates: pd.DataFrame,
    members: Members,
    labels: dict[str, object],
) -> None:
    """The n of both groups of every estimate; and, for each outcome, timepoint and method, the patients of
    the combined group in no combination contrast (the combined n minus the contrasts' n): implied."""
    rows = estimates if name == "estimates" else labels["primary_rows"]
    assert isinstance(rows, pd.DataFrame)
    for i, r in enumerate(rows.itertuples(index=False)):
        found = members.estimates.get((str(r.contrast), str(r.outcome), str(r.timepoint), str(r.method)))
        for side, column, n in ((0, "n first group", r.n_treated), (1, "n second group", r.n_control)):
            text = table[column].iloc[i]
            if found is None or len(found[side]) != int(n):
                # Patients the register cannot name: their number is not printed.
                log.warning("%s row %d: the register cannot name the patients of %s; not printed", name, i + 1, column)
                table.iloc[i, table.columns.get_loc(column)] = ""
                continue
            register.printed_count(
                f"estimates|{r.contrast}|{r.outcome}|{r.timepoint}|{r.method}|{side}",
                f"{('first', 'second')[side]} group of {r.contrast}, {r.outcome} at {r.timepoint} ({r.method})",
                found[side],
                text,
                (name, i, column),
            )
    if name != "estimates":
        return
    for (contrast, outcome, timepoint, method), (treated, _) in members.estimates.items():
        if contrast != PRIMARY_CONTRAST:
            continue
        parts: set = set()
        for (c, o, t, m), (first, _) in members.estimates.items():
            if c != contrast and (o, t, m) == (outcome, timepoint, method):
                parts |= set(first)
        rest = [p for p in treated if p not in parts]
        register.implied(
            f"estimates_rest|{outcome}|{timepoint}|{method}",
            f"patients on combinations with no contrast of their own, {outcome} at {timepoint} ({method})",
            rest,
        )


def apply_register(register: Register, tables: dict[str, pd.DataFrame]) -> None:
    """Print what the audit decided wherever it hid a count or showed it as a range (and drop Table 1's
    percentages of a group size no longer printed exactly)."""
    for cell in register.hidden_by_audit():
        for table, row, column in cell.places:
            frame = tables[table]
            frame.iloc[row, frame.columns.get_loc(column)] = register.text(cell.key)
            for spread in SPREAD_COLUMNS.get(table, ()):
                frame.iloc[row, frame.columns.get_loc(spread)] = ""
    table1 = tables["table1"]
    for column in [c for c in table1.columns if c in GROUP_COLUMNS]:
        if not register.shown(f"table1|patients|{column}"):
            table1[column] = [PERCENT.sub("", str(v)) for v in table1[column]]


# Columns from which, with the mean, a row's number of patients could be worked back (SD and CI): blanked
# where the audit hid that number.
SPREAD_COLUMNS = {
    "trajectories": ("sd", "95% CI low", "95% CI high"),
    "bont_dose_by_session": ("sd", "95% CI low", "95% CI high"),
    "site_funnel": ("adjusted mean change",),
}


def without_hidden_spread(summary: pd.DataFrame, keys_of_rows: list[str], register: Register) -> pd.DataFrame:
    """A figure's summary rows with no interval (ci_low, ci_high, sd) where the audit hid the row's count."""
    hidden = pd.Series(
        [bool(register.cells[k].why) if k in register.cells else False for k in keys_of_rows], index=summary.index
    )
    out = summary.copy()
    for column in ("sd", "ci_low", "ci_high"):
        if column in out.columns:
            out[column] = out[column].where(~hidden)
    return out


def year_cells_shown(register: Register, year: int, columns: list[str]) -> bool:
    return all(register.shown(f"groups_by_year|{year}|{c}") for c in columns)
