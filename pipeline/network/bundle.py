"""The site bundle: what one clinic sends the network's coordinating centre, built from its own warehouse.

Aggregates only, in the versioned format of docs/network.md ("The site bundle"): for one-stage pooling each
network model's sufficient statistics (X'WX, X'Wy, y'Wy, n over the intercept and the protocol's columns;
the coordinator adds the site's fixed effect), for two-stage pooling the site's own estimates (with its
target trial's, surgery or more injections?, which only the site can weight), then the complication counts and
the responder counts. Before anything is written, the disclosure rules: no statistic
over 1 to 10 patients (``small_cells``), at most one parameter per ten rows, and every count registered and
audited with the site's earlier bundles and releases (``pipeline/report/disclosure.py``); what was left out
and why is said in the bundle and on the page the data owner reads before sending it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipeline import __version__
from pipeline.analysis_design import AnalysisDesign
from pipeline.checksums import sha256_of
from pipeline.errors import NetworkInputError, PipelineError
from pipeline.models.target_trial import CONTRAST as TARGET_TRIAL_CONTRAST
from pipeline.models.target_trial import METHOD as TARGET_TRIAL_METHOD
from pipeline.models.target_trial import PRIMARY_OUTCOME as TARGET_TRIAL_OUTCOME
from pipeline.models.target_trial import emulate, emulation_inputs, followed_patients, phase_min_days
from pipeline.network import protocol
from pipeline.network.site_frames import ModelFrame, model_frames, patients_of
from pipeline.network.site_weights import site_iptw_weights
from pipeline.network.small_cells import small_cells, too_many_parameters
from pipeline.network.sufficient import NetworkDesign, SiteStatistics, site_statistics
from pipeline.report.disclosure import audit
from pipeline.report.kept_registers import BUNDLE_PREFIX
from pipeline.report.register import Register
from pipeline.report.suppression import SMALL_CELL
from pipeline.settings import DataHome, ModelSettings
from pipeline.sql_files import COMPLICATION_MACROS_SQL, read_sql
from pipeline.versions import package_versions
from pipeline.yardsticks import responder_threshold

PACKAGES = ("numpy", "pandas", "scipy", "statsmodels", "duckdb", "highspy")
REGISTER_PREFIX = BUNDLE_PREFIX  # staging/releases/bundle-<id>.register.json.gz, one per bundle
SENT_LOG = "sent.jsonl"  # staging/network/: one line per bundle written (for answering its request)


def _small(count: int) -> bool:
    return 0 < count < SMALL_CELL


def canonical(payload: dict[str, object]) -> bytes:
    """The bytes the bundle's checksum is over: its JSON without the checksum, keys sorted."""
    body = {k: v for k, v in payload.items() if k != "checksum"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def content_checksum(payload: dict[str, object]) -> str:
    import hashlib

    return hashlib.sha256(canonical(payload)).hexdigest()


@dataclass
class _Bundle:
    site: str
    register: Register
    models: list[dict[str, object]] = field(default_factory=list)
    estimates: list[dict[str, object]] = field(default_factory=list)
    complications: list[dict[str, object]] = field(default_factory=list)
    responders: list[dict[str, object]] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)

    def count(self, table: str, key: str, population: str, patients: list[tuple[str, str]]) -> None:
        self.register.count(f"{table}|{key}", population, patients, place=(table, 0, key))


def _site_of(con: duckdb.DuckDBPyConnection) -> str:
    sites = [str(r[0]) for r in con.execute("SELECT DISTINCT site_id FROM patients ORDER BY 1").fetchall()]
    if len(sites) != 1:
        raise PipelineError(
            f"A site bundle is built from one clinic's warehouse; this one holds {len(sites)} sites "
            f"({', '.join(sites[:5])})."
        )
    return sites[0]


def _statistics_entry(model: ModelFrame, stats: SiteStatistics, counts: dict[str, int]) -> dict[str, object]:
    return {
        "counts": counts,
        "key": model.key,
        "kind": model.kind,
        "contrast": model.contrast,
        "outcome": model.outcome,
        "timepoint": model.timepoint,
        "estimated": protocol.ESTIMATED[model.kind],
        "names": list(stats.names),
        "n": stats.n,
        "xtx": stats.xtx.tolist(),
        "xty": stats.xty.tolist(),
        "yty": stats.yty,
        "weighted": stats.weighted,
    }


def prepared_frame(model: ModelFrame, site: str, settings: ModelSettings) -> tuple[pd.DataFrame, str | None]:
    """The model's frame as its statistics are computed (and its meat later, from the same rows): with the
    site's own IPTW weights for an iptw model (``ip_weight``), whose name is returned, else None."""
    if model.kind != "iptw":
        return model.frame, None
    weights = site_iptw_weights(
        model.frame, protocol.PROPENSITY_PREDICTORS, site, truncation=settings.weight_truncation
    )
    return model.frame.assign(ip_weight=weights), "ip_weight"


def local_design(model: ModelFrame, site: str) -> NetworkDesign:
    """The site's own design: the intercept and the protocol's columns (the coordinator adds the site's
    fixed effect: within a site its indicator is the intercept)."""
    return NetworkDesign((site,), model.columns)


def _model(bundle: _Bundle, model: ModelFrame, settings: ModelSettings) -> None:
    """One model's statistics, or a sentence saying why it is not sent."""
    frame = model.frame
    indicators = [c for c in model.columns if c != "baseline_value"]
    what = f"{model.kind} {model.contrast} ({model.outcome} at {model.timepoint})"
    if _small(len(frame)):
        bundle.left_out.append(f"{what}: not sent: the model's patients are 1 to 10")
        return
    cells = small_cells(frame, indicators)
    if cells:
        bundle.left_out.append(f"{what}: not sent: {cells[0].sentence()}")
        return
    too_many = too_many_parameters(len(frame), 1 + len(model.columns))
    if too_many:
        bundle.left_out.append(f"{what}: {too_many}")
        return
    try:
        frame, weight = prepared_frame(model, bundle.site, settings)
    except (NetworkInputError, ValueError, np.linalg.LinAlgError):
        bundle.left_out.append(f"{what}: not sent: the site's propensity model could not be fitted")
        return
    stats = site_statistics(frame, local_design(model, bundle.site), bundle.site, "change", weight)
    bundle.count(model.key, "n", f"patients of {what}", patients_of(frame))
    counts = {}
    for column in indicators:
        ones = frame.loc[frame[column] == 1]
        bundle.count(model.key, column, f"patients with {column} of {what}", patients_of(ones))
        counts[column] = len(ones)
    bundle.models.append(_statistics_entry(model, stats, counts))


_LATEST_ESTIMATES_SQL = """
SELECT method, contrast, outcome, timepoint, estimate, std_error, ci_low, ci_high, p_value, n_treated, n_control,
    higher_is_better, diagnostics_ok
FROM model_estimates
WHERE run_id = (SELECT run_id FROM model_runs ORDER BY started_at DESC LIMIT 1)
"""


def _latest_estimates(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The latest model run's estimates (the warehouse keeps earlier runs' rows too)."""
    return con.execute(_LATEST_ESTIMATES_SQL).df()


def _estimate_entry(key: str, row: pd.Series, counts: tuple[int, int]) -> dict[str, object]:
    return {
        "key": key,
        "method": str(row["method"]),
        "contrast": str(row["contrast"]),
        "outcome": str(row["outcome"]),
        "timepoint": str(row["timepoint"]),
        **{c: float(row[c]) for c in ("estimate", "std_error", "ci_low", "ci_high", "p_value")},
        "n_treated": counts[0],
        "n_control": counts[1],
        "higher_is_better": bool(row["higher_is_better"]),
        "diagnostics_ok": bool(row["diagnostics_ok"]),
    }


def _estimates(bundle: _Bundle, con: duckdb.DuckDBPyConnection, frames: dict[str, ModelFrame]) -> None:
    """The site's own estimates (model_estimates) of the network's comparisons, for two-stage pooling:
    only where both groups have 11 or more patients and their counts are those of the network's frame."""
    rows = _latest_estimates(con)
    _, _, _, both = protocol.SYNERGY.groups
    for model in frames.values():
        method = "ancova" if model.kind == "synergy" else model.kind
        match = rows[
            (rows["method"] == method)
            & (rows["contrast"] == model.contrast)
            & (rows["outcome"] == model.outcome)
            & (rows["timepoint"] == model.timepoint)
        ]
        what = f"the site's own {method} estimate of {model.contrast} ({model.outcome} at {model.timepoint})"
        if match.empty or not np.isfinite(match[["estimate", "std_error"]].to_numpy(dtype=float)).all():
            bundle.left_out.append(f"{what}: none (the site's model gave no estimate)")
            continue
        row = match.iloc[0]
        frame = model.frame
        if model.kind == "synergy":
            first = frame.loc[frame["combination"] == both]
            second = frame.loc[frame["combination"] == protocol.SYNERGY.groups[0]]
        else:
            first, second = frame.loc[frame["treated"] == 1], frame.loc[frame["treated"] == 0]
        counts = (int(row["n_treated"]), int(row["n_control"]))
        if counts != (len(first), len(second)) or min(counts) < SMALL_CELL:
            bundle.left_out.append(f"{what}: not sent: its groups are not the network's frame's or are small")
            continue
        key = f"two-stage|{method}|{model.contrast}|{model.outcome}|{model.timepoint}"
        bundle.count(key, "n_treated", f"first group of {what}", patients_of(first))
        bundle.count(key, "n_control", f"second group of {what}", patients_of(second))
        bundle.estimates.append(_estimate_entry(key, row, counts))


def _target_trial(bundle: _Bundle, con: duckdb.DuckDBPyConnection, settings: ModelSettings) -> None:
    """Surgery or more injections? The site's own clone-censor-weight estimate (``ccw``, docs/target_trial.md)
    on the Sunnybrook composite, for two-stage pooling only (the censoring weights are the site's own model):
    where both strategies followed 11 or more patients, the patients found by emulating the trial again on the
    warehouse's rows and checked against the estimate's n. Not the SAQ's: its patients followed are the
    Sunnybrook's less a few without an SAQ, a difference of 1 to 10 the audit would give away."""
    rows = _latest_estimates(con)
    rows = rows[
        (rows["contrast"] == TARGET_TRIAL_CONTRAST)
        & (rows["method"] == TARGET_TRIAL_METHOD)
        & (rows["outcome"] == TARGET_TRIAL_OUTCOME)
    ]
    if rows.empty:
        return
    inputs, phase = emulation_inputs(con), phase_min_days(con)
    for _, row in rows.iterrows():
        what = f"the site's own target-trial estimate, surgery or more injections? ({row['outcome']} at 12m)"
        if not np.isfinite([float(row["estimate"]), float(row["std_error"])]).all():
            bundle.left_out.append(f"{what}: none (the site's emulation gave no estimate)")
            continue
        followed = followed_patients(emulate(*inputs, str(row["outcome"]), phase, settings.weight_truncation))
        counts = (len(followed[1]), len(followed[0]))
        if counts != (int(row["n_treated"]), int(row["n_control"])) or min(counts) < SMALL_CELL:
            bundle.left_out.append(f"{what}: not sent: a strategy followed 1 to 10 patients, or its rows changed")
            continue
        key = f"two-stage|{TARGET_TRIAL_METHOD}|{TARGET_TRIAL_CONTRAST}|{row['outcome']}|{row['timepoint']}"
        for name, arm, words in (("n_treated", 1, "surgery within 90 days"), ("n_control", 0, "more injections")):
            bundle.count(key, name, f"patients followed under {words}, {what}", followed[arm])
        bundle.estimates.append(_estimate_entry(key, row, counts))


def _complications(bundle: _Bundle, con: duckdb.DuckDBPyConnection) -> None:
    """Patients at risk and with each complication per group (complication_rates' own macros). A group of
    1 to 10 at risk is left out; a code whose patients with it, or without it, are 1 to 10 is withheld for
    that group (the coordinator then leaves the site's group out of that code's rate)."""
    tables = {str(r[0]) for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if "complications" not in tables:
        return
    con.execute(read_sql(COMPLICATION_MACROS_SQL))
    at_risk = con.execute(
        "SELECT site_id, patient_id, grouping, group_code FROM "
        "complication_at_risk('modality_combinations', 'treatments', 'modality_codes')"
    ).df()
    events = con.execute(
        "SELECT site_id, patient_id, grouping, group_code, code FROM "
        "complication_first_events('modality_combinations', 'treatments', 'modality_codes', 'complications')"
    ).df()
    codes = sorted(events["code"].astype(str).unique())
    for (grouping, group), members in at_risk.groupby(["grouping", "group_code"], sort=True):
        members = members.drop_duplicates(["site_id", "patient_id"])
        what = f"complications of {grouping} {group}"
        if _small(len(members)):
            bundle.left_out.append(f"{what}: left out: the patients at risk are 1 to 10")
            continue
        table = f"complications|{grouping}|{group}"
        bundle.count(table, "at_risk", f"patients at risk, {grouping} {group}", patients_of(members))
        withheld = []
        for code in codes:
            having = events[
                (events["grouping"] == grouping) & (events["group_code"] == group) & (events["code"] == code)
            ]
            having = having.drop_duplicates(["site_id", "patient_id"])
            if _small(len(having)) or _small(len(members) - len(having)):
                withheld.append(code)
                bundle.left_out.append(f"{what}: {code} withheld: the patients with it, or without it, are 1 to 10")
                continue
            bundle.count(table, code, f"patients with {code}, {grouping} {group}", patients_of(having))
            bundle.complications.append(
                {
                    "grouping": str(grouping),
                    "group_code": str(group),
                    "code": code,
                    "patients_at_risk": len(members),
                    "patients_with": len(having),
                }
            )
        if withheld:
            bundle.complications.append(
                {
                    "grouping": str(grouping),
                    "group_code": str(group),
                    "withheld_codes": withheld,
                    "patients_at_risk": len(members),
                }
            )


def _responders(bundle: _Bundle, design: AnalysisDesign, frames: dict[str, ModelFrame]) -> None:
    """Responder counts per comparison, at the protocol's threshold (the same at every site)."""
    for model in frames.values():
        if model.kind != "ancova":
            continue
        outcome = model.outcome
        threshold = responder_threshold(outcome, protocol.NETWORK_BASELINE_SD.get(outcome))
        if threshold.value is None:
            continue
        frame = model.frame
        higher = design.higher_is_better[outcome]
        improvement = frame["change"].astype(float) * (1.0 if higher else -1.0)
        responded = frame.loc[improvement >= threshold.value]
        groups = {
            "n_treated": frame.loc[frame["treated"] == 1],
            "responders_treated": responded.loc[responded["treated"] == 1],
            "n_control": frame.loc[frame["treated"] == 0],
            "responders_control": responded.loc[responded["treated"] == 0],
        }
        counts = {name: len(rows) for name, rows in groups.items()}
        complements = (
            counts["n_treated"] - counts["responders_treated"],
            counts["n_control"] - counts["responders_control"],
        )
        what = f"responders of {model.contrast} ({outcome} at {model.timepoint})"
        if any(_small(c) for c in (*counts.values(), *complements)):
            bundle.left_out.append(f"{what}: not sent: a group's responders or non-responders are 1 to 10")
            continue
        key = f"responders|{model.contrast}|{outcome}|{model.timepoint}"
        for name, rows in groups.items():
            bundle.count(key, name, f"{name} of {what}", patients_of(rows))
        bundle.responders.append(
            {
                "key": key,
                "contrast": model.contrast,
                "outcome": outcome,
                "timepoint": model.timepoint,
                "threshold": threshold.value,
                "threshold_words": threshold.words,
                "higher_is_better": higher,
                **counts,
            }
        )


def earlier_site_registers(home: DataHome) -> list[Register]:
    """Every register the site keeps: its releases' and its earlier bundles' (a reader may hold them all)."""
    folder = home.staging / "releases"
    return [Register.load(p) for p in sorted(folder.glob("*.register.json.gz"))] if folder.exists() else []


def _audited(bundle: _Bundle, earlier: list[Register]) -> None:
    """Drop the parts whose counts, read with the earlier registers, would let a count of 1 to 10 be worked
    out, until the audit passes; say which."""
    for _ in range(50):
        result = audit(bundle.register, earlier)
        if result.passed:
            return
        tables = {leak.target.table for leak in result.leaks if leak.target.release == bundle.register.release}
        own = [key for key in tables if key]
        if not own:
            raise PipelineError(
                "Site bundle refused by the disclosure audit: with the site's earlier releases and bundles, a count "
                "of 1 to 10 could be worked out from counts this bundle cannot give up."
            )
        for table in own:
            _drop(bundle, table)
    raise PipelineError("Site bundle refused: the disclosure audit did not settle in 50 rounds.")


def _drop(bundle: _Bundle, table: str) -> None:
    keep_cells = {k: c for k, c in bundle.register.cells.items() if c.table != table}
    bundle.register.cells = keep_cells
    bundle.left_out.append(f"{table}: not sent: with the other counts it would let a count of 1 to 10 be worked out")
    if table.startswith("complications|"):
        _, grouping, group = table.split("|")
        bundle.complications = [
            c for c in bundle.complications if (c["grouping"], c["group_code"]) != (grouping, group)
        ]
        return
    for part in ("models", "estimates", "responders"):
        setattr(bundle, part, [e for e in getattr(bundle, part) if e["key"] != table])


def build_bundle(home: DataHome, out: Path, created_at: datetime | None = None) -> Path:
    """Write the site's bundle to ``out`` (JSON), its sha256 beside it (``out``.sha256), the data owner's
    page (``out`` with .md), and keep its register in the data home; returns ``out``."""
    if not home.warehouse_path.exists():
        raise PipelineError(f"No published warehouse at {home.warehouse_path}: run a load first.")
    created = (created_at or datetime.now(UTC)).replace(microsecond=0)
    settings = ModelSettings.for_home(home)
    with duckdb.connect(str(home.warehouse_path), read_only=True) as con:
        site = _site_of(con)
        snapshot = str(con.execute("SELECT data_snapshot FROM build_info").fetchone()[0])
        design = AnalysisDesign.read(con)
        bundle_id = f"{site}-{created:%Y%m%dT%H%M%S}"
        bundle = _Bundle(site, Register(f"{REGISTER_PREFIX}{bundle_id}"))
        frames = {m.key: m for m in model_frames(con)}
        for model in frames.values():
            _model(bundle, model, settings)
        _estimates(bundle, con, frames)
        _target_trial(bundle, con, settings)
        _complications(bundle, con)
        _responders(bundle, design, frames)
    register_path = home.staging / "releases" / f"{bundle.register.release}.register.json.gz"
    if register_path.exists():
        raise PipelineError(f"A bundle {bundle_id} was written already (its register {register_path.name} is kept).")
    _audited(bundle, earlier_site_registers(home))
    payload: dict[str, object] = {
        "format": protocol.FORMAT,
        "version": protocol.VERSION,
        "bundle_id": bundle_id,
        "site": site,
        "created_at": created.isoformat(),
        "data_snapshot": snapshot,
        "code_version": __version__,
        "packages": package_versions(PACKAGES),
        "small_cell": SMALL_CELL,
        "models": bundle.models,
        "estimates": bundle.estimates,
        "complications": bundle.complications,
        "responders": bundle.responders,
        "left_out": bundle.left_out,
    }
    payload["checksum"] = content_checksum(payload)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(payload, indent=1, sort_keys=True, allow_nan=False), encoding="utf-8")
    partial.replace(out)
    out.with_name(out.name + ".sha256").write_text(f"{sha256_of(out)}  {out.name}\n", encoding="utf-8")
    out.with_suffix(".md").write_text(owner_page(payload), encoding="utf-8")
    bundle.register.save(register_path)
    log = home.staging / "network" / SENT_LOG
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as handle:
        sent = {
            "bundle_id": bundle_id,
            "checksum": payload["checksum"],
            "data_snapshot": snapshot,
            "models": [m["key"] for m in bundle.models],
            "created_at": created.isoformat(),
        }
        handle.write(json.dumps(sent) + "\n")
    return out


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:.3g}"


def owner_page(payload: dict[str, object]) -> str:
    """What the data owner reads before sending: every part of the bundle in words."""
    lines = [
        f"# Network bundle {payload['bundle_id']}: what it holds",
        "",
        f"Site {payload['site']}, written {payload['created_at']} from the warehouse of data snapshot "
        f"{payload['data_snapshot']} by synk {payload['code_version']} (format {payload['format']} "
        f"version {payload['version']}). No patient's row, identifier, date or free text is in it: only the sums "
        f"and counts below, none of them over 1 to 10 patients, every count audited with the site's earlier "
        f"releases and bundles. Read it, then send the bundle file and its .sha256 file.",
        "",
        "## For the pooled models (one-stage)",
        "",
    ]
    models = payload["models"]
    assert isinstance(models, list)
    if not models:
        lines.append("None.")
    for m in models:
        names = ", ".join(m["names"])
        weighted = " weighted by the site's own propensity (IPTW) weights," if m["weighted"] else ""
        lines.append(
            f"- {m['kind']} model of {m['contrast']} ({m['outcome']} at {m['timepoint']}): over {m['n']} patients,"
            f"{weighted} the sums of products of the columns {names} with each other (X'X: it gives the number "
            f"of patients in each group and their sums of baseline values), with the change from baseline "
            f"(X'y) and the sum of squared changes (y'y)."
        )
    lines += ["", "## The site's own estimates (two-stage)", ""]
    estimates = payload["estimates"]
    assert isinstance(estimates, list)
    if not estimates:
        lines.append("None.")
    for e in estimates:
        lines.append(
            f"- {e['method']} {e['contrast']} ({e['outcome']} at {e['timepoint']}): estimate {e['estimate']:.2f}, "
            f"SE {e['std_error']:.2f}, 95% CI {e['ci_low']:.2f} to {e['ci_high']:.2f}, p {e['p_value']:.3g}; "
            f"{e['n_treated']} and {e['n_control']} patients; diagnostics {'pass' if e['diagnostics_ok'] else 'fail'}."
        )
    lines += ["", "## Complications", ""]
    complications = payload["complications"]
    assert isinstance(complications, list)
    if not complications:
        lines.append("None.")
    for c in complications:
        if "withheld_codes" in c:
            lines.append(
                f"- {c['grouping']} {c['group_code']}: {', '.join(c['withheld_codes'])} withheld (1 to 10 patients "
                f"with or without it); {c['patients_at_risk']} at risk."
            )
        else:
            lines.append(
                f"- {c['grouping']} {c['group_code']}, {c['code']}: {c['patients_with']} of {c['patients_at_risk']} "
                f"patients at risk."
            )
    lines += ["", "## Responders", ""]
    responders = payload["responders"]
    assert isinstance(responders, list)
    if not responders:
        lines.append("None.")
    for r in responders:
        lines.append(
            f"- {r['contrast']} ({r['outcome']} at {r['timepoint']}, own improvement of at least "
            f"{_number(r['threshold'])} points, {r['threshold_words']}): {r['responders_treated']} of "
            f"{r['n_treated']} in the first group, {r['responders_control']} of {r['n_control']} in the second."
        )
    lines += ["", "## Left out, and why", ""]
    left_out = payload["left_out"]
    assert isinstance(left_out, list)
    lines += [f"- {line}" for line in left_out] or ["Nothing."]
    lines += ["", f"Checksum of the content: {payload['checksum']}.", ""]
    return "\n".join(lines)
