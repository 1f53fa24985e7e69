"""The graph store: one embedded DuckDB file holding entities, relations and their provenance.

``Store.open`` opens (or creates) the file and ``migrate`` upgrades an
older one; ``staged`` hands out a copy to merge into that then replaces the
file whole, so readers in other processes keep reading meanwhile;
``merge_entities`` and ``merge_relations`` write the graph,
``add_review`` / ``add_reviews`` write analysts' labels, and
``kg.graph.Graph`` is the analyst API on top. See ``docs/graph-store.md`` for the tables and the guarantees.
"""

from kg.store.db import DEFAULT_PATH, Migrated, Store, migrate
from kg.store.errors import StoreError, UnknownEntity
from kg.store.merge import MergeResult, merge_entities, merge_relations
from kg.store.reviews import LabelExport, add_review, add_reviews, export_match_labels
from kg.store.runs import RunInfo
from kg.store.schema import SCHEMA_VERSION, TABLES
from kg.store.staging import staged

__all__ = [
    "DEFAULT_PATH",
    "SCHEMA_VERSION",
    "TABLES",
    "LabelExport",
    "MergeResult",
    "Migrated",
    "RunInfo",
    "Store",
    "StoreError",
    "UnknownEntity",
    "add_review",
    "add_reviews",
    "export_match_labels",
    "merge_entities",
    "merge_relations",
    "migrate",
    "staged",
]
