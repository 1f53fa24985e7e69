"""Why a pair matched or not: the model's per-feature contributions (LightGBM's SHAP values) for one pair."""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from kg.errors import KGError
from matching.features import model_features, pair_features, prepare_features
from matching.model import PairModel, score_pairs
from schemas.tables import CANDIDATE_PAIRS, conform


def explain_pair(
    records: pl.DataFrame, model: PairModel, left: tuple[str, str], right: tuple[str, str]
) -> dict[str, Any]:
    """Score, decision and every feature's value and contribution, strongest contribution first.

    Works for any two records, blocked together or not, so a user can ask why
    an expected match was never made. The contributions are the full model's;
    where the model's screen rejected the pair, ``screen`` says so and the
    score is the screen's (``matching.model.screened_scores``).
    """
    keys = records.select("source", "source_id")
    for source, source_id in (left, right):
        if keys.filter((pl.col("source") == source) & (pl.col("source_id") == source_id)).is_empty():
            raise KGError(f"record {source}:{source_id} is not in the records given")
    pair = pl.DataFrame(
        {"left_source": [left[0]], "left_id": [left[1]], "right_source": [right[0]], "right_id": [right[1]],
         "partition": [0], "rule": ["explain"]},
        schema_overrides={"partition": pl.Int32},
    )
    features = pl.from_arrow(
        pair_features(
            conform(pair.to_arrow(), CANDIDATE_PAIRS),
            prepared=prepare_features(records),
            features=model_features(model),
        )
    )
    contrib = model.contributions(features).row(0, named=True)
    scored = pl.from_arrow(score_pairs(features, model))
    score, match = float(scored["score"][0]), bool(scored["match"][0])
    screen = None
    if model.screen is not None:
        p = model.screen.probability(features)
        screen = {"probability": float(p[0]), "cut": model.screen.cut, "rejected": bool(model.screen.rejects(p)[0])}
    rows = []
    for name in model.features:
        value = features[name][0]
        rows.append({
            "feature": name,
            "value": None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value),
            "contribution": float(contrib[name]),
        })
    rows.sort(key=lambda r: abs(r["contribution"]), reverse=True)
    return {
        "left": ":".join(left), "right": ":".join(right), "score": score, "threshold": model.threshold,
        "match": match, "bias": float(contrib["bias"]), "model_id": model.model_id, "screen": screen,
        "features": rows,
    }
