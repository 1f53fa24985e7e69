"""The analyst API on the hand-built graph."""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import polars as pl
import pytest

from kg.graph import Graph
from kg.store import Store, StoreError, UnknownEntity


def test_find_fuzzy_with_type_and_year(graph: Graph) -> None:
    hits = graph.find("knives out", type="movie")
    assert hits["entity_id"].to_list()[0] == "E-knives"
    assert hits.columns == ["entity_id", "type", "name", "year", "matched", "score"]
    assert graph.find("knifes out")["entity_id"].to_list()[0] == "E-knives"  # a typo
    assert graph.find("a couteaux tires")["entity_id"].to_list()[0] == "E-knives"  # alias, accents
    mothers = graph.find("Mother", type="movie")
    assert set(mothers["entity_id"].to_list()) == {"E-mother", "E-mother17"}
    assert graph.find("Mother", type="movie", year=2017)["entity_id"].to_list() == ["E-mother17"]
    assert graph.find("Mother", type="work", year=(2000, 2010))["entity_id"].to_list() == ["E-mother"]
    assert graph.find("Mother", type="person").height == 0
    assert graph.find("joon-ho bong", type="person")["entity_id"].to_list()[0] == "P-bong"
    assert graph.find("!!!").height == 0
    with pytest.raises(StoreError, match="unknown entity type"):
        graph.find("x", type="spaceship")


def test_entity_with_names_records_provenance(graph: Graph) -> None:
    e = graph.entity("E-knives")
    assert (e.type, e.name, e.year, e.n_records, e.status) == ("movie", "Knives Out", 2019, 2, "active")
    assert set(e.names["name"].to_list()) == {"Knives Out", "Knives Out (2019)", "À couteaux tirés"}
    assert e.records.select("source", "source_id").rows() == [("imdb", "tt8946378"), ("tmdb", "546554")]
    assert e.records["matching_run"].unique().to_list() == ["match-1"]
    with pytest.raises(UnknownEntity, match="no entity"):
        graph.entity("nope")


def test_neighbors(graph: Graph) -> None:
    both = graph.neighbors("E-knives")
    assert sorted(zip(both["relation"], both["neighbor_id"], strict=True)) == [
        ("acted_in", "P-craig"), ("directed", "P-rian")
    ]
    assert set(both["direction"]) == {"in"}
    out = graph.neighbors("P-bong", relation="directed", direction="out")
    assert sorted(out["neighbor_name"].to_list()) == ["Mother", "Parasite"]
    assert graph.neighbors("P-bong", direction="in").height == 0
    assert graph.neighbors("E-knives", min_confidence=0.92)["neighbor_id"].to_list() == ["P-rian"]
    with pytest.raises(StoreError, match="direction"):
        graph.neighbors("P-bong", direction="sideways")
    with pytest.raises(UnknownEntity):
        graph.neighbors("nope")


def test_read_only_graph_keeps_every_writer_out(graph: Graph, store_path: Path) -> None:
    """Why a read-only Graph reads without a transaction: while it is open no merge can change the file, from
    another process (DuckDB's file lock) or from this one (DuckDB refuses a second, read-write configuration)."""
    with pytest.raises(StoreError, match="different configuration"):
        Store.open(store_path)
    assert graph.neighbors("P-bong", direction="out").height == 2


def test_relations(graph: Graph) -> None:
    directed = graph.relations(type="directed")
    assert directed.height == 4
    assert graph.relations(type="directed", min_confidence=0.95).height == 3
    assert graph.relations().height == 5
    assert "P-bale" not in graph.relations()["subject_id"].to_list()  # rejected claim made no edge


def test_why_and_evidence(graph: Graph) -> None:
    ev = graph.why("P-rian", "directed", "E-knives")
    assert sorted(ev["doc_id"].to_list()) == ["doc-knives", "doc-rian"]
    assert {"evidence", "start", "end", "model", "prompt_version", "run_id"} <= set(ev.columns)
    edge_id = ev["edge_id"][0]
    assert graph.evidence(edge_id).height == 2
    for wrong in (edge_id.upper(), edge_id[:-1], edge_id[:-1] + "0" if edge_id[-1] != "0" else edge_id[:-1] + "1"):
        with pytest.raises(StoreError, match="no edge"):  # looked up by its first 16 digits, checked in full
            graph.evidence(wrong)
    with pytest.raises(StoreError, match="no edge"):
        graph.why("P-bale", "acted_in", "E-mother17")


def test_shortest_path(graph: Graph) -> None:
    path = graph.shortest_path("P-rian", "P-craig")
    assert path is not None and path.nodes == ["P-rian", "E-knives", "P-craig"]
    assert [s.relation for s in path.steps] == ["directed", "acted_in"]
    assert graph.shortest_path("P-rian", "P-craig", directed=True) is None  # both edges point at the film
    assert graph.shortest_path("P-rian", "P-bong") is None
    assert graph.shortest_path("P-rian", "P-craig", relation="directed") is None
    assert len(graph.shortest_path("P-bong", "P-bong")) == 0


def test_subgraph_and_networkx(graph: Graph) -> None:
    sub = graph.subgraph(["P-bong"], hops=1)
    assert sub.nodes["entity_id"].to_list() == ["E-mother", "E-parasite", "P-bong"]
    assert sub.edges.height == 2
    assert graph.subgraph(["P-rian"], hops=2).nodes.height == 3
    g = graph.to_networkx(["E-knives"])
    assert isinstance(g, nx.MultiDiGraph)
    assert set(g.nodes) == {"E-knives", "P-rian", "P-craig"}
    assert g.nodes["P-rian"]["name"] == "Rian Johnson"
    assert {d["relation"] for _, _, d in g.edges(data=True)} == {"directed", "acted_in"}
    whole = graph.to_networkx()
    assert whole.number_of_nodes() == 9 and whole.number_of_edges() == 5


def test_sql_is_parameterised(graph: Graph) -> None:
    df = graph.sql("SELECT name FROM entities WHERE type = ? AND year >= ? ORDER BY name", ["movie", 2017])
    assert df["name"].to_list() == ["Knives Out", "Mother!", "Parasite"]
    df = graph.sql("SELECT count(*) AS n FROM names WHERE entity_id = $id", {"id": "P-bong"})
    assert df["n"].to_list() == [2]
    assert isinstance(df, pl.DataFrame)
    with pytest.raises(StoreError, match="query failed"):
        graph.sql("SELECT * FROM no_such_table")


def test_stats(graph: Graph) -> None:
    s = graph.stats()
    assert dict(s.entities_by_type.select("type", "entities").rows()) == {"movie": 4, "person": 5}
    assert dict(s.edges_by_relation.select("relation", "edges").rows()) == {"acted_in": 1, "directed": 4}
    assert dict(s.records_by_source.select("source", "records").rows()) == {"imdb": 9, "tmdb": 2}
    assert s.runs["run_id"].to_list() == ["match-1", "extract-1"]


def test_hub_paths_give_the_same_answers(graph: Graph, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past IN_LIST_MAX ids or rows, look-ups switch to joins and columnar assembly: same results."""
    from kg.store import query

    small = (graph.neighbors("E-knives"), graph.neighbors("P-bong", limit=1), graph.subgraph(["P-rian"], hops=2),
             graph.shortest_path("P-rian", "P-craig"))
    monkeypatch.setattr(query, "IN_LIST_MAX", 0)
    hub = (graph.neighbors("E-knives"), graph.neighbors("P-bong", limit=1), graph.subgraph(["P-rian"], hops=2),
           graph.shortest_path("P-rian", "P-craig"))
    assert hub[0].equals(small[0]) and hub[1].equals(small[1])
    assert hub[2].nodes.equals(small[2].nodes) and hub[2].edges.equals(small[2].edges)
    assert hub[3] == small[3]
