"""Held-out evaluation: train on a seeded half of the true entities, report on the other half.

Splitting by *entity* (a connected component of the truth) keeps every record
of one title on one side, so the model never scores a pair whose twin it was
trained on. Records with no true match are split by their own hash.

Benchmarks' truth lists are often partial: a record absent from a source
pair's truth may still have an unlisted match there. So besides the strict
figures, ``*_labelled`` figures count only predictions that touch a record the
truth covers for that source pair (the usual protocol when truth is partial);
recall is the same in both. ``f1_labelled_twin_tolerant`` then also forgives
picking a copy the truth did not name when the copy is indistinguishable from
the named one (``evaluate.forgive_twins``): a diagnostic of the benchmark's
duplicates, never the headline.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import polars as pl

from matching.blocking import all_candidate_pairs
from matching.blocking_report import blocking_report, canonical_pairs
from matching.cluster import cluster_pairs, components
from matching.evaluate import (
    bcubed,
    by_source_pair,
    forgive_twins,
    pairwise_metrics,
    pr_curve,
    worst_errors,
)
from matching.features import pair_features, prepare_features
from matching.labels import PAIR_KEYS, crosswalk_pairs, label_pairs
from matching.model import score_pairs, train_model
from matching.pipeline import DEFAULT_CONFIG, MatchConfig


def truth_entities(records: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """(source, source_id, entity_id): true entities as components of the truth pairs; others alone."""
    nodes = records.select("source", "source_id").unique().sort("source", "source_id").with_row_index("n")
    edges = truth.join(nodes, left_on=["left_source", "left_id"], right_on=["source", "source_id"]).join(
        nodes, left_on=["right_source", "right_id"], right_on=["source", "source_id"], suffix="_r"
    )
    labels = components(nodes.height, edges["n"].to_numpy().astype(np.int64), edges["n_r"].to_numpy().astype(np.int64))
    return nodes.with_columns(entity_id=pl.Series(labels).cast(pl.String)).drop("n")


def _covered(pairs: pl.DataFrame, truth: pl.DataFrame) -> pl.Series:
    """True for pairs where either record appears in the truth for that pair of sources."""
    sides = pl.concat(
        [
            truth.select(s="left_source", i="left_id", o="right_source"),
            truth.select(s="right_source", i="right_id", o="left_source"),
        ]
    ).unique().with_columns(k=pl.lit(True))
    left = pairs.join(sides, left_on=["left_source", "left_id", "right_source"], right_on=["s", "i", "o"],
                      how="left", maintain_order="left")["k"]
    right = pairs.join(sides, left_on=["right_source", "right_id", "left_source"], right_on=["s", "i", "o"],
                       how="left", maintain_order="left")["k"]
    return left.fill_null(False) | right.fill_null(False)


def holdout_eval(
    records: pl.DataFrame,
    truth: pl.DataFrame,
    *,
    config: MatchConfig = DEFAULT_CONFIG,
    seed: int = 7,
    clean_sources: tuple[str, ...] = (),
    train_on_labelled: bool = True,
) -> dict[str, Any]:
    """Train on half the true entities, evaluate pairs, blocking and clustering on the other half."""
    started = time.perf_counter()
    truth = canonical_pairs(truth)
    entities = truth_entities(records, truth)
    half = entities.with_columns(half=(pl.col("entity_id").hash(seed) % 2).cast(pl.Int8)).select(
        "source", "source_id", "entity_id", "half"
    )
    plan = config.plan(records)
    pairs = all_candidate_pairs(records, plan)
    t_block = time.perf_counter()
    features = pl.from_arrow(pair_features(pairs, prepared=prepare_features(records)))
    t_feat = time.perf_counter()
    y = label_pairs(features, truth)
    sides = features.select(PAIR_KEYS).join(
        half.select("source", "source_id", h="half"), left_on=["left_source", "left_id"],
        right_on=["source", "source_id"], how="left", maintain_order="left",
    ).join(
        half.select("source", "source_id", h_r="half"), left_on=["right_source", "right_id"],
        right_on=["source", "source_id"], how="left", maintain_order="left",
    )
    covered = _covered(features.select(PAIR_KEYS), truth).to_numpy()
    train = ((sides["h"] == 0) & (sides["h_r"] == 0)).to_numpy()
    if train_on_labelled:
        train &= covered
    test = ((sides["h"] == 1) & (sides["h_r"] == 1)).to_numpy()
    model = train_model(features.filter(pl.Series(train)), y[train], seed=seed)
    t_train = time.perf_counter()

    test_records = half.filter(pl.col("half") == 1)
    in_test = lambda df: df.join(  # noqa: E731
        test_records, left_on=["left_source", "left_id"], right_on=["source", "source_id"], how="semi"
    ).join(test_records, left_on=["right_source", "right_id"], right_on=["source", "source_id"], how="semi")
    test_truth = in_test(truth)
    scores = pl.from_arrow(score_pairs(features.filter(pl.Series(test)), model))
    y_test, covered_test = y[test], covered[test]
    predicted = scores.filter("match").select(PAIR_KEYS)
    predicted_labelled = scores.filter(pl.col("match") & pl.Series(covered_test)).select(PAIR_KEYS)

    recs_test = records.join(test_records, on=["source", "source_id"], how="semi")
    clustered = cluster_pairs(scores, recs_test, run_id="holdout", clean_sources=clean_sources,
                              max_size=config.max_cluster)
    t_cluster = time.perf_counter()
    cluster_pred = crosswalk_pairs(clustered.crosswalk)
    cluster_pred_labelled = cluster_pred.filter(_covered(cluster_pred, truth))
    block = blocking_report(pairs, recs_test, test_truth)

    per_pair: dict[str, dict] = {}
    strict = by_source_pair(predicted, test_truth)
    labelled = by_source_pair(predicted_labelled, test_truth)
    clus = by_source_pair(cluster_pred, test_truth)
    clus_labelled = by_source_pair(cluster_pred_labelled, test_truth)
    names = [c for c in features.columns if c not in (*PAIR_KEYS, "partition")]
    vectors = features.select(*PAIR_KEYS, vec=pl.struct(pl.col(names).fill_nan(None)).hash(11))
    clus_twins = by_source_pair(forgive_twins(cluster_pred_labelled, test_truth, vectors), test_truth)
    for row in block.by_source_pair.iter_rows(named=True):
        key = f"{row['left_source']}-{row['right_source']}"
        if key not in strict:
            continue
        per_pair[key] = {
            **strict[key],
            "precision_labelled": labelled[key]["precision"],
            "f1_labelled": labelled[key]["f1"],
            "pair_completeness": round(row["pair_completeness"], 5),
            "candidates": round(row["per_record"], 3),
            "clustered": {
                "precision": clus[key]["precision"], "recall": clus[key]["recall"], "f1": clus[key]["f1"],
                "precision_labelled": clus_labelled[key]["precision"], "f1_labelled": clus_labelled[key]["f1"],
                "f1_labelled_twin_tolerant": clus_twins[key]["f1"],
            },
        }
    curve = pr_curve(y_test, scores["score"].to_numpy())
    return {
        "protocol": (
            f"entities split in halves by seeded hash (seed {seed}); model trained on candidate pairs inside half 0"
            f"{' touching a record the truth covers' if train_on_labelled else ''}; figures on pairs inside half 1"
        ),
        "source_pairs": per_pair,
        "pairwise": pairwise_metrics(predicted, test_truth),
        "clustering": {
            "bcubed": bcubed(pl.from_arrow(clustered.crosswalk), test_records),
            "entities": clustered.n_entities,
            "split_clusters": clustered.n_split,
            "clean_sources": list(clean_sources),
        },
        "blocking": {
            "pair_completeness": round(block.pair_completeness or 0.0, 5),
            "candidates_per_record": round(block.candidates_per_record, 3),
            "reduction_ratio": round(block.reduction_ratio, 6),
            "pairs": pairs.num_rows,
        },
        "model": {"id": model.model_id, "threshold": round(model.threshold, 4), **{
            k: model.metadata[k] for k in ("train_pairs", "train_matches", "valid_f1", "trees",
                                           "dropped_conflicting_negatives")
        }, "screen": model.metadata.get("screen")},
        "pr_curve": curve.to_dicts(),
        "worst_errors": worst_errors(scores, y_test, model.threshold).to_dicts(),
        "seconds": {
            "blocking": round(t_block - started, 2), "features": round(t_feat - t_block, 2),
            "training": round(t_train - t_feat, 2), "clustering": round(t_cluster - t_train, 2),
            "total": round(time.perf_counter() - started, 2),
        },
    }
