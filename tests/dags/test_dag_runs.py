"""The three DAGs run through Airflow's dag.test() on a generated sample, and their products are checked."""

from __future__ import annotations

import html
import json
import os
import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import quote

import duckdb
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope

from pipeline.settings import DataHome

BASE_URL = "http://synk.clinic.example:8780/"


def warehouse_asset_events() -> int:
    """Events of the warehouse Asset in the metadata database: each one queues a models run."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    from pipeline.settings import WAREHOUSE_ASSET

    with create_session() as session:
        return (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.name == WAREHOUSE_ASSET)
            .count()
        )


def webhook_listener(received: list[dict]) -> HTTPServer:
    """A webhook on loopback that keeps every JSON body posted to it in ``received`` (shut it down after)."""

    class Listener(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Listener)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_on_a_fresh_install_the_first_runs_are_green_or_skipped(airflow_home: DataHome, dags) -> None:
    """Nothing loaded yet: the hourly ingest publishes nothing and the quarterly report, scheduled for
    the quarter just ended, is skipped (not failed) with the reason in its log."""
    from pipeline.tools.airflow_local import run_dag_tasks

    assert not any(airflow_home.landing.iterdir())  # runs first: the data home is empty
    state, tasks = run_dag_tasks(dags["ingest_clinic_exports"])
    assert state.endswith("success")
    assert tasks == {"ingest_drops": "success", "publish_warehouse": "skipped", "check_refusals": "success"}
    assert warehouse_asset_events() == 0 and not airflow_home.warehouse_path.exists()
    # The scheduled run of 1 October reports on Q3 (from the logical date: a cron schedule has no
    # data interval); an empty `quarter`, as the trigger form sends it, means the same.
    october = datetime(2026, 10, 1, 6, tzinfo=UTC)
    for conf in (None, {"quarter": None, "provisional": False}):
        state, tasks = run_dag_tasks(dags["publish_quarterly_report"], logical_date=october, conf=conf)
        assert state.endswith("success") and tasks == {"build_as_of": "skipped", "write_report": "skipped"}, (
            conf,
            state,
            tasks,
        )
    assert not (airflow_home.published / "2026-Q3").exists()


def test_the_trigger_forms_optional_parameters_accept_empty(dags) -> None:
    """The UI marks a param required unless its schema allows null: `drop` and `quarter` are optional."""
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id, name in (("ingest_clinic_exports", "drop"), ("publish_quarterly_report", "quarter")):
        # As the API server reads it: the DAG serialized by the DAG processor, then deserialized.
        served = DagSerialization.from_dict(DagSerialization.to_dict(dags[dag_id]))
        param = served.params.get_param(name)
        assert param.schema["type"] == ["null", "string"], (dag_id, param.schema)
        assert param.value is None
        served.params.validate()  # the defaults pass the schema: a run with an empty form starts


def test_ingest_models_and_report_dags_run_end_to_end(airflow_home: DataHome, dags) -> None:
    from pipeline.tools.airflow_local import run_dag, run_dag_tasks
    from pipeline.tools.synthetic import generate_drop

    counts = generate_drop(airflow_home.landing / "sample-site01", patients=150, seed=11, site="site01")

    events = warehouse_asset_events()
    assert run_dag(dags["ingest_clinic_exports"]).endswith("success")
    assert warehouse_asset_events() == events + 1  # new data: the models DAG's Asset is updated
    con = duckdb.connect(str(airflow_home.warehouse_path), read_only=True)
    try:
        ledger = con.execute(
            "SELECT file, rows_in, rows_loaded, rows_quarantined, status FROM load_ledger ORDER BY file"
        ).fetchall()
        assert [row[0] for row in ledger] == ["assessments.csv", "manifest.json", "patients.csv", "treatments.csv"]
        by_file = {file.split(".")[0]: row for file, *row in ledger}
        for table in ("patients", "treatments", "assessments"):
            rows_in, loaded, quarantined, status = by_file[table]
            assert rows_in == counts[table] == loaded + quarantined
            assert status == "loaded"
            warehouse_rows = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert warehouse_rows == loaded  # one drop: every loaded row is current
        assert (
            con.execute(
                "SELECT count(*) FROM instrument_scores WHERE score = 'composite' AND value IS NOT NULL"
            ).fetchone()[0]
            > 100
        )
    finally:
        con.close()

    assert run_dag(dags["fit_outcome_models"]).endswith("success")
    con = duckdb.connect(str(airflow_home.warehouse_path), read_only=True)
    try:
        estimate = con.execute(
            "SELECT estimate, ci_low, ci_high FROM model_estimates WHERE method = 'ancova' "
            "AND contrast = 'combined_vs_single' AND outcome = 'sunnybrook_composite' AND timepoint = '12m'"
        ).fetchone()
        assert estimate is not None and estimate[1] < estimate[0] < estimate[2]
        assert con.execute("SELECT count(*) FROM model_runs").fetchone()[0] == 1
    finally:
        con.close()

    # The quarter now under way has not ended: a manual run with `provisional` reports the data so far.
    from pipeline.quarters import current_quarter

    quarter = current_quarter()
    conf = {"quarter": quarter, "provisional": True}
    assert run_dag(dags["publish_quarterly_report"], conf=conf).endswith("success")
    folder = airflow_home.published / "provisional" / f"{quarter[:4]}-Q{quarter[-1]}"
    report = folder / "report.html"
    assert "data:image/png;base64" in report.read_text(encoding="utf-8") and (folder / "report.pdf").exists()
    assert not (airflow_home.published / "index.html").exists()  # provisional reports stay out of the index

    # A second ingest run loads nothing twice, publishes nothing and emits no Asset event: the
    # models are not refitted.
    events = warehouse_asset_events()
    state, tasks = run_dag_tasks(dags["ingest_clinic_exports"])
    assert state.endswith("success")
    assert tasks == {"ingest_drops": "success", "publish_warehouse": "skipped", "check_refusals": "success"}
    assert warehouse_asset_events() == events
    con = duckdb.connect(str(airflow_home.warehouse_path), read_only=True)
    try:
        assert con.execute("SELECT count(DISTINCT drop_id) FROM load_ledger").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM patients").fetchone()[0] == counts["patients"] - by_file["patients"][2]
    finally:
        con.close()


def test_the_demo_run_again_with_nothing_new_redoes_nothing_and_says_so(airflow_home: DataHome, dags, capsys) -> None:
    """`make demo`'s tool on the data home the test above left (its drop loaded, modelled and reported):
    it fits no model and rewrites no report, says so in one sentence, prints no warning, and leaves the
    DAGs unpaused for `make airflow`."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    from pipeline.build_state import fingerprint
    from pipeline.quarters import current_quarter
    from pipeline.report.release import unchanged_release
    from pipeline.settings import DesignSettings, ModelSettings
    from pipeline.stages import latest_model_run
    from pipeline.tools import airflow_local

    quarter = current_quarter()
    report = airflow_home.published / "provisional" / f"{quarter[:4]}-Q{quarter[-1]}" / "report.html"
    assert report.exists()  # written by the test above
    run_before, written = latest_model_run(airflow_home), report.stat().st_mtime_ns
    assert run_before is not None

    assert airflow_local.main(["--home", str(airflow_home.root)]) == 0
    printed = capsys.readouterr()
    assert latest_model_run(airflow_home) == run_before  # the same run id and start time: nothing refitted
    assert report.stat().st_mtime_ns == written  # the same report, not written again
    assert (
        f"Nothing new since run {run_before[0]} ({run_before[1]:%Y-%m-%d %H:%M} UTC): "
        "the warehouse, models and report are up to date."
    ) in printed.out
    assert "fit_outcome_models" not in printed.out  # not even started
    assert "Warning" not in printed.out + printed.err
    assert "✓ load new drops" in printed.err and "✓ write the provisional" in printed.err
    with create_session() as session:
        paused = {dag.dag_id: dag.is_paused for dag in session.query(DagModel)}
    assert paused == dict.fromkeys(dags, False)

    # `synk report` for the same release says so, and leaves it as it is.
    cli = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "report", "--quarter", quarter, "--provisional"],
        capture_output=True,
        text=True,
        env={**os.environ, "SYNK_HOME": str(airflow_home.root)},
    )
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith(
        f"Report up to date (nothing it rests on changed since it was written), not rewritten: {report}"
    )
    assert report.stat().st_mtime_ns == written

    # What would make the release stale: other settings, or anything received since it was written.
    manifest = json.loads(report.with_name("manifest.json").read_text(encoding="utf-8"))
    snapshot, as_of = manifest["data_snapshot"], datetime.now(UTC).replace(tzinfo=None)
    settings = ModelSettings.for_home(airflow_home)
    build = fingerprint(DesignSettings.for_home(airflow_home))

    def unchanged(snapshot: str, settings: ModelSettings, received: datetime | None, provisional: bool = True):
        return unchanged_release(airflow_home, quarter, provisional, snapshot, settings, as_of, received, build)

    assert unchanged(snapshot, settings, None) == report
    assert unchanged("other" + snapshot[5:], settings, None) is None
    assert unchanged(snapshot, ModelSettings(methods=("unadjusted",)), None) is None
    assert unchanged(snapshot, settings, as_of) is None
    assert unchanged(snapshot, settings, None, provisional=False) is None  # none written
    assert unchanged_release(airflow_home, quarter, True, snapshot, settings, as_of, None, "other code") is None


def test_a_rejected_drop_fails_the_ingest_run_with_the_coordinator_message(airflow_home: DataHome, dags) -> None:
    from pipeline.tools.airflow_local import run_dag

    bad = airflow_home.landing / "zz-bad-export"
    bad.mkdir(parents=True)
    (bad / "manifest.json").write_text('{"snapshot": "incremental"}')
    (bad / "patients.csv").write_text(
        "patient_id,site_id,sex,age_at_onset,side,etiology,index_year,onset_to_index_days,email\n"
        "P1,s1,F,40,L,bell,2020,100,jane.doe@example.org\n"
    )
    # The failure callback posts the coordinator's message to a webhook (a listener on loopback) and
    # mails it through Airflow's SMTP provider (a real SMTP server on loopback, aiosmtpd).
    received: list[dict] = []
    mails: list[Envelope] = []

    class Mailbox:
        async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
            mails.append(envelope)
            return "250 OK"

    server = webhook_listener(received)
    with socket.socket() as probe:  # a free port: the controller checks readiness by connecting to it
        probe.bind(("127.0.0.1", 0))
        smtp_port = probe.getsockname()[1]
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    connection = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_port,
        "extra": {"disable_tls": True, "disable_ssl": True, "from_email": "synk@localhost", "retry_limit": 0},
    }
    settings = {
        "SYNK_NOTIFY_WEBHOOK": f"http://127.0.0.1:{server.server_port}/synk",
        "SYNK_NOTIFY_EMAIL": "coordinator@clinic.example",
        "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(connection),
        "AIRFLOW__API__BASE_URL": BASE_URL,
    }
    os.environ.update(settings)
    try:
        assert run_dag(dags["ingest_clinic_exports"]).endswith("failed")
    finally:
        for name in settings:
            del os.environ[name]
        server.shutdown()
        smtp.stop()
        for path in bad.iterdir():
            path.unlink()
        bad.rmdir()
    assert [(m["dag_id"], m["task_id"]) for m in received] == [("ingest_clinic_exports", "check_refusals")]
    # A link to the failed task instance in the UI (its log), at Airflow's [api] base_url.
    link = f"{BASE_URL}dags/ingest_clinic_exports/runs/{quote(received[0]['run_id'])}/tasks/check_refusals"
    assert received[0]["url"].startswith(link)
    assert "patients.csv has column(s) the contract does not know: email" in received[0]["message"]
    assert "jane.doe" not in json.dumps(received)  # never a cell value
    assert [m.rcpt_tos for m in mails] == [["coordinator@clinic.example"]]
    mail = message_from_bytes(mails[0].content, policy=default_policy)
    assert mail["Subject"] == "[synk] ingest_clinic_exports.check_refusals failed"
    body = mail.get_body(("html",)).get_content()
    assert "patients.csv has column(s) the contract does not know: email" in body
    assert f'<a href="{html.escape(received[0]["url"])}">' in body
    assert "jane.doe" not in mails[0].content.decode()
    con = duckdb.connect(str(airflow_home.store_path), read_only=True)
    try:
        status, reason = con.execute("SELECT status, reason FROM drops WHERE drop_id = 'zz-bad-export'").fetchone()
    finally:
        con.close()
    assert status == "rejected"
    assert "patients.csv has column(s) the contract does not know: email" in reason


def test_a_load_mostly_quarantined_fails_the_check_task_and_sends_the_notice(airflow_home: DataHome, dags) -> None:
    """The drop loads (its good rows are in the warehouse), but the run is red and the coordinator is told."""
    from pipeline.tools.airflow_local import run_dag
    from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows, write_drop_files

    patients = [row.replace(",s1,", ",s9,") for row in BASE_PATIENTS]
    treatments = [row.replace(",s1,", ",s9,") for row in BASE_TREATMENTS]
    # Half the items with a decimal comma: 13 of 26 rows quarantined.
    rows = [row.replace(",s1,", ",s9,") for row in sunnybrook_rows("P1", 0) + sunnybrook_rows("P2", 0)]
    assessments = [r.rsplit(",", 1)[0] + ',"' + r.rsplit(",", 1)[1] + ',0"' if i % 2 else r for i, r in enumerate(rows)]
    write_drop_files(airflow_home, "s9-mostly-quarantined", patients, treatments, assessments)
    received: list[dict] = []

    server = webhook_listener(received)
    os.environ["SYNK_NOTIFY_WEBHOOK"] = f"http://127.0.0.1:{server.server_port}/synk"
    try:
        assert run_dag(dags["ingest_clinic_exports"], conf={"drop": "s9-mostly-quarantined"}).endswith("failed")
        # Told once: the next run finds nothing new and is green.
        assert run_dag(dags["ingest_clinic_exports"], conf={"drop": "s9-mostly-quarantined"}).endswith("success")
    finally:
        del os.environ["SYNK_NOTIFY_WEBHOOK"]
        server.shutdown()
    assert [(m["dag_id"], m["task_id"]) for m in received] == [("ingest_clinic_exports", "check_refusals")]
    message = received[0]["message"]
    assert message.startswith("Drop s9-mostly-quarantined loaded, but assessments.csv had 13 of 26 rows quarantined")
    assert "(50.0%, above the 5% limit), by rule: item_integer:sunnybrook 13, type_number:value 13" in message
    assert "To fix:" in message
    con = duckdb.connect(str(airflow_home.warehouse_path), read_only=True)
    try:  # the good rows were published all the same
        assert con.execute("SELECT count(*) FROM assessments WHERE site_id = 's9'").fetchone()[0] == 13
    finally:
        con.close()
