"""``kg extract``: documents in, typed mentions and grounded relations out (and, with --graph, into the store).

``register(app)`` adds the command to the toolkit's typer app. With no
options it runs the bundled local model; ``--base-url``/``--model`` switch
to any OpenAI-compatible endpoint (key from ``$OPENAI_API_KEY`` or the
variable ``--api-key-env`` names; never printed or written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kg.errors import KGError

console = Console()


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return "-" if value is None else str(value)


def print_report(result, paths: dict[str, Path] | None = None) -> None:
    """A short summary of one run: counts, rejections by reason, tokens, time, where the files went."""
    r = result.report
    table = Table(title=f"extract ({r.mode}, {r.model})", title_justify="left", show_header=False)
    rows = [
        ("documents", r.documents),
        ("skipped documents", r.skipped_documents),
        ("LLM questions (failed)", f"{r.requests} ({sum(r.failed_requests.values())})"),
        ("mentions", f"{r.mentions} ({_fmt(r.mentions_by_link)})"),
        ("relations accepted", r.relations_accepted),
        ("relations rejected", r.relations_rejected),
        ("duplicates merged", r.duplicates_merged),
        ("tokens in / out", f"{r.usage.get('prompt_tokens', 0):,} / {r.usage.get('completion_tokens', 0):,}"),
        ("cached answers", r.usage.get("cached", 0)),
        ("seconds (waiting on LLM)", f"{r.total_seconds:,.1f} ({r.llm_wall_seconds:,.1f})"),
        ("share outside the LLM", f"{r.outside_llm_share:.1%}"),
        ("cost", f"{r.cost:,.4f}"),
    ]
    for name, value in rows:
        table.add_row(name, _fmt(value))
    console.print(table)
    for error in r.errors[:5]:
        console.print(f"[yellow]failed question[/]: {error}", highlight=False, soft_wrap=True)
    if paths:
        console.print(", ".join(f"{k} → {v}" for k, v in paths.items()), soft_wrap=True, highlight=False)


def print_comparison(comparison) -> None:
    a, b = comparison.a, comparison.b
    table = Table(title="compare", title_justify="left")
    table.add_column("")
    table.add_column(f"A: {a['model']}", justify="right")
    table.add_column(f"B: {b['model']}", justify="right")
    for key in ("candidates", "accepted", "rejected", "grounding_rate", "rejected_by_reason", "failed_requests",
                "tokens_per_doc", "seconds_per_doc", "cost"):
        table.add_row(key.replace("_", " "), _fmt(a[key]), _fmt(b[key]))
    console.print(table)
    jaccard = comparison.jaccard
    console.print(
        f"accepted relations: both {comparison.both}, only A {comparison.only_a}, only B {comparison.only_b}; "
        f"agreement (Jaccard) {'-' if jaccard is None else f'{jaccard:.2f}'}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``extract`` to ``app``."""

    @app.command("extract")
    def extract_cmd(
        paths: Annotated[list[Path], typer.Argument(help="text files, folders, JSON Lines, or records Parquet")],
        out: Annotated[Path, typer.Option("--out", "-o", help="relations file: .jsonl or .parquet")],
        mode: Annotated[str, typer.Option("--mode", help="open (LLM proposes) or guided (narrow questions)")] = "open",
        graph: Annotated[Path | None, typer.Option("--graph", help="graph store: names to link to; results merged")]
        = None,
        base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible /v1 URL")] = None,
        model: Annotated[str | None, typer.Option("--model", help="model name (default: the bundled model)")] = None,
        api_key_env: Annotated[str, typer.Option("--api-key-env", help="variable holding the API key")]
        = "OPENAI_API_KEY",
        text_field: Annotated[str, typer.Option("--text-field", help="JSON Lines/Parquet text field")] = "text",
        id_field: Annotated[str, typer.Option("--id-field", help="JSON Lines/Parquet document id field")] = "id",
        min_confidence: Annotated[float, typer.Option("--min-confidence", min=0.0, max=1.0)] = 0.1,
        judge: Annotated[bool, typer.Option("--judge", help="second LLM pass checking each relation")] = False,
        samples: Annotated[int, typer.Option("--samples", min=1, help="answers per question (agreement)")] = 1,
        concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="questions in flight")] = 2,
        compare: Annotated[str | None, typer.Option("--compare", help="second model on the same documents")] = None,
        ontology: Annotated[Path | None, typer.Option("--ontology", help="extra ontology file (TOML)")] = None,
        staged: Annotated[bool, typer.Option("--staged", help="with --graph: merge into a copy swapped in whole, "
                                             "so readers in other processes keep reading")] = False,
    ) -> None:
        """Extract typed entities and grounded relations from documents, e.g. kg extract plots/ --out rel.jsonl."""
        try:
            run_cli(paths, out, mode=mode, graph=graph, base_url=base_url, model=model, api_key_env=api_key_env,
                    text_field=text_field, id_field=id_field, min_confidence=min_confidence, judge=judge,
                    samples=samples, concurrency=concurrency, compare_model=compare, ontology_path=ontology,
                    staged=staged)
        except KGError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc


def run_cli(
    paths: list[Path],
    out: Path,
    *,
    mode: str,
    graph: Path | None,
    base_url: str | None,
    model: str | None,
    api_key_env: str,
    text_field: str,
    id_field: str,
    min_confidence: float,
    judge: bool,
    samples: int,
    concurrency: int,
    compare_model: str | None,
    ontology_path: Path | None,
    staged: bool = False,
    open_client=None,
) -> None:
    """The command's work, importable (tests pass ``open_client`` to run against a scripted client).

    Imports are local: ``kg --help`` and every other command should not pay
    for loading openai, instructor and the pipeline.
    """
    from extraction.compare import compare
    from extraction.documents import load_documents
    from extraction.errors import ExtractionError
    from extraction.gates import GateConfig
    from extraction.llm import Endpoint
    from extraction.output import merge_result, output_paths, write_result
    from extraction.run import MODES, extract, new_run_id
    from schemas.ontology import load_ontology

    if open_client is None:
        from extraction.llm import open_client
    if mode not in MODES:
        raise ExtractionError(f"--mode must be one of {', '.join(MODES)}, not {mode!r}")
    if base_url is not None and model is None:
        raise ExtractionError("--base-url needs --model: the name of the model that endpoint serves")
    output_paths(out)  # fail on a bad suffix before any LLM work
    onto = load_ontology(ontology_path)
    corpus = load_documents(paths, text_field=text_field, id_field=id_field)
    if not corpus.documents:
        where = ", ".join(map(str, paths))
        raise ExtractionError(f"no documents with text in {where} (skipped: {dict(corpus.skipped)})")
    gazetteer = _gazetteer(paths, graph, onto)
    gates = GateConfig(min_confidence=min_confidence, samples=samples, judge=judge)
    temperature = 0.7 if samples > 1 else 0.0  # agreement between samples needs samples that can differ

    def run_one(name: str, url: str | None):
        endpoint = Endpoint(model=name, base_url=url, api_key_env=api_key_env, concurrency=concurrency,
                            temperature=temperature)
        with open_client(endpoint) as client:
            return extract(corpus, client, mode=mode, ontology=onto, gates=gates, run_id=new_run_id(),
                           gazetteer=gazetteer, progress=True)

    result = run_one(model or "bundled", base_url)
    written = write_result(result, out)
    print_report(result, written)
    if graph is not None:
        merged = merge_result(result, graph, onto, staged=staged)
        changes = sum(m.total for m in merged)
        console.print(f"merged into {graph}: {changes} row(s) changed (run {result.report.run_id})", highlight=False)
    if compare_model is not None:
        other = run_one(compare_model, None if compare_model == "bundled" else base_url)  # B: same endpoint
        b_out = out.with_name(f"{out.name[: -len(out.suffix)]}.compare{out.suffix}")
        print_report(other, write_result(other, b_out))
        print_comparison(compare(result, other))


def _gazetteer(paths: list[Path], graph: Path | None, ontology):
    """Known names: the store's when merging into one (ids must be the store's), else any records tables given."""
    from extraction.gazetteer import Gazetteer

    if graph is not None:
        return Gazetteer.from_store(graph, ontology) if graph.exists() else None
    tables = [p for p in paths if p.suffix.lower() in (".parquet", ".pq") and _is_records(p)]
    if not tables:
        return None
    import polars as pl
    import pyarrow.parquet as pq

    frames = [pl.from_arrow(pq.read_table(p, columns=["source", "source_id", "type", "name", "aliases", "year"]))
              for p in tables]
    return Gazetteer.from_records(pl.concat(frames, how="vertical_relaxed"), ontology)


def _is_records(path: Path) -> bool:
    import pyarrow.parquet as pq

    names = set(pq.read_schema(path).names)
    return {"source", "source_id", "type", "name", "aliases", "year", "abstract"} <= names
