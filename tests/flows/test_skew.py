"""The skew report names the slow partitions and says whether pairs or cost per pair made them slow."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from kg.ingest import ingest_source
from kg.sample import generate_sample
from matching.blocking import load_plan
from matching.pipeline import MatchConfig, plan_run, read_records
from matching.skew import partition_report


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("skew")
    sample = generate_sample(out / "raw", n_entities=300, seed=3)
    records = read_records([ingest_source(sample.mappings[s], [sample.raw[s]], out).records_path for s in sample.raw])
    plan_run(records, out, MatchConfig(n_partitions=4))
    return out


def _stats(run_dir: Path, rows: list[tuple[int, float]]) -> None:
    """Per-partition stats as score_partition writes them: (pairs, seconds), time split over the stages."""
    (run_dir / "stats").mkdir(exist_ok=True)
    for i, (pairs, seconds) in enumerate(rows):
        doc = {"partition": i, "pairs": pairs, "matches": pairs // 10, "seconds_blocking": seconds * 0.2,
               "seconds_features": seconds * 0.7, "seconds_scoring": seconds * 0.1}
        (run_dir / "stats" / f"part-{i:04d}.json").write_text(json.dumps(doc))


def test_a_partition_with_more_pairs(run_dir: Path) -> None:
    _stats(run_dir, [(1000, 1.0), (3000, 3.0), (1000, 1.0), (1100, 1.1)])
    table, text = partition_report(run_dir)
    assert table["partition"].to_list()[0] == 1
    assert table["time_ratio"][0] == pytest.approx(3.0 / 1.05)
    assert table["screened_out"].to_list() == [0, 0, 0, 0]  # stats written before screens count none
    assert "4 partitions; slowest/median time 2.86" in text
    assert "partition 1: 2.86x the median time, 2.86x the median pairs; features 70% of its time" in text


def test_a_partition_whose_pairs_cost_more(run_dir: Path) -> None:
    _stats(run_dir, [(1000, 1.0), (1000, 3.0), (1000, 1.0), (1000, 1.0)])
    _, text = partition_report(run_dir)
    assert "partition 1: 3.00x the median time, 3.0x the median time per pair" in text


def test_balanced_partitions_name_none(run_dir: Path) -> None:
    _stats(run_dir, [(1000, 1.0), (1050, 1.1), (990, 1.0), (1000, 1.05)])
    table, text = partition_report(run_dir)
    assert "no partition takes 1.25x the median time or more" in text
    plan = load_plan(run_dir / "plan.pkl")
    assert table.sort("partition")["estimated_pairs"].to_list() == pytest.approx(list(plan.costs))
    assert table["heavy_units"].sum() == plan.heavy.height
    assert table.filter(pl.col("heavy_units") > 0)["heavy_rules"].null_count() == 0
