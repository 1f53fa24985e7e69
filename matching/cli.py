"""``kg train``, ``kg match``, ``kg explain``, ``kg blocking-report`` and ``kg eval``: matching on the command line.

``register(app)`` adds them to the toolkit's typer app. Each command is a thin
shell over one library call in ``matching``; errors are ``KGError`` lines.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Annotated

import polars as pl
import typer
from rich.console import Console
from rich.table import Table

from kg.errors import KGError
from matching.labels import read_truth

console = Console()
eval_app = typer.Typer(help="Measure matching quality on a benchmark with ground truth.", no_args_is_help=True)

RecordsArg = Annotated[list[Path], typer.Argument(help="records Parquet files (ingest output), all sources")]
PartitionsOpt = Annotated[int, typer.Option("--partitions", "-p", help="number of partitions")]


def _config(partitions: int, clean: list[str] | None = None):
    from matching.pipeline import MatchConfig

    return MatchConfig(n_partitions=partitions, clean_sources=tuple(clean or ()))


def train(
    records: RecordsArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="model file to write")] = Path("model.json"),
    truth: Annotated[Path | None, typer.Option(help="true pairs, or (source, source_id, entity_id)")] = None,
    labels: Annotated[Path | None, typer.Option(help="reviewed pairs with a 0/1 label column (review export)")] = None,
    partitions: PartitionsOpt = 8,
    seed: Annotated[int, typer.Option(help="seed of the validation split and of LightGBM")] = 7,
) -> None:
    """Train the pairwise model on labelled pairs, choose its threshold on validation, save it."""
    from matching.labels import read_review_labels
    from matching.model import train_model
    from matching.pipeline import read_records
    from matching.train import labelled_features, train_on_truth

    if (truth is None) == (labels is None):
        raise KGError("give exactly one of --truth FILE or --labels FILE")
    recs = read_records(records)
    if truth is not None:
        model = train_on_truth(recs, read_truth(truth), _config(partitions), seed=seed)
    else:
        features, y = labelled_features(recs, read_review_labels(labels))
        model = train_model(features, y, seed=seed, metadata={"labels": str(labels)})
    model.save(out)
    meta = model.metadata
    console.print(
        f"model {model.model_id}: {meta['train_pairs']:,} training pairs ({meta['train_matches']:,} matches), "
        f"{meta['valid_pairs']:,} validation pairs, validation F1 {meta['valid_f1']:.4f} at threshold "
        f"{model.threshold:.3f}, {meta['trees']} trees → {out}"
    )
    if "screen" in meta:
        sc = meta["screen"]
        console.print(
            f"screen: {sc['trees']} trees on {sc['features']} cheap features; it rejects "
            f"{sc['valid_rejected']:.1%} of the validation pairs before their costly features"
        )
    gains = sorted(zip(model.booster.feature_importance("gain"), model.features, strict=True), reverse=True)
    console.print("most useful features: " + ", ".join(f"{name} ({gain:,.0f})" for gain, name in gains[:8]))


def match(
    records: Annotated[list[Path] | None, typer.Argument(
        help="records Parquet files (ingest output), all sources; not needed with --partition")] = None,
    model: Annotated[Path, typer.Option("--model", "-m", help="model file from `kg train`")] = Path("model.json"),
    run_dir: Annotated[Path, typer.Option("--run-dir", "-o", help="run folder (plan, shards, crosswalk)")] = Path(
        "match-run"
    ),
    partitions: PartitionsOpt = 8,
    workers: Annotated[int, typer.Option("--workers", "-w", help="local worker processes")] = 1,
    partition: Annotated[
        int | None, typer.Option(help="re-run only this partition of an existing run (same plan and model)")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="with --partition: write the shard and stats here, leaving the run untouched")
    ] = None,
    clean: Annotated[list[str] | None, typer.Option(help="a source known to hold no duplicates (repeatable)")] = None,
    run_id: Annotated[str | None, typer.Option(help="id stamped on the crosswalk and the graph rows")] = None,
    previous: Annotated[Path | None, typer.Option(help="crosswalk of an earlier run: entities keep their ids")] = None,
    graph: Annotated[Path | None, typer.Option(help="merge the result into this graph store")] = None,
    staged: Annotated[
        bool, typer.Option(help="with --graph: merge into a copy swapped in whole, so readers elsewhere read on")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log each partition")] = False,
) -> None:
    """Score every candidate pair in partitions and cluster the matches into entities."""
    from matching.model import load_model
    from matching.pipeline import (
        cluster_run,
        plan_run,
        read_partition_stats,
        read_screened_records,
        run_partitions,
        score_partition,
    )

    logging.basicConfig(level=logging.INFO if verbose or partition is not None else logging.WARNING,
                        format="%(asctime)s %(name)s %(message)s")
    started = time.perf_counter()
    if out is not None and partition is None:
        raise typer.BadParameter("--out goes with --partition N (a full run writes into --run-dir)")
    if partition is not None:
        stats = score_partition(run_dir, partition, out_dir=out)
        console.print(
            f"partition {partition}: {stats.pairs:,} pairs ({stats.screened_out:,} rejected by the screen), "
            f"{stats.matches:,} matches; blocking "
            f"{stats.seconds_blocking:.2f} s, features {stats.seconds_features:.2f} s, scoring "
            f"{stats.seconds_scoring:.2f} s → {(out or run_dir) / 'scores'}/part-{partition:04d}.parquet"
        )
        return
    if not records:
        raise typer.BadParameter("give the records files to match (or --partition N to re-run one partition)")
    config = _config(partitions, clean)
    run_id = run_id or f"match-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    recs, screened = read_screened_records(records)
    for what, n in screened.items():
        if n:
            console.print(f"[yellow]note[/]: {n:,} records {what}")
    run_dir.mkdir(parents=True, exist_ok=True)
    pair_model = load_model(model)
    pair_model.save(run_dir / "model.json")
    plan = plan_run(recs, run_dir, config)
    run_partitions(run_dir, range(plan.n_partitions), workers=workers)
    prev = pl.read_parquet(previous) if previous else None
    result = cluster_run(recs, run_dir, run_id=run_id, config=config, previous=prev)
    stats = read_partition_stats(run_dir)
    console.print(
        f"{recs.height:,} records → {int(stats['pairs'].sum()):,} candidate pairs in {partitions} partitions "
        f"({int(stats['matches'].sum()):,} accepted, {int(stats['screened_out'].sum()):,} of the rest rejected by "
        f"the model's screen) → {result.n_entities:,} entities "
        f"({result.n_split} clusters split, {result.dropped.height:,} pairs dropped) in "
        f"{time.perf_counter() - started:.1f} s → {run_dir / 'crosswalk.parquet'}"
    )
    from matching.skew import partition_report

    console.print(partition_report(run_dir)[1])
    if graph is not None:
        from kg.store import RunInfo, Store, merge_entities
        from kg.store import staged as staged_store

        with staged_store(graph) if staged else Store.open(graph) as store:
            merged = merge_entities(
                store, recs.to_arrow(), result.crosswalk, RunInfo(run_id, "matching", config={"model": str(model)})
            )
        console.print(f"merged into {graph}: {merged}")


def explain(
    left: Annotated[str, typer.Argument(help="first record as SOURCE:ID")],
    right: Annotated[str, typer.Argument(help="second record as SOURCE:ID")],
    records: Annotated[list[Path], typer.Option("--records", "-r", help="records Parquet files")],
    model: Annotated[Path, typer.Option("--model", "-m", help="model file")] = Path("model.json"),
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Why two records match or not: every feature's value and its contribution to the score."""
    from matching.explain import explain_pair
    from matching.model import load_model
    from matching.pipeline import read_records

    pair = _record_key(left), _record_key(right)
    result = explain_pair(read_records(records), load_model(model), *pair)
    if as_json:
        typer.echo(json.dumps(result))
        return
    verdict = "MATCH" if result["match"] else "no match"
    console.print(
        f"{left} vs {right}: score {result['score']:.3f} (threshold {result['threshold']:.3f}) → [bold]{verdict}[/]"
    )
    screen = result["screen"]
    if screen is not None:
        verdict = "rejected the pair" if screen["rejected"] else "left the pair to the full model"
        console.print(
            f"the model's screen (cheap features only) gave {screen['probability']:.3f} and {verdict} "
            f"(it rejects below {screen['cut']:.3f})"
        )
    table = Table(title="contributions to the log-odds, strongest first", title_justify="left")
    for col in ("feature", "value", "contribution"):
        table.add_column(col, justify="left" if col == "feature" else "right")
    for row in result["features"]:
        value = "missing" if row["value"] is None else f"{row['value']:.3f}"
        table.add_row(row["feature"], value, f"{row['contribution']:+.3f}")
    table.add_row("(bias)", "", f"{result['bias']:+.3f}")
    console.print(table)


def _record_key(text: str) -> tuple[str, str]:
    source, sep, source_id = text.partition(":")
    if not sep or not source or not source_id:
        raise KGError(f"{text!r}: give a record as SOURCE:ID, e.g. imdb:tt0111161")
    return source, source_id


def blocking_report_cmd(
    records: RecordsArg,
    truth: Annotated[Path | None, typer.Option(help="ground truth, for pair completeness")] = None,
    partitions: PartitionsOpt = 8,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Candidates per record, block sizes, partition balance, and pair completeness when truth is given."""
    from matching.blocking import all_candidate_pairs, prepare_for, record_units
    from matching.blocking_report import block_size_histogram, blocking_report
    from matching.pipeline import read_records

    recs = read_records(records)
    plan = _config(partitions).plan(recs)
    report = blocking_report(all_candidate_pairs(recs, plan), recs, read_truth(truth) if truth else None)
    histogram = block_size_histogram(record_units(prepare_for(plan, recs), plan))
    summary = {
        "records": report.n_records, "pairs": report.n_pairs,
        "candidates_per_record": round(report.candidates_per_record, 3),
        "candidates_p99": report.candidates_p99, "candidates_max": report.candidates_max,
        "partition_skew": round(report.partition_skew, 3), "reduction_ratio": report.reduction_ratio,
        "pair_completeness": report.pair_completeness,
        "by_source_pair": report.by_source_pair.to_dicts(), "block_sizes": histogram.to_dicts(),
    }
    if as_json:
        typer.echo(json.dumps(summary))
        return
    console.print(
        f"{report.n_records:,} records → {report.n_pairs:,} candidate pairs; {report.candidates_per_record:.2f} "
        f"candidates per record (p99 {report.candidates_p99:.0f}, max {report.candidates_max}); partition skew "
        f"{report.partition_skew:.2f}; reduction ratio {report.reduction_ratio:.5f}"
        + (f"; pair completeness {report.pair_completeness:.4f}" if report.pair_completeness is not None else "")
    )
    console.print(report.by_source_pair)
    console.print(histogram)


@eval_app.command("moviegraph")
def eval_moviegraph(
    data: Annotated[Path, typer.Option(help="folder of the moviegraph benchmark (imdb.csv, gt_imdb_tmdb.csv, ...)")],
    seed: Annotated[int, typer.Option(help="seed of the entity split")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print the full JSON report")] = False,
    work: Annotated[Path | None, typer.Option(help="folder for the ingested records (default: a temp folder)")] = None,
) -> None:
    """Train on a seeded half of the true entities, report on the other half, per source pair."""
    import tempfile

    from kg.adapters.moviegraph import SOURCES, ingest_moviegraph, truth_pairs
    from matching.holdout import holdout_eval

    with tempfile.TemporaryDirectory() as tmp:
        out = work or Path(tmp)
        reports = ingest_moviegraph(data, out)
        records = pl.concat([pl.read_parquet(r.records_path) for r in reports.values()])
        result = holdout_eval(records, truth_pairs(data), seed=seed, clean_sources=SOURCES)
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print_eval(result)


@eval_app.command("itunes-amazon")
def eval_itunes_amazon(
    data: Annotated[Path, typer.Option(help="folder of the iTunes-Amazon benchmark (Structured/, Dirty/)")],
    variant: Annotated[str, typer.Option(help="Structured or Dirty")] = "Structured",
    seed: Annotated[int, typer.Option(help="seed of the training splits")] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Train on train.txt, report precision/recall/F1 on valid.txt (the shared data has no test split)."""
    from kg.adapters.itunes_amazon import evaluate_itunes_amazon

    result = evaluate_itunes_amazon(data, variant=variant, seed=seed)
    if as_json:
        typer.echo(json.dumps(result))
        return
    console.print(
        f"iTunes-Amazon {variant} (seed {seed}), trained on train.txt, evaluated on {result['evaluated_on']}: "
        f"P {result['precision']:.4f} R {result['recall']:.4f} F1 {result['f1']:.4f} at threshold "
        f"{result['threshold']:.3f}; {result['seconds']:.1f} s"
    )


def _print_eval(result: dict) -> None:
    table = Table(title=f"held-out figures ({result['protocol']})", title_justify="left")
    cols = ("source pair", "precision", "recall", "F1", "F1 labelled", "clustered F1 labelled", "PC", "candidates")
    for col in cols:
        table.add_column(col, justify="left" if col == "source pair" else "right")
    for key, m in result["source_pairs"].items():
        table.add_row(key, f"{m['precision']:.4f}", f"{m['recall']:.4f}", f"{m['f1']:.4f}", f"{m['f1_labelled']:.4f}",
                      f"{m['clustered']['f1_labelled']:.4f}", f"{m['pair_completeness']:.4f}", f"{m['candidates']:.2f}")
    console.print(table)
    b = result["clustering"]["bcubed"]
    console.print(f"clustering B-cubed P {b['precision']:.4f} R {b['recall']:.4f} F1 {b['f1']:.4f}; "
                  f"model {result['model']['id']} threshold {result['model']['threshold']}; "
                  f"{result['seconds']['total']:.1f} s")


def register(app: typer.Typer) -> None:
    """Add the matching commands to the ``kg`` app."""
    app.command()(train)
    app.command()(match)
    app.command()(explain)
    app.command("blocking-report")(blocking_report_cmd)
    from extraction.eval_cli import register_eval

    register_eval(eval_app)
    app.add_typer(eval_app, name="eval")
