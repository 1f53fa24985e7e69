"""The pairwise classifier: LightGBM on pair features, with its feature list, threshold and provenance.

A model file is one JSON document: LightGBM's own text model plus what a later
run needs to trust it — the feature names in order, the FEATURES schema
version, the threshold chosen on validation, and how it was trained. Scoring
refuses a table whose features differ from the trained ones: a model silently
reading a renamed or newly added feature column is a wrong graph, not an error.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from kg.errors import KGError
from matching.features import cheap_feature_names
from schemas.tables import FEATURES, SCORES, conform, schema_version

FORMAT = "kg-pair-model"
FORMAT_VERSION = 1
_PAIR = ["left_source", "left_id", "right_source", "right_id"]
_KEYS = [*_PAIR, "partition"]

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.1,
    "num_leaves": 15,
    "min_data_in_leaf": 10,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.9,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "num_threads": 2,
    "seed": 7,
    "deterministic": True,
    "force_row_wise": True,
}
"""Shallow trees and early stopping: pair features are few and strong, and scoring speed is the model's cost."""


SCREEN_MIN_ACCEPTED = 1000
"""Validation pairs the full model must accept before a screen is trained. The screen's cut is the lowest
screen probability among them, and an unseen accepted pair falls below the lowest of n with a chance of about
1 in n + 1: 0.1% at 1,000. Trained on the tests' sample (135 matches among 474 validation pairs), a screen
rejected 20 of the 786 pairs the full model accepts among another seed's records, 14 of them true: F1 0.996 ->
0.991."""

SCREEN_PARAMS: dict[str, Any] = {"learning_rate": 0.3}
"""The screen only has to put plain non-matches below every validated accept: coarser steps get there in a
third of the trees (1M records: 34 trees against 94, 77.6% of the pairs rejected either way, scoring 0.3 s
against 0.72 s for 1.04M pairs)."""


class ModelError(KGError):
    """A model file that cannot be used: wrong format or version, or features it was not trained on."""


def _probabilities(booster: lgb.Booster, x: np.ndarray) -> np.ndarray:
    """float32 match probabilities of a design matrix's rows (none for no rows)."""
    if len(x) == 0:
        return np.zeros(0, dtype=np.float32)
    # as many threads as polars may use: a pool worker has its share of the cores, not all of them
    return booster.predict(x, num_threads=pl.thread_pool_size()).astype(np.float32)


@dataclass(frozen=True)
class Screen:
    """A second, small model on the cheap features only: it rejects the plain non-matches before the costly
    features are computed.

    Most candidate pairs are plainly different records, and the costly
    features (``matching.features.Feature.costly``: token set and sort,
    aliases, abstracts, the minor set features) only matter for the others.
    A pair whose screen probability is below ``cut`` is rejected; every
    other pair gets the costly features and the full model, so each accepted
    pair and its score are the full model's. Training puts the cut at the
    lowest screen probability of a validation pair the full model accepts.

    The screen only rejects. Letting it also accept (above the highest
    probability of a validation pair the full model rejects) was faster,
    but accepted pairs then carried the screen's scores, and clustering
    ranks a record's candidates by score. On moviegraph (seeds 1, 2, 7,
    three source pairs, before ``SCREEN_MIN_ACCEPTED``) the nine clustered
    F1 figures lost 0.0148 in all with it, 0.0069 rejecting only.
    """

    booster: lgb.Booster = field(repr=False)
    features: tuple[str, ...]
    cut: float

    def probability(self, features: pl.DataFrame) -> np.ndarray:
        """The screen's match probability per row of a table holding (at least) its features."""
        missing = [f for f in self.features if f not in features.columns]
        if missing:
            raise ModelError(f"the screen needs features missing here: {missing}")
        return _probabilities(self.booster, features.select(self.features).to_numpy().astype(np.float32, copy=False))

    def rejects(self, probability: np.ndarray) -> np.ndarray:
        """The rows the screen rejects, from their ``probability``: the rest go to the full model."""
        return probability < self.cut

    def text(self) -> str:
        return self.booster.model_to_string() + f"|{self.cut:.6f}"


@dataclass(frozen=True)
class PairModel:
    """A trained pairwise classifier and everything needed to apply it safely."""

    booster: lgb.Booster = field(repr=False)
    features: tuple[str, ...]
    threshold: float
    metadata: dict[str, Any]
    screen: Screen | None = None

    @cached_property
    def model_id(self) -> str:
        """Content hash of the trees, threshold and screen: the id stamped on every score it produces (once per
        model: writing the trees out as text takes ~1 ms, and every partition asks several times)."""
        text = self.booster.model_to_string() + f"|{self.threshold:.6f}"
        if self.screen is not None:
            text += "|" + self.screen.text()
        return "m-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def matrix(self, features: pa.Table | pl.DataFrame) -> np.ndarray:
        """The float32 design matrix in training order; refuses any other feature set."""
        df = features if isinstance(features, pl.DataFrame) else pl.from_arrow(features)
        present = [c for c in df.columns if c not in _KEYS]
        missing = [f for f in self.features if f not in present]
        unknown = [f for f in present if f not in self.features]
        if missing or unknown:
            raise ModelError(
                f"model {self.model_id} was trained on {len(self.features)} features; "
                f"missing here: {missing or 'none'}; not trained on: {unknown or 'none'}"
            )
        return df.select(self.features).to_numpy().astype(np.float32, copy=False)

    def predict(self, features: pa.Table | pl.DataFrame) -> np.ndarray:
        """Match probability per row; NaN features are LightGBM's missing values."""
        return _probabilities(self.booster, self.matrix(features))

    def contributions(self, features: pa.Table | pl.DataFrame) -> pl.DataFrame:
        """Per-row SHAP-style contributions (log-odds) of every feature, plus the bias and the raw value."""
        x = self.matrix(features)
        contrib = self.booster.predict(x, pred_contrib=True)
        cols = {name: contrib[:, i] for i, name in enumerate(self.features)}
        return pl.DataFrame({**cols, "bias": contrib[:, -1], "log_odds": contrib.sum(axis=1)})

    def save(self, path: str | Path) -> Path:
        """Write the model as one JSON file (atomic rename, so a crash never leaves half a model)."""
        path = Path(path)
        doc = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "features_schema": list(schema_version(FEATURES)),
            "features": list(self.features),
            "threshold": self.threshold,
            "model_id": self.model_id,
            "metadata": self.metadata,
            "lightgbm": self.booster.model_to_string(),
            "screen": None if self.screen is None else {
                "features": list(self.screen.features), "cut": self.screen.cut,
                "lightgbm": self.screen.booster.model_to_string(),
            },
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(path)
        return path


def load_model(path: str | Path) -> PairModel:
    """Read a model file, refusing other formats, versions and feature-schema versions by name."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file (train one with `kg train`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not a model file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelError(f"{path}: not a {FORMAT} file")
    if doc.get("format_version") != FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format version {doc.get('format_version')}, this toolkit reads {FORMAT_VERSION}; retrain"
        )
    if tuple(doc.get("features_schema", ())) != schema_version(FEATURES):
        raise ModelError(
            f"{path}: trained on features schema {doc.get('features_schema')}, "
            f"this toolkit computes {list(schema_version(FEATURES))}; retrain"
        )
    booster = lgb.Booster(model_str=doc["lightgbm"])
    screen = doc.get("screen")  # absent in files written before screens: the full model scores every pair
    if screen is not None:
        screen = Screen(lgb.Booster(model_str=screen["lightgbm"]), tuple(screen["features"]), float(screen["cut"]))
    return PairModel(booster, tuple(doc["features"]), float(doc["threshold"]), doc["metadata"], screen)


@dataclass(frozen=True)
class Split:
    """Row masks of a validation split."""

    train: np.ndarray
    valid: np.ndarray


def split_by_record(features: pa.Table | pl.DataFrame, valid_fraction: float, seed: int) -> Split:
    """Validation rows chosen by the left record's hash: no record's pairs straddle train and valid.

    A pair-level split leaks: the same record's near-duplicate pairs land on
    both sides and the validation F1 (and so the threshold) comes out optimistic.
    """
    df = features if isinstance(features, pl.DataFrame) else pl.from_arrow(features)
    bucket = df.select(pl.struct("left_source", "left_id").hash(seed) % 10_000).to_series().to_numpy()
    valid = bucket < int(valid_fraction * 10_000)
    return Split(~valid, valid)


def best_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) maximising F1 over every distinct score; vectorised over the sorted scores.

    Every threshold between the best cut's lowest accepted score and the next
    lower score gives the same validation F1; the middle of that gap commits
    least to the validation sample (the lowest accepted score itself would
    reject an unseen match scoring a hair below it: on a well separated
    sample that put the threshold at 0.99).
    """
    if len(y) == 0 or y.sum() == 0:
        return 0.5, 0.0
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order].astype(np.float64)
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    f1 = 2 * tp / (k + ys.sum())
    last = np.r_[ps[1:] != ps[:-1], True]  # only cut between distinct scores
    f1 = np.where(last, f1, -1)
    i = int(np.argmax(f1))
    below = ps[i + 1] if i + 1 < len(ps) else ps[i]
    return float((ps[i] + below) / 2), float(f1[i])


def conflicting_negatives(features: pl.DataFrame, y: np.ndarray) -> np.ndarray:
    """Negatives whose feature vector equals a positive of the same record: labels no model can learn.

    A source with indistinguishable duplicates (TVDb lists one person once per
    credit) gets one of them labelled the match and the rest non-matches; those
    twins teach the model that identical records do not match. Dropping them
    from training (never from evaluation) removes the contradiction.
    """
    names = [c for c in features.columns if c not in _KEYS]
    vec = features.select(pl.struct(pl.col(names).fill_nan(None)).hash(11)).to_series()
    df = features.select("left_source", "left_id", "right_source", "right_id").with_columns(
        vec=vec, pos=pl.Series(y > 0.5)
    )
    left = pl.col("pos").any().over("left_source", "left_id", "right_source", "vec")
    right = pl.col("pos").any().over("right_source", "right_id", "left_source", "vec")
    return df.select(~pl.col("pos") & (left | right)).to_series().to_numpy()


def train_model(
    features: pa.Table | pl.DataFrame,
    labels: np.ndarray | pl.Series,
    *,
    valid_fraction: float = 0.2,
    seed: int = 7,
    params: dict[str, Any] | None = None,
    num_boost_round: int = 200,
    early_stopping: int = 20,
    metadata: dict[str, Any] | None = None,
    screen: bool = True,
    screen_min_accepted: int = SCREEN_MIN_ACCEPTED,
) -> PairModel:
    """Fit on labelled pairs with a record-level validation split, early stopping and a validated threshold.

    Trees are the cost of scoring (LightGBM predicts ~0.2M rows/s with 200 trees
    on 2 cores), so rounds are capped and stop once validation loss gains
    less than 1e-4: separable data would otherwise grow trees for nothing.
    Class imbalance (blocking leaves many more non-matches than matches) is
    handled by ``scale_pos_weight`` = negatives / positives on the training
    side; the threshold is then chosen on validation for the best F1, so the
    weighting shifts only the trees, not the operating point.

    With ``screen``, a second model on the features that are not costly
    (``Screen``) is trained on the same split, where the features hold both
    kinds and validation holds ``screen_min_accepted`` pairs the full model
    accepts.
    """
    if isinstance(features, pa.Table):
        features = pl.from_arrow(conform(features, FEATURES, extra=pa.float32()))
    df = features
    y = np.asarray(labels, dtype=np.float32)
    if len(y) != df.height:
        raise ValueError(f"{df.height} feature rows but {len(y)} labels")
    names = tuple(c for c in df.columns if c not in _KEYS)
    if y.sum() == 0 or y.sum() == len(y):
        raise KGError(f"training needs both matches and non-matches; got {int(y.sum())} of {len(y)} labelled pairs")
    conflicts = conflicting_negatives(df, y)
    if conflicts.any():
        df, y = df.filter(pl.Series(~conflicts)), y[~conflicts]
    # in pair order, not in the order the partitions listed them: bagging draws rows by position, so the same
    # labelled pairs give the same model however the run was partitioned
    order = df.select(pl.arg_sort_by(_PAIR)).to_series().to_numpy()
    df, y = df[order], y[order]
    split = split_by_record(df, valid_fraction, seed)
    held_out = y[split.valid].sum() > 0 and y[split.train].sum() > 0
    if not held_out:
        split = Split(np.ones(len(y), bool), np.ones(len(y), bool))  # too few positives to hold some back
    x = df.select(names).to_numpy().astype(np.float32)
    pos = max(float(y[split.train].sum()), 1.0)
    conf = {**DEFAULT_PARAMS, **(params or {}), "scale_pos_weight": (split.train.sum() - pos) / pos}
    started = time.perf_counter()
    fit = partial(_fit, x, y, split, names, num_boost_round=num_boost_round, early_stopping=early_stopping)
    booster = fit(names, conf=conf)
    p_valid = booster.predict(x[split.valid])
    threshold, f1 = best_threshold(y[split.valid], p_valid)
    accepted = p_valid >= threshold
    cheap = cheap_feature_names(names) if screen and held_out and accepted.sum() >= screen_min_accepted else ()
    screened = None
    if 0 < len(cheap) < len(names):
        screened = _screen(fit(cheap, conf={**conf, **SCREEN_PARAMS}), x[split.valid], names, cheap, accepted)
    meta = {
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "train_pairs": int(split.train.sum()),
        "train_matches": int(y[split.train].sum()),
        "valid_pairs": int(split.valid.sum()),
        "valid_matches": int(y[split.valid].sum()),
        "valid_f1": round(f1, 5),
        "dropped_conflicting_negatives": int(conflicts.sum()),
        "trees": booster.num_trees(),
        "seconds": round(time.perf_counter() - started, 3),
        "params": {k: v for k, v in conf.items() if k != "verbose"},
        **({"screen": screened[1]} if screened else {}),
        **(metadata or {}),
    }
    return PairModel(booster, names, threshold, meta, screened[0] if screened else None)


def _fit(
    x: np.ndarray,
    y: np.ndarray,
    split: Split,
    names: tuple[str, ...],
    columns: tuple[str, ...],
    *,
    conf: dict[str, Any],
    num_boost_round: int,
    early_stopping: int,
) -> lgb.Booster:
    """A booster on ``columns`` of ``x``, stopped early on the validation rows and cut to its best round."""
    x = x[:, [names.index(c) for c in columns]] if columns != names else x
    train_set = lgb.Dataset(x[split.train], y[split.train], feature_name=list(columns), free_raw_data=False)
    valid_set = lgb.Dataset(x[split.valid], y[split.valid], reference=train_set)
    booster = lgb.train(
        conf,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=[valid_set],
        callbacks=[lgb.early_stopping(early_stopping, min_delta=1e-4, verbose=False)],
    )
    return booster if booster.best_iteration <= 0 else lgb.Booster(
        model_str=booster.model_to_string(num_iteration=booster.best_iteration)
    )


def _screen(
    booster: lgb.Booster, x_valid: np.ndarray, names: tuple[str, ...], cheap: tuple[str, ...], accepted: np.ndarray
) -> tuple[Screen, dict[str, Any]]:
    """The screen with its cut set on validation (``screen_cut``), and how much of validation it rejects."""
    p = _probabilities(booster, x_valid[:, [names.index(c) for c in cheap]])
    screen = Screen(booster, cheap, screen_cut(p, accepted))
    return screen, {
        "features": len(cheap), "trees": booster.num_trees(), "cut": screen.cut,
        "valid_rejected": round(float(screen.rejects(p).mean()), 5),
    }


def screen_cut(p: np.ndarray, accepted: np.ndarray) -> float:
    """The lowest screen probability ``p`` of a validation pair the full model accepts: below it the screen
    rejected nothing the full model would accept. With no accepted pair, 0 (reject nothing: no evidence)."""
    return float(p[accepted].min()) if accepted.any() else 0.0


def score_pairs(features: pa.Table | pl.DataFrame, model: PairModel) -> pa.Table:
    """SCORES for a FEATURES table: probability, the decision, and the model's id (``screened_scores`` where the
    model has a screen: the same scores a run's partitions give)."""
    df = features if isinstance(features, pl.DataFrame) else pl.from_arrow(features)
    score = screened_scores(df, model, lambda rows: df[rows]) if model.screen is not None else model.predict(df)
    return scores_table(df.select(_KEYS).to_arrow(), score, model)


def screened_scores(
    cheap: pl.DataFrame, model: PairModel, costly: Callable[[np.ndarray], pl.DataFrame]
) -> np.ndarray:
    """Match probabilities where the screen rejects what it can from ``cheap`` (the pairs with the screen's
    features) and the full model scores the rest, whose full features ``costly(rows)`` gives (rows: positions
    in ``cheap``).

    A rejected pair's score is the screen's probability, kept below the
    threshold, so ``match`` is always ``score >= threshold``.
    """
    screen = model.screen
    if screen is None:
        raise ValueError("screened_scores needs a model with a screen")
    p = screen.probability(cheap)
    rest = np.flatnonzero(~screen.rejects(p))
    score = np.minimum(p, np.nextafter(np.float32(model.threshold), np.float32(0)))
    if len(rest):
        score[rest] = model.predict(costly(rest))
    return score


def scores_table(pairs: pa.Table, score: np.ndarray, model: PairModel) -> pa.Table:
    """SCORES of ``pairs`` (any table holding the pair keys and partition: CANDIDATE_PAIRS, FEATURES) scored
    ``score`` by ``model``; the key columns are taken as they are, not copied."""
    score = pa.array(score, pa.float32())
    decided = {"score": score, "match": pc.greater_equal(score, model.threshold),
               "model_id": pa.repeat(model.model_id, len(score))}
    return conform(pa.table({**{k: pairs[k] for k in _KEYS}, **decided}), SCORES)
