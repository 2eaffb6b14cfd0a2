"""Tell the coordinator when a DAG task fails, without waiting for them to open the UI.

Off by default. ``SYNK_NOTIFY_WEBHOOK`` (a URL) receives the message as JSON by POST;
``SYNK_NOTIFY_EMAIL`` (addresses, comma-separated) receives it by mail through Airflow's SMTP
provider, using the Airflow connection ``SYNK_NOTIFY_SMTP_CONN`` (default ``smtp_default``: host,
port, login and ``from_email`` are set there, in the UI or as ``AIRFLOW_CONN_SMTP_DEFAULT``, as
for any Airflow e-mail). The message is the pipeline's own sentence (a refusal names the file,
column, rule and row numbers, never a value); any other error is named by its type only, since
its text could quote data. Each notice links to the failed task instance in the UI (its log), at
Airflow's ``[api] base_url``.

``CoordinatorNotifier`` follows Airflow's notifier convention (a ``BaseNotifier``, like the SMTP
provider's ``SmtpNotifier``): the DAGs set an instance as their tasks' ``on_failure_callback``.
"""

from __future__ import annotations

import html
import json
import logging
import os
import urllib.request
from typing import Any

from airflow.sdk import BaseNotifier

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
        # The task instance in the UI, its log first (Airflow's own link, at [api] base_url).
        "url": str(getattr(task, "log_url", "") or ""),
    }


def _post(webhook: str, message: dict[str, str]) -> None:
    request = urllib.request.Request(
        webhook, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def _mail(recipients: list[str], message: dict[str, str]) -> None:
    # Imported here: the provider is only needed when e-mail is configured, and DAG files stay light.
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    body = (
        f"<p>{html.escape(message['message'])}</p>"
        f"<p>DAG {html.escape(message['dag_id'])}, task {html.escape(message['task_id'])}, "
        f"run {html.escape(message['run_id'])}.</p>"
    )
    if message["url"]:
        body += f'<p><a href="{html.escape(message["url"], quote=True)}">Open the task and its log</a></p>'

    with SmtpHook(smtp_conn_id=os.environ.get("SYNK_NOTIFY_SMTP_CONN", "smtp_default")) as smtp:
        smtp.send_email_smtp(
            to=recipients, subject=f"[synk] {message['dag_id']}.{message['task_id']} failed", html_content=body
        )


class CoordinatorNotifier(BaseNotifier):
    """An Airflow notifier for ``on_failure_callback``: the coordinator's message, by webhook and/or
    e-mail where ``SYNK_NOTIFY_*`` says (read when a task fails, so ``.env`` changes need no redeploy)."""

    def notify(self, context: Any) -> None:
        webhook = os.environ.get("SYNK_NOTIFY_WEBHOOK", "").strip()
        recipients = [a.strip() for a in os.environ.get("SYNK_NOTIFY_EMAIL", "").split(",") if a.strip()]
        if not webhook and not recipients:
            return
        message = coordinator_message(context)
        channels = []
        if webhook:
            channels.append(("webhook", lambda: _post(webhook, message)))
        if recipients:
            channels.append(("e-mail", lambda: _mail(recipients, message)))
        for channel, send in channels:
            try:
                send()
            except Exception as error:  # a failed notice must not hide the failure it reports, nor stop the other
                log.warning("Could not send the failure notice by %s: %s", channel, type(error).__name__)
