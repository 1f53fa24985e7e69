"""How good is the blocking: candidate counts, block sizes, balance, and recall when truth is known.

Reduction ratio is measured against the pairs a brute-force matcher would
compare (same type, different sources unless within-source matching is on),
so it tells how much work blocking saves, not how many pairs exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

_KEYS = ["left_source", "left_id", "right_source", "right_id"]


@dataclass(frozen=True)
class BlockingReport:
    """Summary figures; ``by_source_pair`` and ``by_partition`` hold the breakdowns."""

    n_records: int
    n_pairs: int
    candidates_per_record: float  # mean number of partners per record (each pair counts for both)
    candidates_p99: float
    candidates_max: int
    partition_skew: float  # max / median pairs per partition
    reduction_ratio: float
    pair_completeness: float | None  # share of true matches among candidates; None without truth
    by_source_pair: pl.DataFrame
    by_partition: pl.DataFrame


def canonical_pairs(pairs: pa.Table | pl.DataFrame) -> pl.DataFrame:
    """Pair keys ordered so (left_source, left_id) < (right_source, right_id), like blocking emits them."""
    df = pairs if isinstance(pairs, pl.DataFrame) else pl.from_arrow(pairs)
    return df.select(canonical_keys()).unique()


def canonical_keys() -> list[pl.Expr]:
    """The four pair-key columns in canonical order, row for row (``canonical_pairs`` without the dedupe)."""
    swap = (pl.col("left_source") > pl.col("right_source")) | (
        (pl.col("left_source") == pl.col("right_source")) & (pl.col("left_id") > pl.col("right_id"))
    )
    return [
        pl.when(swap).then("right_source").otherwise("left_source").alias("left_source"),
        pl.when(swap).then("right_id").otherwise("left_id").alias("left_id"),
        pl.when(swap).then("left_source").otherwise("right_source").alias("right_source"),
        pl.when(swap).then("left_id").otherwise("right_id").alias("right_id"),
    ]


def block_size_histogram(units: pl.DataFrame) -> pl.DataFrame:
    """Units by size in powers of two: (size_from, units, records). Windows count as units.

    ``units``: ``record_units`` of the records under a plan (a run folder keeps this as ``block_sizes.parquet``).
    """
    sizes = units.lazy().group_by("unit").len("size")  # streaming: 10M records' 66M memberships in less time
    return (
        sizes.with_columns(size_from=(2 ** pl.col("size").log(2).floor()).cast(pl.Int64))
        .group_by("size_from")
        .agg(units=pl.len(), records=pl.col("size").sum())
        .sort("size_from")
        .collect(engine="streaming")
    )


def _brute_force_pairs(records: pl.DataFrame, within_source: bool) -> pl.DataFrame:
    counts = records.group_by("type", "source").len("n")
    per_type = counts.group_by("type").agg(
        total=pl.col("n").sum().cast(pl.Float64), sq=(pl.col("n").cast(pl.Float64) ** 2).sum()
    )
    if within_source:
        return per_type.select(pairs=(pl.col("total") * (pl.col("total") - 1) / 2).sum())
    return per_type.select(pairs=((pl.col("total") ** 2 - pl.col("sq")) / 2).sum())


def blocking_report(
    pairs: pa.Table,
    records: pa.Table | pl.DataFrame,
    truth: pa.Table | pl.DataFrame | None = None,
    *,
    within_source: bool = False,
) -> BlockingReport:
    """Figures for CANDIDATE_PAIRS ``pairs`` over ``records``; ``truth`` holds the four pair-key columns."""
    recs = records if isinstance(records, pl.DataFrame) else pl.from_arrow(records)
    df = pl.from_arrow(pairs)
    ends = pl.concat(
        [
            df.select(source="left_source", source_id="left_id"),
            df.select(source="right_source", source_id="right_id"),
        ]
    )
    per_record = recs.select("source", "source_id").join(
        ends.group_by("source", "source_id").len("k"), on=["source", "source_id"], how="left"
    )
    k = per_record["k"].fill_null(0)
    by_partition = df.group_by("partition").len("pairs").sort("partition")
    median = by_partition["pairs"].median() or 1
    brute = _brute_force_pairs(recs, within_source).item() or 1.0
    source_pair = ["left_source", "right_source"]
    by_source_pair = df.group_by(source_pair).len("pairs")
    completeness = None
    if truth is not None:
        true = canonical_pairs(truth)
        hit = true.join(df.select(_KEYS).with_columns(hit=pl.lit(True)), on=_KEYS, how="left")
        completeness = hit["hit"].is_not_null().mean()
        recall = hit.group_by(source_pair).agg(
            true_pairs=pl.len(), pair_completeness=pl.col("hit").is_not_null().mean()
        )
        by_source_pair = by_source_pair.join(recall, on=source_pair, how="full", coalesce=True)
    per_source = per_record.group_by("source").len("records")
    by_source_pair = (
        by_source_pair.join(per_source.rename({"source": "left_source", "records": "left_records"}),
                            on="left_source", how="left")
        .join(per_source.rename({"source": "right_source", "records": "right_records"}),
              on="right_source", how="left")
        .with_columns(per_record=2 * pl.col("pairs") / (pl.col("left_records") + pl.col("right_records")))
        .sort(source_pair)
    )  # fmt: skip
    return BlockingReport(
        n_records=recs.height,
        n_pairs=df.height,
        candidates_per_record=float(k.mean() or 0.0),
        candidates_p99=float(k.quantile(0.99) or 0.0),
        candidates_max=int(k.max() or 0),
        partition_skew=float(by_partition["pairs"].max() or 0) / median,
        reduction_ratio=1.0 - df.height / brute,
        pair_completeness=completeness,
        by_source_pair=by_source_pair,
        by_partition=by_partition,
    )
