"""``kg eval extraction``: relation P/R/F1, grounding, rejections, tokens and seconds per document, open vs guided.

``register_eval(eval_app)`` adds the command to the ``kg eval`` sub-app
(``matching.cli.eval_app``). Imports are local so ``kg --help`` loads nothing
of the pipeline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kg.errors import KGError

console = Console()
DATASETS = ("webnlg", "moviegraph")


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
    return str(value)


def print_evaluation(report: dict) -> None:
    """One table per data set, a column per mode."""
    for name, entry in report["sets"].items():
        modes = entry["modes"]
        table = Table(title=f"{name}: {entry['documents']} documents, {entry['gold_items']} gold items "
                            f"({report['model']})", title_justify="left")
        table.add_column("")
        for mode in modes:
            table.add_column(mode, justify="right")
        rows = [
            ("precision", "precision"), ("recall", "recall"), ("F1", "f1"),
            ("precision (labelled)", "precision_labelled"), ("accepted / tp", None),
            ("grounded accepted", None), ("rejected by reason", "rejected_by_reason"),
            ("failed questions", "failed_requests"), ("tokens / doc", "tokens_per_doc"),
            ("seconds / doc", "seconds_per_doc"), ("share outside the LLM", "outside_llm_share"),
        ]  # fmt: skip
        for label, key in rows:
            if label == "accepted / tp":
                values = [f"{m['predicted']} / {m['tp']}" for m in modes.values()]
            elif label == "grounded accepted":
                values = [f"{m['grounding']['grounded']}/{m['grounding']['accepted']}" for m in modes.values()]
            else:
                values = [_f(m[key], 1 if key in ("tokens_per_doc", "seconds_per_doc") else 3) for m in modes.values()]
            table.add_row(label, *values)
        console.print(table)
        if entry["out_of_scope"]:
            top = list(entry["out_of_scope"].items())[:8]
            console.print(f"out of scope (not scored): {sum(entry['out_of_scope'].values())} triples; "
                          + ", ".join(f"{k} {v}" for k, v in top), highlight=False, soft_wrap=True)
        console.print(f"protocol: {_f(entry['protocol'])}", highlight=False, soft_wrap=True)


def build_sets(data: Path, datasets: list[str], sample: int, seed: int) -> list:
    """The evaluation sets named in ``datasets`` from the shared data folder ``data``."""
    from extraction.evaluate import moviegraph_set, webnlg_set

    sets = []
    for name in datasets:
        if name == "webnlg":
            sets.append(webnlg_set(data / "webnlg" / "dev", sample, seed=seed))
        elif name == "moviegraph":
            sets.append(moviegraph_set(data / "moviegraph", sample, seed=seed))
        else:
            raise KGError(f"--dataset must be one of {', '.join(DATASETS)}, not {name!r}")
    return sets


def register_eval(eval_app: typer.Typer) -> None:
    """Add ``extraction`` to the ``kg eval`` sub-app."""

    @eval_app.command("extraction")
    def eval_extraction(
        data: Annotated[Path, typer.Option(help="shared data folder holding webnlg/dev and moviegraph/")]
        = Path("../shared/data"),
        dataset: Annotated[list[str] | None, typer.Option("--dataset", "-d", help="webnlg and/or moviegraph "
                                                          "(default: both)")] = None,
        mode: Annotated[list[str] | None, typer.Option("--mode", "-m", help="open and/or guided (default: both)")]
        = None,
        sample: Annotated[int, typer.Option("--sample", "-n", min=1, help="documents per data set (seeded)")] = 40,
        seed: Annotated[int, typer.Option(help="seed of the document sample")] = 0,
        base_url: Annotated[str | None, typer.Option("--base-url", help="OpenAI-compatible /v1 URL")] = None,
        model: Annotated[str | None, typer.Option("--model", help="model name (default: the bundled model)")] = None,
        concurrency: Annotated[int, typer.Option(min=1, help="questions in flight (server slots)")] = 1,
        cache: Annotated[bool, typer.Option("--cache/--no-cache", help="reuse cached answers (figures then "
                                            "show no LLM time)")] = False,
        out: Annotated[Path | None, typer.Option("--out", "-o", help="write the full report as JSON")] = None,
    ) -> None:
        """Score extraction on WebNLG and the moviegraph abstracts, e.g. kg eval extraction -n 20 -m guided."""
        try:
            report = run_eval(data, dataset or list(DATASETS), mode or ["open", "guided"], sample=sample, seed=seed,
                              base_url=base_url, model=model, concurrency=concurrency, use_cache=cache)
        except KGError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        print_evaluation(report)
        if out is not None:
            out.write_text(json.dumps(report, indent=2, default=str))
            console.print(f"report → {out}", highlight=False)


def run_eval(
    data: Path,
    datasets: list[str],
    modes: list[str],
    *,
    sample: int,
    seed: int,
    base_url: str | None,
    model: str | None,
    concurrency: int,
    use_cache: bool,
    open_client=None,
) -> dict:
    """The command's work, importable (tests pass ``open_client`` for a scripted endpoint)."""
    from extraction.errors import ExtractionError
    from extraction.evaluate import evaluate
    from extraction.llm import Endpoint
    from extraction.run import MODES

    if open_client is None:
        from extraction.llm import open_client
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ExtractionError(f"--mode must be among {', '.join(MODES)}, not {bad}")
    if base_url is not None and model is None:
        raise ExtractionError("--base-url needs --model: the name of the model that endpoint serves")
    sets = build_sets(data, datasets, sample, seed)
    endpoint = Endpoint(model=model or "bundled", base_url=base_url, concurrency=concurrency)
    with open_client(endpoint, use_cache=use_cache) as client:
        report = evaluate(sets, client, modes=modes, progress=True)
    report["sample"] = sample
    report["seed"] = seed
    return report
