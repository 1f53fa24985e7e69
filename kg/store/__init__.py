"""The graph store: one embedded DuckDB file holding entities, relations and their provenance.

``Store.open`` opens (creates, migrates) the file; ``merge_entities`` and
``merge_relations`` are the only writers; ``kg.graph.Graph`` is the analyst
API on top. See ``docs/graph-store.md`` for the tables and the guarantees.
"""

from kg.store.db import DEFAULT_PATH, Store
from kg.store.errors import StoreError, UnknownEntity
from kg.store.merge import MergeResult, merge_entities, merge_relations
from kg.store.runs import RunInfo
from kg.store.schema import SCHEMA_VERSION, TABLES

__all__ = [
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "TABLES",
    "MergeResult",
    "RunInfo",
    "Store",
    "StoreError",
    "UnknownEntity",
    "merge_entities",
    "merge_relations",
]
