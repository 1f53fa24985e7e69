"""Exports (Parquet, Neo4j CSV, GraphML, JSON) and the typer commands."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import networkx as nx
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from kg.graph import Graph
from kg.store import TABLES, StoreError
from kg.store.cli import register
from tests.store.helpers import hold


def test_parquet_export(graph: Graph, tmp_path: Path) -> None:
    paths = graph.export("parquet", tmp_path / "pq")
    assert sorted(p.stem for p in paths) == sorted(TABLES)
    assert pq.read_table(tmp_path / "pq" / "entities.parquet").num_rows == 9
    assert pq.read_table(tmp_path / "pq" / "edges.parquet").num_rows == 5


def test_neo4j_export_headers(graph: Graph, tmp_path: Path) -> None:
    graph.export("neo4j", tmp_path / "neo")
    with open(tmp_path / "neo" / "nodes.csv", newline="", encoding="utf-8") as f:
        nodes = list(csv.reader(f))
    with open(tmp_path / "neo" / "relationships.csv", newline="", encoding="utf-8") as f:
        rels = list(csv.reader(f))
    assert nodes[0][0] == "id:ID" and ":LABEL" in nodes[0] and "year:int" in nodes[0]
    assert rels[0][:3] == [":START_ID", ":END_ID", ":TYPE"]
    assert len(nodes) == 10 and len(rels) == 6
    label = nodes[0].index(":LABEL")
    assert {row[label] for row in nodes[1:]} == {"Entity;Movie", "Entity;Person"}
    assert {row[2] for row in rels[1:]} == {"DIRECTED", "ACTED_IN"}


def test_subgraph_exports(graph: Graph, tmp_path: Path) -> None:
    (path,) = graph.export("graphml", tmp_path / "bong.graphml", ids=["P-bong"])
    g = nx.read_graphml(path)
    assert set(g.nodes) == {"P-bong", "E-mother", "E-parasite"}
    (path,) = graph.export("json", tmp_path / "bong.json", ids=["P-bong"], hops=1)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert len(doc["nodes"]) == 3 and len(doc["edges"]) == 2
    with pytest.raises(StoreError, match="give the entity ids"):
        graph.export("graphml", tmp_path / "all.graphml")
    with pytest.raises(StoreError, match="format"):
        graph.export("xml", tmp_path / "x")


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.callback()
    def _root() -> None:
        """kg (test app)"""

    register(app)
    return app


def test_cli_find_and_neighbors(cli: typer.Typer, store_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["query", "find", "Mother", "--type", "movie", "--db", str(store_path), "--json"])
    assert result.exit_code == 0, result.output
    hits = [json.loads(line) for line in result.output.splitlines()]
    assert {h["entity_id"] for h in hits} == {"E-mother", "E-mother17"}
    result = runner.invoke(cli, ["query", "find", "knives out", "--db", str(store_path)])
    assert result.exit_code == 0 and "E-knives" in result.output
    result = runner.invoke(cli, ["query", "neighbors", "P-bong", "--relation", "directed", "--direction", "out",
                                 "--db", str(store_path), "--json"])
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["neighbor_id"] for line in result.output.splitlines()) == [
        "E-mother", "E-parasite"
    ]


def test_cli_stats_and_export(cli: typer.Typer, store_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["stats", "--db", str(store_path)])
    assert result.exit_code == 0, result.output
    assert "entities by type" in result.output and "directed" in result.output and "match-1" in result.output
    result = runner.invoke(cli, ["stats", "--db", str(store_path), "--json"])
    assert json.loads(result.output)["tables"][0] == {"table_name": "runs", "rows": 2}
    result = runner.invoke(cli, ["export", "--format", "neo4j", "--out", str(tmp_path / "neo"),
                                 "--db", str(store_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "neo" / "nodes.csv").exists()
    result = runner.invoke(cli, ["export", "--format", "json", "--out", str(tmp_path / "s.json"), "--id", "P-rian",
                                 "--db", str(store_path)])
    assert result.exit_code == 0 and (tmp_path / "s.json").exists()


def test_cli_errors_are_one_line(cli: typer.Typer, store_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["query", "neighbors", "nope", "--db", str(store_path)])
    assert result.exit_code == 2 and "error: no entity with id 'nope'" in result.output
    result = runner.invoke(cli, ["stats", "--db", str(tmp_path / "missing.duckdb")])
    assert result.exit_code == 2 and "no graph store there" in result.output


def test_cli_waits_for_a_merge_in_another_process(cli: typer.Typer, store_path: Path) -> None:
    holder = hold(store_path, 60)
    try:
        result = CliRunner().invoke(cli, ["stats", "--db", str(store_path), "--wait", "0.2"])
        assert result.exit_code == 2 and "locked" in result.output and "after waiting 0.2 s" in result.output
    finally:
        holder.kill()
        holder.wait()
    holder = hold(store_path, 1.0)
    try:
        result = CliRunner(env={"KG_GRAPH_WAIT": "60"}).invoke(cli, ["stats", "--db", str(store_path)])
        assert result.exit_code == 0, result.output
    finally:
        holder.kill()
        holder.wait()
