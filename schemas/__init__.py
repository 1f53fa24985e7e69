"""Contracts between stages: Arrow table schemas and the ontology.

A leaf package: it imports nothing from the rest of the toolkit, so every
other package can depend on it without cycles.
"""

from schemas.ontology import Ontology, load_ontology
from schemas.tables import (
    CANDIDATE_PAIRS,
    CROSSWALK,
    FEATURES,
    MENTIONS,
    QUARANTINE,
    RECORDS,
    RELATIONS,
    SCORES,
    TABLES,
    SchemaMismatch,
    conform,
    empty,
    schema_version,
)

__all__ = [
    "CANDIDATE_PAIRS",
    "CROSSWALK",
    "FEATURES",
    "MENTIONS",
    "QUARANTINE",
    "RECORDS",
    "RELATIONS",
    "SCORES",
    "TABLES",
    "Ontology",
    "SchemaMismatch",
    "conform",
    "empty",
    "load_ontology",
    "schema_version",
]
