"""DDL of the graph store, its version stamp and the migrations between versions.

The schema is versioned because a graph outlives the code that wrote it: a
store written by a newer toolkit must be refused (not misread), and an older
one is upgraded in one transaction by the ``MIGRATIONS`` steps. Each step is
a list of SQL statements and moves the store from ``version - 1`` to
``version``; ``SCHEMA_VERSION`` is the version this code reads and writes.

Every table is documented in ``docs/graph-store.md``; the comments here say
what the keys are for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

META_TABLE = "kg_meta"

# Columns of the source records kept in the store, in RECORDS order. Quoted in
# SQL because ``cast`` and ``end`` are SQL keywords.
RECORD_COLUMNS: tuple[str, ...] = (
    "source",
    "source_id",
    "type",
    "name",
    "aliases",
    "year",
    "end_year",
    "runtime_min",
    "countries",
    "languages",
    "genres",
    "directors",
    "cast",
    "writers",
    "professions",
    "parent",
    "season",
    "episode",
    "abstract",
    "line",
)

# Normalisation used for names and for queries against them: lower case,
# accents stripped, every run of non-letters/digits one space. Kept in the
# database as a macro so Python and SQL can never normalise differently.
NORM_MACRO = (
    "CREATE OR REPLACE MACRO kg_norm(s) AS "
    "trim(regexp_replace(lower(strip_accents(s)), '[^\\p{L}\\p{N}]+', ' ', 'g'))"
)

_V1: list[str] = [
    f"CREATE TABLE {META_TABLE} (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    # One row per applied migration: the audit trail of the store's own shape.
    """CREATE TABLE schema_history (
        version INTEGER PRIMARY KEY,
        description VARCHAR NOT NULL,
        applied_at TIMESTAMP NOT NULL)""",
    # Who merged what, when, with which configuration.
    """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY,
        kind VARCHAR NOT NULL,
        started_at TIMESTAMP,
        merged_at TIMESTAMP NOT NULL,
        user_name VARCHAR,
        host VARCHAR,
        tool_version VARCHAR,
        config JSON,
        note VARCHAR)""",
    # Source records as last merged: the provenance of every entity.
    """CREATE TABLE records (
        source VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        name VARCHAR,
        aliases VARCHAR[],
        year INTEGER,
        end_year INTEGER,
        runtime_min FLOAT,
        countries VARCHAR[],
        languages VARCHAR[],
        genres VARCHAR[],
        directors VARCHAR[],
        "cast" VARCHAR[],
        writers VARCHAR[],
        professions VARCHAR[],
        parent VARCHAR,
        season INTEGER,
        episode INTEGER,
        abstract VARCHAR,
        line BIGINT,
        run_id VARCHAR NOT NULL,
        PRIMARY KEY (source, source_id))""",
    # Resolved entities; the id never changes once given out.
    """CREATE TABLE entities (
        entity_id VARCHAR PRIMARY KEY,
        type VARCHAR NOT NULL,
        name VARCHAR,
        year INTEGER,
        end_year INTEGER,
        n_records INTEGER NOT NULL,
        status VARCHAR NOT NULL,
        first_run VARCHAR NOT NULL,
        last_run VARCHAR NOT NULL)""",
    # Which entity each source record belongs to (latest matching run wins).
    """CREATE TABLE crosswalk (
        source VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL,
        entity_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL,
        PRIMARY KEY (source, source_id))""",
    # Ids a matching run proposed that the store mapped onto an existing entity.
    """CREATE TABLE id_aliases (
        alias_id VARCHAR PRIMARY KEY,
        entity_id VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL)""",
    # Names and aliases of entities, one row per record that gives them.
    """CREATE TABLE names (
        entity_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        norm VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL,
        PRIMARY KEY (entity_id, source, source_id, kind, name))""",
    # Every relation row an extraction run produced, accepted or rejected, with its evidence.
    """CREATE TABLE claims (
        claim_id VARCHAR PRIMARY KEY,
        edge_id VARCHAR,
        subject VARCHAR NOT NULL,
        subject_type VARCHAR NOT NULL,
        relation VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        subject_id VARCHAR,
        object_id VARCHAR,
        confidence FLOAT,
        doc_id VARCHAR NOT NULL,
        evidence VARCHAR,
        start INTEGER,
        "end" INTEGER,
        status VARCHAR NOT NULL,
        reason VARCHAR,
        model VARCHAR,
        prompt_version VARCHAR,
        run_id VARCHAR NOT NULL)""",
    # One typed, directed edge per (subject, relation, object); evidence lives in claims.
    """CREATE TABLE edges (
        edge_id VARCHAR PRIMARY KEY,
        subject_id VARCHAR NOT NULL,
        relation VARCHAR NOT NULL,
        object_id VARCHAR NOT NULL,
        confidence FLOAT,
        n_evidence INTEGER NOT NULL,
        first_run VARCHAR NOT NULL,
        last_run VARCHAR NOT NULL)""",
    # Human review of an edge or claim (correct / wrong / unsure) for calibration and audits.
    """CREATE TABLE reviews (
        target_id VARCHAR NOT NULL,
        target_kind VARCHAR NOT NULL,
        label VARCHAR NOT NULL,
        reviewer VARCHAR NOT NULL,
        note VARCHAR,
        created_at TIMESTAMP NOT NULL,
        PRIMARY KEY (target_id, reviewer))""",
    "CREATE INDEX edges_subject ON edges (subject_id)",
    "CREATE INDEX edges_object ON edges (object_id)",
    "CREATE INDEX claims_edge ON claims (edge_id)",
    "CREATE INDEX crosswalk_entity ON crosswalk (entity_id)",
    "CREATE INDEX names_norm ON names (norm)",
    NORM_MACRO,
]


# Version 2: the store at millions of rows. Primary keys go (DuckDB checks a
# key with an ART insert per row, about 1.5 us per key and index, which made
# a 10M-relation merge spend minutes on constraints); merges keep keys unique
# themselves (anti-joins on the natural key, one writer per file), and the
# lookup indexes below are plain ART indexes that a bulk merge rebuilds after
# commit instead of updating row by row. Reviews become labels on record
# pairs, entity pairs, edges and claims; ``name_tokens`` and ``token_df``
# index names by word for ``find``.
_KEYLESS: dict[str, str] = {
    "records": """
        source VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        name VARCHAR,
        aliases VARCHAR[],
        year INTEGER,
        end_year INTEGER,
        runtime_min FLOAT,
        countries VARCHAR[],
        languages VARCHAR[],
        genres VARCHAR[],
        directors VARCHAR[],
        "cast" VARCHAR[],
        writers VARCHAR[],
        professions VARCHAR[],
        parent VARCHAR,
        season INTEGER,
        episode INTEGER,
        abstract VARCHAR,
        line BIGINT,
        run_id VARCHAR NOT NULL""",
    "entities": """
        entity_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        name VARCHAR,
        year INTEGER,
        end_year INTEGER,
        n_records INTEGER NOT NULL,
        status VARCHAR NOT NULL,
        first_run VARCHAR NOT NULL,
        last_run VARCHAR NOT NULL""",
    "crosswalk": """
        source VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL,
        entity_id VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL""",
    "id_aliases": """
        alias_id VARCHAR NOT NULL,
        entity_id VARCHAR NOT NULL,
        run_id VARCHAR NOT NULL""",
    "names": """
        entity_id VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        norm VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        source_id VARCHAR NOT NULL""",
    "claims": """
        claim_id VARCHAR NOT NULL,
        edge_id VARCHAR,
        subject VARCHAR NOT NULL,
        subject_type VARCHAR NOT NULL,
        relation VARCHAR NOT NULL,
        object VARCHAR NOT NULL,
        object_type VARCHAR NOT NULL,
        subject_id VARCHAR,
        object_id VARCHAR,
        confidence FLOAT,
        doc_id VARCHAR NOT NULL,
        evidence VARCHAR,
        start INTEGER,
        "end" INTEGER,
        status VARCHAR NOT NULL,
        reason VARCHAR,
        model VARCHAR,
        prompt_version VARCHAR,
        run_id VARCHAR NOT NULL,
        merge_id BIGINT NOT NULL""",
    "edges": """
        edge_id VARCHAR NOT NULL,
        subject_id VARCHAR NOT NULL,
        relation VARCHAR NOT NULL,
        object_id VARCHAR NOT NULL,
        confidence FLOAT,
        n_evidence INTEGER NOT NULL,
        first_run VARCHAR NOT NULL,
        last_run VARCHAR NOT NULL""",
}

# Words of a normalised name that ``find`` looks names up by: every token of
# two or more characters, and single digits ("2" in "Knives Out 2").
TOKENS_MACRO = (
    "CREATE OR REPLACE MACRO kg_tokens(norm) AS "
    "list_distinct(regexp_extract_all(norm, '[^ ]{2,}|\\b[0-9]\\b'))"
)

_V2: list[str] = [
    # Same columns, no primary key: copy each table over (its v1 indexes go with the old table).
    *(
        stmt
        for table, columns in _KEYLESS.items()
        for stmt in (
            f"CREATE TABLE _kg_v2_{table} ({columns})",
            f"INSERT INTO _kg_v2_{table} SELECT *{', 0' if table == 'claims' else ''} FROM {table}",
            f"DROP TABLE {table}",
            f"ALTER TABLE _kg_v2_{table} RENAME TO {table}",
        )
    ),
    # Merges are numbered; a claim records the merge that added it (v1 claims: merge 0).
    f"INSERT INTO {META_TABLE} VALUES ('last_merge', '0')",
    # One row per (target, reviewer): the reviewer's current label; pairs are stored in canonical order.
    """CREATE TABLE review_labels (
        target_kind VARCHAR NOT NULL,
        left_source VARCHAR,
        left_id VARCHAR NOT NULL,
        right_source VARCHAR,
        right_id VARCHAR,
        label VARCHAR NOT NULL,
        reviewer VARCHAR NOT NULL,
        note VARCHAR,
        created_at TIMESTAMP NOT NULL)""",
    "INSERT INTO review_labels SELECT target_kind, NULL, target_id, NULL, NULL, label, reviewer, note, created_at "
    "FROM reviews",
    "DROP TABLE reviews",
    "ALTER TABLE review_labels RENAME TO reviews",
    TOKENS_MACRO,
    # The words of every name of every active entity, with the entity's type and year for filtering.
    """CREATE TABLE name_tokens (
        token VARCHAR NOT NULL,
        entity_id VARCHAR NOT NULL,
        norm VARCHAR NOT NULL,
        type VARCHAR NOT NULL,
        year INTEGER)""",
    "INSERT INTO name_tokens SELECT DISTINCT unnest(kg_tokens(n.norm)) AS token, n.entity_id, n.norm, e.type, e.year "
    "FROM names n JOIN entities e USING (entity_id) ORDER BY token",
    # How many name_tokens rows each word has: rare words select candidates, common ones only score them.
    "CREATE TABLE token_df (token VARCHAR NOT NULL, df BIGINT NOT NULL)",
    "INSERT INTO token_df SELECT token, count(*) FROM name_tokens GROUP BY token ORDER BY token",
    "DROP INDEX IF EXISTS names_norm",
    "CREATE INDEX entities_id ON entities (entity_id)",
    "CREATE INDEX records_source_id ON records (source_id)",
    "CREATE INDEX crosswalk_entity ON crosswalk (entity_id)",
    "CREATE INDEX id_aliases_alias ON id_aliases (alias_id)",
    "CREATE INDEX names_entity ON names (entity_id)",
    "CREATE INDEX name_tokens_token ON name_tokens (token)",
    "CREATE INDEX token_df_token ON token_df (token)",
    "CREATE INDEX claims_edge ON claims (edge_id)",
    "CREATE INDEX edges_subject ON edges (subject_id)",
    "CREATE INDEX edges_object ON edges (object_id)",
]


@dataclass(frozen=True)
class Migration:
    """One step of the schema: applying ``statements`` to a store at ``version - 1`` gives ``version``."""

    version: int
    description: str
    statements: tuple[str, ...]


_V3 = [
    # A retired entity points at the entity that took most of its records (null while active, or when its
    # records left the store): an analyst holding an old id can follow it.
    "ALTER TABLE entities ADD COLUMN merged_into VARCHAR",
]


# Version 4, for bulk load speed (a 10M-relation load spent about a tenth of its time on what this changes):
# * the md5 keys of claims and edges are stored uncompressed. They are random hex, which DuckDB's string
#   compression only halves, at about a second per 9M values written;
# * claims get ``edge_key``, the first 16 hex digits of ``edge_id`` as a number, and the evidence index is built
#   on it: an 8-byte key builds and updates faster than a 32-character one. A look-up checks ``edge_id`` too;
# * name words come from a split on spaces, not a regex: the same words in a third of the time.
# Both tables are copied over (columns unchanged, claims' new one last) and their indexes rebuilt.
EDGE_KEY = "('0x' || left({}, 16))::UBIGINT"  # edge_key of the md5 hex edge_id given as {}


def edge_key(edge_id: str) -> int:
    """EDGE_KEY in Python: the first 16 hex digits of an md5 edge id as a number."""
    return int(edge_id[:16], 16)


TOKENS_BY_SPLIT_MACRO = (
    "CREATE OR REPLACE MACRO kg_tokens(norm) AS "
    "list_distinct([w FOR w IN string_split(norm, ' ') IF length(w) >= 2 OR w BETWEEN '0' AND '9'])"
)


def _uncompressed(columns: str, keys: tuple[str, ...]) -> str:
    for key in keys:
        columns = re.sub(rf"^(\s*{key} VARCHAR)", r"\1 USING COMPRESSION uncompressed", columns, count=1, flags=re.M)
    return columns


_V4 = [
    f"CREATE TABLE _kg_v4_claims ({_uncompressed(_KEYLESS['claims'], ('claim_id', 'edge_id'))},\n        "
    "edge_key UBIGINT)",
    f"INSERT INTO _kg_v4_claims SELECT *, {EDGE_KEY.format('edge_id')} FROM claims",
    f"CREATE TABLE _kg_v4_edges ({_uncompressed(_KEYLESS['edges'], ('edge_id',))})",
    "INSERT INTO _kg_v4_edges SELECT * FROM edges",
    *(stmt for table in ("claims", "edges")
      for stmt in (f"DROP TABLE {table}", f"ALTER TABLE _kg_v4_{table} RENAME TO {table}")),
    "CREATE INDEX claims_edge ON claims (edge_key)",
    "CREATE INDEX edges_subject ON edges (subject_id)",
    "CREATE INDEX edges_object ON edges (object_id)",
    TOKENS_BY_SPLIT_MACRO,
]

MIGRATIONS: list[Migration] = [
    Migration(1, "initial graph store", tuple(_V1)),
    Migration(2, "keyless bulk tables with rebuildable indexes, review labels, name token index", tuple(_V2)),
    Migration(3, "entities.merged_into: where a retired entity's records went", tuple(_V3)),
    Migration(4, "uncompressed md5 keys, claims.edge_key as the evidence index, name words by split",
              tuple(_V4)),
]

SCHEMA_VERSION: int = MIGRATIONS[-1].version

# Lookup indexes of the current version: name -> (table, columns). A bulk merge
# drops a table's indexes and ``ensure_indexes`` rebuilds any that are missing.
INDEXES: dict[str, tuple[str, str]] = {
    "entities_id": ("entities", "entity_id"),
    "records_source_id": ("records", "source_id"),
    "crosswalk_entity": ("crosswalk", "entity_id"),
    "id_aliases_alias": ("id_aliases", "alias_id"),
    "names_entity": ("names", "entity_id"),
    "name_tokens_token": ("name_tokens", "token"),
    "token_df_token": ("token_df", "token"),
    "claims_edge": ("claims", "edge_key"),
    "edges_subject": ("edges", "subject_id"),
    "edges_object": ("edges", "object_id"),
}

# Tables an analyst sees, in dependency order (exports and stats walk this list).
TABLES: tuple[str, ...] = (
    "runs",
    "records",
    "entities",
    "crosswalk",
    "id_aliases",
    "names",
    "name_tokens",
    "token_df",
    "claims",
    "edges",
    "reviews",
)
