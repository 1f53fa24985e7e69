"""Review labels: stored with who and when, one per target and reviewer, exported as training pairs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from kg.graph import Graph
from kg.store import StoreError
from kg.store.cli import register
from schemas.tables import PAIR_LABELS, REVIEW_LABELS
from tests.store.helpers import fingerprint_of


@pytest.fixture
def rw(store_path: Path):
    g = Graph.open(store_path, read_only=False)
    yield g
    g.close()


def test_labels_are_stored_once_per_target_and_reviewer(rw: Graph) -> None:
    assert rw.add_review("records", ("tmdb", "546554"), ("imdb", "tt8946378"), label="match", reviewer="ana") == 1
    # the same pair the other way round, same label: nothing changes
    assert rw.add_review("records", ("imdb", "tt8946378"), ("tmdb", "546554"), label="match", reviewer="ana") == 0
    assert rw.add_review("records", ("imdb", "tt8946378"), ("tmdb", "546554"), label="unsure", reviewer="ana",
                         note="second look") == 1
    assert rw.add_review("records", ("imdb", "tt8946378"), ("tmdb", "546554"), label="match", reviewer="bo") == 1
    got = rw.reviews("records").sort("reviewer")
    assert got.select("left_source", "left_id", "right_source", "right_id").unique().rows() == [
        ("imdb", "tt8946378", "tmdb", "546554")]
    assert got.select("reviewer", "label", "note").rows() == [("ana", "unsure", "second look"), ("bo", "match", None)]
    edge = rw.why("P-rian", "directed", "E-knives")
    assert rw.add_review("edge", edge["edge_id"][0], label="correct", reviewer="ana") == 1
    assert rw.add_review("claim", edge["claim_id"][0], label="wrong", reviewer="ana", note="quote is about Looper") == 1
    assert rw.add_review("entities", "E-mother17", "E-mother", label="non_match", reviewer="ana") == 1
    assert set(rw.reviews()["target_kind"]) == {"records", "edge", "claim", "entities"}
    assert rw.reviews("entities")["left_id"].to_list() == ["E-mother"]  # canonical order


@pytest.mark.parametrize(
    ("kind", "left", "right", "label", "message"),
    [
        ("records", ("imdb", "nope"), ("tmdb", "546554"), "match", "row 1: no record 'imdb:nope'"),
        ("entities", "E-knives", "E-nope", "match", "no entity 'E-nope'.*right side"),
        ("edge", "0" * 32, None, "correct", "no edge"),
        ("claim", "0" * 32, None, "wrong", "no claim"),
        ("edge", "0" * 32, None, "match", "label 'match' for edge"),
        ("records", ("imdb", "tt8946378"), ("tmdb", "546554"), "same", "label 'same' for records"),
        ("entities", "E-knives", "E-knives", "match", "a pair of a target with itself"),
        ("movies", "E-knives", "E-mother", "match", "unknown target_kind 'movies'"),
    ],
)
def test_bad_labels_are_refused_and_nothing_stored(rw: Graph, kind, left, right, label, message) -> None:
    before = fingerprint_of(rw.store.cursor())
    with pytest.raises(StoreError, match=message):
        rw.add_review(kind, left, right, label=label, reviewer="ana")
    assert fingerprint_of(rw.store.cursor()) == before


def test_a_batch_is_all_or_nothing(rw: Graph) -> None:
    rows = [
        {"target_kind": "entities", "left_id": "E-knives", "right_id": "E-mother", "label": "non_match",
         "reviewer": "ana"},
        {"target_kind": "entities", "left_id": "E-mother", "right_id": "E-knives", "label": "match",
         "reviewer": "ana"},  # the same target again, reversed
    ]
    table = pa.table({f.name: [r.get(f.name) for r in rows] for f in REVIEW_LABELS}, schema=REVIEW_LABELS)
    before = fingerprint_of(rw.store.cursor())
    with pytest.raises(StoreError, match="row 1: entities E-knives E-mother labelled twice by 'ana'"):
        rw.add_reviews(table)
    assert fingerprint_of(rw.store.cursor()) == before
    with pytest.raises(StoreError, match="wrong schema.*missing column 'reviewer'"):
        rw.add_reviews(table.drop_columns(["reviewer"]))
    assert rw.add_reviews(table.slice(0, 1)) == 1


def test_read_only_graph_cannot_label(graph: Graph) -> None:
    with pytest.raises(StoreError, match="read-only"):
        graph.add_review("entities", "E-knives", "E-mother", label="non_match", reviewer="ana")


def test_export_match_labels_for_training(rw: Graph, tmp_path: Path) -> None:
    rw.add_review("records", ("tmdb", "546554"), ("imdb", "tt8946378"), label="match", reviewer="ana")
    rw.add_review("entities", "E-mother", "E-mother17", label="non_match", reviewer="ana")
    rw.add_review("entities", "E-mother", "E-mother17", label="non_match", reviewer="bo")  # agreeing reviewers
    # Rian Johnson has two records, Daniel Craig one: an entity label stands for both record pairs ...
    rw.add_review("entities", "P-rian", "P-craig", label="non_match", reviewer="ana")
    # ... unless a record pair is labelled itself, which wins over the entity label
    rw.add_review("records", ("imdb", "nm0185819"), ("tmdb", "p67367"), label="unsure", reviewer="bo")
    rw.add_review("entities", "P-bong", "P-bale", label="match", reviewer="ana")
    rw.add_review("entities", "P-bong", "P-bale", label="non_match", reviewer="cy")  # a disagreement
    rw.add_review("edge", rw.relations()["edge_id"][0], label="wrong", reviewer="ana")  # not a pair: not exported
    done = rw.export_match_labels(tmp_path / "labels.parquet")
    assert (done.matches, done.non_matches, done.conflicts, done.unsure) == (1, 2, 1, 1)
    table = pq.read_table(done.path)
    assert table.schema.equals(PAIR_LABELS, check_metadata=False)
    assert pl.from_arrow(table).rows() == [
        ("imdb", "nm0185819", "imdb", "nm0426059", 0),
        ("imdb", "tt1216496", "imdb", "tt5109784", 0),
        ("imdb", "tt8946378", "tmdb", "546554", 1),
    ]
    labels = pytest.importorskip("matching.labels")  # the matching trainer's reader takes the file as it is
    read = labels.read_review_labels(done.path)
    assert read["label"].to_list() == [False, False, True]


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.callback()
    def _root() -> None:
        """kg (test app)"""

    register(app)
    return app


def test_review_cli(cli: typer.Typer, store_path: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    db = ["--db", str(store_path)]
    result = runner.invoke(cli, ["review", "records", "imdb:tt8946378", "tmdb:546554", "--label", "match",
                                 "--reviewer", "ana", *db])
    assert result.exit_code == 0 and "stored" in result.output, result.output
    result = runner.invoke(cli, ["review", "records", "imdb:tt8946378", "tmdb:546554", "--label", "match",
                                 "--reviewer", "ana", *db])
    assert result.exit_code == 0 and "unchanged" in result.output
    result = runner.invoke(cli, ["review", "entities", "E-mother", "E-mother17", "--label", "non_match",
                                 "--reviewer", "ana", "--note", "different films", *db])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["review", "edge", "0" * 32, "--label", "wrong", *db])
    assert result.exit_code == 2 and "error: review labels: row 1: no edge" in result.output
    result = runner.invoke(cli, ["review", "records", "imdb-tt8946378", "tmdb:546554", "--label", "match", *db])
    assert result.exit_code == 2 and "is not SOURCE:ID" in result.output
    result = runner.invoke(cli, ["review", "list", "--json", *db])
    assert [json.loads(line)["target_kind"] for line in result.output.splitlines()] == ["entities", "records"]
    result = runner.invoke(cli, ["review", "export", "--out", str(tmp_path / "l.parquet"), *db])
    assert result.exit_code == 0 and "1 match, 1 non-match pairs" in result.output, result.output
    assert pq.read_table(tmp_path / "l.parquet").num_rows == 2
