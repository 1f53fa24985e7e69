"""The ``kg`` command as a user runs it: a real subprocess, real files."""

import json
import subprocess
import sys
from pathlib import Path

import polars as pl

from kg.graph import Graph

KG = [sys.executable, "-c", "from kg.cli import main; main()"]


def test_demo_runs_end_to_end(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [*KG, "demo", "--out", str(out), "--entities", "300", "--documents", "1"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("1. sample", "2. ingest", "3. train", "4. match", "5. cluster", "6. graph", "7. extract"):
        assert stage in done.stdout
    records = pl.concat([pl.read_parquet(p) for p in (out / "records").glob("*.parquet")])
    truth = pl.read_parquet(out / "raw" / "truth.parquet")
    assert records.height == truth.height
    assert len(list((out / "match" / "scores").glob("part-*.parquet"))) == 8
    crosswalk = pl.read_parquet(out / "match" / "crosswalk.parquet")
    assert crosswalk.height == records.height
    with Graph.open(out / "graph.duckdb", read_only=True) as graph:
        assert graph.stats().entities_by_type.height > 0
    assert (out / "extraction" / "relations.parquet").is_file()


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
