"""Merging a matching run's crosswalk into a graph store.

Matching lets movie, series and episode records form one entity (the
ontology's type group: sources disagree on what a title is; the entity takes
its members' majority type), and the store accepts such entities, so the
whole crosswalk merges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from kg.store import RunInfo, Store, merge_entities
from matching.pipeline import read_records


def merge_run(graph: Path, folder: Path, record_names: list[str], run: RunInfo) -> dict[str, Any]:
    """Merge the run folder's records and crosswalk into ``graph``; returns the rows changed per table."""
    records = read_records([folder / name for name in record_names])
    crosswalk = pl.read_parquet(folder / "crosswalk.parquet")
    graph.parent.mkdir(parents=True, exist_ok=True)
    with Store.open(graph) as store:
        result = merge_entities(store, records.to_arrow(), crosswalk.to_arrow(), run)
    return {"graph": str(graph), "changes": dict(result.changes)}
