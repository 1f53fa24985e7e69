"""The ``kg`` command line: one sub-command per thing a user does."""

from __future__ import annotations

import typer

from kg.errors import KGError

app = typer.Typer(
    name="kg",
    help="Build and keep an entertainment knowledge graph.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point that turns the toolkit's own errors into one clear line and exit code 2."""
    try:
        app()
    except KGError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
