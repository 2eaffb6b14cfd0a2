"""De-identification screen (HIPAA Safe Harbor), run before anything of a drop is loaded.

A hit rejects the whole drop. Findings name the file, column, rule and row numbers, never the
value: the value may be an identifier, so it must not reach a log or an error.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, replace

import pandas as pd

from pipeline.contract import AGE_TOP_CODE
from pipeline.errors import DropRejected, row_list
from pipeline.sources import ROW_NUMBER, SourceDrop
from pipeline.sources.numbers import canonical_number

# Column names that look like identifiers, in any case and with any separators.
_IDENTIFIER_WORDS = (
    "name",
    "firstname",
    "lastname",
    "surname",
    "fullname",
    "initials",
    "mrn",
    "medicalrecord",
    "recordnumber",
    "ssn",
    "socialsecurity",
    "dob",
    "birth",
    "birthdate",
    "dateofbirth",
    "phone",
    "telephone",
    "mobile",
    "fax",
    "email",
    "mail",
    "address",
    "street",
    "city",
    "zip",
    "zipcode",
    "postcode",
    "postalcode",
    "ip",
    "ipaddress",
    "url",
    "website",
    "deviceserial",
    "serial",
    "photo",
    "image",
    "picture",
    "video",
    "insurance",
    "healthplan",
    "account",
    "licence",
    "license",
    "vehicle",
    "biometric",
    "fingerprint",
    "date",
)
_NAME_NORMALISE = re.compile(r"[^a-z0-9]+")

_PLAIN_NUMBER = re.compile(r"-?\d{1,6}(\.\d+)?")
# Every quantifier is bounded and no two overlap, so each pattern runs in time linear in the cell
# (an unbounded "[...]+@" is quadratic: a 100 KB cell took a minute). Digits are fenced by
# lookarounds, not \b, so a date glued to letters ("2024-03-05T10:00", "P2024-03-05") is caught.
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]{0,6}\.?"
_ALONE_BEFORE = r"(?<![A-Za-z0-9])"  # not glued to a longer id
_ALONE_AFTER = r"(?![A-Za-z0-9])"
CELL_RULES: dict[str, re.Pattern[str]] = {
    "calendar_date": re.compile(
        r"(?<!\d)\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)"  # 2024-03-05, 2024-03-05T10:00
        r"|(?<!\d)\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}(?!\d)"  # 03/05/2024, 5.3.24
        r"|(?<!\d)(19|20)\d\d(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?!\d)"  # 20240305
        rf"|(?<!\d)\d{{1,2}}(st|nd|rd|th)?[ ./-]?{_MONTHS}[ ,./-]{{0,3}}\d{{2,4}}(?!\d)"  # 5 Mar 2024, 05MAR2024
        # March 5, 2024; Mar-05-2024
        rf"|(?<![a-z]){_MONTHS}[ ./-]?\d{{1,2}}(st|nd|rd|th)?[ ,./-]{{1,3}}\d{{2,4}}(?!\d)"
        rf"|(?<![a-z]){_MONTHS}[ ,./-]{{0,3}}(19|20)\d\d(?!\d)",  # March 2024
        re.IGNORECASE,
    ),
    "email": re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"),
    "phone_number": re.compile(
        r"(\+\d{1,3}[ .-]?)?\(?(?<!\d)\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\d)"  # (555) 123-4567
        r"|\+\d{7,15}(?!\d)"  # +15551234567
        rf"|{_ALONE_BEFORE}\(?\d([ .()-]{{0,2}}\d){{9,14}}{_ALONE_AFTER}"  # 5551234567, 020 7946 0018
    ),
    "ssn": re.compile(rf"{_ALONE_BEFORE}\d{{3}}([ -]?)\d{{2}}\1\d{{4}}{_ALONE_AFTER}"),  # 123-45-6789, 123456789
    "zip_code": re.compile(rf"{_ALONE_BEFORE}\d{{5}}-\d{{4}}{_ALONE_AFTER}"),  # ZIP+4
    "url": re.compile(
        r"\b(https?|ftp)://|\bwww\.[a-z0-9-]{1,63}\.|\b[a-z0-9-]{1,63}\.(com|org|net|edu|gov)\b", re.IGNORECASE
    ),
    "ip_address": re.compile(r"(?<!\d)(\d{1,3}\.){3}\d{1,3}(?!\d)|\b([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b", re.IGNORECASE),
}
_DIGIT_RUN = re.compile(r"\d+")  # any script's digits: int() reads them all
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


@dataclass(frozen=True)
class Finding:
    file: str
    column: str
    rule: str
    rows: list[int]

    def sentence(self) -> str:
        where = f"{self.file}, column {self.column}"
        return f"{where}: {self.rule.replace('_', ' ')} ({row_list(self.rows) if self.rows else 'header'})"


def identifier_like(column: str) -> bool:
    words = _NAME_NORMALISE.sub(" ", column.lower()).split()
    joined = "".join(words)
    return (
        any(w in _IDENTIFIER_WORDS for w in words)
        or joined in _IDENTIFIER_WORDS
        or any(joined.startswith(w) or joined.endswith(w) for w in _IDENTIFIER_WORDS if len(w) >= 5)
    )


def name_rules(name: str) -> list[str]:
    """The screen's rules a file or folder name breaks: a name is published (ledger, report) like a cell."""
    return [rule for rule, pattern in CELL_RULES.items() if pattern.search(name)]


def safe_name(name: str, kind: str = "file") -> str:
    """A received name as it may be recorded and printed: itself when it is a plain name the screen
    passes, else a stand-in derived from it (the name may hold an identifier, or a spreadsheet formula)."""
    if _SAFE_NAME.fullmatch(name) and not name_rules(name):
        return name
    return f"withheld-{kind}-name~{hashlib.sha256(name.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def _age_over_top_code(value: str) -> bool:
    """An age above 89 in any spelling: '93', '٩٧', '１０２', '97 years' (each number in the cell counts)."""
    canonical = canonical_number(value)  # as validation reads it: 9.1e1 is 91, inf is no age
    if canonical is not None:
        return float(canonical) > 89 and float(canonical) != AGE_TOP_CODE
    runs = [int(run) for run in _DIGIT_RUN.findall(unicodedata.normalize("NFKC", value))]
    return any(run > 89 and run != AGE_TOP_CODE for run in runs)


def screen_frame(file: str, frame: pd.DataFrame, max_cell_chars: int | None = None) -> list[Finding]:
    """Findings of the de-identification screen in one file's text frame.

    A cell longer than ``max_cell_chars`` is a finding of its own and is not searched further: no
    contract value is that long, and a pattern over megabytes of text is the slow part.
    """
    findings: list[Finding] = []
    for column in frame.columns:
        if column == ROW_NUMBER:
            continue
        if identifier_like(column):
            findings.append(Finding(file, column, "identifier_column_name", []))
        cells = frame[column].dropna()
        # Screen each distinct value once (codes and ids repeat across millions of rows), and skip short
        # plain numbers, which cannot carry any pattern.
        distinct = pd.Series(cells.unique(), dtype="str")
        if max_cell_chars is not None:
            long = distinct[distinct.str.len() > max_cell_chars]
            if not long.empty:
                rows = frame.loc[cells.index[cells.isin(long)], ROW_NUMBER].tolist()
                findings.append(Finding(file, column, f"cell_longer_than_{max_cell_chars}_characters", rows))
                distinct = distinct[distinct.str.len() <= max_cell_chars]
        distinct = distinct[~distinct.str.fullmatch(_PLAIN_NUMBER)]
        if distinct.empty:
            continue
        for rule, pattern in CELL_RULES.items():
            flagged = distinct[distinct.map(lambda cell, p=pattern: p.search(cell) is not None).astype(bool)]
            if not flagged.empty:
                rows = frame.loc[cells.index[cells.isin(flagged)], ROW_NUMBER].tolist()
                findings.append(Finding(file, column, rule, rows))
    if "age_at_onset" in frame.columns:
        ages = frame["age_at_onset"]
        distinct_over = {value for value in ages.dropna().unique() if _age_over_top_code(str(value))}
        over = ages.isin(distinct_over)
        if over.any():
            findings.append(
                Finding(file, "age_at_onset", "age_over_89_not_top_coded", frame.loc[over, ROW_NUMBER].tolist())
            )
    return findings


def screen_drop(drop: SourceDrop, max_cell_chars: int | None = None) -> None:
    """Raise DropRejected naming every finding; return quietly when the drop is clean."""
    findings: list[Finding] = []
    for table, frame in drop.tables.items():
        file = drop.files[table].file if table in drop.files else f"{table}.csv"
        findings.extend(
            replace(finding, column=drop.column_name(table, finding.column))
            for finding in screen_frame(file, frame, max_cell_chars)
        )
    if findings:
        raise DropRejected(
            drop.drop_id,
            "the de-identification screen found possible identifiers: "
            + "; ".join(f.sentence() for f in findings)
            + ".",
            "Remove calendar dates (use days from the index visit), contact details and names from those cells, "
            "top-code ages over 89 as 90, and send the drop again.",
        )
