"""Tell the coordinator when a DAG task fails, without waiting for them to open the UI.

Off by default. ``SYNK_NOTIFY_WEBHOOK`` (a URL) receives the message as JSON by POST;
``SYNK_NOTIFY_EMAIL`` (addresses, comma-separated) receives it by mail through the SMTP server
``SYNK_SMTP_HOST`` (port ``SYNK_SMTP_PORT``, default 25, sender ``SYNK_SMTP_FROM``), with the
standard library's smtplib. The message is the pipeline's own sentence (a refusal names the
file, column, rule and row numbers, never a value); any other error is named by its type only,
since its text could quote data.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import urllib.request
from email.message import EmailMessage
from typing import Any

from pipeline.errors import PipelineError

log = logging.getLogger(__name__)


def coordinator_message(context: dict[str, Any]) -> dict[str, str]:
    task = context.get("task_instance") or context.get("ti")
    error = context.get("exception")
    if isinstance(error, PipelineError):
        text = str(error)
    elif error is not None:
        text = f"{type(error).__name__}: see the task log."
    else:
        text = "The task failed: see the task log."
    return {
        "dag_id": str(getattr(task, "dag_id", "")),
        "task_id": str(getattr(task, "task_id", "")),
        "run_id": str(getattr(task, "run_id", "")),
        "message": text,
    }


def notify_failure(context: dict[str, Any]) -> None:
    """An Airflow ``on_failure_callback``: send the coordinator's message where configured."""
    webhook = os.environ.get("SYNK_NOTIFY_WEBHOOK", "").strip()
    recipients = [a.strip() for a in os.environ.get("SYNK_NOTIFY_EMAIL", "").split(",") if a.strip()]
    if not webhook and not recipients:
        return
    message = coordinator_message(context)
    try:
        if webhook:
            request = urllib.request.Request(
                webhook,
                data=json.dumps(message).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10):
                pass
        if recipients:
            mail = EmailMessage()
            mail["Subject"] = f"[synk] {message['dag_id']}.{message['task_id']} failed"
            mail["From"] = os.environ.get("SYNK_SMTP_FROM", "synk@localhost")
            mail["To"] = ", ".join(recipients)
            mail.set_content(f"{message['message']}\n\nRun: {message['run_id']}\n")
            host = os.environ.get("SYNK_SMTP_HOST", "localhost")
            with smtplib.SMTP(host, int(os.environ.get("SYNK_SMTP_PORT", "25")), timeout=10) as smtp:
                smtp.send_message(mail)
    except OSError as error:  # a failed notice must not hide the failure it reports
        log.warning("Could not send the failure notice: %s", error)
