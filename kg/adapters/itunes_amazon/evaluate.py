"""The iTunes-Amazon benchmark: train on train.txt, report precision/recall/F1 on valid.txt.

Protocol. The model is ``matching.model.train_model`` on the train file's
pairs: its own record-level validation split (out of train) does early
stopping and picks the threshold. valid.txt is only scored, at that
threshold; nothing about the model is chosen by looking at it. The shared
data has no test split, so figures are on valid.txt (Ditto's published ones
are on test: comparable in kind, not in the exact pairs).

The defaults in ``CONFIG`` were chosen by ``cross_validate`` (k-fold over
train.txt alone, folds by left record); see docs/benchmarks-itunes-amazon.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import pyarrow as pa

from kg.adapters.itunes_amazon.ensemble import SeedEnsemble, train_ensemble
from kg.adapters.itunes_amazon.features import SONG_FEATURES, song_pair_features
from kg.adapters.itunes_amazon.parse import LabelledPairs, read_pairs
from kg.errors import KGError
from matching.features import Feature
from matching.model import best_threshold

Variant = Literal["Structured", "Dirty"]
VARIANTS: tuple[str, ...] = ("Structured", "Dirty")
_KEYS = ["left_source", "left_id", "right_source", "right_id"]


@dataclass(frozen=True)
class Config:
    """How the model is trained: LightGBM params over ``DEFAULT_PARAMS``, rounds, members, and the feature set."""

    params: dict[str, Any] = field(default_factory=dict)
    num_boost_round: int = 400
    early_stopping: int = 30
    valid_fraction: float = 0.2
    members: int = 1
    features: tuple[Feature, ...] = SONG_FEATURES

    def seeds(self, seed: int) -> tuple[int, ...]:
        """Member seeds derived from one seed, disjoint for seeds 7, 8, 9, ..."""
        return tuple(seed * 100 + i for i in range(self.members)) if self.members > 1 else (seed,)


CONFIG = Config(params={"feature_fraction": 0.7, "num_threads": 1}, members=10)
"""Chosen by ``cross_validate`` on train.txt (docs/benchmarks-itunes-amazon.md). One thread: on ~300 pairs
threads only contend, and on a busy 2-core machine two threads made the same run 30x slower."""


def load_split(data_dir: str | Path, variant: str, split: str) -> LabelledPairs:
    """``data_dir/<variant>/<split>.txt``, parsed; an unknown variant is an error naming the known ones."""
    if variant not in VARIANTS:
        raise KGError(f"unknown iTunes-Amazon variant {variant!r}; known: {list(VARIANTS)}")
    folder = Path(data_dir) / variant
    if not folder.is_dir():
        raise KGError(f"{folder}: not found; pass the itunes-amazon folder holding Structured/ and Dirty/")
    return read_pairs(folder / f"{split}.txt")


def labels_for(features: pa.Table | pl.DataFrame, pairs: pl.DataFrame) -> np.ndarray:
    """The 0/1 label of each feature row, joined by pair keys (read_pairs guarantees one label per pair)."""
    keys = features if isinstance(features, pl.DataFrame) else pl.from_arrow(features.select(_KEYS))
    labels = pairs.select(*_KEYS, "label").unique(_KEYS)
    joined = keys.select(_KEYS).with_row_index("row").join(labels, on=_KEYS, how="left").sort("row")
    return joined["label"].to_numpy().astype(np.float32)


def _metrics(y: np.ndarray, match: np.ndarray) -> dict[str, float | int]:
    tp = int((match & (y > 0.5)).sum())
    fp, fn = int(match.sum()) - tp, int((y > 0.5).sum()) - tp
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 5), "recall": round(r, 5), "f1": round(f1, 5), "tp": tp, "fp": fp, "fn": fn}


def fit_features(features: pa.Table | pl.DataFrame, y: np.ndarray, config: Config, seed: int) -> SeedEnsemble:
    """The training procedure of ``config`` on a feature table: ``train_model`` per member seed."""
    return train_ensemble(
        features,
        y,
        seeds=config.seeds(seed),
        valid_fraction=config.valid_fraction,
        params=config.params,
        num_boost_round=config.num_boost_round,
        early_stopping=config.early_stopping,
        metadata={"benchmark": "itunes-amazon"},
    )


def fit(train: LabelledPairs, config: Config = CONFIG, seed: int = 7) -> SeedEnsemble:
    """The model of ``config`` trained on the distinct pairs of a train file."""
    features = song_pair_features(train, config.features)
    return fit_features(features, labels_for(features, train.pairs), config, seed)


def predict_lines(model: SeedEnsemble, data: LabelledPairs, config: Config = CONFIG) -> pl.DataFrame:
    """Every line of a pair file with its label, score and decision (repeated pairs score once, count per line)."""
    features = song_pair_features(data, config.features)
    scored = pl.from_arrow(features.select(_KEYS)).with_columns(score=pl.Series(model.predict(features)))
    lines = data.pairs.join(scored, on=_KEYS, how="left").sort("line")
    return lines.with_columns(match=pl.col("score") >= model.threshold)


def evaluate_itunes_amazon(
    data_dir: str | Path, variant: Variant = "Structured", seed: int = 7, *, config: Config = CONFIG
) -> dict[str, Any]:
    """Train on ``<variant>/train.txt``, report precision/recall/F1 on every line of ``<variant>/valid.txt``.

    Returns a JSON-ready dict: the figures, the model's threshold and its own
    validation F1 (from train), pair counts, and seconds (parse + features +
    training + scoring, wall clock).
    """
    started = time.perf_counter()
    train = load_split(data_dir, variant, "train")
    valid = load_split(data_dir, variant, "valid")
    model = fit(train, config, seed)
    lines = predict_lines(model, valid, config)
    y = lines["label"].to_numpy().astype(np.float32)
    return {
        "benchmark": "itunes-amazon",
        "variant": variant,
        "evaluated_on": "valid.txt (the shared data has no test split)",
        "seed": seed,
        **_metrics(y, lines["match"].to_numpy()),
        "threshold": round(model.threshold, 5),
        "model_valid_f1": model.metadata.get("valid_f1", model.metadata.get("oob_f1")),
        "members": len(model.models),
        "trees": model.metadata["trees"],
        "features": len(model.models[0].features),
        "train_pairs": train.pairs.height,
        "valid_pairs": valid.pairs.height,
        "valid_matches": int(y.sum()),
        "seconds": round(time.perf_counter() - started, 3),
    }


def cross_validate(
    data_dir: str | Path, variant: Variant, config: Config = CONFIG, *, folds: int = 5, seeds: tuple[int, ...] = (7,)
) -> dict[str, float]:
    """F1 of ``config`` by k-fold cross-validation on train.txt alone: the yardstick for choosing a config.

    Folds are by left (iTunes) record, as ``train_model``'s own split, so no
    record's pairs straddle a fold's train and test side. Each fold trains
    with ``fit``'s procedure (inner split, early stopping, threshold) and is
    scored at its own threshold; the F1 is pooled over all held-out pairs.
    Also reported: the F1 at the best single threshold over the pooled
    scores, which tells ranking quality apart from threshold noise.
    """
    train = load_split(data_dir, variant, "train")
    features = pl.from_arrow(song_pair_features(train, config.features))
    y = labels_for(features, train.pairs)
    f1s, oracle = [], []
    for seed in seeds:
        fold = features.select(pl.struct("left_source", "left_id").hash(seed) % folds).to_series().to_numpy()
        score, match = np.zeros(len(y), np.float32), np.zeros(len(y), bool)
        for k in range(folds):
            held = fold == k
            model = fit_features(features.filter(pl.Series(~held)), y[~held], config, seed)
            score[held] = model.predict(features.filter(pl.Series(held)))
            match[held] = score[held] >= model.threshold
        f1s.append(_metrics(y, match)["f1"])
        oracle.append(best_threshold(y, score)[1])
    return {"f1": round(float(np.mean(f1s)), 5), "f1_std": round(float(np.std(f1s)), 5),
            "f1_best_threshold": round(float(np.mean(oracle)), 5)}  # fmt: skip
