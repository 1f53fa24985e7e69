"""Labelled pairs for training and evaluation: from ground-truth match lists or from review files.

Both arrive as pair lists in either orientation; everything here first puts
pairs in canonical order so a truth pair (b, a) labels a candidate (a, b).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa

from kg.errors import KGError
from matching.blocking_report import canonical_keys, canonical_pairs

PAIR_KEYS = ["left_source", "left_id", "right_source", "right_id"]


def label_pairs(pairs: pa.Table | pl.DataFrame, truth: pl.DataFrame) -> np.ndarray:
    """1.0 for each candidate pair that is a true match, else 0.0, in the candidates' row order."""
    df = pairs if isinstance(pairs, pl.DataFrame) else pl.from_arrow(pairs)
    true = canonical_pairs(truth).with_columns(label=pl.lit(1.0))
    joined = df.select(canonical_keys()).join(true, on=PAIR_KEYS, how="left", maintain_order="left")
    return joined["label"].fill_null(0.0).to_numpy()


def crosswalk_pairs(crosswalk: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Every cross-source record pair inside one entity: what a clustering asserts pairwise."""
    cw = crosswalk if isinstance(crosswalk, pl.DataFrame) else pl.from_arrow(crosswalk)
    members = cw.select("entity_id", "source", "source_id").filter(pl.len().over("entity_id") > 1)
    pairs = members.join(members, on="entity_id", suffix="_r").filter(
        pl.col("source") < pl.col("source_r")
    )
    return pairs.select(left_source="source", left_id="source_id", right_source="source_r", right_id="source_id_r")


def read_review_labels(path: str | Path) -> pl.DataFrame:
    """Labelled pairs from a review export (Parquet or CSV: the pair keys and a 0/1 ``label``)."""
    path = Path(path)
    if not path.is_file():
        raise KGError(f"{path}: no such labels file")
    df = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    missing = [c for c in [*PAIR_KEYS, "label"] if c not in df.columns]
    if missing:
        raise KGError(f"{path}: labels file lacks column(s) {missing}; needs {PAIR_KEYS + ['label']}")
    label = df["label"].cast(pl.String).str.to_lowercase()
    bad = ~label.is_in(["0", "1", "true", "false", "0.0", "1.0"])
    if bad.any():
        row = int(bad.arg_true()[0])
        raise KGError(f"{path}: record {row + 1}, field label: {df['label'][row]!r} is not 0/1")
    return df.select(*[pl.col(c).cast(pl.String) for c in PAIR_KEYS], label=label.is_in(["1", "true", "1.0"]))


def read_truth(path: Path) -> pl.DataFrame:
    """True pairs from a truth file: pair keys, or (source, source_id, entity_id) like the sample's truth."""
    if not path.is_file():
        raise KGError(f"{path}: no such truth file")
    df = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_csv(path, infer_schema=False)
    pair_keys = ["left_source", "left_id", "right_source", "right_id"]
    if set(pair_keys) <= set(df.columns):
        return df.select(pl.col(pair_keys).cast(pl.String))
    if {"source", "source_id", "entity_id"} <= set(df.columns):
        return crosswalk_pairs(df.select(pl.col("source", "source_id", "entity_id").cast(pl.String)))
    raise KGError(f"{path}: a truth file needs {pair_keys} or (source, source_id, entity_id) columns")
