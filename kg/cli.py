"""The ``kg`` command line: one sub-command per thing a user does."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kg.errors import KGError

app = typer.Typer(
    name="kg",
    help="Build and keep an entertainment knowledge graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()


def print_ingest(reports: list) -> None:
    """One line per source: rows in = records + quarantined, and where each table went."""
    table = Table(title="ingest", title_justify="left")
    for col in ("source", "files", "rows in", "records", "quarantined", "MB/s"):
        table.add_column(col, justify="left" if col == "source" else "right")
    for r in reports:
        rate = r.bytes_in / 1e6 / r.seconds if r.seconds else 0.0
        table.add_row(
            r.source,
            str(len(r.files)),
            f"{r.rows_in:,}",
            f"{r.records:,}",
            f"{r.quarantined:,}",
            f"{rate:,.1f}",
        )
    console.print(table)
    for r in reports:
        console.print(f"{r.source}: records → {r.records_path}, quarantine → {r.quarantine_path}", soft_wrap=True)
    for r in reports:
        for f in r.files:
            if f.empty:
                console.print(f"[yellow]warning[/]: {f.path} holds no rows")
        if r.quarantined_by_field:
            why = ", ".join(f"{k}: {v}" for k, v in r.quarantined_by_field.most_common())
            console.print(f"{r.source}: quarantined by field — {why}")
        if r.nulled_by_field:
            why = ", ".join(f"{k}: {v}" for k, v in r.nulled_by_field.most_common())
            console.print(f'{r.source}: values nulled (on_error = "null") — {why}')


@app.command()
def ingest(
    inputs: Annotated[list[Path], typer.Argument(help="raw files of ONE source (JSON Lines, JSON array, CSV/TSV)")],
    mapping: Annotated[Path, typer.Option("--mapping", "-m", help="the source's mapping file (TOML)")],
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("out"),
    strict: Annotated[bool, typer.Option(help="stop at the first bad row instead of quarantining it")] = False,
) -> None:
    """Map raw source files into the records table (and the quarantine table)."""
    from kg.ingest import ingest_source

    print_ingest([ingest_source(mapping, inputs, out, strict=strict)])


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", "-o", help="output folder")] = Path("demo-out"),
    entities: Annotated[int, typer.Option(help="true entities in the generated sample catalog")] = 2000,
    seed: Annotated[int, typer.Option(help="random seed of the sample catalog")] = 7,
    workers: Annotated[int, typer.Option(help="local worker processes for the matching partitions")] = 2,
    documents: Annotated[int, typer.Option(help="abstracts to run LLM extraction on (0: skip)")] = 3,
) -> None:
    """Run the whole pipeline on the bundled sample catalog (no key, no server needed)."""
    from kg.demo import run_demo

    run_demo(out, entities=entities, seed=seed, workers=workers, documents=documents, console=console)


def _register_store() -> None:
    from kg.store.cli import register

    register(app)


_register_store()


def _register_matching() -> None:
    from matching.cli import register

    register(app)


_register_matching()


def _register_extraction() -> None:
    from extraction.cli import register

    register(app)


_register_extraction()


def main() -> None:
    """Entry point that turns the toolkit's own errors into one clear line and exit code 2."""
    try:
        app()
    except KGError as exc:
        console.print(f"[red]error[/]: {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from exc
