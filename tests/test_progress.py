"""Progress of long steps: a bar in a terminal, a line every few seconds in a task log; model notes
summarised by reason."""

from __future__ import annotations

import logging
import os
import pty
import re
import subprocess
import sys
import time

import pytest

from pipeline.models.parallel import map_jobs
from pipeline.progress import progress
from pipeline.stages import summarise_notes


def _slow_square(number: int) -> int:
    time.sleep(0.15)
    return number * number


def test_a_task_log_gets_counts_and_time_left_every_few_seconds(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="synk")
    with progress("Fitting the models", 6, "jobs", interval=0.25) as meter:
        for _ in range(6):
            time.sleep(0.1)
            meter.advance()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "Fitting the models: 6 jobs ..."
    middle = lines[1:-1]
    # About one line per 0.25 s over 0.6 s: some, not one per job.
    assert 1 <= len(middle) < 5, lines
    for line in middle:
        done, left = re.fullmatch(
            r"Fitting the models: (\d) of 6 jobs done \(\d+%\), about (\d+) s left", line
        ).groups()
        assert 0 < int(done) < 6 and int(left) <= 1  # 0.1 s a job
    assert re.fullmatch(r"Fitting the models: 6 of 6 jobs done in \d+ s", lines[-1])


def test_jobs_on_worker_processes_report_progress(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="synk")
    assert map_jobs(_slow_square, list(range(8)), workers=2) == [n * n for n in range(8)]
    assert "Fitting the models on 2 worker processes: 8 jobs ..." in caplog.text
    assert "Fitting the models on 2 worker processes: 8 of 8 jobs done in" in caplog.text


def test_a_terminal_gets_a_bar_redrawn_in_place() -> None:
    """Run in a real pseudo-terminal: the bar is rewritten with carriage returns, then ends the line."""
    code = (
        "import time\n"
        "from pipeline.progress import progress\n"
        "with progress('Fitting the models', 4, 'jobs') as meter:\n"
        "    for _ in range(4):\n"
        "        time.sleep(0.05)\n"
        "        meter.advance()\n"
    )
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-c", code], stdin=follower, stdout=follower, stderr=follower)
    os.close(follower)
    output = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(leader)
    text = output.decode()
    frames = [frame for frame in text.split("\r") if frame.startswith("[")]
    assert frames[0].startswith("[........................] Fitting the models: 0 of 4 jobs done (0%)")
    assert any(
        re.match(r"\[#{12}\.{12}\] Fitting the models: 2 of 4 jobs done \(50%\), about \d+ s left", f) for f in frames
    )
    assert "[########################] Fitting the models: 4 of 4 jobs done (100%)" in text
    assert text.rstrip().endswith("(100%)\x1b[K")


def test_model_notes_are_counted_by_kind() -> None:
    notes = [
        f"BTX+PT_vs_BTX, {outcome} at {timepoint}: not estimated: fewer than 11 patients in the {group} group."
        for outcome in ("sunnybrook_composite", "eface_total", "saq_total")
        for timepoint in ("3m", "6m", "12m")
        for group in ("BTX+PT", "BTX+SN")
    ] + [
        "combined_vs_single, saq_total at 6m, mice: more than 50% of changes imputed: rests on the model; "
        "20 imputations by chained equations (Bayesian linear regression); pooled by Rubin's rules.",
        "BTX+PT_vs_BTX, fdi_total at 3m, iptw: propensity model did not converge (separation: groups too "
        "distinct); balance fails: |SMD| after weighting >= 0.1 (etiology[tumor] -0.37).",
        "No classifiable patient on a single modality: no combination-specific contrasts.",
    ]
    assert summarise_notes(notes) == [
        "21 model notes (small groups, missing data), by kind; each is in model_estimates.note:",
        "  18 x not estimated: fewer than 11 patients in a group",
        "  1 x more than 50% of changes imputed: rests on the model",
        "  1 x propensity model did not converge",
        "  1 x No classifiable patient on a single modality: no combination-specific contrasts",
    ]
    many = [f"c, o at 3m: reason {n}." for n in range(8)]
    assert summarise_notes(many)[-1] == "  3 more, of 3 other kinds (each logged at DEBUG)"
    assert summarise_notes([]) == []


def test_a_plain_step_prints_both_lines_outside_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    """A tool's own console (make demo's), where the log shows warnings only: the step is still seen."""
    from pipeline.progress import step

    with step("fit the comparative models", plain=True):
        pass
    with step("build core/01_patients"):  # a task's inner step: logged, not printed
        pass
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "… fit the comparative models"
    assert re.fullmatch(r"✓ fit the comparative models \(\d+\.\d s\)", err[1])
    assert len(err) == 2


def test_numerical_warnings_are_one_counted_line() -> None:
    from pipeline.stages import numerical_warning_kinds, numerical_warnings_line

    caught = [
        "combined_vs_single, sunnybrook_composite: SingularMatrixWarning: The design matrix is rank-deficient.",
        "BTX+PT_vs_BTX, eface_total: SingularMatrixWarning: The design matrix is rank-deficient.",
        "measures and claims: HessianInversionWarning: Inverting hessian failed, no bse or cov_params available",
    ]
    kinds = numerical_warning_kinds(caught)
    assert kinds == {"SingularMatrixWarning": 2, "HessianInversionWarning": 1}
    assert numerical_warnings_line(kinds) == (
        "3 numerical warnings from the model fits (2 SingularMatrixWarning, 1 HessianInversionWarning), "
        "each logged at DEBUG."
    )
