"""Exports: Parquet per table, Neo4j bulk-import CSVs, GraphML or JSON for small subgraphs.

Table exports stream Arrow record batches from DuckDB into the writer, so a
10M-edge store is written without holding it in memory, and file paths
never go into SQL text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import duckdb
import networkx as nx
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from kg.store.errors import StoreError
from kg.store.query import Subgraph
from kg.store.schema import TABLES

FORMATS = ("parquet", "neo4j", "graphml", "json")
BATCH_ROWS = 100_000

# Headers follow `neo4j-admin database import full`: id:ID / :LABEL for nodes,
# :START_ID / :END_ID / :TYPE for relationships; typed properties as name:type.
NEO4J_NODES_SQL = """
SELECT entity_id AS "id:ID", name, type, year AS "year:int", end_year AS "end_year:int",
       status, n_records AS "n_records:int", merged_into,
       'Entity;' || upper(type[1]) || type[2:] AS ":LABEL"
FROM entities ORDER BY entity_id
"""
NEO4J_RELATIONSHIPS_SQL = """
SELECT subject_id AS ":START_ID", object_id AS ":END_ID", upper(relation) AS ":TYPE",
       edge_id, confidence AS "confidence:float", n_evidence AS "n_evidence:int"
FROM edges ORDER BY edge_id
"""


def _reader(con: duckdb.DuckDBPyConnection, sql: str) -> pa.RecordBatchReader:
    try:
        return con.sql(sql).to_arrow_reader(BATCH_ROWS)
    except duckdb.Error as exc:
        raise StoreError(f"export query failed: {exc}") from exc


def export_parquet(
    con: duckdb.DuckDBPyConnection, out_dir: str | Path, tables: Iterable[str] = TABLES
) -> list[Path]:
    """Write each store table to ``out_dir/<table>.parquet``; returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        if table not in TABLES:
            raise StoreError(f"unknown table {table!r}; tables: {list(TABLES)}")
        reader = _reader(con, f"SELECT * FROM {table}")  # table name from the TABLES constant
        path = out / f"{table}.parquet"
        with pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
            for batch in reader:
                writer.write_batch(batch)
        written.append(path)
    return written


def export_neo4j(con: duckdb.DuckDBPyConnection, out_dir: str | Path) -> list[Path]:
    """Write ``nodes.csv`` and ``relationships.csv`` for ``neo4j-admin database import full``.

    Import with ``neo4j-admin database import full --nodes=nodes.csv
    --relationships=relationships.csv --multiline-fields=true neo4j``
    (names may hold quotes and newlines; fields are quoted where needed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, sql in (("nodes.csv", NEO4J_NODES_SQL), ("relationships.csv", NEO4J_RELATIONSHIPS_SQL)):
        reader = _reader(con, sql)
        path = out / name
        with pacsv.CSVWriter(path, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch)
        written.append(path)
    return written


def subgraph_to_networkx(sub: Subgraph) -> nx.MultiDiGraph:
    """A MultiDiGraph keyed by entity id; edges keyed by edge id, attributes from the store (no nulls)."""
    graph = nx.MultiDiGraph()
    for node in sub.nodes.to_dicts():
        graph.add_node(node.pop("entity_id"), **{k: v for k, v in node.items() if v is not None})
    for edge in sub.edges.to_dicts():
        s, o, key = edge.pop("subject_id"), edge.pop("object_id"), edge["edge_id"]
        graph.add_edge(s, o, key=key, **{k: v for k, v in edge.items() if v is not None})
    return graph


def export_subgraph(sub: Subgraph, path: str | Path, fmt: str = "graphml") -> Path:
    """Write a (small) subgraph as GraphML or as JSON ``{"nodes": [...], "edges": [...]}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "graphml":
        nx.write_graphml(subgraph_to_networkx(sub), path)
    elif fmt == "json":
        doc = {"nodes": sub.nodes.to_dicts(), "edges": sub.edges.to_dicts()}
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    else:
        raise StoreError(f"subgraph format must be 'graphml' or 'json', not {fmt!r}")
    return path
