"""The Splink peer of the matching benchmark runs end to end and is a real competitor, not a strawman."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import polars as pl
import pytest

pytest.importorskip("splink", reason="splink is not installed (pip install 'kg-toolkit[bench]'): the peer cannot run")

from kg.demo import truth_pairs  # noqa: E402
from kg.ingest import ingest_source  # noqa: E402
from kg.sample import generate_sample  # noqa: E402

_PATH = Path(__file__).resolve().parents[2] / "bench" / "splink_peer.py"
_SPEC = importlib.util.spec_from_file_location("splink_peer", _PATH)
splink_peer = sys.modules.setdefault("splink_peer", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(splink_peer)  # registered first: its dataclass looks itself up in sys.modules


@pytest.mark.slow
def test_splink_links_the_sample_sources(tmp_path: Path) -> None:
    sample = generate_sample(tmp_path / "raw", n_entities=2000, seed=3)
    reports = [ingest_source(sample.mappings[s], [sample.raw[s]], tmp_path) for s in sample.raw]
    records = pl.concat([pl.read_parquet(r.records_path) for r in reports])

    result = splink_peer.splink_match(records, threshold=0.5, threads=1)

    assert result.pairs.columns == ["left_source", "left_id", "right_source", "right_id", "match_probability"]
    assert result.pairs.height > 0
    assert result.pairs["match_probability"].min() >= 0.5
    assert (result.pairs["left_source"] != result.pairs["right_source"]).all()
    assert result.n_comparisons >= result.pairs.height
    assert sorted(result.clusters.select("source", "source_id").rows()) == sorted(
        records.select("source", "source_id").rows()
    )
    assert set(result.seconds) == set(result.cpu_seconds) == {"prepare", "train", "predict", "cluster", "total"}

    metrics = splink_peer.evaluate(result.pairs, truth_pairs(sample.truth))
    assert metrics["f1"] > 0.5, metrics


@pytest.mark.slow
def test_splink_with_duplicate_free_sources_keeps_one_record_per_source_in_a_cluster(tmp_path: Path) -> None:
    sample = generate_sample(tmp_path / "raw", n_entities=2000, seed=3)
    reports = [ingest_source(sample.mappings[s], [sample.raw[s]], tmp_path) for s in sample.raw]
    records = pl.concat([pl.read_parquet(r.records_path) for r in reports])

    result = splink_peer.splink_match(records, threads=1, duplicate_free=sorted(sample.raw))

    per_source = result.clusters.group_by("cluster_id", "source").len()
    assert per_source["len"].max() == 1
    assert result.clusters.height == records.height
    linked = splink_peer.cluster_pairs(result.clusters)
    assert splink_peer.evaluate(linked, truth_pairs(sample.truth))["f1"] > 0.5


def test_evaluate_counts_each_cross_source_pair_once_in_either_orientation() -> None:
    cols = ["left_source", "left_id", "right_source", "right_id"]
    truth = pl.DataFrame([("a", "1", "b", "9"), ("a", "2", "c", "8")], schema=cols, orient="row")
    pairs = pl.DataFrame(
        [("b", "9", "a", "1"), ("a", "1", "b", "9"), ("a", "3", "c", "7"), ("a", "1", "a", "2")],
        schema=cols,
        orient="row",
    )
    metrics = splink_peer.evaluate(pairs, truth)
    assert metrics["precision"] == pytest.approx(0.5)
    assert metrics["recall"] == pytest.approx(0.5)
    assert metrics["f1"] == pytest.approx(0.5)
