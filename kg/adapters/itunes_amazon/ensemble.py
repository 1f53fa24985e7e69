"""Seed-averaged pair models with one out-of-bag threshold, for small training sets.

With ~300 labelled pairs, ``train_model``'s validation split holds ~15
matches: the threshold it picks swings from 0.1 to 0.99 with the seed, and
that swing, more than the trees, moves F1. Averaging models trained on
different splits smooths the scores; the ensemble's threshold is then chosen
on out-of-bag scores: each training pair scored by the members that held it
out (their validation rows), averaged, and cut at the best F1. Every number
comes from the training data; nothing is tuned on the data being evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from matching.model import PairModel, best_threshold, split_by_record, train_model


@dataclass(frozen=True)
class SeedEnsemble:
    """Pair models whose probabilities are averaged; ``threshold`` applies to the average."""

    models: tuple[PairModel, ...]
    threshold: float
    metadata: dict[str, Any]

    def predict(self, features: pa.Table | pl.DataFrame) -> np.ndarray:
        """Mean match probability over the members."""
        return np.mean([m.predict(features) for m in self.models], axis=0).astype(np.float32)


def train_ensemble(
    features: pa.Table | pl.DataFrame,
    labels: np.ndarray,
    *,
    seeds: tuple[int, ...],
    valid_fraction: float = 0.2,
    params: dict[str, Any] | None = None,
    **train_kwargs: Any,
) -> SeedEnsemble:
    """One ``train_model`` per seed (each its own record-level split), threshold on out-of-bag averages.

    With one seed this is ``train_model`` itself, threshold included.
    """
    df = features if isinstance(features, pl.DataFrame) else pl.from_arrow(features)
    y = np.asarray(labels, dtype=np.float32)
    # no screens: the ensemble averages its members' full-model probabilities, and ~300 pairs cost nothing to score
    models = tuple(
        train_model(
            df, y, valid_fraction=valid_fraction, seed=s, params={**(params or {}), "seed": s}, screen=False,
            **train_kwargs,
        )
        for s in seeds
    )
    if len(models) == 1:
        return SeedEnsemble(models, models[0].threshold, {"members": 1, **models[0].metadata})
    total, count = np.zeros(len(y)), np.zeros(len(y))
    for seed, model in zip(seeds, models, strict=True):
        if model.metadata["valid_pairs"] == model.metadata["train_pairs"]:
            continue  # too few matches to hold any out: it validated on its training rows, none is out of bag
        held = split_by_record(df, valid_fraction, seed).valid
        total[held] += model.predict(df.filter(pl.Series(held)))
        count[held] += 1
    bag = count > 0
    threshold, f1 = best_threshold(y[bag], (total[bag] / np.maximum(count[bag], 1)).astype(np.float32))
    meta = {
        "members": len(models),
        "seeds": list(seeds),
        "oob_pairs": int(bag.sum()),
        "oob_matches": int(y[bag].sum()),
        "oob_f1": round(f1, 5),
        "trees": [m.metadata["trees"] for m in models],
        "member_thresholds": [round(m.threshold, 5) for m in models],
    }
    return SeedEnsemble(models, threshold, meta)
