"""HTML to PDF (and screenshots) with Debian's headless Chromium: ``make setup`` installs it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from pipeline.errors import PipelineError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--mute-audio",
)


def chromium() -> str:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    raise PipelineError("Chromium is not installed (it writes the report's PDF): run `make setup`, which installs it.")


def chromium_version() -> str:
    result = subprocess.run([chromium(), "--version"], capture_output=True, text=True, timeout=60, check=False)
    return result.stdout.strip()


def run_chromium(html: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    """Open ``html`` in a fresh headless profile with ``args``; the profile is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="synk-chromium-") as profile:
        command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, Path(html).resolve().as_uri()]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    return result


def html_to_pdf(html: Path, pdf: Path) -> Path:
    """Print ``html`` to ``pdf`` as Chromium prints it (A4 from the page's @page rule, no browser header/footer)."""
    pdf.unlink(missing_ok=True)
    result = run_chromium(html, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", "--print-to-pdf-no-header")
    if not pdf.exists() or pdf.stat().st_size == 0:
        tail = (result.stderr or "").strip().splitlines()[-1:] or ["no output"]
        raise PipelineError(f"Chromium did not write the PDF of {html.name} (exit {result.returncode}: {tail[0]}).")
    return pdf
