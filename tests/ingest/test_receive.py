import os
from pathlib import Path

from pipeline.checksums import sha256_of
from pipeline.ingest.receive import archive_file, discover_drops, refused_id


def test_discover_refuses_unsafe_entries(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "good-drop_1.2").mkdir()
    (landing / "bad name!").mkdir()
    (landing / "-starts-with-dash").mkdir()
    (landing / "stray.csv").write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, landing / "linked")
    (landing / ".hidden").mkdir()

    found, hidden = discover_drops(landing)
    drops = {d.path.name: d for d in found}

    assert drops["good-drop_1.2"].refusal is None
    assert "drop-id rule" in drops["bad name!"].refusal
    # Recorded under an id no valid drop can have: a refused folder never overwrites a loaded drop's record.
    assert drops["bad name!"].drop_id == refused_id("bad name!")
    assert drops["bad name!"].drop_id.startswith("bad_name_~")
    assert "drop-id rule" in drops["-starts-with-dash"].refusal
    assert "not a drop folder" in drops["stray.csv"].refusal
    assert "symbolic link" in drops["linked"].refusal
    assert ".hidden" not in drops
    assert hidden == [".hidden"]  # not read, but named


def test_archive_keeps_the_file_under_its_checksum(tmp_path: Path) -> None:
    source = tmp_path / "patients.csv"
    source.write_bytes(b"patient_id\nP1\n")
    received = archive_file(source, tmp_path / "archive", "d1")
    assert received.sha256 == sha256_of(source)
    assert received.path == tmp_path / "archive" / "d1" / received.sha256[:16] / "patients.csv"
    assert received.path.read_bytes() == source.read_bytes()
    # Archiving the same content again is a no-op, not a second copy.
    again = archive_file(source, tmp_path / "archive", "d1")
    assert again.path == received.path
    assert len(list((tmp_path / "archive" / "d1").iterdir())) == 1
