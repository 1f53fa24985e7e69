"""Quality of a matching run against ground truth: pairwise, per source pair, clusters, PR curve, worst errors.

Recall is always against every true pair among the evaluated records, so a
true pair that blocking never proposed counts as a miss here, not as nothing.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from matching.blocking_report import canonical_pairs
from matching.labels import PAIR_KEYS


def _f1(tp: int, fp: int, fn: int) -> dict[str, float | int]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "precision": round(p, 5),
        "recall": round(r, 5),
        "f1": round(2 * p * r / (p + r), 5) if p + r else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def pairwise_metrics(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float | int]:
    """Precision/recall/F1 of a predicted match list against the true pairs (orientation ignored)."""
    pred, true = canonical_pairs(predicted.select(PAIR_KEYS)), canonical_pairs(truth.select(PAIR_KEYS))
    tp = pred.join(true, on=PAIR_KEYS, how="semi").height
    return _f1(tp, pred.height - tp, true.height - tp)


def by_source_pair(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, dict]:
    """``pairwise_metrics`` for every (left_source, right_source) that appears in the truth."""
    pred, true = canonical_pairs(predicted.select(PAIR_KEYS)), canonical_pairs(truth.select(PAIR_KEYS))
    out = {}
    for (ls, rs), group in true.group_by("left_source", "right_source", maintain_order=True):
        mine = pred.filter((pl.col("left_source") == ls) & (pl.col("right_source") == rs))
        out[f"{ls}-{rs}"] = pairwise_metrics(mine, group)
    return dict(sorted(out.items()))


def bcubed(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """B-cubed precision/recall/F1 of entity assignments over the records both tables cover.

    Both tables: (source, source_id, entity_id). Per record, precision is the
    share of its predicted cluster that truly belongs with it; averaged over
    records, so big clusters weigh by their size, not once.
    """
    both = predicted.select("source", "source_id", p="entity_id").join(
        truth.select("source", "source_id", t="entity_id"), on=["source", "source_id"]
    )
    if both.is_empty():
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    cells = both.group_by("p", "t").len("n").with_columns(
        np_=pl.col("n").sum().over("p"), nt=pl.col("n").sum().over("t")
    )
    total = both.height
    p = float((cells["n"] ** 2 / cells["np_"]).sum()) / total
    r = float((cells["n"] ** 2 / cells["nt"]).sum()) / total
    return {"precision": round(p, 5), "recall": round(r, 5), "f1": round(2 * p * r / (p + r), 5) if p + r else 0.0}


def pr_curve(y: np.ndarray, score: np.ndarray, points: int = 50) -> pl.DataFrame:
    """(threshold, precision, recall) at up to ``points`` score quantiles, among the scored candidates."""
    if len(y) == 0:
        return pl.DataFrame(schema={"threshold": pl.Float64, "precision": pl.Float64, "recall": pl.Float64})
    order = np.argsort(-score, kind="stable")
    ys, ss = y[order], score[order]
    tp = np.cumsum(ys)
    picks = np.unique(np.linspace(0, len(ys) - 1, min(points, len(ys))).astype(int))
    positives = max(ys.sum(), 1)
    return pl.DataFrame(
        {
            "threshold": ss[picks].astype(np.float64),
            "precision": tp[picks] / (picks + 1),
            "recall": tp[picks] / positives,
        }
    )


def worst_errors(scored: pl.DataFrame, y: np.ndarray, threshold: float, n: int = 10) -> pl.DataFrame:
    """The most confident mistakes: false matches with the highest scores, missed ones with the lowest."""
    df = scored.select(*PAIR_KEYS, "score").with_columns(label=pl.Series(y > 0.5))
    fp = df.filter(~pl.col("label") & (pl.col("score") >= threshold)).sort("score", descending=True).head(n)
    fn = df.filter(pl.col("label") & (pl.col("score") < threshold)).sort("score").head(n)
    return pl.concat([fp.with_columns(error=pl.lit("false_match")), fn.with_columns(error=pl.lit("missed_match"))])


def forgive_twins(predicted: pl.DataFrame, truth: pl.DataFrame, vectors: pl.DataFrame) -> pl.DataFrame:
    """``predicted`` with every false pair swapped for the true pair it cannot be told apart from.

    ``vectors`` holds the pair keys and ``vec``, a hash of the pair's feature
    values. When a source lists one thing several times (TVDb: a person once
    per credit) and the truth names one of the copies, a matcher that picked
    another copy made an error no attribute could prevent: its pair has the
    same feature vector as the true one. Scoring with these swapped shows how
    much of the error is that, and nothing else; the strict figures stay the headline.
    """
    canon = lambda df: canonical_pairs(df.select(PAIR_KEYS))  # noqa: E731
    vec = canonical_pairs(vectors.select(PAIR_KEYS)).join(  # canonical keys, then their vectors
        vectors.select(*PAIR_KEYS, "vec"), on=PAIR_KEYS, how="left"
    )
    pred = canon(predicted).join(vec, on=PAIR_KEYS, how="left")
    true = canon(truth).join(vec, on=PAIR_KEYS, how="left")
    false = pred.join(true, on=PAIR_KEYS, how="anti").drop_nulls("vec")
    true = true.drop_nulls("vec")
    wrong, right = [], []
    for side, other in (("left", "right"), ("right", "left")):
        anchor = [f"{side}_source", f"{side}_id", f"{other}_source", "vec"]
        hit = false.join(true.select(*anchor, twin=f"{other}_id"), on=anchor)
        wrong.append(hit.select(PAIR_KEYS))
        right.append(hit.with_columns(pl.col("twin").alias(f"{other}_id")).select(PAIR_KEYS))
    kept = pred.select(PAIR_KEYS).join(pl.concat(wrong).unique(), on=PAIR_KEYS, how="anti")
    return pl.concat([kept, *right]).unique()


def errors_by_case(predicted: pl.DataFrame, truth: pl.DataFrame, cases: pl.DataFrame) -> pl.DataFrame:
    """Misses and false matches per hard-case tag, from ``cases`` = (source, source_id, cases: list[str]).

    A pair counts under every tag either of its records carries ('sequel',
    'common_title', 'translated_title', ...), so a user sees which kind of hard
    case the model gets wrong, not just how many.
    """
    pred, true = canonical_pairs(predicted.select(PAIR_KEYS)), canonical_pairs(truth.select(PAIR_KEYS))
    tagged = cases.select("source", "source_id", "cases").explode("cases").drop_nulls("cases")

    def tags(df: pl.DataFrame, what: str) -> pl.DataFrame:
        ends = []
        for side in ("left", "right"):
            ends.append(df.join(tagged, left_on=[f"{side}_source", f"{side}_id"], right_on=["source", "source_id"])
                        .select(*PAIR_KEYS, "cases"))
        return pl.concat(ends).unique().group_by("cases").len(what)

    missed = true.join(pred, on=PAIR_KEYS, how="anti")
    false = pred.join(true, on=PAIR_KEYS, how="anti")
    out = tags(true, "true_pairs").join(tags(missed, "missed"), on="cases", how="full", coalesce=True)
    out = out.join(tags(false, "false_matches"), on="cases", how="full", coalesce=True)
    return out.fill_null(0).rename({"cases": "case"}).sort("case")
