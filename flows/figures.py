"""The figures a run's card shows, computed from its run folder: small, JSON-ready, kept as an artifact.

Each figure is a list of rows (dicts), so the card, a notebook and a test
read the same thing through ``Run.data.figures``, and nothing big travels:
scores are read one column at a time and reduced to histograms and curves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from flows.inputs import Inputs, read_pairs
from matching.evaluate import bcubed, pairwise_metrics, pr_curve
from matching.holdout import truth_entities
from matching.labels import PAIR_KEYS, crosswalk_pairs, label_pairs
from matching.pipeline import read_records
from matching.skew import partition_report

SCORE_BINS = 20


def score_histogram(shards: list[Path], bins: int = SCORE_BINS) -> list[dict[str, Any]]:
    """Candidate pairs per score bin, split into accepted and rejected: where the threshold cuts."""
    counts = (
        pl.scan_parquet(shards)
        .select(bin=(pl.col("score") * bins).floor().clip(0, bins - 1).cast(pl.Int32), match="match")
        .group_by("bin", "match")
        .len("pairs")
        .collect()
        .sort("bin", "match")
    )
    return counts.select(score_from=pl.col("bin") / bins, decision=pl.when("match").then(pl.lit("accepted"))
                         .otherwise(pl.lit("rejected")), pairs="pairs").to_dicts()


def match_figures(folder: Path, inputs: Inputs, about: dict[str, Any]) -> dict[str, Any]:
    """Everything the MatchFlow card plots: blocks, scores, PR curve (with truth), partitions, skew.

    ``about``: what the flow knows of the run (ids, model, clusters, merge);
    the counts of records, pairs and accepted pairs are added from the folder.
    """
    records = read_records([folder / name for name in inputs.records])
    shards = sorted((folder / "scores").glob("part-*.parquet"))
    partitions, skew_text = partition_report(folder)
    summary = {
        **about, "records": records.height, "partitions": partitions.height,
        "pairs": int(partitions["pairs"].sum()), "accepted": int(partitions["matches"].sum()),
        "slowest/median partition time": round(float(partitions["time_ratio"].max()), 3),
    }
    figures: dict[str, Any] = {
        "summary": summary,
        "block_sizes": pl.read_parquet(folder / "block_sizes.parquet").to_dicts(),
        "scores": score_histogram(shards),
        "partitions": partitions.to_dicts(),
        "skew": skew_text,
    }
    truth = read_pairs(folder, inputs.truth)
    if truth is not None:
        scored = pl.scan_parquet(shards).select(*PAIR_KEYS, "score").collect()
        y = label_pairs(scored, truth)
        figures["pr_curve"] = pr_curve(y, scored["score"].to_numpy()).to_dicts()
        crosswalk = pl.read_parquet(folder / "crosswalk.parquet")
        figures["quality"] = {
            "pairwise": pairwise_metrics(crosswalk_pairs(crosswalk), truth),
            "bcubed": bcubed(crosswalk, truth_entities(records, truth)),
            "pair_completeness": round(float(y.sum()) / max(truth.height, 1), 5),
        }
    return figures


def step_seconds(pathspec: str) -> list[dict[str, Any]]:
    """Wall seconds per step of a run, first task start to last task end, from Metaflow's metadata.

    Includes what orchestration costs (process start, artifact loading and
    saving), which is what a user waits for; finished tasks only.
    """
    from metaflow import Run

    spans = []
    for step in Run(pathspec, _namespace_check=False):
        tasks = [(t.created_at, t.finished_at) for t in step if t.finished_at is not None]
        if tasks:
            begin, end = min(s for s, _ in tasks), max(e for _, e in tasks)
            longest = max((e - s).total_seconds() for s, e in tasks)
            row = {"step": step.id, "tasks": len(tasks), "seconds": round((end - begin).total_seconds(), 2),
                   "longest_task_seconds": round(longest, 2)}
            spans.append((begin, row))
    return [row for _, row in sorted(spans, key=lambda s: s[0])]
