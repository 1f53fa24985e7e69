"""Merging matching output (records + crosswalk) and extraction output (relations) into the store.

Both merges are one DuckDB transaction over DuckDB's zero-copy scan of the
incoming Arrow table, written as a handful of set-based statements (joins
over whole tables, never a Python loop over rows), and both are idempotent
by construction:

* every stored row has a natural key (record: source + source_id; crosswalk:
  the same; edge: md5 of subject, relation, object; claim: md5 of the
  relation row's identifying fields); a merge compares the incoming rows with
  the stored ones on that key and writes only rows that are new or differ,
  so merging the same run twice changes no row. The tables carry no primary
  key constraint (checking one costs an index insert per row); merges are the
  only writers, one at a time per file (DuckDB's file lock between processes,
  ``Store``'s lock within one), and every write goes through a key
  comparison, so keys stay unique;
* derived tables (entities, names, name tokens) are recomputed only for the
  keys the merge touched, from the stored rows; edges add the new claims'
  evidence to the stored counts (claims are only ever added), so the result
  does not depend on how often or in which order the same input arrives;
* entity ids are stable: an id the matching engine proposes is kept when the
  store knows it, and a new id whose records already belong to one stored
  entity inherits that entity's id (recorded in ``id_aliases``).

Every check that can fail runs inside the transaction before COMMIT, so a
``StoreError`` (or a crash, or ``kill -9``) leaves the store as it was.

Bulk merges: a merge that grows a table by ``BULK_FRACTION`` or more (and by
at least ``BULK_MIN_ROWS`` rows) drops that table's lookup indexes just
before its transaction and rebuilds them right after it, because DuckDB
builds an index over committed rows several times faster than it updates
one row by row. Around the transaction the data is exact and queries are
correct, only slower; a process killed there leaves the indexes to the next
read-write ``Store.open``, which rebuilds whatever is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from kg.store.db import Store, first
from kg.store.errors import StoreError
from kg.store.runs import RunInfo, record_run
from kg.store.schema import EDGE_KEY, RECORD_COLUMNS
from schemas.ontology import Ontology, load_ontology
from schemas.tables import CROSSWALK, RECORDS, RELATIONS, SchemaMismatch, conform

_SHOW = 5  # how many offending keys an error message lists

# A merge adding at least this share of a table's rows (and BULK_MIN_ROWS rows) rebuilds its indexes after commit.
BULK_FRACTION = 0.2
BULK_MIN_ROWS = 100_000

_Q = [f'"{c}"' for c in RECORD_COLUMNS]
_RECORD_COLS = ", ".join(_Q)
_RECORD_VALUES = [c for c in _Q if c not in ('"source"', '"source_id"')]
_RECORD_CHANGED = " OR ".join(f"s.{c} IS DISTINCT FROM r.{c}" for c in _RECORD_VALUES)

STATUSES = ("accepted", "rejected")


@dataclass
class MergeResult:
    """What a merge changed, per table: rows inserted, updated or deleted; and the indexes it rebuilt."""

    run_id: str
    changes: dict[str, int] = field(default_factory=dict)
    rebuilt_indexes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        """Rows changed in all tables; 0 for a re-merge of the same run."""
        return sum(self.changes.values())


# -- shared checks ---------------------------------------------------------------------------------


def _conform(table: pa.Table, schema: pa.Schema, what: str) -> pa.Table:
    if not isinstance(table, pa.Table):
        raise StoreError(f"{what}: expected a pyarrow.Table, got {type(table).__name__}")
    try:
        return conform(table, schema)
    except SchemaMismatch as exc:
        raise StoreError(f"{what} table has the wrong schema: {exc}") from exc


def _check_run_ids(run_ids: set[str], run: RunInfo, what: str) -> None:
    others = sorted(r for r in run_ids if r != run.run_id)
    if others:
        raise StoreError(
            f"{what}: rows carry run_id {others[:_SHOW]} but are merged as run {run.run_id!r}; "
            "merge each run's rows with its own RunInfo"
        )


def _check_types(values: set[str], ontology: Ontology, what: str) -> None:
    unknown = sorted(values - set(ontology.concrete_types))
    if unknown:
        raise StoreError(f"{what} unknown entity type(s) {unknown[:_SHOW]}; known: {sorted(ontology.concrete_types)}")


def _check_allowed(combos: set[tuple[str, str, str]], ontology: Ontology, what: str) -> None:
    """Check each distinct (relation, subject type, object type) once: a handful, not one per row."""
    bad = sorted(c for c in combos if not ontology.allows(*c))
    if bad:
        shown = ", ".join(f"{s} -{r}-> {o}" for r, s, o in bad[:_SHOW])
        raise StoreError(f"{what}: relation(s) not allowed by the ontology: {shown}")


def _fail_if_rows(con: duckdb.DuckDBPyConnection, sql: str, message: str, params: list | dict | None = None) -> None:
    """Raise ``message`` (formatted with the first offending rows) when ``sql`` returns any row."""
    rows = con.execute(f"SELECT * FROM ({sql}) LIMIT {_SHOW}", params or []).fetchall()
    if rows:
        shown = ", ".join(str(r if len(r) > 1 else r[0]) for r in rows)
        raise StoreError(message.format(rows=shown))


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    row = first(con, sql, params)
    return int(row[0]) if row else 0


# -- bulk merges -----------------------------------------------------------------------------------


def _merging(
    store: Store,
    result: MergeResult,
    incoming: dict[str, int],
    write: Callable[[duckdb.DuckDBPyConnection], None],
) -> MergeResult:
    """Run ``write(con)`` as the merge's transaction, inside the store's write lock.

    A table that grows by ``BULK_FRACTION`` (and ``BULK_MIN_ROWS`` rows) or
    more loses its lookup indexes before the transaction (in their own
    commit: dropped inside it, DuckDB logs the whole insert instead of
    writing it once) and gets them back after it, whether the merge commits
    or rolls back.
    """
    with store.write_lock():
        dropped = store.drop_indexes(_bulk_tables(store, incoming))
        try:
            with store.transaction() as con:
                write(con)
        finally:
            if dropped:
                result.rebuilt_indexes = store.ensure_indexes()
    return result


def _bulk_tables(store: Store, incoming: dict[str, int]) -> list[str]:
    sizes = store.table_rows()
    return [t for t, n in incoming.items() if n >= BULK_MIN_ROWS and n >= BULK_FRACTION * sizes.get(t, 0)]


# -- entities --------------------------------------------------------------------------------------


def merge_entities(
    store: Store,
    records: pa.Table,
    crosswalk: pa.Table,
    run: RunInfo,
    *,
    ontology: Ontology | None = None,
) -> MergeResult:
    """Merge source records and the matching run's crosswalk into entities, names and provenance.

    ``records`` (RECORDS schema) are upserted by (source, source_id);
    ``crosswalk`` (CROSSWALK schema, every row stamped ``run.run_id``) maps
    records to entity ids. A crosswalk row may name a record merged earlier.
    Entities touched by the merge get their type, canonical name (the name
    most of their records give) and year (likewise) recomputed; entities left
    without records are marked ``retired``, never deleted, so edges and ids
    stay valid.
    """
    ontology = ontology or load_ontology()
    records = _conform(records, RECORDS, "records")
    crosswalk = _conform(crosswalk, CROSSWALK, "crosswalk")

    result = MergeResult(run.run_id)
    n = max(records.num_rows, crosswalk.num_rows)
    incoming = {"records": records.num_rows, "crosswalk": crosswalk.num_rows, "entities": n,
                "id_aliases": crosswalk.num_rows, "names": n, "name_tokens": n}

    groups = pa.table({"type": list(ontology.groups), "grp": list(ontology.groups.values())},
                      schema=pa.schema([("type", pa.string()), ("grp", pa.string())]))

    def write(con: duckdb.DuckDBPyConnection) -> None:
        con.register("_kg_in_records", records)
        con.register("_kg_in_crosswalk", crosswalk)
        con.register("_kg_groups", groups)
        try:
            _check_run_ids({r[0] for r in con.execute("SELECT DISTINCT run_id FROM _kg_in_crosswalk").fetchall()},
                           run, "crosswalk")
            for table in ("records", "crosswalk"):
                types = {r[0] for r in con.execute(f"SELECT DISTINCT type FROM _kg_in_{table}").fetchall()}
                _check_types(types, ontology, f"{table}: column 'type' has")
            _validate_entity_inputs(con)
            result.changes["runs"] = record_run(con, run)
            result.changes["records"] = _upsert_records(con, run)
            result.changes["id_aliases"] = _resolve_ids(con, run)
            result.changes["crosswalk"] = _upsert_crosswalk(con)
            result.changes["entities"] = _upsert_entities(con, run, ontology)
            result.changes["names"] = _sync_names(con)
            result.changes["name_tokens"] = _sync_tokens(con)
        finally:
            con.unregister("_kg_in_records")
            con.unregister("_kg_in_crosswalk")
            con.unregister("_kg_groups")

    return _merging(store, result, incoming, write)


# Two types an entity may mix: equal, or in one type group of the ontology (registered as _kg_groups).
_COMPATIBLE = ("coalesce({a} = {b} OR "
               "(SELECT grp FROM _kg_groups WHERE type = {a}) = (SELECT grp FROM _kg_groups WHERE type = {b}), false)")


def _validate_entity_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("_kg_in_records", "_kg_in_crosswalk"):
        _fail_if_rows(
            con,
            f"SELECT source, source_id, count(*) FROM {table} GROUP BY ALL HAVING count(*) > 1",
            f"{table.removeprefix('_kg_in_')}: duplicate (source, source_id) key(s): {{rows}}",
        )
    _fail_if_rows(
        con,
        "SELECT c.entity_id, list(DISTINCT c.type ORDER BY c.type) FROM _kg_in_crosswalk c SEMI JOIN ("
        "SELECT entity_id FROM _kg_in_crosswalk GROUP BY entity_id HAVING min(type) <> max(type)) USING (entity_id) "
        "GROUP BY c.entity_id ORDER BY c.entity_id",
        "crosswalk: one entity id given several types: {rows}",
    )
    _fail_if_rows(
        con,
        "SELECT c.source, c.source_id FROM _kg_in_crosswalk c "
        "ANTI JOIN _kg_in_records r USING (source, source_id) "
        "ANTI JOIN records s USING (source, source_id)",
        "crosswalk: dangling record key(s), neither in this merge nor in the store: {rows}",
    )
    _fail_if_rows(
        con,
        "SELECT c.source, c.source_id, c.type, coalesce(r.type, s.type) FROM _kg_in_crosswalk c "
        "LEFT JOIN _kg_in_records r USING (source, source_id) "
        "LEFT JOIN records s USING (source, source_id) "
        f"WHERE NOT {_COMPATIBLE.format(a='c.type', b='coalesce(r.type, s.type)')}",
        "crosswalk: entity type is neither the record's type nor in its type group "
        "(source, source_id, crosswalk, record): {rows}",
    )


def _upsert_records(con: duckdb.DuckDBPyConnection, run: RunInfo) -> int:
    # Keys whose content is new or different: what the rest of the merge has to look at.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_changed AS "
        "SELECT r.source, r.source_id, s.source IS NOT NULL AS stored FROM _kg_in_records r "
        "LEFT JOIN records s USING (source, source_id) "
        f"WHERE s.source IS NULL OR {_RECORD_CHANGED}"
    )
    if _count(con, "SELECT count(*) FILTER (WHERE stored) FROM _kg_changed"):
        con.execute(
            "DELETE FROM records USING _kg_changed c "
            "WHERE c.stored AND records.source = c.source AND records.source_id = c.source_id"
        )
    return _count(
        con,
        f"INSERT INTO records ({_RECORD_COLS}, run_id) "
        f"SELECT {_RECORD_COLS}, ? FROM _kg_in_records SEMI JOIN _kg_changed USING (source, source_id)",
        [run.run_id],
    )


_RESOLVE_IDS = f"""
CREATE OR REPLACE TEMP TABLE _kg_idmap AS
WITH proposed AS (
    SELECT entity_id AS proposed, any_value(type) AS type FROM _kg_in_crosswalk GROUP BY entity_id
),
direct AS (  -- ids the store already has as entities
    SELECT p.proposed, p.proposed AS entity_id FROM proposed p SEMI JOIN entities e ON e.entity_id = p.proposed
),
aliased AS (  -- ids an earlier run proposed and the store mapped, unless the target is proposed itself
    SELECT p.proposed, a.entity_id FROM proposed p JOIN id_aliases a ON a.alias_id = p.proposed
    WHERE p.proposed NOT IN (SELECT proposed FROM direct)
      AND a.entity_id NOT IN (SELECT proposed FROM proposed)
),
known AS (SELECT * FROM direct UNION ALL SELECT * FROM aliased),
votes AS (  -- new ids: which stored entity holds how many of their records
    SELECT c.entity_id AS proposed, s.entity_id AS existing, count(*) AS n
    FROM _kg_in_crosswalk c
    JOIN crosswalk s USING (source, source_id)
    JOIN entities e ON e.entity_id = s.entity_id AND {_COMPATIBLE.format(a='e.type', b='c.type')}
    WHERE c.entity_id NOT IN (SELECT proposed FROM known)
      AND s.entity_id NOT IN (SELECT entity_id FROM known)
    GROUP BY ALL
),
best AS (
    SELECT proposed, existing, n FROM votes
    QUALIFY row_number() OVER (PARTITION BY proposed ORDER BY n DESC, existing) = 1
),
inherit AS (  -- one heir per stored id: the new id holding most of its records
    SELECT proposed, existing FROM best
    QUALIFY row_number() OVER (PARTITION BY existing ORDER BY n DESC, proposed) = 1
)
SELECT p.proposed, coalesce(k.entity_id, h.existing, p.proposed) AS entity_id
FROM proposed p LEFT JOIN known k USING (proposed) LEFT JOIN inherit h USING (proposed)
"""


def _resolve_ids(con: duckdb.DuckDBPyConnection, run: RunInfo) -> int:
    con.execute(_RESOLVE_IDS)
    # Entities whose derived columns may change: new owners, old owners, owners of changed records.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_affected AS "
        "SELECT entity_id FROM _kg_idmap "
        "UNION SELECT s.entity_id FROM crosswalk s SEMI JOIN _kg_in_crosswalk c USING (source, source_id) "
        "UNION SELECT s.entity_id FROM crosswalk s SEMI JOIN _kg_changed c USING (source, source_id)"
    )
    # An alias, once given, keeps its target: relations merged under it must keep landing there.
    return _count(
        con,
        "INSERT INTO id_aliases SELECT m.proposed, m.entity_id, ? FROM _kg_idmap m "
        "WHERE m.proposed <> m.entity_id AND NOT EXISTS (SELECT 1 FROM id_aliases a WHERE a.alias_id = m.proposed)",
        [run.run_id],
    )


def _upsert_crosswalk(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_cw AS "
        "SELECT c.source, c.source_id, m.entity_id, c.type, c.run_id, s.source IS NOT NULL AS stored, "
        "s.entity_id AS was "
        "FROM _kg_in_crosswalk c JOIN _kg_idmap m ON m.proposed = c.entity_id "
        "LEFT JOIN crosswalk s USING (source, source_id) "
        "WHERE s.source IS NULL OR s.entity_id IS DISTINCT FROM m.entity_id OR s.type IS DISTINCT FROM c.type"
    )
    if _count(con, "SELECT count(*) FILTER (WHERE stored) FROM _kg_cw"):
        con.execute(
            "DELETE FROM crosswalk USING _kg_cw c "
            "WHERE c.stored AND crosswalk.source = c.source AND crosswalk.source_id = c.source_id"
        )
    return _count(con, "INSERT INTO crosswalk SELECT source, source_id, entity_id, type, run_id FROM _kg_cw")


# Per affected entity: type, canonical name and years (the value most records give, ties to the first record by
# key), record count. An entity of one record (most of them) takes its record's values without any voting.
_DESIRED_ENTITIES = """
CREATE OR REPLACE TEMP TABLE _kg_desired AS
WITH members AS (  -- the entity's type is its crosswalk rows' (a record's own type may be another of its group)
    SELECT c.entity_id, c.type, r.source, r.source_id, r.name, r.year, r.end_year,
           r.source || chr(31) || r.source_id AS k
    FROM crosswalk c JOIN records r USING (source, source_id) SEMI JOIN _kg_affected a USING (entity_id)
),
base AS (
    SELECT entity_id, min(type) AS type, max(type) AS max_type, count(*) AS n_records,
           any_value(name) AS name1, any_value(year) AS year1, any_value(end_year) AS end1
    FROM members GROUP BY entity_id
),
multi AS (SELECT m.* FROM members m SEMI JOIN base b ON b.entity_id = m.entity_id AND b.n_records > 1),
name_pick AS (
    SELECT entity_id, name FROM (
        SELECT entity_id, name, count(*) AS n, min(k) AS k FROM multi WHERE name IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY n DESC, k, name) = 1
),
year_pick AS (
    SELECT entity_id, year FROM (
        SELECT entity_id, year, count(*) AS n, min(k) AS k FROM multi WHERE year IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY n DESC, k, year) = 1
),
end_pick AS (
    SELECT entity_id, end_year FROM (
        SELECT entity_id, end_year, count(*) AS n, min(k) AS k FROM multi
        WHERE end_year IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY n DESC, k, end_year) = 1
)
SELECT b.entity_id, b.type,
       CASE WHEN b.n_records = 1 THEN b.name1 ELSE n.name END AS name,
       CASE WHEN b.n_records = 1 THEN b.year1 ELSE y.year END AS year,
       CASE WHEN b.n_records = 1 THEN b.end1 ELSE e.end_year END AS end_year,
       b.n_records, b.type <> b.max_type AS mixed
FROM base b LEFT JOIN name_pick n USING (entity_id) LEFT JOIN year_pick y USING (entity_id)
LEFT JOIN end_pick e USING (entity_id)
"""


def _upsert_entities(con: duckdb.DuckDBPyConnection, run: RunInfo, ontology: Ontology) -> int:
    con.execute(_DESIRED_ENTITIES)
    if _count(con, "SELECT count(*) FROM _kg_desired WHERE mixed"):
        _fail_if_rows(
            con,
            "SELECT c.entity_id, list(DISTINCT c.type ORDER BY c.type) FROM crosswalk c "
            "WHERE c.entity_id IN (SELECT entity_id FROM _kg_desired WHERE mixed) "
            "GROUP BY c.entity_id ORDER BY c.entity_id",
            "entities would be given several types by their crosswalk rows (re-match all their records): {rows}",
        )
    _fail_if_rows(
        con,
        "SELECT d.entity_id, e.type, d.type FROM _kg_desired d JOIN entities e USING (entity_id) "
        f"WHERE NOT {_COMPATIBLE.format(a='e.type', b='d.type')}",
        "entities would change to an incompatible type (id, stored, new); ids are stable, give the records a new id: "
        "{rows}",
    )
    _check_retyped_edges(con, ontology)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_entity_changes AS "
        "SELECT d.* EXCLUDE (mixed), e.entity_id IS NULL AS is_new FROM _kg_desired d "
        "LEFT JOIN entities e USING (entity_id) "
        "WHERE e.entity_id IS NULL OR e.type <> d.type OR e.name IS DISTINCT FROM d.name "
        "OR e.year IS DISTINCT FROM d.year "
        "OR e.end_year IS DISTINCT FROM d.end_year OR e.n_records <> d.n_records OR e.status <> 'active'"
    )
    changed = _count(
        con,
        "INSERT INTO entities SELECT entity_id, type, name, year, end_year, n_records, 'active', ?, ?, NULL "
        "FROM _kg_entity_changes WHERE is_new",
        [run.run_id, run.run_id],
    )
    changed += _count(
        con,
        "UPDATE entities SET type = c.type, name = c.name, year = c.year, end_year = c.end_year, "
        "n_records = c.n_records, status = 'active', merged_into = NULL, last_run = ? FROM _kg_entity_changes c "
        "WHERE NOT c.is_new AND entities.entity_id = c.entity_id",
        [run.run_id],
    )
    changed += _count(
        con,
        "UPDATE entities SET status = 'retired', n_records = 0, last_run = ?, merged_into = ("
        "SELECT c.entity_id FROM _kg_cw c WHERE c.was = entities.entity_id AND c.entity_id <> c.was "
        "GROUP BY c.entity_id ORDER BY count(*) DESC, c.entity_id LIMIT 1) "
        "WHERE entity_id IN (SELECT entity_id FROM _kg_affected) "
        "AND entity_id NOT IN (SELECT entity_id FROM _kg_desired) AND status <> 'retired'",
        [run.run_id],
    )
    return changed


def _check_retyped_edges(con: duckdb.DuckDBPyConnection, ontology: Ontology) -> None:
    """An entity re-typed within its group (movie -> series) must still fit every edge it is part of.

    Most merges re-type nothing: then the edges table is not read at all.
    """
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_retyped AS SELECT d.entity_id, d.type FROM _kg_desired d "
        "JOIN entities e USING (entity_id) WHERE e.type <> d.type"
    )
    if not _count(con, "SELECT count(*) FROM _kg_retyped"):
        return
    edges = con.execute(
        "WITH types AS (SELECT e.entity_id, coalesce(r.type, e.type) AS type FROM entities e "
        "LEFT JOIN _kg_retyped r USING (entity_id)) "
        "SELECT g.edge_id, g.relation, s.type, o.type FROM edges g "
        "JOIN types s ON s.entity_id = g.subject_id JOIN types o ON o.entity_id = g.object_id "
        "WHERE g.subject_id IN (SELECT entity_id FROM _kg_retyped) "
        "OR g.object_id IN (SELECT entity_id FROM _kg_retyped)"
    ).fetchall()
    bad = [e for e in edges if not ontology.allows(e[1], e[2], e[3])]
    if bad:
        shown = ", ".join(f"{edge_id} ({s} -{rel}-> {o})" for edge_id, rel, s, o in bad[:_SHOW])
        raise StoreError(f"entities would change type under edges the new type does not allow: {shown}")


_DESIRED_NAMES = """
CREATE OR REPLACE TEMP TABLE _kg_names AS
WITH members AS (
    SELECT c.entity_id, r.source, r.source_id, r.name, r.aliases
    FROM crosswalk c JOIN records r USING (source, source_id) SEMI JOIN _kg_affected a USING (entity_id)
),
given AS (  -- a record's name, and its aliases once each (an alias equal to the name is kept: another kind)
    SELECT entity_id, source, source_id, name, 'name' AS kind FROM members WHERE name IS NOT NULL
    UNION ALL
    SELECT entity_id, source, source_id, unnest(list_distinct(aliases)) AS name, 'alias' AS kind FROM members
),
normed AS (SELECT entity_id, name, kg_norm(name) AS norm, kind, source, source_id FROM given WHERE name IS NOT NULL)
SELECT * FROM normed WHERE norm <> ''
"""

_NAME_KEY = "d.entity_id = n.entity_id AND d.source = n.source AND d.source_id = n.source_id " \
            "AND d.kind = n.kind AND d.name = n.name"


def _sync_names(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(_DESIRED_NAMES)
    deleted = _count(
        con,
        "DELETE FROM names n WHERE n.entity_id IN (SELECT entity_id FROM _kg_affected) "
        f"AND NOT EXISTS (SELECT 1 FROM _kg_names d WHERE {_NAME_KEY})",
    )
    inserted = _count(
        con,
        "INSERT INTO names SELECT d.entity_id, d.name, d.norm, d.kind, d.source, d.source_id FROM _kg_names d "
        f"WHERE NOT EXISTS (SELECT 1 FROM names n WHERE {_NAME_KEY})",
    )
    return deleted + inserted


# Each distinct (entity, normalised name) of an affected entity that stays active, split into words; the names
# and the entities' type and year come from this merge's desired rows, not from a scan of the stored tables.
_DESIRED_TOKENS = """
WITH normed AS (SELECT DISTINCT entity_id, norm FROM _kg_names)
SELECT unnest(kg_tokens(n.norm)) AS token, n.entity_id, n.norm, d.type, d.year
FROM normed n JOIN _kg_desired d USING (entity_id)
"""

_TOKEN_KEY = "d.token = t.token AND d.entity_id = t.entity_id AND d.norm = t.norm AND d.type = t.type " \
             "AND d.year IS NOT DISTINCT FROM t.year"


def _sync_tokens(con: duckdb.DuckDBPyConnection) -> int:
    """Keep ``name_tokens`` (and the per-word counts in ``token_df``) in step with the affected entities."""
    if _count(con, "SELECT count(*) FROM name_tokens") == 0:  # the first load: insert, count, done
        added = _count(con, f"INSERT INTO name_tokens {_DESIRED_TOKENS}")
        con.execute("DELETE FROM token_df")
        con.execute("INSERT INTO token_df SELECT token, count(*) FROM name_tokens GROUP BY token")
        return added
    con.execute(f"CREATE OR REPLACE TEMP TABLE _kg_tokens AS {_DESIRED_TOKENS}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_tokens_gone AS "
        "SELECT t.* FROM name_tokens t WHERE t.entity_id IN (SELECT entity_id FROM _kg_affected) "
        f"AND NOT EXISTS (SELECT 1 FROM _kg_tokens d WHERE {_TOKEN_KEY})"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_tokens_new AS "
        f"SELECT d.* FROM _kg_tokens d WHERE NOT EXISTS (SELECT 1 FROM name_tokens t WHERE {_TOKEN_KEY})"
    )
    gone = _count(con, "SELECT count(*) FROM _kg_tokens_gone")
    if gone:
        con.execute(f"DELETE FROM name_tokens t USING _kg_tokens_gone d WHERE {_TOKEN_KEY}")
    added = _count(con, "INSERT INTO name_tokens SELECT * FROM _kg_tokens_new")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_df_delta AS SELECT token, sum(d)::BIGINT AS d FROM ("
        "SELECT token, 1 AS d FROM _kg_tokens_new UNION ALL SELECT token, -1 FROM _kg_tokens_gone) "
        "GROUP BY token HAVING sum(d) <> 0"
    )
    con.execute("UPDATE token_df SET df = token_df.df + x.d FROM _kg_df_delta x WHERE token_df.token = x.token")
    con.execute(
        "INSERT INTO token_df SELECT x.token, x.d FROM _kg_df_delta x "
        "WHERE NOT EXISTS (SELECT 1 FROM token_df t WHERE t.token = x.token)"
    )
    if gone:
        con.execute("DELETE FROM token_df WHERE df <= 0")
    return gone + added


# -- relations -------------------------------------------------------------------------------------


def merge_relations(
    store: Store,
    relations: pa.Table,
    run: RunInfo,
    *,
    ontology: Ontology | None = None,
    allow_unlinked: bool = False,
) -> MergeResult:
    """Merge an extraction run's relations: every row becomes a claim, accepted ones also edges.

    An edge is one (subject_id, relation, object_id); each accepted row is a
    piece of evidence for it (document, span, quote, model, prompt version,
    run). Symmetric relations are stored with the smaller id as subject so
    ``a spouse_of b`` and ``b spouse_of a`` are one edge. Accepted rows must
    name linked, stored entities whose types the ontology allows for the
    relation; with ``allow_unlinked`` accepted rows without ids are kept as
    claims but make no edge. Rows identical to a stored claim (same run,
    document, span, ends, quote, status) are skipped, so a re-merge adds
    nothing.
    """
    ontology = ontology or load_ontology()
    relations = _conform(relations, RELATIONS, "relations")
    symmetric = [n for n, r in ontology.relation_types.items() if r.symmetric]
    result = MergeResult(run.run_id)

    # Each row's position: names the copies of a repeated claim that lose to a more confident one (below).
    numbered = relations.append_column(_ROW, pa.array(np.arange(relations.num_rows, dtype=np.int64)))

    def write(con: duckdb.DuckDBPyConnection) -> None:
        con.register("_kg_in_relations", numbered)
        try:
            _check_relation_profile(con, ontology, run)
            merge_id = _next_merge_id(con)
            result.changes["runs"] = record_run(con, run)
            result.changes["claims"] = _insert_claims(con, symmetric, merge_id)
            _validate_relation_links(con, ontology, allow_unlinked, merge_id)
            result.changes["edges"] = _upsert_edges(con, run, merge_id)
        finally:
            con.unregister("_kg_in_relations")

    return _merging(store, result, {"claims": relations.num_rows, "edges": relations.num_rows}, write)


def _next_merge_id(con: duckdb.DuckDBPyConnection) -> int:
    """This merge's number: claims carry it, so the merge finds the rows it added without a staging copy."""
    return _count(
        con, "UPDATE kg_meta SET value = (value::BIGINT + 1)::VARCHAR WHERE key = 'last_merge' RETURNING value::BIGINT"
    )


def _check_relation_profile(con: duckdb.DuckDBPyConnection, ontology: Ontology, run: RunInfo) -> None:
    """The checks that need only the distinct (status, relation, types, run) combinations: one pass over the input."""
    combos = con.execute(
        "SELECT status, relation, subject_type, object_type, run_id FROM _kg_in_relations GROUP BY ALL"
    ).fetchall()
    _check_run_ids({c[4] for c in combos}, run, "relations")
    statuses = {c[0] for c in combos} - set(STATUSES)
    if statuses:
        raise StoreError(f"relations: unknown status value(s) {sorted(statuses)}; expected {list(STATUSES)}")
    accepted = {(r, s, o) for status, r, s, o, _ in combos if status == "accepted"}
    unknown = sorted({r for r, _, _ in accepted} - set(ontology.relation_types))
    if unknown:
        raise StoreError(f"relations: unknown relation type(s) {unknown[:_SHOW]}")
    _check_types({t for _, s, o in accepted for t in (s, o)}, ontology, "relations: subject_type/object_type has")
    _check_allowed(accepted, ontology, "relations (declared types)")


# Every input row with its stored ids (through id_aliases), orientation and keys; rows whose claim is stored
# already are left out. {repeats} is empty, or (when the input repeats a claim) leaves out the copies that lose
# (_REPEAT_LOSERS), so one row per claim is inserted.
_INSERT_CLAIMS = """
INSERT INTO claims
WITH resolved AS ({resolved}),
oriented AS (
    SELECT *,
        CASE WHEN list_contains($symmetric::VARCHAR[], relation) THEN least(sid, oid) ELSE sid END AS s,
        CASE WHEN list_contains($symmetric::VARCHAR[], relation) THEN greatest(sid, oid) ELSE oid END AS o
    FROM resolved
),
keyed AS (
    SELECT *,
        CASE WHEN status = 'accepted' AND s IS NOT NULL AND o IS NOT NULL
             THEN md5(concat_ws(chr(31), s, relation, o)) END AS edge_id,
        md5({claim_key}) AS claim_id
    FROM oriented
)
SELECT k.claim_id, k.edge_id, k.subject, k.subject_type, k.relation, k.object, k.object_type,
       CASE WHEN k.edge_id IS NULL THEN k.subject_id ELSE k.s END,
       CASE WHEN k.edge_id IS NULL THEN k.object_id ELSE k.o END,
       k.confidence, k.doc_id, k.evidence, k.start, k."end", k.status, k.reason, k.model, k.prompt_version,
       k.run_id, $merge_id, {edge_key}
FROM keyed k
WHERE NOT EXISTS (SELECT 1 FROM claims c WHERE c.claim_id = k.claim_id)
{repeats}
"""

# Each input row with its ids as stored: an id a matching run proposed and the store mapped elsewhere goes through
# id_aliases; _AS_GIVEN when the store has no alias (a first load), which spares two joins over the whole input.
_RESOLVED = """SELECT r.*, coalesce(sa.entity_id, r.subject_id) AS sid, coalesce(oa.entity_id, r.object_id) AS oid
    FROM _kg_in_relations r
    LEFT JOIN id_aliases sa ON sa.alias_id = r.subject_id
    LEFT JOIN id_aliases oa ON oa.alias_id = r.object_id"""
_AS_GIVEN = "SELECT *, subject_id AS sid, object_id AS oid FROM _kg_in_relations"

# What a claim's id is the md5 of: the run, the document, the mention texts, types and input ids, span, status, quote.
_CLAIM_KEY = """concat_ws(chr(31), run_id, doc_id, subject, subject_type, relation, object, object_type,
            coalesce(subject_id, ''), coalesce(object_id, ''), coalesce(CAST(start AS VARCHAR), ''),
            coalesce(CAST("end" AS VARCHAR), ''), status, coalesce(evidence, ''))"""

# The input column numbering rows (added by merge_relations, never stored).
_ROW = "_kg_row"

# Rows that repeat a claim key of this input and lose to another copy: the most confident copy stays, then by
# reason, model and prompt, so the survivor does not depend on row order. Only the rows of repeated keys are ranked
# ({candidates}): a handful, not the whole input.
_REPEAT_LOSERS = f"""
CREATE OR REPLACE TEMP TABLE _kg_repeat_losers AS
SELECT {_ROW} FROM (
    SELECT {_ROW}, md5({_CLAIM_KEY}) AS claim_id, confidence, reason, model, prompt_version FROM _kg_in_relations
    WHERE {{candidates}}
)
QUALIFY row_number() OVER (PARTITION BY claim_id ORDER BY confidence DESC NULLS LAST, reason, model, prompt_version) > 1
"""

# Candidates when every repeated key hash has two rows (the usual case): the two rows the check found, picked by
# number without hashing the input again; otherwise every row whose key hash repeats.
_PAIRS = f"{_ROW} IN (SELECT lo FROM _kg_repeats UNION ALL SELECT hi FROM _kg_repeats)"
_HASHED = f"hash({_CLAIM_KEY}) IN (SELECT h FROM _kg_repeats)"

_DROP_REPEATS = f"AND NOT EXISTS (SELECT 1 FROM _kg_repeat_losers x WHERE x.{_ROW} = k.{_ROW})"


def _insert_claims(con: duckdb.DuckDBPyConnection, symmetric: list[str], merge_id: int) -> int:
    """Insert the new claims, one row per claim.

    Whether the input repeats a claim is checked first, on a 64-bit hash of
    the claim key (a collision only costs a look at a few more rows, a repeat
    is never missed). Only when it does are the repeated rows ranked, and the
    insert leaves out the copies that lose: ranking every row of the input
    costs about a third as much again as the insert itself, and deleting
    repeats after the insert would make DuckDB rewrite the whole insert at
    COMMIT.
    """
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _kg_repeats AS SELECT hash({_CLAIM_KEY}) AS h, count(*) AS n, "
        f"min({_ROW}) AS lo, max({_ROW}) AS hi FROM _kg_in_relations GROUP BY h HAVING count(*) > 1"
    )
    most = _count(con, "SELECT coalesce(max(n), 0) FROM _kg_repeats")
    if most:
        con.execute(_REPEAT_LOSERS.format(candidates=_PAIRS if most == 2 else _HASHED))
    sql = _INSERT_CLAIMS.format(
        resolved=_RESOLVED if _count(con, "SELECT count(*) FROM id_aliases") else _AS_GIVEN,
        claim_key=_CLAIM_KEY, edge_key=EDGE_KEY.format("k.edge_id"), repeats=_DROP_REPEATS if most else "",
    )
    return _count(con, sql, {"symmetric": symmetric, "merge_id": merge_id})


def _validate_relation_links(
    con: duckdb.DuckDBPyConnection, ontology: Ontology, allow_unlinked: bool, merge_id: int
) -> None:
    """New edges must join stored entities of types the ontology allows (stored claims passed this before)."""
    if not allow_unlinked:
        _fail_if_rows(
            con,
            "SELECT subject, relation, object FROM claims "
            "WHERE merge_id = ? AND status = 'accepted' AND edge_id IS NULL",
            "relations: accepted row(s) without subject_id/object_id, cannot become edges "
            "(link them, or merge with allow_unlinked=True): {rows}",
            [merge_id],
        )
    profile = con.execute(
        "SELECT r.relation, s.type, o.type, count(*) FILTER (WHERE s.entity_id IS NULL OR o.entity_id IS NULL) "
        "FROM claims r LEFT JOIN entities s ON s.entity_id = r.subject_id "
        "LEFT JOIN entities o ON o.entity_id = r.object_id "
        "WHERE r.merge_id = ? AND r.edge_id IS NOT NULL GROUP BY ALL",
        [merge_id],
    ).fetchall()
    if any(row[3] for row in profile):
        _fail_if_rows(
            con,
            "SELECT DISTINCT id FROM (SELECT subject_id AS id FROM claims WHERE merge_id = $m AND edge_id IS NOT NULL "
            "UNION ALL SELECT object_id FROM claims WHERE merge_id = $m AND edge_id IS NOT NULL) "
            "ANTI JOIN entities e ON e.entity_id = id ORDER BY id",
            "relations: dangling entity id(s), not in the store (merge the entities first): {rows}",
            {"m": merge_id},
        )
    combos = {(r, s, o) for r, s, o, _ in profile if s is not None and o is not None}
    _check_allowed(combos, ontology, "relations (stored entity types)")


def _upsert_edges(con: duckdb.DuckDBPyConnection, run: RunInfo, merge_id: int) -> int:
    """Add the new accepted claims to their edges: evidence counts add up, confidence is the maximum."""
    delta = (
        "SELECT edge_id, any_value(subject_id) AS subject_id, any_value(relation) AS relation, "
        "any_value(object_id) AS object_id, max(confidence) AS confidence, count(*)::INTEGER AS n "
        "FROM claims WHERE merge_id = ? AND edge_id IS NOT NULL GROUP BY edge_id"
    )
    if _count(con, "SELECT count(*) FROM edges") == 0:  # the first load: every edge is new, no staging copy
        return _count(
            con,
            f"INSERT INTO edges SELECT edge_id, subject_id, relation, object_id, confidence, n, ?, ? FROM ({delta})",
            [run.run_id, run.run_id, merge_id],
        )
    con.execute(f"CREATE OR REPLACE TEMP TABLE _kg_delta AS {delta}", [merge_id])
    if not _count(con, "SELECT count(*) FROM _kg_delta"):
        return 0
    updated = _count(
        con,
        "UPDATE edges SET confidence = greatest(edges.confidence, d.confidence), "
        "n_evidence = edges.n_evidence + d.n, last_run = ? FROM _kg_delta d WHERE edges.edge_id = d.edge_id",
        [run.run_id],
    )
    inserted = _count(
        con,
        "INSERT INTO edges SELECT d.edge_id, d.subject_id, d.relation, d.object_id, d.confidence, d.n, ?, ? "
        "FROM _kg_delta d WHERE NOT EXISTS (SELECT 1 FROM edges e WHERE e.edge_id = d.edge_id)",
        [run.run_id, run.run_id],
    )
    return updated + inserted
