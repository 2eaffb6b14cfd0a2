"""When the warehouse is republished, and when the models have new data to fit (the Asset)."""

from __future__ import annotations

import json

from pipeline.settings import DataHome
from pipeline.stages import ingest, publish_warehouse
from tests.conftest import BASE_PATIENTS, BASE_TREATMENTS, WriteDrop, sunnybrook_rows


def test_publication_follows_what_the_store_received(home: DataHome, write_drop: WriteDrop) -> None:
    # Nothing received yet (an hourly run on a new installation): nothing to publish.
    ingest(home)
    assert publish_warehouse(home) | {"warehouse": ""} == {
        "warehouse": "",
        "data_snapshot": None,
        "published": False,
        "data_changed": False,
        "analysable_patients": 0,
        "analysable_patients_before": 0,
        "alert": "",
    }
    assert not home.warehouse_path.exists()

    write_drop("first", BASE_PATIENTS, BASE_TREATMENTS, sunnybrook_rows("P1", 0))
    ingest(home)
    first = publish_warehouse(home)
    assert first["published"] and first["data_changed"]
    built = home.warehouse_path.stat().st_mtime_ns

    # The next hourly run, nothing new: the file is left alone and the models get no event.
    ingest(home)
    again = publish_warehouse(home)
    assert (again["published"], again["data_changed"]) == (False, False)
    assert again["data_snapshot"] == first["data_snapshot"]
    assert home.warehouse_path.stat().st_mtime_ns == built

    # A refused drop: the ledger changed, so it is republished, but the loaded data did not.
    write_drop("bad", ["P9,s1,F,45,L,bell,2020,400,extra"], [], [])
    ingest(home)
    refused = publish_warehouse(home)
    assert (refused["published"], refused["data_changed"]) == (True, False)

    # Another analysis design changes what the models read: a refit is due.
    (home.root / "design.json").write_text(json.dumps({"exposure_window_days": 120}))
    redesigned = publish_warehouse(home)
    assert (redesigned["published"], redesigned["data_changed"]) == (True, True)

    # New data: published and new for the models.
    write_drop("second", ["P3,s1,F,50,R,bell,2021,200"], [], [], manifest={"snapshot": "incremental"})
    ingest(home)
    second = publish_warehouse(home)
    assert second["published"] and second["data_changed"]
    assert second["data_snapshot"] != first["data_snapshot"]
