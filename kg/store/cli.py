"""``kg query``, ``kg stats``, ``kg export``, ``kg review`` and ``kg migrate``: the graph store on the command line.

``register(app)`` adds the commands to the toolkit's typer app. Look-ups,
stats and exports open the store read-only, so they run while others read
it; ``kg review`` (labels) and ``kg migrate`` open it read-write. Errors come
out as one ``error: ...`` line and exit code 2.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, TypeVar

import polars as pl
import typer

from kg.errors import KGError
from kg.graph import Graph
from kg.store.db import DEFAULT_PATH, migrate
from kg.store.export import FORMATS
from kg.store.reviews import LABELS

T = TypeVar("T")

DbOption = Annotated[
    Path, typer.Option("--db", envvar="KG_GRAPH", help="graph store file", show_default=True)
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON lines instead of a table")]
WaitOption = Annotated[
    float,
    typer.Option("--wait", envvar="KG_GRAPH_WAIT", min=0, help="seconds to wait while a merge in another process "
                 "holds the store (then read all of it); 0: fail at once"),
]


@contextmanager
def _graph(db: Path, read_only: bool = True, wait: float = 0.0) -> Iterator[Graph]:
    try:
        with Graph.open(db, read_only=read_only, wait=wait) as graph:
            yield graph
    except KGError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _print(df: pl.DataFrame, as_json: bool) -> None:
    if as_json:
        for row in df.to_dicts():
            typer.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    with pl.Config(tbl_rows=max(df.height, 1), tbl_cols=-1, tbl_width_chars=200, fmt_str_lengths=60):
        typer.echo(str(df))


def _guard(fn: Callable[[], T]) -> T:
    try:
        return fn()
    except KGError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _record_key(text: str) -> tuple[str, str]:
    """``SOURCE:ID`` (split at the first colon: sources have none, ids may)."""
    source, sep, source_id = text.partition(":")
    if not sep or not source or not source_id:
        typer.echo(f"error: record {text!r} is not SOURCE:ID", err=True)
        raise typer.Exit(2)
    return source, source_id


LabelOption = Annotated[str, typer.Option("--label", help="match, non_match or unsure (pairs); correct, wrong or "
                                          "unsure (edges, claims)")]
ReviewerOption = Annotated[str | None, typer.Option("--reviewer", help="who labels (default: your login name)")]
NoteOption = Annotated[str | None, typer.Option("--note", help="why")]


def register(app: typer.Typer) -> None:
    """Add ``query`` (``find``, ``neighbors``), ``stats``, ``export``, ``review`` and ``migrate`` to ``app``."""
    query_app = typer.Typer(help="Look things up in the graph store.", no_args_is_help=True)

    @query_app.command("find")
    def find(
        text: Annotated[str, typer.Argument(help="a title or name; fuzzy")],
        type: Annotated[str | None, typer.Option("--type", help="entity type, e.g. movie, person, work")] = None,
        year: Annotated[int | None, typer.Option("--year", help="release or birth year")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1)] = 10,
        db: DbOption = DEFAULT_PATH,
        as_json: JsonOption = False,
        wait: WaitOption = 0.0,
    ) -> None:
        """Find entities by name, e.g. kg query find "Mother" --type movie."""
        with _graph(db, wait=wait) as g:
            _print(_guard(lambda: g.find(text, type=type, year=year, limit=limit)), as_json)

    @query_app.command("neighbors")
    def neighbors(
        entity_id: Annotated[str, typer.Argument(help="entity id")],
        relation: Annotated[list[str] | None, typer.Option("--relation", help="relation type(s)")] = None,
        direction: Annotated[str, typer.Option("--direction", help="out, in or both")] = "both",
        min_confidence: Annotated[float | None, typer.Option("--min-confidence")] = None,
        limit: Annotated[int | None, typer.Option("--limit", min=1)] = None,
        db: DbOption = DEFAULT_PATH,
        as_json: JsonOption = False,
        wait: WaitOption = 0.0,
    ) -> None:
        """List the edges at an entity, with the neighbour's type and name."""
        with _graph(db, wait=wait) as g:
            df = _guard(
                lambda: g.neighbors(
                    entity_id, relation=relation or None, direction=direction,
                    min_confidence=min_confidence, limit=limit,
                )
            )
            _print(df, as_json)

    app.add_typer(query_app, name="query")

    @app.command("stats")
    def stats_cmd(db: DbOption = DEFAULT_PATH, as_json: JsonOption = False, wait: WaitOption = 0.0) -> None:
        """Counts by table, entity type, relation, source and run."""
        with _graph(db, wait=wait) as g:
            s = _guard(g.stats)
            if as_json:
                typer.echo(json.dumps(s.as_dict(), ensure_ascii=False, default=str))
                return
            for title in s.__dataclass_fields__:
                typer.echo(f"# {title.replace('_', ' ')}")
                _print(getattr(s, title), False)

    @app.command("export")
    def export_cmd(
        fmt: Annotated[str, typer.Option("--format", help=f"one of {', '.join(FORMATS)}")],
        out: Annotated[Path, typer.Option("--out", help="folder (parquet, neo4j) or file (graphml, json)")],
        ids: Annotated[list[str] | None, typer.Option("--id", help="start entity for graphml/json")] = None,
        hops: Annotated[int, typer.Option("--hops", min=0)] = 1,
        db: DbOption = DEFAULT_PATH,
        wait: WaitOption = 0.0,
    ) -> None:
        """Export the store: Parquet tables, Neo4j import CSVs, or a subgraph as GraphML/JSON."""
        with _graph(db, wait=wait) as g:
            for path in _guard(lambda: g.export(fmt, out, ids=ids, hops=hops)):
                typer.echo(str(path))

    review_app = typer.Typer(help="Label record pairs, entity pairs, edges and claims; export match labels.",
                             no_args_is_help=True)

    def _label(kind: str, left: str | tuple[str, str], right: str | tuple[str, str] | None, label: str,
               reviewer: str | None, note: str | None, db: Path) -> None:
        with _graph(db, read_only=False) as g:
            changed = _guard(lambda: g.add_review(kind, left, right, label=label, reviewer=reviewer, note=note))
        typer.echo(f"{kind} label {label!r}: {'stored' if changed else 'unchanged (already given)'}")

    @review_app.command("records")
    def review_records(
        left: Annotated[str, typer.Argument(help="first record, SOURCE:ID")],
        right: Annotated[str, typer.Argument(help="second record, SOURCE:ID")],
        label: LabelOption,
        reviewer: ReviewerOption = None,
        note: NoteOption = None,
        db: DbOption = DEFAULT_PATH,
    ) -> None:
        """Say whether two source records are the same entity (match / non_match / unsure)."""
        _label("records", _record_key(left), _record_key(right), label, reviewer, note, db)

    @review_app.command("entities")
    def review_entities(
        left: Annotated[str, typer.Argument(help="entity id")],
        right: Annotated[str, typer.Argument(help="the other entity id")],
        label: LabelOption,
        reviewer: ReviewerOption = None,
        note: NoteOption = None,
        db: DbOption = DEFAULT_PATH,
    ) -> None:
        """Say whether two entities are the same (match: they should merge) or not (non_match)."""
        _label("entities", left, right, label, reviewer, note, db)

    @review_app.command("edge")
    def review_edge(
        edge_id: Annotated[str, typer.Argument(help="edge id (kg query neighbors shows them)")],
        label: LabelOption,
        reviewer: ReviewerOption = None,
        note: NoteOption = None,
        db: DbOption = DEFAULT_PATH,
    ) -> None:
        """Say whether an edge is right (correct / wrong / unsure)."""
        _label("edge", edge_id, None, label, reviewer, note, db)

    @review_app.command("claim")
    def review_claim(
        claim_id: Annotated[str, typer.Argument(help="claim id (an edge's evidence lists them)")],
        label: LabelOption,
        reviewer: ReviewerOption = None,
        note: NoteOption = None,
        db: DbOption = DEFAULT_PATH,
    ) -> None:
        """Say whether one piece of evidence (a claim) is right (correct / wrong / unsure)."""
        _label("claim", claim_id, None, label, reviewer, note, db)

    @review_app.command("list")
    def review_list(
        kind: Annotated[str | None, typer.Option("--kind", help=", ".join(LABELS))] = None,
        db: DbOption = DEFAULT_PATH,
        as_json: JsonOption = False,
    ) -> None:
        """The stored labels, newest first."""
        with _graph(db) as g:
            _print(_guard(lambda: g.reviews(kind)), as_json)

    @review_app.command("export")
    def review_export(
        out: Annotated[Path, typer.Option("--out", help="Parquet file to write")],
        db: DbOption = DEFAULT_PATH,
    ) -> None:
        """Write reviewed record pairs (left_source, left_id, right_source, right_id, label) for training."""
        with _graph(db) as g:
            done = _guard(lambda: g.export_match_labels(out))
        typer.echo(f"{done.path}: {done.matches} match, {done.non_matches} non-match pairs; left out: "
                   f"{done.conflicts} where reviewers disagree, {done.unsure} unsure")

    app.add_typer(review_app, name="review")

    @app.command("migrate")
    def migrate_cmd(db: DbOption = DEFAULT_PATH) -> None:
        """Upgrade a store to this toolkit's schema version (one transaction; back the file up first)."""
        done = _guard(lambda: migrate(db))
        if not done.steps:
            typer.echo(f"{done.path}: already at schema version {done.to_version}")
            return
        typer.echo(f"{done.path}: schema version {done.from_version} -> {done.to_version}")
        for step in done.steps:
            typer.echo(f"  applied {step}")
