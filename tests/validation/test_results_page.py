"""The validation results page: every run of a load, readable in Chromium with the network off."""

from __future__ import annotations

import re

from pipeline.report.pdf import run_chromium
from pipeline.settings import DataHome
from pipeline.stages import ingest
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, WriteDrop, sunnybrook_rows

# Every host name fails to resolve and every request goes to a proxy that is not there: offline.
OFFLINE = ("--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>")


def test_the_page_lists_every_validation_offline_with_counts_and_no_value(
    home: DataHome, write_drop: WriteDrop
) -> None:
    write_drop("clinic-good", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest(home)
    # An unknown sex code: quarantined.
    write_drop("clinic-odd", ["P7,s1,XQZ,45,L,bell,2020,400"], [], [], manifest={"snapshot": "incremental"})
    ingest(home)
    page = home.validation_page
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"https?://|<script|<link", text)  # nothing to fetch: style inline, no script
    assert "XQZ" not in text  # counts only, never a value from a file

    dom = run_chromium(page, *OFFLINE, "--dump-dom", "--virtual-time-budget=3000").stdout
    rows = re.findall(r"<tr><td>[\d-]+ [\d:]+</td><td>([\w-]+)</td><td>(\w+)</td><td class=\"(\w+)\">", dom)
    assert sorted(rows) == [
        ("clinic-good", "assessments", "ok"),
        ("clinic-good", "patients", "ok"),
        ("clinic-good", "treatments", "ok"),
        ("clinic-odd", "patients", "failed"),  # its other files have no rows to validate
    ]
    assert rows[0][0] == "clinic-odd"  # newest first
    odd = dom.split("<h2>clinic-odd: patients</h2>")[1].split("</table>")[0]
    assert re.search(r"<td>code_set:sex</td><td>sex</td><td class=\"n\">1</td><td class=\"n failed\">1</td>", odd)

    # Rendered, not just parsed: a screenshot offline is not blank (the style applies without a network).
    shot = page.with_name("shot.png")
    run_chromium(page, *OFFLINE, f"--screenshot={shot}", "--window-size=900,700")
    assert shot.stat().st_size > 10_000
