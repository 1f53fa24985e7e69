"""Training data for the pairwise model: candidate pairs labelled from ground truth, or reviewed pairs.

Training on *candidate* pairs (what blocking proposes) rather than random
pairs matters: the model must learn to separate the near-misses blocking lets
through ("Knives Out" vs "Knives Out 2"), not easy non-matches it never sees.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from matching.blocking import PartitionPlan, all_candidate_pairs
from matching.features import pair_features, prepare_features
from matching.labels import PAIR_KEYS, label_pairs
from matching.model import PairModel, train_model
from matching.pipeline import DEFAULT_CONFIG, MatchConfig
from schemas.tables import CANDIDATE_PAIRS, conform


def candidate_features(
    records: pl.DataFrame, config: MatchConfig = DEFAULT_CONFIG, plan: PartitionPlan | None = None
) -> pa.Table:
    """FEATURES of every candidate pair of ``records`` (all partitions, in this process)."""
    plan = plan or config.plan(records)
    return pair_features(all_candidate_pairs(records, plan), prepared=prepare_features(records))


def labelled_features(records: pl.DataFrame, labels: pl.DataFrame) -> tuple[pa.Table, np.ndarray]:
    """FEATURES and 0/1 labels for explicitly labelled pairs (a review export), whether blocked or not."""
    pairs = labels.select(*PAIR_KEYS, partition=pl.lit(0, pl.Int32), rule=pl.lit("labelled"))
    known = records.select("source", "source_id")
    for side in ("left", "right"):
        keys = [f"{side}_source", f"{side}_id"]
        missing = pairs.join(known, left_on=keys, right_on=["source", "source_id"], how="anti")
        if not missing.is_empty():
            row = missing.row(0, named=True)
            raise ValueError(
                f"labels: {side} record ({row[f'{side}_source']}, {row[f'{side}_id']}) is not in the records "
                f"({missing.height} labelled pairs refer to unknown records)"
            )
    features = pair_features(conform(pairs.to_arrow(), CANDIDATE_PAIRS), prepared=prepare_features(records))
    return features, labels["label"].cast(pl.Float32).to_numpy()


def train_on_truth(
    records: pl.DataFrame, truth: pl.DataFrame, config: MatchConfig = DEFAULT_CONFIG, *, seed: int = 7, **kwargs
) -> PairModel:
    """Block ``records``, label the candidates with the true pairs, fit the model."""
    features = candidate_features(records, config)
    return train_model(features, label_pairs(features, truth), seed=seed, **kwargs)
