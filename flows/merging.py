"""Merging a matching run's crosswalk into a graph store.

Matching lets movie, series and episode records form one entity (the
ontology's type group: sources disagree on what a title is; the entity takes
its members' majority type), and the store accepts such entities, so the
whole crosswalk merges.

Flows merge staged (``kg.store.staged``): into a copy of the graph that then
replaces it in one rename, so analysts reading the graph from their own
processes neither block the merge nor wait for it; they see the new graph
when they next open it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from kg.store import RunInfo, merge_entities, staged
from matching.pipeline import read_records

# How long a flow's merge waits for another merge of the same graph (another flow's stage, or an in-place writer).
MERGE_WAIT_S = 600.0


def merge_run(graph: Path, folder: Path, record_names: list[str], run: RunInfo) -> dict[str, Any]:
    """Merge the run folder's records and crosswalk into ``graph``; returns the rows changed per table."""
    records = read_records([folder / name for name in record_names])
    crosswalk = pl.read_parquet(folder / "crosswalk.parquet")
    graph.parent.mkdir(parents=True, exist_ok=True)
    with staged(graph, wait=MERGE_WAIT_S) as store:
        result = merge_entities(store, records.to_arrow(), crosswalk.to_arrow(), run)
    return {"graph": str(graph), "changes": dict(result.changes)}
