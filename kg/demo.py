"""The demo pipeline on the bundled sample catalog: each stage prints what it did and where its output is.

Every stage is the same library call a user or a flow makes, on generated
sources instead of licensed ones: ingest, train the pairwise model (on a
second catalogue with another seed, so the figures are out of sample), match
in partitions, cluster, merge into the graph store, then extract relations
from a few abstracts with the bundled local LLM and merge those too.
"""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
from rich.console import Console

from kg.ingest import ingest_source
from kg.sample import SOURCES, generate_sample


def truth_pairs(truth_path: Path) -> pl.DataFrame:
    """Cross-source record pairs that share a true entity, from the sample's ground truth."""
    from matching.labels import crosswalk_pairs

    return crosswalk_pairs(pl.read_parquet(truth_path))


def _ingest(sample, out: Path) -> list:
    return [ingest_source(sample.mappings[s], [sample.raw[s]], out) for s in sample.raw]


def run_demo(
    out: Path,
    *,
    entities: int = 2000,
    seed: int = 7,
    partitions: int = 8,
    workers: int = 2,
    documents: int = 3,
    console: Console,
) -> None:
    """Generate → ingest → train → match → cluster → graph → LLM extraction, printing each stage."""
    from kg.cli import print_ingest
    from kg.graph import Graph
    from kg.store import RunInfo, Store, merge_entities
    from matching.blocking_report import blocking_report
    from matching.evaluate import bcubed, errors_by_case, pairwise_metrics
    from matching.labels import crosswalk_pairs
    from matching.pipeline import MatchConfig, cluster_run, plan_run, read_partition_stats, run_partitions
    from matching.train import train_on_truth

    out = Path(out)
    started = time.perf_counter()
    sample = generate_sample(out / "raw", n_entities=entities, seed=seed)
    console.print(
        f"[bold]1. sample[/]: {sample.n_entities:,} true entities "
        f"({', '.join(f'{n:,} {t}' for t, n in sample.entities.items())}) → {sample.total_records:,} raw records in "
        f"{len(sample.raw)} sources ({', '.join(f'{s}: {p.name}' for s, p in sample.raw.items())}); "
        f"ground truth {sample.truth}"
    )
    console.print("   hard cases (records): " + ", ".join(f"{c} {n:,}" for c, n in sample.cases.items()))

    reports = _ingest(sample, out)
    console.print("[bold]2. ingest[/]:")
    print_ingest(reports)
    record_paths = [r.records_path for r in reports]
    records = pl.concat([pl.read_parquet(p) for p in record_paths])

    t0 = time.perf_counter()
    training = generate_sample(out / "training" / "raw", n_entities=max(entities // 2, 200), seed=seed + 1000)
    train_records = pl.concat([pl.read_parquet(r.records_path) for r in _ingest(training, out / "training")])
    # each sample source holds one record per entity, as a licensed catalogue keyed by its own ids does
    config = MatchConfig(n_partitions=partitions, clean_sources=SOURCES)
    model = train_on_truth(train_records, truth_pairs(training.truth), config)
    run_dir = out / "match"
    model.save(run_dir / "model.json")
    meta = model.metadata
    console.print(
        f"[bold]3. train[/]: LightGBM on {meta['train_pairs']:,} candidate pairs of a second catalogue "
        f"(seed {seed + 1000}, {train_records.height:,} records); validation F1 {meta['valid_f1']:.4f} at threshold "
        f"{model.threshold:.3f}, {meta['trees']} trees, {time.perf_counter() - t0:.1f} s → {run_dir / 'model.json'}"
    )

    t0 = time.perf_counter()
    plan = plan_run(records, run_dir, config)
    run_partitions(run_dir, range(plan.n_partitions), workers=workers)
    stats = read_partition_stats(run_dir)
    scores = pl.scan_parquet(sorted((run_dir / "scores").glob("part-*.parquet"))).collect()
    truth = truth_pairs(sample.truth)
    block = blocking_report(scores.select("left_source", "left_id", "right_source", "right_id", "partition").to_arrow(),
                            records, truth)
    console.print(
        f"[bold]4. match[/]: {partitions} partitions on {workers} worker processes, each writing its own shard → "
        f"{run_dir / 'scores'}/; {int(stats['pairs'].sum()):,} candidate pairs ({block.candidates_per_record:.2f} "
        f"per record, pair completeness {block.pair_completeness:.4f}, partition skew {block.partition_skew:.2f}), "
        f"{int(stats['matches'].sum()):,} accepted, {time.perf_counter() - t0:.1f} s"
    )

    result = cluster_run(records, run_dir, run_id=f"demo-match-{seed}", config=config)
    crosswalk = pl.from_arrow(result.crosswalk)
    quality = pairwise_metrics(crosswalk_pairs(crosswalk), truth)
    b3 = bcubed(crosswalk, pl.read_parquet(sample.truth))
    console.print(
        f"[bold]5. cluster[/] (one-to-one between the clean sources {', '.join(config.clean_sources)}): "
        f"{records.height:,} records → {result.n_entities:,} entities (truth: "
        f"{sample.n_entities:,}); pairwise P {quality['precision']:.4f} R {quality['recall']:.4f} F1 "
        f"{quality['f1']:.4f}; B-cubed F1 {b3['f1']:.4f} → {run_dir / 'crosswalk.parquet'}"
    )
    by_case = errors_by_case(crosswalk_pairs(crosswalk), truth, pl.read_parquet(sample.truth))
    console.print(
        "   errors by hard case (missed / false of true pairs): "
        + ", ".join(f"{r['case']} {r['missed']}/{r['false_matches']} of {r['true_pairs']}" for r in by_case.to_dicts())
    )

    graph_path = out / "graph.duckdb"
    with Store.open(graph_path) as store:
        merge_entities(store, records.to_arrow(), result.crosswalk, RunInfo(f"demo-match-{seed}", "matching"))
    with Graph.open(graph_path, read_only=True) as graph:
        counts = graph.stats()
        hits = graph.find(records.filter(pl.col("type") == "movie")["name"][0], type="movie")
    by_type = ", ".join(f"{r['type']} {r['entities']:,}" for r in counts.entities_by_type.to_dicts()
                        if "entities" in r) or counts.entities_by_type.to_dicts()
    console.print(f"[bold]6. graph[/]: merged into {graph_path}: entities {by_type}")
    if hits.height:
        top = hits.row(0, named=True)
        console.print(f"   g.find(...) → {top['entity_id']} {top['name']!r} ({top.get('year')})")

    if documents > 0:
        _extract_stage(out, records, graph_path, documents, console)
    console.print(f"done in {time.perf_counter() - started:.1f} s.")


def _extract_stage(out: Path, records: pl.DataFrame, graph_path: Path, documents: int, console: Console) -> None:
    """Guided extraction over a few abstracts with the bundled model, merged into the same graph."""
    from extraction import Gazetteer, extract, merge_result, write_result
    from extraction.llm import open_client

    docs = (
        records.filter(pl.col("abstract").is_not_null() & (pl.col("type") == "movie"))
        .sort("source", "source_id")
        .head(documents)
        .select(doc_id=pl.concat_str("source", "source_id", separator=":"), text="abstract")
    )
    t0 = time.perf_counter()
    with open_client() as client:
        result = extract(list(docs.iter_rows()), client, mode="guided", gazetteer=Gazetteer.from_store(graph_path))
        model = client.model_name
    paths = write_result(result, out / "extraction" / "relations.parquet")
    merge_result(result, graph_path)
    report = result.report
    console.print(
        f"[bold]7. extract[/]: {docs.height} abstracts, guided mode, bundled {model}: "
        f"{report.mentions} mentions, {report.relations_accepted} relations accepted, "
        f"{sum(report.relations_rejected.values())} rejected ({report.usage.get('prompt_tokens', 0):,} + "
        f"{report.usage.get('completion_tokens', 0):,} tokens); {time.perf_counter() - t0:.1f} s → "
        f"{paths['relations']}; merged into {graph_path}"
    )
