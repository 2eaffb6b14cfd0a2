"""The network's report (published/network/<run>/report.md, with a forest plot per comparison), from the
coordinator's warehouse/network.duckdb: the pooled answer first, with the clinic report's verdict rule
(``pipeline.report.answer.verdict``) against the outcome's yardstick; then the gate, the sites' forest plot,
the heterogeneity on the outcome's own scale, the synergy, pooled Safety counts, and the disclosure audit.

The gate (in the spirit of OHDSI's): no pooled verdict from fewer than ``MIN_SITES`` sites, with I^2 above
``MAX_I2``, or with tau above half the important difference; the report says which held it back.

The audit: the coordinator holds no patient, so each site's count is represented by as many placeholder
members as it counts, nested as the bundle says (a group's patients with a code among its patients at risk,
the first group among a model's patients); every count the report prints is registered as the union over its
sites, and the register is audited with the network's earlier reports' (``pipeline/report/disclosure.py``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
from matplotlib.figure import Figure

from pipeline.errors import PipelineError
from pipeline.network import protocol
from pipeline.network.coordinator import network_warehouse
from pipeline.report.answer import verdict
from pipeline.report.disclosure import audit
from pipeline.report.figures import png_bytes
from pipeline.report.register import Register
from pipeline.report.tables import contrast_label, outcome_label
from pipeline.settings import DataHome
from pipeline.vocabulary import TARGET_TRIAL_CONTRAST
from pipeline.yardsticks import Yardstick, yardstick

MIN_SITES = 3
MAX_I2 = 0.4
TAU_SHARE = 0.5  # tau above this share of the important difference: no pooled verdict
REGISTER_PREFIX = "network-report-"


@dataclass(frozen=True)
class Pooled:
    contrast: str
    method: str
    outcome: str
    timepoint: str
    one: pd.Series | None
    two: pd.Series | None

    @property
    def sign(self) -> float:
        row = self.one if self.one is not None else self.two
        return 1.0 if row is None or bool(row["higher_is_better"]) else -1.0


def _read(home: DataHome) -> dict[str, pd.DataFrame]:
    path = network_warehouse(home)
    if not path.exists():
        raise PipelineError(f"No network warehouse at {path}: run synk network pool first.")
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [str(r[0]) for r in con.execute("SHOW TABLES").fetchall()]
        return {t: con.execute(f"SELECT * FROM {t}").df() for t in tables}


def network_yardstick(outcome: str) -> Yardstick:
    """The outcome's yardstick: the clinic report's rule with no department's value (a published MIC above the
    group's measurement error, else half the reference SD), so that every site and the network judge alike.
    (The network's agreed baseline SD serves the responder threshold only, as a patient's own change.)"""
    return yardstick(outcome)


def gate(two: pd.Series | None, important: float | None) -> list[str]:
    """Why no pooled verdict may be given (empty: it may)."""
    if two is None:
        return ["no site estimates to judge the heterogeneity by"]
    reasons = []
    if int(two["k_sites"]) < MIN_SITES:
        reasons.append(f"{int(two['k_sites'])} sites gave an estimate (at least {MIN_SITES} needed)")
    if math.isfinite(two["i2"]) and two["i2"] > MAX_I2:
        reasons.append(f"I^2 is {two['i2']:.2f} (above {MAX_I2})")
    tau = math.sqrt(two["tau2"]) if math.isfinite(two["tau2"]) else float("nan")
    if important is not None and math.isfinite(tau) and tau > TAU_SHARE * important:
        reasons.append(f"tau is {tau:.1f} points (above half the important difference, {TAU_SHARE * important:.1f})")
    return reasons


def _pooled(estimates: pd.DataFrame) -> list[Pooled]:
    found = []
    for (contrast, method, outcome, timepoint), group in estimates.groupby(
        ["contrast", "method", "outcome", "timepoint"], sort=False
    ):
        rows = {str(r["stage"]): r for _, r in group.iterrows()}
        found.append(Pooled(contrast, method, outcome, timepoint, rows.get("one-stage"), rows.get("two-stage")))
    order = {c.name: i for i, c in enumerate(protocol.CONTRASTS)} | {protocol.SYNERGY.name: len(protocol.CONTRASTS)}
    return sorted(found, key=lambda p: (order.get(p.contrast, 99), p.method != "ancova", p.method))


def _interval(sign: float, estimate: float, low: float, high: float) -> tuple[float, float, float]:
    values = sorted((sign * low, sign * high))
    return sign * estimate, values[0], values[1]


def answer_sentence(pooled: Pooled) -> str:
    """The pooled answer in words: the one-stage estimate (exact pooling), the verdict or why none."""
    row = pooled.one if pooled.one is not None else pooled.two
    label = f"{contrast_label(pooled.contrast)}, {outcome_label(pooled.outcome)} at {pooled.timepoint}"
    if row is None:
        return f"{label}: not estimable."
    if not math.isfinite(float(row["estimate"])):
        return f"{label}: not estimable ({row['note']})."
    stick = network_yardstick(pooled.outcome)
    better, low, high = _interval(pooled.sign, row["estimate"], row["ci_low"], row["ci_high"])
    stage = str(row["stage"])
    text = (
        f"{label} ({pooled.method}, {stage}, {int(row['k_sites'])} sites): {better:+.1f} points of improvement "
        f"(95% CI {low:.1f} to {high:.1f})"
    )
    held = gate(pooled.two, stick.value)
    if stage == "one-stage" and int(row["k_sites"]) < MIN_SITES:
        held.insert(0, f"the pooled model holds {int(row['k_sites'])} sites (at least {MIN_SITES} needed)")
    if held:
        return f"{text}; no pooled verdict: {'; '.join(held)}."
    return f"{text}: {verdict(better, low, high, stick.value)} ({stick.words})."


def heterogeneity_sentence(pooled: Pooled) -> str:
    two = pooled.two
    if two is None or int(two["k_sites"]) < 2:
        return "Heterogeneity: fewer than two sites' own estimates."
    stick = network_yardstick(pooled.outcome)
    tau = math.sqrt(two["tau2"])
    _, pi_low, pi_high = _interval(pooled.sign, two["estimate"], two["pi_low"], two["pi_high"])
    against = f", against a yardstick of {stick.value:.1f}" if stick.value is not None else ""
    return (
        f"Heterogeneity between clinics ({int(two['k_sites'])} sites): tau {tau:.1f} points on the outcome's own "
        f"scale{against} (tau^2 {two['tau2']:.2f}, 95% CI {two['tau2_ci_low']:.2f} to {two['tau2_ci_high']:.2f}); "
        f"I^2 {100 * two['i2']:.0f}%; a new clinic's effect would lie between {pi_low:.1f} and {pi_high:.1f} "
        f"(95% prediction interval)."
    )


def forest(pooled: Pooled, sites: pd.DataFrame) -> bytes:
    """The sites' own estimates by code, the pooled one-stage and two-stage estimates and the prediction
    interval, as improvement (points)."""
    rows = sites[
        (sites["contrast"] == pooled.contrast)
        & (sites["method"] == pooled.method)
        & (sites["outcome"] == pooled.outcome)
        & (sites["timepoint"] == pooled.timepoint)
    ].sort_values("site_id")
    figure = Figure(figsize=(6.5, 0.45 * (len(rows) + 4) + 1))
    axis = figure.add_subplot()
    labels, y = [], 0
    for _, row in rows.iterrows():
        better, low, high = _interval(pooled.sign, row["estimate"], row["ci_low"], row["ci_high"])
        axis.errorbar(better, y, xerr=[[better - low], [high - better]], fmt="s", color="#555555", capsize=3)
        labels.append(str(row["site_id"]))
        y += 1
    for stage, colour in (("one-stage", "#0072B2"), ("two-stage", "#D55E00")):
        row = pooled.one if stage == "one-stage" else pooled.two
        if row is None or not math.isfinite(row["estimate"]):
            continue
        better, low, high = _interval(pooled.sign, row["estimate"], row["ci_low"], row["ci_high"])
        axis.errorbar(better, y, xerr=[[better - low], [high - better]], fmt="D", color=colour, capsize=3)
        labels.append(f"pooled, {stage}")
        if stage == "two-stage" and math.isfinite(row["pi_low"]):
            _, pi_low, pi_high = _interval(pooled.sign, row["estimate"], row["pi_low"], row["pi_high"])
            axis.hlines(y, pi_low, pi_high, color=colour, linestyles=":", linewidth=2)
            labels[-1] += " (dotted: prediction)"
        y += 1
    stick = network_yardstick(pooled.outcome)
    axis.axvline(0, color="black", linewidth=0.8)
    if stick.value is not None:
        axis.axvline(stick.value, color="#009E73", linestyle="--", linewidth=0.8, label=stick.words)
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    axis.set_yticks(range(len(labels)), labels, fontsize=9)
    axis.invert_yaxis()
    axis.set_xlabel(f"Difference in improvement, {outcome_label(pooled.outcome)} (points)", fontsize=9)
    axis.set_title(f"{contrast_label(pooled.contrast)} ({pooled.method})", fontsize=10)
    return png_bytes(figure)


def _placeholders(prefix: str, count: int) -> list[tuple[str, str]]:
    return [(prefix, str(i)) for i in range(int(count))]


def _register(tables: dict[str, pd.DataFrame], run_id: str) -> Register:
    """The report's printed counts, each the union over its sites of placeholder members (see the module)."""
    register = Register(f"{REGISTER_PREFIX}{run_id}")
    sites = tables.get("network_site_estimates", pd.DataFrame())
    for _, row in tables["network_estimates"].iterrows():
        if row["stage"] != "two-stage":
            continue
        mask = (
            (sites["contrast"] == row["contrast"])
            & (sites["method"] == row["method"])
            & (sites["outcome"] == row["outcome"])
            & (sites["timepoint"] == row["timepoint"])
        )
        treated, control = [], []
        for _, site in sites[mask].iterrows():
            prefix = f"{site['site_id']}|{row['contrast']}|{row['method']}"
            members = _placeholders(prefix, site["n_treated"] + site["n_control"])
            treated += members[: int(site["n_treated"])]
            control += members[int(site["n_treated"]) :]
        key = f"estimates|{row['method']}|{row['contrast']}"
        register.count(f"{key}|n_treated", f"first group, {key}", treated, place=("report", 0, key))
        register.count(f"{key}|n_control", f"second group, {key}", control, place=("report", 0, key))
    rates = tables.get("network_complication_rates", pd.DataFrame())
    for _, row in rates.iterrows():
        key = f"safety|{row['grouping']}|{row['group_code']}"
        at_risk = _placeholders(key, row["patients_at_risk"])
        register.count(f"{key}|at_risk|{row['code']}", f"at risk, {key}", at_risk, place=("safety", 0, key))
        register.count(
            f"{key}|{row['code']}",
            f"with {row['code']}, {key}",
            at_risk[: int(row["patients_with"])],
            place=("safety", 0, key),
        )
    return register


def write_network_report(home: DataHome) -> Path:
    """Write the network's report and its figures under published/network/<run_id>/; return report.md."""
    tables = _read(home)
    estimates = tables["network_estimates"]
    run_id = str(estimates["run_id"].iloc[0])
    folder = home.published / "network" / run_id
    folder.mkdir(parents=True, exist_ok=True)
    sites = tables.get("network_site_estimates", pd.DataFrame(columns=["contrast", "method", "outcome", "timepoint"]))
    bundles = tables["network_sites"]
    register = _register(tables, run_id)
    earlier_folder = home.staging / "releases"
    earlier = (
        [
            Register.load(p)
            for p in sorted(earlier_folder.glob(f"{REGISTER_PREFIX}*.register.json.gz"))
            if p.name != f"{register.release}.register.json.gz"
        ]
        if earlier_folder.exists()
        else []
    )
    result = audit(register, earlier)
    if not result.passed:
        raise PipelineError(
            f"The network report was not written: the disclosure audit found {len(result.leaks)} count(s) of 1 to 10 "
            "that its counts would let a reader work out."
        )
    register.save(earlier_folder / f"{register.release}.register.json.gz")
    pooled = _pooled(estimates)
    lines = [
        "# The network's answer",
        "",
        f"{len(bundles)} clinics ({', '.join(bundles['site'])}); pooled without pooling patients "
        f"(docs/network.md). Run {run_id}.",
        "",
        "## The pooled answer",
        "",
    ]
    for item in pooled:
        if item.method == "ancova" or item.contrast == TARGET_TRIAL_CONTRAST:
            lines.append(f"- {answer_sentence(item)}")
    lines += ["", "## Every pooled estimate, with the clinics' heterogeneity", ""]
    for index, item in enumerate(pooled):
        image = f"forest-{index + 1}.png"
        (folder / image).write_bytes(forest(item, sites))
        differ = any(r is not None and bool(r["stages_differ"]) for r in (item.one, item.two))
        lines += [
            f"### {contrast_label(item.contrast)}, {item.method}",
            "",
            answer_sentence(item),
            "",
            heterogeneity_sentence(item),
            "",
        ]
        if differ:
            lines += ["One-stage and two-stage differ by more than a quarter of an SE: read both.", ""]
        lines += [f"![forest plot]({image})", ""]
    lines += ["## Safety (pooled counts)", ""]
    rates = tables.get("network_complication_rates", pd.DataFrame())
    if rates.empty:
        lines.append("No complication counts pooled.")
    for _, row in rates.iterrows():
        if row["patients_with"] == 0:
            continue
        lines.append(
            f"- {row['code'].replace('_', ' ')} after {row['grouping']} {row['group_code']}: "
            f"{row['patients_with']} of {row['patients_at_risk']} patients ({100 * row['rate']:.1f}%, 95% CI "
            f"{100 * row['ci_low']:.1f}% to {100 * row['ci_high']:.1f}%), {row['k_sites']} sites."
        )
    lines += [
        "",
        "## What the sites left out",
        "",
        *[
            f"- {site}: {len(json.loads(left))} part(s) not sent (each said, with why, in its bundle)"
            for site, left in zip(bundles["site"], bundles["left_out"], strict=True)
        ],
        "",
        "## Disclosure audit",
        "",
        f"Every count this report prints was registered and audited with {len(earlier)} earlier network report(s): "
        f"{len(result.leaks)} leak(s) over {len(register.cells)} counts. No count of 1 to 10 can be read or worked "
        "out; each site's counts had passed its own audit before leaving it.",
        "",
    ]
    path = folder / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def demo_sentences(home: DataHome) -> list[str]:
    """The answers one clinic could not give: the PT+SN synergy and the eye-closure rate after neurectomy,
    with their intervals and the heterogeneity between clinics."""
    tables = _read(home)
    lines = []
    for item in _pooled(tables["network_estimates"]):
        if item.contrast == protocol.SYNERGY.name:
            lines += [f"Synergy: {answer_sentence(item)}", heterogeneity_sentence(item)]
    if not lines:
        lines.append("Synergy: no site could send the PT+SN synergy model (a group of 1 to 10, or too few rows).")
    rates = tables.get("network_complication_rates", pd.DataFrame())
    eye = (
        rates[
            (rates["grouping"] == "modality")
            & (rates["group_code"] == "SN")
            & (rates["code"] == "incomplete_eye_closure")
        ]
        if not rates.empty
        else rates
    )
    for _, row in eye.iterrows():
        lines.append(
            f"Incomplete eye closure after selective neurectomy: {row['patients_with']} of {row['patients_at_risk']} "
            f"patients ({100 * row['rate']:.1f}%, 95% CI {100 * row['ci_low']:.1f}% to {100 * row['ci_high']:.1f}%), "
            f"pooled over {row['k_sites']} sites."
        )
    if eye.empty:
        lines.append("Incomplete eye closure after selective neurectomy: no site could send its count.")
    return lines
