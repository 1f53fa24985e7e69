"""Counts that tell an analyst what is in a store and where it came from."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import polars as pl

from kg.store.query import frame
from kg.store.schema import TABLES


@dataclass(frozen=True)
class Stats:
    """Row counts per table, entities per type and status, edges per relation, records per source, runs."""

    tables: pl.DataFrame
    entities_by_type: pl.DataFrame
    edges_by_relation: pl.DataFrame
    records_by_source: pl.DataFrame
    runs: pl.DataFrame

    def as_dict(self) -> dict[str, list[dict]]:
        return {name: getattr(self, name).to_dicts() for name in self.__dataclass_fields__}


_TABLE_COUNTS = " UNION ALL ".join(f"SELECT '{t}' AS table_name, count(*) AS rows FROM {t}" for t in TABLES)

_RUNS_SQL = """
SELECT r.run_id, r.kind, r.merged_at, r.user_name,
       (SELECT count(*) FROM records x WHERE x.run_id = r.run_id) AS records,
       (SELECT count(*) FROM crosswalk x WHERE x.run_id = r.run_id) AS crosswalk,
       (SELECT count(*) FROM claims x WHERE x.run_id = r.run_id) AS claims,
       (SELECT count(*) FROM edges x WHERE x.first_run = r.run_id) AS new_edges
FROM runs r ORDER BY r.merged_at, r.run_id
"""


def stats(con: duckdb.DuckDBPyConnection) -> Stats:
    """All counts, read in one snapshot."""
    return Stats(
        tables=frame(con, _TABLE_COUNTS),
        entities_by_type=frame(
            con, "SELECT type, status, count(*) AS entities FROM entities GROUP BY ALL ORDER BY type, status"
        ),
        edges_by_relation=frame(
            con,
            "SELECT relation, count(*) AS edges, avg(confidence) AS mean_confidence, "
            "sum(n_evidence)::BIGINT AS evidence FROM edges GROUP BY ALL ORDER BY relation",
        ),
        records_by_source=frame(
            con,
            "SELECT r.source, count(*) AS records, count(c.entity_id) AS matched FROM records r "
            "LEFT JOIN crosswalk c USING (source, source_id) GROUP BY ALL ORDER BY r.source",
        ),
        runs=frame(con, _RUNS_SQL),
    )
