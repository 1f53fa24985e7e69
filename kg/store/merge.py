"""Merging matching output (records + crosswalk) and extraction output (relations) into the store.

Both merges are one DuckDB transaction over DuckDB's zero-copy scan of the
incoming Arrow table, and both are idempotent by construction:

* every stored row has a natural key (record: source + source_id; crosswalk:
  the same; edge: md5 of subject, relation, object; claim: md5 of the
  relation row's identifying fields), and rows are written with
  ``INSERT ... ON CONFLICT`` whose ``DO UPDATE`` only fires when a value
  really differs, so merging the same run twice changes no row;
* derived tables (entities, names, edges) are recomputed only for the keys the
  merge touched, from the stored rows, so the result does not depend on how
  often or in which order the same input arrives;
* entity ids are stable: an id the matching engine proposes is kept when the
  store knows it, and a new id whose records already belong to one stored
  entity inherits that entity's id (recorded in ``id_aliases``).

Every check that can fail runs inside the transaction before COMMIT, so a
``StoreError`` (or a crash, or ``kill -9``) leaves the store as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from kg.store.db import Store, first
from kg.store.errors import StoreError
from kg.store.runs import RunInfo, record_run
from kg.store.schema import RECORD_COLUMNS
from schemas.ontology import Ontology, load_ontology
from schemas.tables import CROSSWALK, RECORDS, RELATIONS, SchemaMismatch, conform

_SHOW = 5  # how many offending keys an error message lists

_Q = [f'"{c}"' for c in RECORD_COLUMNS]
_RECORD_COLS = ", ".join(_Q)
_RECORD_VALUES = [c for c in _Q if c not in ('"source"', '"source_id"')]
_RECORD_SET = ", ".join(f"{c} = excluded.{c}" for c in _RECORD_VALUES)
_RECORD_DIFF = " OR ".join(f"records.{c} IS DISTINCT FROM excluded.{c}" for c in _RECORD_VALUES)
_RECORD_CHANGED = " OR ".join(f"s.{c} IS DISTINCT FROM r.{c}" for c in _RECORD_VALUES)

STATUSES = ("accepted", "rejected")


@dataclass
class MergeResult:
    """What a merge changed, per table: rows inserted or updated (deleted for names)."""

    run_id: str
    changes: dict[str, int] = field(default_factory=dict)

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


def _check_run_ids(table: pa.Table, run: RunInfo, what: str) -> None:
    if table.num_rows == 0:
        return
    others = [r for r in pc.unique(table["run_id"]).to_pylist() if r != run.run_id]
    if others:
        raise StoreError(
            f"{what}: rows carry run_id {others[:_SHOW]} but are merged as run {run.run_id!r}; "
            "merge each run's rows with its own RunInfo"
        )


def _check_types(table: pa.Table, columns: list[str], ontology: Ontology, what: str) -> None:
    known = set(ontology.concrete_types)
    for column in columns:
        unknown = sorted(set(pc.unique(table[column]).to_pylist()) - known)
        if unknown:
            raise StoreError(
                f"{what}: column {column!r} has unknown entity type(s) {unknown[:_SHOW]}; "
                f"known: {sorted(known)}"
            )


def _fail_if_rows(con: duckdb.DuckDBPyConnection, sql: str, message: str, params: list | None = None) -> None:
    """Raise ``message`` (formatted with the first offending rows) when ``sql`` returns any row."""
    rows = con.execute(f"SELECT * FROM ({sql}) LIMIT {_SHOW}", params or []).fetchall()
    if rows:
        shown = ", ".join(str(r if len(r) > 1 else r[0]) for r in rows)
        raise StoreError(message.format(rows=shown))


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> int:
    row = first(con, sql, params)
    return int(row[0]) if row else 0


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
    _check_run_ids(crosswalk, run, "crosswalk")
    _check_types(records, ["type"], ontology, "records")
    _check_types(crosswalk, ["type"], ontology, "crosswalk")

    result = MergeResult(run.run_id)
    with store.transaction() as con:
        con.register("_kg_in_records", records)
        con.register("_kg_in_crosswalk", crosswalk)
        try:
            _validate_entity_inputs(con)
            result.changes["runs"] = record_run(con, run)
            result.changes["records"] = _upsert_records(con, run)
            result.changes["id_aliases"] = _resolve_ids(con, run)
            result.changes["crosswalk"] = _upsert_crosswalk(con)
            _check_entity_types(con)
            result.changes["entities"] = _upsert_entities(con, run)
            result.changes["names"] = _sync_names(con)
        finally:
            con.unregister("_kg_in_records")
            con.unregister("_kg_in_crosswalk")
    return result


def _validate_entity_inputs(con: duckdb.DuckDBPyConnection) -> None:
    for table in ("_kg_in_records", "_kg_in_crosswalk"):
        _fail_if_rows(
            con,
            f"SELECT source, source_id, count(*) FROM {table} GROUP BY ALL HAVING count(*) > 1",
            f"{table.removeprefix('_kg_in_')}: duplicate (source, source_id) key(s): {{rows}}",
        )
    _fail_if_rows(
        con,
        "SELECT entity_id, list(DISTINCT type ORDER BY type) FROM _kg_in_crosswalk "
        "GROUP BY entity_id HAVING count(DISTINCT type) > 1",
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
        "WHERE c.type <> coalesce(r.type, s.type)",
        "crosswalk: type differs from the record's type (source, source_id, crosswalk, record): {rows}",
    )


def _upsert_records(con: duckdb.DuckDBPyConnection, run: RunInfo) -> int:
    # Keys whose content is new or different: what the rest of the merge has to look at.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _kg_changed AS "
        "SELECT r.source, r.source_id FROM _kg_in_records r "
        "LEFT JOIN records s USING (source, source_id) "
        f"WHERE s.source IS NULL OR {_RECORD_CHANGED}"
    )
    return _count(
        con,
        f"INSERT INTO records ({_RECORD_COLS}, run_id) "
        f"SELECT {_RECORD_COLS}, ? FROM _kg_in_records SEMI JOIN _kg_changed USING (source, source_id) "
        f"ON CONFLICT (source, source_id) DO UPDATE SET {_RECORD_SET}, run_id = excluded.run_id "
        f"WHERE {_RECORD_DIFF}",
        [run.run_id],
    )


_RESOLVE_IDS = """
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
    JOIN entities e ON e.entity_id = s.entity_id AND e.type = c.type
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
    return _count(
        con,
        "INSERT INTO id_aliases SELECT proposed, entity_id, ? FROM _kg_idmap WHERE proposed <> entity_id "
        "ON CONFLICT (alias_id) DO NOTHING",
        [run.run_id],
    )


def _upsert_crosswalk(con: duckdb.DuckDBPyConnection) -> int:
    return _count(
        con,
        "INSERT INTO crosswalk SELECT c.source, c.source_id, m.entity_id, c.type, c.run_id "
        "FROM _kg_in_crosswalk c JOIN _kg_idmap m ON m.proposed = c.entity_id "
        "ON CONFLICT (source, source_id) DO UPDATE SET entity_id = excluded.entity_id, "
        "type = excluded.type, run_id = excluded.run_id "
        "WHERE crosswalk.entity_id IS DISTINCT FROM excluded.entity_id "
        "OR crosswalk.type IS DISTINCT FROM excluded.type",
    )


def _check_entity_types(con: duckdb.DuckDBPyConnection) -> None:
    _fail_if_rows(
        con,
        "SELECT c.entity_id, list(DISTINCT r.type ORDER BY r.type) FROM crosswalk c "
        "JOIN records r USING (source, source_id) SEMI JOIN _kg_affected a USING (entity_id) "
        "GROUP BY c.entity_id HAVING count(DISTINCT r.type) > 1",
        "entities would mix records of several types: {rows}",
    )


_DESIRED_ENTITIES = """
CREATE OR REPLACE TEMP TABLE _kg_desired AS
WITH members AS (
    SELECT c.entity_id, r.type, r.source, r.source_id, r.name, r.year, r.end_year,
           r.source || chr(31) || r.source_id AS k
    FROM crosswalk c JOIN records r USING (source, source_id) SEMI JOIN _kg_affected a USING (entity_id)
),
base AS (SELECT entity_id, min(type) AS type, count(*) AS n_records FROM members GROUP BY entity_id),
name_pick AS (
    SELECT entity_id, name FROM (
        SELECT entity_id, name, count(*) AS n, min(k) AS k FROM members WHERE name IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY n DESC, k, name) = 1
),
year_pick AS (
    SELECT entity_id, year FROM (
        SELECT entity_id, year, count(*) AS n, min(k) AS k FROM members WHERE year IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY n DESC, k, year) = 1
),
end_pick AS (
    SELECT entity_id, end_year FROM (
        SELECT entity_id, end_year, count(*) AS n, min(k) AS k FROM members
        WHERE end_year IS NOT NULL GROUP BY ALL)
    QUALIFY row_number() OVER (PARTITION BY entity_id ORDER BY n DESC, k, end_year) = 1
)
SELECT b.entity_id, b.type, n.name, y.year, e.end_year, b.n_records
FROM base b LEFT JOIN name_pick n USING (entity_id) LEFT JOIN year_pick y USING (entity_id)
LEFT JOIN end_pick e USING (entity_id)
"""


def _upsert_entities(con: duckdb.DuckDBPyConnection, run: RunInfo) -> int:
    con.execute(_DESIRED_ENTITIES)
    _fail_if_rows(
        con,
        "SELECT d.entity_id, e.type, d.type FROM _kg_desired d JOIN entities e USING (entity_id) "
        "WHERE e.type <> d.type",
        "entities would change type (id, stored, new); ids are stable, give the records a new id: {rows}",
    )
    changed = _count(
        con,
        "INSERT INTO entities SELECT entity_id, type, name, year, end_year, n_records, 'active', ?, ? "
        "FROM _kg_desired "
        "ON CONFLICT (entity_id) DO UPDATE SET name = excluded.name, year = excluded.year, "
        "end_year = excluded.end_year, n_records = excluded.n_records, status = 'active', "
        "last_run = excluded.last_run "
        "WHERE entities.name IS DISTINCT FROM excluded.name OR entities.year IS DISTINCT FROM excluded.year "
        "OR entities.end_year IS DISTINCT FROM excluded.end_year "
        "OR entities.n_records <> excluded.n_records OR entities.status <> 'active'",
        [run.run_id, run.run_id],
    )
    changed += _count(
        con,
        "UPDATE entities SET status = 'retired', n_records = 0, last_run = ? "
        "WHERE entity_id IN (SELECT entity_id FROM _kg_affected) "
        "AND entity_id NOT IN (SELECT entity_id FROM _kg_desired) AND status <> 'retired'",
        [run.run_id],
    )
    return changed


_DESIRED_NAMES = """
CREATE OR REPLACE TEMP TABLE _kg_names AS
WITH members AS (
    SELECT c.entity_id, r.source, r.source_id, r.name, r.aliases
    FROM crosswalk c JOIN records r USING (source, source_id) SEMI JOIN _kg_affected a USING (entity_id)
),
given AS (
    SELECT entity_id, source, source_id, name, 'name' AS kind FROM members WHERE name IS NOT NULL
    UNION ALL
    SELECT entity_id, source, source_id, unnest(aliases) AS name, 'alias' AS kind FROM members
)
SELECT DISTINCT entity_id, name, kg_norm(name) AS norm, kind, source, source_id FROM given
WHERE name IS NOT NULL AND kg_norm(name) <> ''
"""


def _sync_names(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(_DESIRED_NAMES)
    deleted = _count(
        con,
        "DELETE FROM names WHERE entity_id IN (SELECT entity_id FROM _kg_affected) "
        "AND NOT EXISTS (SELECT 1 FROM _kg_names d WHERE d.entity_id = names.entity_id "
        "AND d.source = names.source AND d.source_id = names.source_id "
        "AND d.kind = names.kind AND d.name = names.name)",
    )
    inserted = _count(
        con,
        "INSERT INTO names SELECT entity_id, name, norm, kind, source, source_id FROM _kg_names "
        "ON CONFLICT DO NOTHING",
    )
    return deleted + inserted


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
    claims but make no edge.
    """
    ontology = ontology or load_ontology()
    relations = _conform(relations, RELATIONS, "relations")
    _check_run_ids(relations, run, "relations")
    statuses = set(pc.unique(relations["status"]).to_pylist()) - set(STATUSES)
    if statuses:
        raise StoreError(f"relations: unknown status value(s) {sorted(statuses)}; expected {list(STATUSES)}")
    accepted = relations.filter(pc.equal(relations["status"], "accepted"))
    unknown = sorted(set(pc.unique(accepted["relation"]).to_pylist()) - set(ontology.relation_types))
    if unknown:
        raise StoreError(f"relations: unknown relation type(s) {unknown[:_SHOW]}")
    _check_types(accepted, ["subject_type", "object_type"], ontology, "relations")
    _check_allowed(accepted, ontology, "relations (declared types)")
    symmetric = [n for n, r in ontology.relation_types.items() if r.symmetric]

    result = MergeResult(run.run_id)
    with store.transaction() as con:
        con.register("_kg_in_relations", relations)
        try:
            _stage_relations(con, symmetric)
            _validate_relation_links(con, ontology, allow_unlinked)
            result.changes["runs"] = record_run(con, run)
            result.changes["claims"] = _count(
                con,
                "INSERT INTO claims SELECT * EXCLUDE (seq) FROM _kg_rel ORDER BY seq "
                "ON CONFLICT (claim_id) DO NOTHING",
            )
            result.changes["edges"] = _upsert_edges(con, run)
        finally:
            con.unregister("_kg_in_relations")
    return result


def _check_allowed(table: pa.Table, ontology: Ontology, what: str) -> None:
    """Check each distinct (relation, subject type, object type) once: a handful, not one per row."""
    combos = table.group_by(["relation", "subject_type", "object_type"]).aggregate([]).to_pylist()
    bad = [c for c in combos if not ontology.allows(c["relation"], c["subject_type"], c["object_type"])]
    if bad:
        shown = ", ".join(f"{c['subject_type']} -{c['relation']}-> {c['object_type']}" for c in bad[:_SHOW])
        raise StoreError(f"{what}: relation(s) not allowed by the ontology: {shown}")


_STAGE_RELATIONS = """
CREATE OR REPLACE TEMP TABLE _kg_rel AS
WITH resolved AS (
    SELECT r.*, coalesce(sa.entity_id, r.subject_id) AS sid, coalesce(oa.entity_id, r.object_id) AS oid,
           row_number() OVER () AS seq
    FROM _kg_in_relations r
    LEFT JOIN id_aliases sa ON sa.alias_id = r.subject_id
    LEFT JOIN id_aliases oa ON oa.alias_id = r.object_id
),
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
        md5(concat_ws(chr(31), run_id, doc_id, subject, subject_type, relation, object, object_type,
            coalesce(subject_id, ''), coalesce(object_id, ''), coalesce(CAST(start AS VARCHAR), ''),
            coalesce(CAST("end" AS VARCHAR), ''), status, coalesce(evidence, ''))) AS claim_id
    FROM oriented
)
SELECT claim_id, edge_id, subject, subject_type, relation, object, object_type,
       CASE WHEN edge_id IS NULL THEN subject_id ELSE s END AS subject_id,
       CASE WHEN edge_id IS NULL THEN object_id ELSE o END AS object_id,
       confidence, doc_id, evidence, start, "end", status, reason, model, prompt_version, run_id, seq
FROM keyed
QUALIFY row_number() OVER (PARTITION BY claim_id ORDER BY seq) = 1
"""


def _stage_relations(con: duckdb.DuckDBPyConnection, symmetric: list[str]) -> None:
    con.execute(_STAGE_RELATIONS, {"symmetric": symmetric})


def _validate_relation_links(con: duckdb.DuckDBPyConnection, ontology: Ontology, allow_unlinked: bool) -> None:
    if not allow_unlinked:
        _fail_if_rows(
            con,
            "SELECT subject, relation, object FROM _kg_rel WHERE status = 'accepted' AND edge_id IS NULL",
            "relations: accepted row(s) without subject_id/object_id, cannot become edges "
            "(link them, or merge with allow_unlinked=True): {rows}",
        )
    _fail_if_rows(
        con,
        "SELECT DISTINCT id FROM (SELECT subject_id AS id FROM _kg_rel WHERE edge_id IS NOT NULL "
        "UNION ALL SELECT object_id FROM _kg_rel WHERE edge_id IS NOT NULL) "
        "ANTI JOIN entities e ON e.entity_id = id ORDER BY id",
        "relations: dangling entity id(s), not in the store (merge the entities first): {rows}",
    )
    stored = con.sql(
        "SELECT DISTINCT r.relation, s.type AS subject_type, o.type AS object_type FROM _kg_rel r "
        "JOIN entities s ON s.entity_id = r.subject_id JOIN entities o ON o.entity_id = r.object_id "
        "WHERE r.edge_id IS NOT NULL"
    ).to_arrow_table()
    _check_allowed(stored, ontology, "relations (stored entity types)")


def _upsert_edges(con: duckdb.DuckDBPyConnection, run: RunInfo) -> int:
    return _count(
        con,
        "INSERT INTO edges "
        "SELECT edge_id, any_value(subject_id), any_value(relation), any_value(object_id), "
        "max(confidence), count(*), ?, ? FROM claims "
        "WHERE status = 'accepted' AND edge_id IN (SELECT edge_id FROM _kg_rel WHERE edge_id IS NOT NULL) "
        "GROUP BY edge_id "
        "ON CONFLICT (edge_id) DO UPDATE SET confidence = excluded.confidence, "
        "n_evidence = excluded.n_evidence, last_run = excluded.last_run "
        "WHERE edges.confidence IS DISTINCT FROM excluded.confidence "
        "OR edges.n_evidence <> excluded.n_evidence",
        [run.run_id, run.run_id],
    )
