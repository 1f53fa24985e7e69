"""``kg train / match / explain / blocking-report`` as a user runs them: real subprocesses, real files."""

import json
import subprocess
import sys

import polars as pl
import pytest

from kg.graph import Graph

KG = [sys.executable, "-c", "from kg.cli import main; main()"]


def kg(*args, ok: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([*KG, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_train_match_rerun_explain(training_run, sample_run, tmp_path) -> None:
    truth = tmp_path / "truth.parquet"
    training_run.truth_pairs.write_parquet(truth)
    model = tmp_path / "model.json"
    out = kg("train", *training_run.record_paths, "--truth", truth, "--out", model, "-p", "4").stdout
    assert "validation F1" in out and model.is_file()

    run = tmp_path / "run"
    graph = tmp_path / "graph.duckdb"
    out = kg("match", *sample_run.record_paths, "--model", model, "--run-dir", run, "-p", "4", "--workers", "2",
             "--graph", graph, "--staged").stdout
    assert "entities" in out and "merged into" in out
    crosswalk = pl.read_parquet(run / "crosswalk.parquet")
    assert crosswalk.height == sample_run.records.height
    with Graph.open(graph) as g:
        assert g.sql("SELECT count(*) AS n FROM crosswalk")["n"][0] == crosswalk.height

    shard = run / "scores" / "part-0001.parquet"
    before = pl.read_parquet(shard)
    out = kg("match", *sample_run.record_paths, "--run-dir", run, "--partition", "1").stdout
    assert "partition 1:" in out and pl.read_parquet(shard).equals(before)

    left, right = sample_run.truth_pairs.row(0)[:2], sample_run.truth_pairs.row(0)[2:]
    records = [x for p in sample_run.record_paths for x in ("-r", p)]
    explained = json.loads(
        kg("explain", ":".join(left), ":".join(right), *records, "--model", model, "--json").stdout
    )
    assert explained["features"] and {"score", "threshold", "match", "bias"} <= set(explained)


def test_clear_errors(sample_run, tmp_path) -> None:
    done = kg("match", *sample_run.record_paths, "--model", tmp_path / "none.json", "--run-dir", tmp_path, ok=False)
    assert done.returncode == 2 and "none.json: no such model file" in done.stdout
    done = kg("explain", "nocolon", "a:1", "-r", sample_run.record_paths[0], ok=False)
    assert done.returncode == 2 and "give a record as SOURCE:ID" in done.stdout
    done = kg("train", *sample_run.record_paths, ok=False)
    assert done.returncode == 2 and "exactly one of --truth" in done.stdout


def test_blocking_report_json(sample_run, tmp_path) -> None:
    truth = tmp_path / "truth.parquet"
    sample_run.truth_pairs.write_parquet(truth)
    report = json.loads(kg("blocking-report", *sample_run.record_paths, "--truth", truth, "--json").stdout)
    assert report["records"] == sample_run.records.height
    assert report["pair_completeness"] > 0.95 and report["block_sizes"]
