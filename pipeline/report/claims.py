"""What surgeons claim, tested (issue 19), in sentences a surgeon can repeat: whether two add-on modalities
together give more than the sum of each alone (synergy), and whether patients rely less on BoNT after a
selective neurectomy or myectomy. The estimates are the model run's ``synergy:A+B|C`` and
``after_vs_before_surgery`` rows (:mod:`pipeline.models.synergy`, :mod:`pipeline.models.reliance`); every
count printed goes through the register and its audit (:mod:`pipeline.report.register`).

The claims' rows are kept apart from the comparative estimates (:func:`split_claims`): the report's tables,
forest plots and answer are about combined vs single modality, and these contrasts are not of that kind.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from pipeline.analysis_design import AnalysisDesign
from pipeline.models.design_matrix import load_changes, load_population
from pipeline.models.pairs import (
    CODES,
    HAZARD,
    INTERVAL,
    PREFIX,
    RATIO_AGAINST,
    RATIO_WITHIN,
    RELIANCE_CONTRAST,
    UNITS,
    Pair,
    is_claim,
    joined,
    parse,
)
from pipeline.report.register import Register
from pipeline.report.suppression import SMALL_CELL, SUPPRESSED
from pipeline.vocabulary import MODALITY_WORDS, RELIANCE_OUTCOME_WORDS, contrast_name, outcome_label
from pipeline.yardsticks import Yardstick

if TYPE_CHECKING:
    from pipeline.report.context import ReportParts
    from pipeline.report.reading import WarehouseData
    from pipeline.report.report_figures import Figure, FigureInputs

TABLE = "claims"  # the register's name for the section's counts
SMALL_TEXT = SUPPRESSED  # "<11"
SYNERGY_METHOD = "ancova"
NAMES = {code: m.short for code, m in MODALITY_WORDS.items()}  # the claims' sentences name modalities briefly
OUTCOME_WORDS = RELIANCE_OUTCOME_WORDS

PatientKey = tuple[str, str]


def split_claims(estimates: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the comparative estimates, the claims' rows)."""
    if estimates.empty or "contrast" not in estimates:
        return estimates, estimates.iloc[0:0]
    claim = estimates["contrast"].astype(str).map(is_claim).astype(bool)
    return estimates[~claim].reset_index(drop=True), estimates[claim].reset_index(drop=True)


@dataclass
class ClaimPatients:
    """The patients behind the section's counts."""

    synergy: dict[tuple[str, str], list[PatientKey]] = field(default_factory=dict)  # (contrast, group) -> patients
    surgery: list[PatientKey] = field(default_factory=list)  # surgery patients with a repeat injection
    bont_alone: list[PatientKey] = field(default_factory=list)  # patients on BoNT alone with a repeat injection
    # Pairs a reader would look for but the models could not test: (add-ons, background, its groups under 11).
    untested: list[tuple[str, str, list[str]]] = field(default_factory=list)


def _keys(frame: pd.DataFrame) -> list[PatientKey]:
    return [(str(s), str(p)) for s, p in zip(frame["site_id"], frame["patient_id"], strict=True)]


def read_patients(con: duckdb.DuckDBPyConnection, claims: pd.DataFrame, design: AnalysisDesign) -> ClaimPatients:
    """Each synergy pair's four groups (patients with a change in the primary outcome at the primary timepoint,
    as the model takes them), and the patients of the BoNT comparison (a repeat injection from the index visit
    on, as the models take them)."""
    found = ClaimPatients()
    if claims.empty:
        return found
    pairs = [p for p in (parse(str(c)) for c in dict.fromkeys(claims["contrast"])) if p is not None]
    found.untested = untested_pairs(load_population(con, ()), {p.name for p in pairs})
    if pairs:
        population = load_population(con, ())
        changes = load_changes(con)
        primary = (changes["outcome"] == design.primary_outcome) & (changes["timepoint"] == design.primary_timepoint)
        at = changes[primary]
        observed = population.merge(at[["site_id", "patient_id"]], on=["site_id", "patient_id"], how="inner")
        for pair in pairs:
            for group in pair.groups:
                found.synergy[(pair.name, group)] = _keys(observed[observed["combination"] == group])
    tables = {name for (name,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    if (claims["contrast"] == RELIANCE_CONTRAST).any() and "botox_intervals" in tables:
        rows = con.execute(
            'SELECT DISTINCT site_id, patient_id, patient_group FROM botox_intervals WHERE "day" >= 0 '
            "ORDER BY site_id, patient_id"
        ).df()
        found.surgery = _keys(rows[rows["patient_group"] == "surgery"])
        found.bont_alone = _keys(rows[rows["patient_group"] == "bont_alone"])
    return found


def untested_pairs(population: pd.DataFrame, tested: set[str]) -> list[tuple[str, str, list[str]]]:
    """Every pair whose background alone and whole combination each have at least 11 patients (as the models
    count them: pipeline.models.synergy.synergy_pairs) but which was not tested: a group in between is smaller.
    The groups are named, never counted (a count under 11 is not printed)."""
    counts = population.groupby("combination").size() if len(population) else pd.Series(dtype=int)
    out = []
    for combination in counts.index:
        codes = [c for c in CODES if c in str(combination).split("+")]
        if len(codes) < 2 or counts[combination] < SMALL_CELL:
            continue
        for a, b in itertools.combinations(codes, 2):
            pair = Pair(a, b, joined(set(codes) - {a, b}))
            base, with_a, with_b, _ = pair.groups
            if pair.name in tested or not base or counts.get(base, 0) < SMALL_CELL:
                continue
            small = [g for g in (with_a, with_b) if counts.get(g, 0) < SMALL_CELL]
            if small:
                out.append((f"{a}+{b}", base, small))
    return out


def register_counts(register: Register, patients: ClaimPatients) -> pd.DataFrame:
    """Every count the section prints, registered before the audit, as the table ``claims.csv`` prints them
    (the audit may hide more; ``apply_register`` writes what it decides into the table)."""
    cells = [
        (
            f"{TABLE}|{contrast}|{group}",
            contrast,
            group or "untreated",
            f"patients on {group or 'no treatment'} with the primary outcome's change ({contrast})",
            members,
        )
        for (contrast, group), members in patients.synergy.items()
    ]
    for key, members, words in (
        ("surgery", patients.surgery, "patients with surgery and a repeat BoNT injection"),
        ("bont_alone", patients.bont_alone, "patients on BoNT alone with a repeat injection"),
    ):
        if members:
            cells.append((f"{TABLE}|reliance|{key}", RELIANCE_CONTRAST, key, words, members))
    rows = []
    for position, (key, contrast, group, words, members) in enumerate(cells):
        register.count(key, words, members, place=(TABLE, position, "patients"))
        rows.append({"claim": contrast, "group": group, "patients": register.text(key)})
    return pd.DataFrame(rows, columns=["claim", "group", "patients"])


def _number(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}".replace("-", "−")


def _interval(low: float, high: float, digits: int = 1) -> str:
    return f"95% CI {_number(low, digits)} to {_number(high, digits)}"


def _codes(codes: str) -> str:
    names = [NAMES.get(c, c) for c in codes.split("+") if c]
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else "".join(names)


def synergy_verdict(better: float, low: float, high: float, threshold: float | None, words: str) -> str:
    """Synergy, less than the sum, additivity or cannot tell, from the interaction's CI (in the better
    direction) against the outcome's yardstick, by the answer's rule: "of a size that matters" only where the
    interval's lower end reaches it, "possibly" where only the estimate does."""
    if low > 0:
        if threshold is not None and low >= threshold:
            return "the data show synergy, of a size that matters"
        if threshold is not None and better >= threshold:
            return "the data show synergy, possibly of a size that matters"
        return "the data show synergy" + (f", though smaller than the {words}" if threshold is not None else "")
    if high < 0:
        return "the data show less than the sum of the parts"
    if threshold is not None and -threshold < low and high < threshold:
        return f"the data show additivity: any synergy is smaller than the {words}"
    return "the data cannot tell synergy from additivity"


def _finite_row(
    frame: pd.DataFrame, contrast: str, outcome: str, method: str, timepoint: str | None = None
) -> pd.Series | None:
    """The row of that contrast, outcome and method (and timepoint), where it has an estimate."""
    if frame.empty:
        return None
    match = frame[(frame["contrast"] == contrast) & (frame["outcome"] == outcome) & (frame["method"] == method)]
    if timepoint is not None:
        match = match[match["timepoint"] == timepoint]
    if match.empty or not math.isfinite(float(match["estimate"].iloc[0])):
        return None
    return match.iloc[0]


def synergy_sentences(
    claims: pd.DataFrame,
    estimates: pd.DataFrame,
    register: Register,
    design: AnalysisDesign,
) -> list[str]:
    outcome, at = design.primary_outcome, design.primary_timepoint
    label, when = outcome_label(outcome), design.labels.get(at, at)
    rows = claims[
        claims["contrast"].astype(str).str.startswith(PREFIX)
        & (claims["outcome"] == outcome)
        & (claims["timepoint"] == at)
        & (claims["method"] == SYNERGY_METHOD)
    ]
    if rows.empty:
        return [
            f"No pair of add-on modalities had at least {SMALL_CELL} patients in each of its four groups (the "
            "background alone, each add-on alone on it, both together), so whether modalities applied together "
            "do more than the sum of their parts could not be tested."
        ]
    stick = design.yardsticks.get(outcome) or Yardstick(outcome, "", None, "")
    sentences = []
    for row in rows.itertuples(index=False):
        pair = parse(str(row.contrast))
        assert pair is not None
        base, with_a, with_b, _ = pair.groups
        on = f" on {_codes(base)}" if base else ""
        together = f"Adding {NAMES.get(pair.a, pair.a)} and {NAMES.get(pair.b, pair.b)} together{on}"
        counts = ", ".join(
            f"{group or 'untreated'} {register.text(f'{TABLE}|{row.contrast}|{group}')}" for group in pair.groups
        )
        if not math.isfinite(float(row.estimate)):
            sentences.append(f"{together}: not estimated ({row.note}).")
            continue
        sign = 1.0 if bool(row.higher_is_better) else -1.0
        better, low, high = (
            sign * row.estimate,
            min(sign * row.ci_low, sign * row.ci_high),
            max(sign * row.ci_low, sign * row.ci_high),
        )
        size = f"{_number(abs(better))} points {'more' if better >= 0 else 'less'} improvement"
        words = f"important difference, {stick.value:.1f} points" if stick.value is not None else ""
        verdict = synergy_verdict(better, low, high, stick.value, words)
        sentence = (
            f"{together} gave {size} in the {label} at {when} than the sum of adding each alone "
            f"({_interval(low, high)}; patients {counts}): {verdict}."
        )
        alone = [
            (name, _finite_row(estimates, contrast_name(group, base), outcome, SYNERGY_METHOD, at))
            for name, group in ((pair.a, with_a), (pair.b, with_b))
        ]
        shown = [
            f"adding {NAMES.get(name, name)} alone gave {_number(sign * r.estimate)} points "
            f"({_interval(*sorted((sign * r.ci_low, sign * r.ci_high)))})"
            for name, r in alone
            if r is not None
        ]
        if base and shown:
            sentence += f" Beside it, on {_codes(base)}, " + " and ".join(shown) + " (adjusted, vs " + base + ")."
        sentences.append(sentence)
    return sentences


def _ratio_words(ratio: float, low: float, high: float, longer: str, shorter: str) -> str:
    """A ratio after vs before surgery in words: the multiple and the percentage change it means."""
    change = 100 * (ratio - 1)
    way = longer if change >= 0 else shorter
    return f"{_number(ratio, 2)} times ({_interval(low, high, 2)}), {abs(change):.0f}% {way}"


def _reliance_parts(interval: pd.Series | None, hazard: pd.Series | None, units: pd.Series | None) -> list[str]:
    """The gaps between injections, the hazard of the next one and the units per session, in words; each a
    ratio after vs before surgery (issue 29: a gap is made longer and a dose smaller by a multiple)."""
    parts = []
    if interval is not None:
        words = _ratio_words(
            float(interval["estimate"]), float(interval["ci_low"]), float(interval["ci_high"]), "longer", "shorter"
        )
        parts.append(f"the gap between injections after surgery was {words}, the open last gaps counted as censored")
    if hazard is not None:
        ratio, low, high = float(hazard["estimate"]), float(hazard["ci_low"]), float(hazard["ci_high"])
        verdict = (
            "the next injection came later"
            if high < 1
            else "the next injection came sooner"
            if low > 1
            else "the data cannot tell whether the next injection came later"
        )
        parts.append(
            f"the hazard ratio of the next injection was {_number(ratio, 2)} ({_interval(low, high, 2)}): {verdict}"
        )
    if units is not None:
        words = _ratio_words(float(units["estimate"]), float(units["ci_low"]), float(units["ci_high"]), "more", "fewer")
        parts.append(f"each session used {words} units")
    return parts


def _warned(rows: list[pd.Series | None]) -> str:
    warned = [r for r in rows if r is not None and not bool(r["diagnostics_ok"])]
    if not warned:
        return ""
    return (
        " Read with care: the fit of "
        + " and of ".join(OUTCOME_WORDS.get(str(r["outcome"]), str(r["outcome"])) for r in warned)
        + " warned (the estimate's note in the warehouse says how)."
    )


def reliance_sentences(claims: pd.DataFrame, register: Register) -> list[str]:
    """The answer guarded against drift first (surgery patients against patients on BoNT alone over the same
    session numbers), then the within-patient comparison as a sensitivity analysis, with its reason. No count
    in these sentences: each model has its own patients (the claims table gives the groups)."""
    guarded, within = (
        [_finite_row(claims, RELIANCE_CONTRAST, outcome, methods[outcome]) for outcome in (INTERVAL, HAZARD, UNITS)]
        for methods in (RATIO_AGAINST, RATIO_WITHIN)
    )
    if all(r is None for r in [*guarded, *within]):
        if (claims["contrast"] == RELIANCE_CONTRAST).any():
            return [
                f"Too few patients (fewer than {SMALL_CELL}) had BoNT injections both before and after a selective "
                "neurectomy or myectomy to tell whether they needed injections less often or smaller ones after it."
            ]
        return []
    sentences = []
    if any(r is not None for r in guarded):
        sentences.append(
            "Patients with a selective neurectomy or myectomy and repeat BoNT injections, compared with patients on "
            "BoNT alone over the same session numbers (so that the drift of doses and intervals over a course of "
            "injections, which comes without surgery too, is taken out): "
            + "; ".join(_reliance_parts(*guarded))
            + "."
            + _warned(guarded)
        )
    if any(r is not None for r in within):
        lead = "As a sensitivity analysis, c" if sentences else "C"
        sentences.append(
            f"{lead}omparing each surgery patient's injections after surgery with their own before it: "
            + "; ".join(_reliance_parts(*within))
            + ". "
            + (
                "This within-patient change is not the answer: doses rise and intervals settle over the first "
                "sessions whatever the surgery, and this comparison leaves that drift in."
                if sentences
                else "No comparison with patients on BoNT alone could be made, so this change may include the "
                "drift of doses and intervals over a course of injections, which comes without surgery too."
            )
            + _warned(within)
        )
    return sentences


def _printed_small(register: Register, groups: list[str]) -> bool:
    """Whether the combinations table already prints each of these groups as "<11": saying "fewer than 11" of
    them then tells a reader nothing the audited tables do not (a range or "suppressed" there would be narrowed)."""
    keys = [f"combinations|{'combined' if '+' in g else 'single modality'}|{g}" for g in groups]
    return all(k in register.cells and register.text(k) == SMALL_TEXT for k in keys)


def untested_sentence(untested: list[tuple[str, str, list[str]]]) -> str:
    """Which pairs could not be tested and why: (add-ons "PT+SN", background "BTX", its groups under 11)."""
    if not untested:
        return ""
    said = [
        f"{pair}{' on ' + _codes(base) if base else ''} (fewer than {SMALL_CELL} patients had "
        + " or ".join(small)
        + ")"
        for pair, base, small in untested
    ]
    return f"Not tested, as each of a pair's four groups needs at least {SMALL_CELL} patients: " + "; ".join(said) + "."


def section(
    claims: pd.DataFrame,
    estimates: pd.DataFrame,
    register: Register,
    design: AnalysisDesign,
    untested_pairs: list[tuple[str, str, list[str]]] | None = None,
) -> list[dict[str, object]]:
    """The section's parts (title, sentences), after the audit; empty without any claim row."""
    if claims.empty:
        return []
    synergy = synergy_sentences(claims, estimates, register, design)
    untested = untested_sentence([u for u in untested_pairs or [] if _printed_small(register, u[2])])
    parts = [
        {
            "title": "Do modalities applied together do more than the sum of their parts?",
            "sentences": [*synergy, untested] if untested else synergy,
        }
    ]
    reliance = reliance_sentences(claims, register)
    if reliance:
        parts.append({"title": "Do patients need less BoNT after surgery?", "sentences": reliance})
    return parts


# The section, as the report's list (pipeline/report/sections.py) takes it.
class ClaimsSection:
    """What surgeons claim, tested: synergy and BoNT after surgery, in sentences (issue 19)."""

    name = "claims"
    slot = "after_forest"
    partial = "claims.html.j2"
    anchor = "claims"
    title = "What surgeons claim, tested"
    tables = (TABLE,)

    def read(self, con: duckdb.DuckDBPyConnection, data: WarehouseData) -> object:
        assert data.design is not None
        return read_patients(con, data.claims, data.design)

    def printed(self, found: object) -> dict[str, pd.DataFrame]:
        return {}  # its table is its registered counts (register)

    def register(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> None:
        tables[TABLE] = register_counts(register, found)  # type: ignore[arg-type]

    def finish(self, register: Register, tables: dict[str, pd.DataFrame], found: object) -> object:
        return None  # worded from the register in context: the claims' sentences read it as audited

    def figures(self, inputs: FigureInputs, found: object) -> list[Figure]:
        return []  # its trajectories and dose figures are the report's (report_figures.py)

    def context(self, parts: ReportParts, found: object, words: object) -> dict[str, object]:
        data = parts.data
        untested = found.untested  # type: ignore[attr-defined]
        return {self.name: section(data.claims, data.estimates, parts.audited.register, parts.design, untested)}
