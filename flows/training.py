"""Training the pairwise model in a flow: labelled candidates with a held-out part, the fit, its evaluation.

The held-out part is chosen before anything is fitted and never seen by the
fit (``train_model`` then splits the rest again for early stopping and the
threshold). With ground truth the split is by true *entity*, so no title has
records on both sides; with a review export (no entities) it is by record.
Recall on the held-out part counts true pairs blocking never proposed as misses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flows.inputs import Inputs, prepare_inputs, read_pairs
from kg.errors import KGError
from matching.cluster import cluster_pairs
from matching.evaluate import bcubed, by_source_pair, pairwise_metrics, pr_curve, worst_errors
from matching.holdout import truth_entities
from matching.labels import PAIR_KEYS, label_pairs, read_review_labels
from matching.model import PairModel, load_model, score_pairs, split_by_record, train_model
from matching.pipeline import MatchConfig, read_records
from matching.train import candidate_features, labelled_features, train_on_truth

FEATURES_FILE = "training/features.parquet"
ENTITIES_FILE = "training/entities.parquet"
MODEL_FILE = "model.json"
_EXTRA = ["label", "held_out"]


def _records(folder: Path, inputs: Inputs) -> pl.DataFrame:
    return read_records([folder / name for name in inputs.records])


def labelled_candidates(
    folder: Path,
    inputs: Inputs,
    config: MatchConfig,
    *,
    labels_file: str | None = None,
    held_out: float = 0.3,
    seed: int = 7,
) -> dict[str, int]:
    """Write ``training/features.parquet``: FEATURES plus ``label`` and ``held_out``; returns the counts.

    Labels come from a review export when ``labels_file`` is given, else from
    the run's truth (every candidate pair blocking proposes, labelled).
    """
    if not 0 < held_out < 1:
        raise KGError(f"held_out must be a fraction between 0 and 1, got {held_out}")
    records = _records(folder, inputs)
    if labels_file:
        features, y = labelled_features(records, read_review_labels(labels_file))
        frame = pl.from_arrow(features)
        held = split_by_record(frame, held_out, seed).valid
    else:
        truth = read_pairs(folder, inputs.truth)
        if truth is None:
            raise KGError("training needs labels: ground truth (sources file `truth`, or the sample) or --labels FILE")
        frame = pl.from_arrow(candidate_features(records, config))
        y = label_pairs(frame, truth)
        entities = truth_entities(records, truth).with_columns(
            held_out=(pl.col("entity_id").hash(seed) % 10_000) < int(held_out * 10_000)
        )
        entities.write_parquet(_mkparent(folder / ENTITIES_FILE))
        side = entities.select("source", "source_id", "held_out")
        sides = frame.select(PAIR_KEYS).join(
            side, left_on=["left_source", "left_id"], right_on=["source", "source_id"], how="left",
            maintain_order="left",
        ).join(
            side, left_on=["right_source", "right_id"], right_on=["source", "source_id"], how="left",
            maintain_order="left", suffix="_r",
        )
        # pairs straddling the split are neither trained on nor evaluated: they would leak an entity across it
        straddle = (sides["held_out"] != sides["held_out_r"]).to_numpy()
        held = sides["held_out"].to_numpy() & ~straddle
        frame, y, held = frame.filter(pl.Series(~straddle)), y[~straddle], held[~straddle]
    out = frame.with_columns(label=pl.Series(y, dtype=pl.Float32), held_out=pl.Series(held, dtype=pl.Boolean))
    out.write_parquet(_mkparent(folder / FEATURES_FILE))
    return {
        "pairs": out.height, "matches": int(y.sum()), "held_out_pairs": int(held.sum()),
        "held_out_matches": int(y[held].sum()),
    }


def _mkparent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def fit(folder: Path, *, seed: int = 7, source: str = "") -> PairModel:
    """Fit LightGBM on the pairs not held out (with its own validation split); save ``model.json``."""
    frame = pl.read_parquet(folder / FEATURES_FILE).filter(~pl.col("held_out"))
    model = train_model(frame.drop(_EXTRA), frame["label"].to_numpy(), seed=seed,
                        metadata={"trained_by": source} if source else None)
    model.save(folder / MODEL_FILE)
    return model


def evaluate(model: PairModel, folder: Path, inputs: Inputs, *, max_cluster: int = 50) -> dict[str, Any]:
    """Figures of ``model`` on the held-out pairs: pairwise, per source pair, PR curve, errors, clustering."""
    frame = pl.read_parquet(folder / FEATURES_FILE).filter(pl.col("held_out"))
    y = frame["label"].to_numpy()
    scores = pl.from_arrow(score_pairs(frame.drop(_EXTRA), model))
    predicted = scores.filter("match").select(PAIR_KEYS)
    truth = read_pairs(folder, inputs.truth) if (folder / ENTITIES_FILE).exists() else None
    report: dict[str, Any] = {
        "model_id": model.model_id,
        "threshold": round(model.threshold, 4),
        "held_out_pairs": frame.height,
        "held_out_matches": int(y.sum()),
        "pr_curve": pr_curve(y, scores["score"].to_numpy()).to_dicts(),
        "worst_errors": worst_errors(scores, y, model.threshold).to_dicts(),
        "feature_gain": _gains(model),
    }
    if truth is None:  # review labels: figures over the labelled held-out pairs only
        positives = frame.filter(pl.col("label") > 0.5).select(PAIR_KEYS)
        report["protocol"] = "held-out labelled pairs (split by record); recall against labelled matches"
        report["pairwise"] = pairwise_metrics(predicted, positives)
        return report
    entities = pl.read_parquet(folder / ENTITIES_FILE).filter("held_out")
    held_records = entities.select("source", "source_id")
    test_truth = truth.join(held_records, left_on=["left_source", "left_id"], right_on=["source", "source_id"],
                            how="semi").join(held_records, left_on=["right_source", "right_id"],
                                             right_on=["source", "source_id"], how="semi")
    records = _records(folder, inputs).join(held_records, on=["source", "source_id"], how="semi")
    clustered = cluster_pairs(scores, records, run_id="evaluation", max_size=max_cluster)
    report["protocol"] = (
        "held-out true entities (split by entity hash); recall against every true pair among held-out records, "
        "including pairs blocking never proposed"
    )
    report["pairwise"] = pairwise_metrics(predicted, test_truth)
    report["by_source_pair"] = by_source_pair(predicted, test_truth)
    report["clustering"] = {
        "bcubed": bcubed(pl.from_arrow(clustered.crosswalk), entities.select("source", "source_id", "entity_id")),
        "entities": clustered.n_entities,
        "split_clusters": clustered.n_split,
    }
    return report


def _gains(model: PairModel) -> list[dict[str, Any]]:
    gain = model.booster.feature_importance("gain")
    order = np.argsort(-gain, kind="stable")
    return [{"feature": model.features[i], "gain": round(float(gain[i]), 1)} for i in order]


# -- the model a matching run uses ------------------------------------------------------------------

BOOTSTRAP = ""
FROM_TRAINFLOW = "trainflow"


def bootstrap_model(folder: Path, config: MatchConfig, *, entities: int, seed: int) -> PairModel:
    """Train on a freshly generated sample catalog with its truth (another seed than the data's)."""
    inputs = prepare_inputs(folder, None, sample_entities=entities, sample_seed=seed)
    truth = read_pairs(folder, inputs.truth)
    return train_on_truth(_records(folder, inputs), truth, config, metadata={"trained_by": f"sample seed {seed}"})


def trainflow_model(branch: str) -> tuple[PairModel, str]:
    """The model of the latest successful TrainFlow run on ``branch`` (never another branch's)."""
    from metaflow import Flow, namespace
    from metaflow.exception import MetaflowNotFound

    namespace(f"project_branch:{branch}")
    try:
        run = Flow("TrainFlow").latest_successful_run
    except MetaflowNotFound:
        run = None
    if run is None:
        raise KGError(
            f"no successful TrainFlow run on branch {branch!r}: run `python flows/train_flow.py run` on the same "
            "branch first, or give --model PATH (or leave --model out to train on a generated sample)"
        )
    return run.data.model, run.pathspec


def resolve_model(
    spec: str, folder: Path, config: MatchConfig, *, branch: str, bootstrap_entities: int, bootstrap_seed: int
) -> dict[str, Any]:
    """Put the run's model into ``folder/model.json``; returns where it came from.

    ``spec``: a model file path; ``"trainflow"`` for this branch's latest
    TrainFlow model; ``""`` to train one on a generated sample (another seed).
    """
    if spec == BOOTSTRAP:
        model = bootstrap_model(folder / "bootstrap", config, entities=bootstrap_entities, seed=bootstrap_seed)
        origin = f"trained on a generated sample ({bootstrap_entities} entities, seed {bootstrap_seed})"
    elif spec == FROM_TRAINFLOW:
        model, pathspec = trainflow_model(branch)
        origin = f"TrainFlow run {pathspec}"
    else:
        model, origin = load_model(spec), str(spec)
    model.save(folder / MODEL_FILE)
    return {"model_id": model.model_id, "origin": origin, "threshold": model.threshold,
            "valid_f1": model.metadata.get("valid_f1")}
