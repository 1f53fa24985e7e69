"""MatchFlow end to end on the local runtime: outputs, card, shards equal to the process pool's, the graph."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from kg.cli import app
from kg.graph import Graph
from matching.pipeline import PLAN_FILES, cluster_run, partition_files, read_records, run_partitions
from tests.flows.helpers import card_components

pytestmark = pytest.mark.slow


def _folder(run) -> Path:
    return Path(run["start"].task.data.folder.location)


def test_match_flow_writes_a_run_folder_and_finds_the_entities(production_match, flow_env) -> None:
    folder = _folder(production_match)
    assert folder == flow_env.root / "prod" / "MatchFlow" / production_match.id
    assert sorted(p.name for p in (folder / "scores").iterdir()) == [f"part-{i:04d}.parquet" for i in range(3)]
    figures = production_match.data.figures
    summary = figures["summary"]
    assert summary["records"] == read_records([folder / r for r in production_match.data.inputs.records]).height
    assert summary["pairs"] == sum(s.pairs for s in production_match["join"].task.data.partition_stats)
    quality = figures["quality"]["pairwise"]
    assert quality["f1"] > 0.9, quality
    assert [row["decision"] for row in figures["scores"]].count("accepted") >= 1
    assert len(figures["partitions"]) == 3 and figures["skew"].startswith("3 partitions; slowest/median time")


def test_the_join_gathers_figures_not_data(production_match) -> None:
    join = production_match["join"].task.data
    assert [s.partition for s in join.partition_stats] == [0, 1, 2]
    assert not hasattr(join, "stats")  # the per-task artifact is not carried on


def test_flow_shards_equal_the_local_process_pool(production_match, tmp_path) -> None:
    """The same partition functions in a local pool (what `kg match --workers 2` runs) give identical shards."""
    folder = _folder(production_match)
    for name in (*PLAN_FILES, "model.json"):
        copy = shutil.copytree if (folder / name).is_dir() else shutil.copyfile
        copy(folder / name, tmp_path / name)
    records = [folder / r for r in production_match.data.inputs.records]
    run_partitions(tmp_path, range(3), workers=2)
    for i in range(3):
        shard = f"scores/part-{i:04d}.parquet"
        assert pl.read_parquet(tmp_path / shard).equals(pl.read_parquet(folder / shard)), shard
    run_id = production_match.data.match_run_id
    config = production_match["start"].task.data.config  # the sample's: one-to-one between its clean sources
    assert config.clean_sources
    local = pl.from_arrow(cluster_run(read_records(records), tmp_path, run_id=run_id, config=config).crosswalk)
    assert local.equals(pl.read_parquet(folder / "crosswalk.parquet"))


def test_one_partition_reruns_on_a_laptop_with_kg_match(production_match, tmp_path) -> None:
    """The documented one-liner: `kg match --run-dir RUN --partition N --verbose` (the run folder holds its inputs)."""
    folder = _folder(production_match)
    for name in (*partition_files(1), "model.json"):  # the plan and partition 1's own inputs, nothing else
        copy = shutil.copytree if (folder / name).is_dir() else shutil.copyfile
        copy(folder / name, tmp_path / name)
    done = CliRunner().invoke(app, ["match", "--run-dir", str(tmp_path), "--partition", "1", "--verbose"])
    assert done.exit_code == 0, done.output
    shard = "scores/part-0001.parquet"
    assert pl.read_parquet(tmp_path / shard).equals(pl.read_parquet(folder / shard))


def test_one_partition_of_a_production_run_reruns_elsewhere(production_match, tmp_path) -> None:
    """`kg match --run-dir RUN --partition N --out DIR` reads the run in place and writes only into DIR."""
    folder = _folder(production_match)
    shard = "scores/part-0002.parquet"
    before = (folder / shard).stat().st_mtime_ns
    done = CliRunner().invoke(app, ["match", "--run-dir", str(folder), "--partition", "2", "--out", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert pl.read_parquet(tmp_path / shard).equals(pl.read_parquet(folder / shard))
    assert (tmp_path / "stats" / "part-0002.json").is_file()
    assert (folder / shard).stat().st_mtime_ns == before


def test_production_run_merges_into_the_production_graph(production_match, flow_env) -> None:
    graph = flow_env.root / "prod" / "graph.duckdb"
    merged = production_match.data.merged
    assert merged["graph"] == str(graph) and merged["changes"]["crosswalk"] > 0
    with Graph.open(graph) as g:
        stored = g.sql("SELECT count(*) AS n FROM crosswalk")["n"][0]
        runs = g.sql("SELECT run_id FROM runs")["run_id"].to_list()
    assert stored == production_match.data.figures["summary"]["records"]
    assert runs == [production_match.data.match_run_id]


def test_the_card_holds_the_plots(production_match) -> None:
    components = card_components(production_match["end"].task)
    charts = [c["spec"]["title"] for c in components if c["type"] == "vegaChart"]
    for title in ("Block sizes", "Score distribution", "Precision / recall", "Partition time against pair count"):
        assert any(t.startswith(title) for t in charts), (title, charts)
    blocks = next(c["spec"]["data"]["values"] for c in components if c.get("spec", {}).get("title", "").startswith(
        "Block sizes"))
    assert blocks == production_match.data.figures["block_sizes"] and blocks
