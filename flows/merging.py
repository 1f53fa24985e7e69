"""Merging a matching run's crosswalk into a graph store, holding back what the store cannot take yet.

Matching lets movie, series and episode records form one entity (sources
disagree on what a title is; the entity takes its members' majority type).
The store today refuses a crosswalk row whose type differs from its
record's, so such entities are held back whole: written to the run folder's
``held_back.parquet`` and counted in the merge summary, never dropped silently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from kg.store import RunInfo, Store, merge_entities
from matching.pipeline import read_records

HELD_BACK_FILE = "held_back.parquet"


def split_mergeable(records: pl.DataFrame, crosswalk: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(records, crosswalk) the store accepts, and the held-back crosswalk rows (entities of mixed types)."""
    typed = crosswalk.join(records.select("source", "source_id", record_type="type"), on=["source", "source_id"],
                           how="left")
    mixed = typed.filter((pl.col("record_type") != pl.col("type")).any().over("entity_id"))
    held = mixed.select("entity_id").unique()
    keep = crosswalk.join(held, on="entity_id", how="anti")
    kept_records = records.join(keep.select("source", "source_id"), on=["source", "source_id"], how="semi")
    return kept_records, keep, mixed


def merge_run(graph: Path, folder: Path, record_names: list[str], run: RunInfo) -> dict[str, Any]:
    """Merge the run folder's records and crosswalk into ``graph``; returns rows changed and what was held back."""
    records = read_records([folder / name for name in record_names])
    crosswalk = pl.read_parquet(folder / "crosswalk.parquet")
    records, crosswalk, held = split_mergeable(records, crosswalk)
    held.write_parquet(folder / HELD_BACK_FILE)
    graph.parent.mkdir(parents=True, exist_ok=True)
    with Store.open(graph) as store:
        result = merge_entities(store, records.to_arrow(), crosswalk.to_arrow(), run)
    return {
        "graph": str(graph),
        "changes": dict(result.changes),
        "held_back_records": held.height,
        "held_back_entities": held["entity_id"].n_unique(),
    }
