"""De-identification screen (HIPAA Safe Harbor), run before anything of a drop is loaded.

A hit rejects the whole drop. Findings name the file, column, rule and row numbers, never the
value: the value may be an identifier, so it must not reach a log or an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import pandas as pd

from pipeline.contract import AGE_TOP_CODE
from pipeline.errors import DropRejected, row_list
from pipeline.sources import ROW_NUMBER, SourceDrop
from pipeline.sources.numbers import read_numbers

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
_MONTHS = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
CELL_RULES: dict[str, re.Pattern[str]] = {
    "calendar_date": re.compile(
        r"\b\d{4}[-/.]\d{1,2}[-/.]\d{1,2}\b"  # 2024-03-05
        r"|\b\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}\b"  # 03/05/2024, 5.3.24
        rf"|\b\d{{1,2}}(st|nd|rd|th)?[ -]{_MONTHS}[ ,-]*\d{{2,4}}\b"  # 5 Mar 2024
        rf"|\b{_MONTHS} \d{{1,2}}(st|nd|rd|th)?,? \d{{2,4}}\b",  # March 5, 2024
        re.IGNORECASE,
    ),
    "email": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "phone_number": re.compile(r"(\+\d{1,3}[ .-]?)?\(?\b\d{3}\)?[ .-]\d{3}[ .-]\d{4}\b|\+\d{7,15}\b"),
    "ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "url": re.compile(r"\b(https?|ftp)://|\bwww\.[a-z0-9-]+\.|\b[a-z0-9-]+\.(com|org|net|edu|gov)\b", re.IGNORECASE),
    "ip_address": re.compile(r"\b(\d{1,3}\.){3}\d{1,3}\b|\b([0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b", re.IGNORECASE),
}


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


def screen_frame(file: str, frame: pd.DataFrame) -> list[Finding]:
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
        distinct = distinct[~distinct.str.fullmatch(_PLAIN_NUMBER)]
        if distinct.empty:
            continue
        for rule, pattern in CELL_RULES.items():
            flagged = distinct[distinct.map(lambda cell, p=pattern: p.search(cell) is not None).astype(bool)]
            if not flagged.empty:
                rows = frame.loc[cells.index[cells.isin(flagged)], ROW_NUMBER].tolist()
                findings.append(Finding(file, column, rule, rows))
    if "age_at_onset" in frame.columns:
        ages, _ = read_numbers(frame["age_at_onset"])  # as validation reads it: 9.1e1 is 91, inf no age
        over = (ages > 89) & (ages != AGE_TOP_CODE)
        if over.any():
            findings.append(
                Finding(file, "age_at_onset", "age_over_89_not_top_coded", frame.loc[over, ROW_NUMBER].tolist())
            )
    return findings


def screen_drop(drop: SourceDrop) -> None:
    """Raise DropRejected naming every finding; return quietly when the drop is clean."""
    findings: list[Finding] = []
    for table, frame in drop.tables.items():
        file = drop.files[table].file if table in drop.files else f"{table}.csv"
        findings.extend(
            replace(finding, column=drop.column_name(table, finding.column)) for finding in screen_frame(file, frame)
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
