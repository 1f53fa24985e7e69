"""The ``kg`` command as a user runs it: a real subprocess, real files."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

KG = [sys.executable, "-c", "from kg.cli import main; main()"]


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([*KG, "demo", "--out", str(out), "--entities", "300"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for stage in ("1. sample", "2. ingest", "3. blocking", "4. features"):
        assert stage in done.stdout
    records = pl.concat([pl.read_parquet(p) for p in (out / "records").glob("*.parquet")])
    truth = pl.read_parquet(out / "raw" / "truth.parquet")
    assert records.height == truth.height
    assert len(list((out / "pairs").glob("part-*.parquet"))) > 1
    assert pl.read_parquet(out / "features.parquet").height > 0


def test_ingest_command_and_clear_errors(tmp_path):
    raw = tmp_path / "a.jsonl"
    raw.write_text(json.dumps({"id": "1", "title": "Heat", "year": 1995}) + "\n" + '{"id": "2", "year": "x"}\n')
    mapping = tmp_path / "m.toml"
    mapping.write_text(
        '[source]\nname = "s"\nformat = "jsonl"\nid = "id"\n[type]\ndefault = "movie"\n'
        '[fields]\nname = "title"\nyear = "year"\n'
    )
    ok = subprocess.run(
        [*KG, "ingest", str(raw), "-m", str(mapping), "-o", str(tmp_path / "out")], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert "year: 1" in ok.stdout  # quarantined by field
    strict = subprocess.run(
        [*KG, "ingest", str(raw), "-m", str(mapping), "-o", str(tmp_path / "o2"), "--strict"],
        capture_output=True,
        text=True,
    )
    assert strict.returncode == 2
    assert "a.jsonl:2: field 'year'" in strict.stdout + strict.stderr
    assert "Traceback" not in strict.stderr
    missing = subprocess.run(
        [*KG, "ingest", str(raw), "-m", str(tmp_path / "nope.toml")], capture_output=True, text=True
    )
    assert missing.returncode == 2 and "nope.toml: cannot read mapping" in missing.stdout + missing.stderr


def test_console_script_is_installed():
    assert (Path(sys.executable).parent / "kg").exists()
