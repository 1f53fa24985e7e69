"""``kg query find|neighbors``, ``kg stats`` and ``kg export``: the graph store on the command line.

``register(app)`` adds the commands to the toolkit's typer app; every
command opens the store read-only, so it can run while others read it.
Errors come out as one ``error: ...`` line and exit code 2.
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
from kg.store.db import DEFAULT_PATH
from kg.store.export import FORMATS

T = TypeVar("T")

DbOption = Annotated[
    Path, typer.Option("--db", envvar="KG_GRAPH", help="graph store file", show_default=True)
]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON lines instead of a table")]


@contextmanager
def _graph(db: Path) -> Iterator[Graph]:
    try:
        with Graph.open(db, read_only=True) as graph:
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


def register(app: typer.Typer) -> None:
    """Add ``query`` (``find``, ``neighbors``), ``stats`` and ``export`` to ``app``."""
    query_app = typer.Typer(help="Look things up in the graph store.", no_args_is_help=True)

    @query_app.command("find")
    def find(
        text: Annotated[str, typer.Argument(help="a title or name; fuzzy")],
        type: Annotated[str | None, typer.Option("--type", help="entity type, e.g. movie, person, work")] = None,
        year: Annotated[int | None, typer.Option("--year", help="release or birth year")] = None,
        limit: Annotated[int, typer.Option("--limit", min=1)] = 10,
        db: DbOption = DEFAULT_PATH,
        as_json: JsonOption = False,
    ) -> None:
        """Find entities by name, e.g. kg query find "Mother" --type movie."""
        with _graph(db) as g:
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
    ) -> None:
        """List the edges at an entity, with the neighbour's type and name."""
        with _graph(db) as g:
            df = _guard(
                lambda: g.neighbors(
                    entity_id, relation=relation or None, direction=direction,
                    min_confidence=min_confidence, limit=limit,
                )
            )
            _print(df, as_json)

    app.add_typer(query_app, name="query")

    @app.command("stats")
    def stats_cmd(db: DbOption = DEFAULT_PATH, as_json: JsonOption = False) -> None:
        """Counts by table, entity type, relation, source and run."""
        with _graph(db) as g:
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
    ) -> None:
        """Export the store: Parquet tables, Neo4j import CSVs, or a subgraph as GraphML/JSON."""
        with _graph(db) as g:
            for path in _guard(lambda: g.export(fmt, out, ids=ids, hops=hops)):
                typer.echo(str(path))
