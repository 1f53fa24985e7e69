"""Read queries behind the analyst API; each takes a DuckDB connection and returns polars or dataclasses.

All values go to DuckDB as parameters. Lookups by id go through the store's
ART indexes: a list of ids becomes ``IN (?, ?, ...)`` (DuckDB scans an index
for each), and a list too long for that (``IN_LIST_MAX``) becomes a hash
join against the table instead. Graph walks (paths, subgraphs) run one such
query per hop over the whole frontier, so their cost grows with the number
of hops and the frontier, not with the size of the graph.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from kg.store.db import damaged
from kg.store.errors import StoreError, UnknownEntity
from kg.store.schema import edge_key
from schemas.ontology import Ontology

DIRECTIONS = ("out", "in", "both")

# How many (entity, name) candidates the token index hands to rapidfuzz at most.
FIND_CANDIDATES = 2000
# A word in more names than this is too common to select candidates by (its postings would be read by a scan,
# not an index look-up: DuckDB scans when a look-up returns over 0.1 % of a table); it still counts in the ranking.
FIND_COMMON = 5_000
# Query words are also looked up as the vocabulary words this similar (Jaro-Winkler), to forgive typos.
FIND_TYPO_SIMILARITY = 0.88
# Beyond this many ids, a lookup joins against the table instead of listing the ids for the index.
IN_LIST_MAX = 2000


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | dict | None = None) -> pl.DataFrame:
    """Run parameterised ``sql`` and return the rows as a polars DataFrame (via Arrow, no copy per row)."""
    try:
        return con.sql(sql, params=params).pl()
    except duckdb.Error as exc:
        raise _query_error(exc) from exc


def rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | dict | None = None) -> list[tuple]:
    """Run parameterised ``sql`` and return Python rows: for the few-row look-ups where Arrow's setup costs more
    than the rows."""
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.Error as exc:
        raise _query_error(exc) from exc


def one(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | dict | None = None) -> tuple | None:
    """The first row of parameterised ``sql``, or None."""
    found = rows(con, sql, params)
    return found[0] if found else None


def _query_error(exc: duckdb.Error) -> StoreError:
    if damaged(exc):
        return StoreError(f"the store file is damaged ({str(exc).splitlines()[0]}); restore it from a backup")
    return StoreError(f"query failed: {exc}")


def placeholders(n: int) -> str:
    """``?, ?, ...`` for an IN list of ``n`` parameters (the values themselves never enter the SQL text)."""
    return ", ".join("?" * n) if n else "NULL"


def _types_under(ontology: Ontology, type_: str | None) -> list[str] | None:
    """Concrete types at or below ``type_`` ("work" gives movie, series, ...); None means any."""
    if type_ is None:
        return None
    if type_ not in ontology.entity_types:
        raise StoreError(f"unknown entity type {type_!r}; known: {sorted(ontology.entity_types)}")
    return [t for t in ontology.concrete_types if ontology.is_a(t, type_)]


def _relations(relation: str | Sequence[str] | None) -> list[str] | None:
    if relation is None:
        return None
    return [relation] if isinstance(relation, str) else list(relation)


def require_entity(con: duckdb.DuckDBPyConnection, entity_id: str) -> None:
    if one(con, "SELECT 1 FROM entities WHERE entity_id = ?", [entity_id]) is None:
        raise UnknownEntity(f"no entity with id {entity_id!r}")


_ENTITY_COLUMNS = "entity_id, type, name, year, end_year, n_records, status, merged_into"


_ENTITY_SCHEMA = {"entity_id": pl.String, "type": pl.String, "name": pl.String, "year": pl.Int32,
                  "end_year": pl.Int32, "n_records": pl.Int32, "status": pl.String, "merged_into": pl.String}


def entity_rows(con: duckdb.DuckDBPyConnection, ids: Sequence[str]) -> pl.DataFrame:
    """The entity rows of ``ids`` (unknown ids are simply absent), ordered by id."""
    ids = list(dict.fromkeys(ids))
    if len(ids) <= IN_LIST_MAX:
        found = rows(
            con, f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE entity_id IN ({placeholders(len(ids))}) "
            "ORDER BY entity_id", ids,
        )
        return pl.DataFrame(found, schema=_ENTITY_SCHEMA, orient="row")
    return frame(
        con, f"SELECT {_ENTITY_COLUMNS} FROM entities WHERE entity_id IN (SELECT unnest($ids::VARCHAR[])) "
        "ORDER BY entity_id", {"ids": ids},
    )


def entity_records(con: duckdb.DuckDBPyConnection, entity_id: str) -> pl.DataFrame:
    """The source records of an entity (its provenance), with the matching run that mapped each there.

    Index lookups only: the crosswalk rows by entity id, then the records by
    source id (narrowed to the exact (source, source_id) pairs).
    """
    mapped = frame(
        con,
        "SELECT c.source, c.source_id, c.run_id AS matching_run, u.merged_at FROM crosswalk c "
        "LEFT JOIN runs u ON u.run_id = c.run_id WHERE c.entity_id = ?",
        [entity_id],
    )
    ids = mapped["source_id"].unique().to_list()
    found = frame(
        con,
        "SELECT source, source_id, type, name, year, line, run_id AS record_run FROM records "
        f"WHERE source_id IN ({placeholders(len(ids))})",
        ids,
    )
    return (
        found.join(mapped, on=["source", "source_id"], how="inner")
        .select("source", "source_id", "type", "name", "year", "line", "record_run", "matching_run", "merged_at")
        .sort("source", "source_id")
    )


# -- find ------------------------------------------------------------------------------------------

_FIND_EMPTY = {"entity_id": pl.String, "type": pl.String, "name": pl.String, "year": pl.Int32,
               "matched": pl.String, "score": pl.Float64}

# Vocabulary words close to a query word that the vocabulary lacks or holds rarely.
_TYPO_SQL = """
SELECT token, df FROM token_df
WHERE length(token) BETWEEN $n - 2 AND $n + 2 AND token <> $t AND jaro_winkler_similarity(token, $t) >= $sim
ORDER BY jaro_winkler_similarity(token, $t) DESC, token LIMIT 5
"""


def _query_words(con: duckdb.DuckDBPyConnection, query: str) -> tuple[str, dict[str, int]]:
    """The normalised query, and its words (plus close vocabulary words for unknown ones) with their counts."""
    row = one(con, "SELECT kg_norm(?) AS q, kg_tokens(kg_norm(?)) AS toks", [query, query])
    q, toks = (row[0], list(row[1] or [])) if row else ("", [])
    if not toks:
        return q, {}
    df = dict(rows(con, f"SELECT token, df FROM token_df WHERE token IN ({placeholders(len(toks))})", toks))
    words = {t: df.get(t, 0) for t in toks}
    for t in toks:
        if df.get(t, 0) == 0 and len(t) >= 4:  # not a word of any name: perhaps a typo of one
            close = rows(con, _TYPO_SQL, {"t": t, "n": len(t), "sim": FIND_TYPO_SIMILARITY})
            words.update(dict(close))
    return q, words


# Candidates: (entity, normalised name) pairs holding the lookup words, ranked by the words' summed idf.
# Positional parameters: words, weights, types, year from, year to, required words, cap, then the IN list.
_POSTINGS_SQL = """
WITH p AS (SELECT ?::VARCHAR[] AS words, ?::DOUBLE[] AS w, ?::VARCHAR[] AS types, ?::INTEGER AS ymin,
                  ?::INTEGER AS ymax, ?::VARCHAR[] AS req, ?::BIGINT AS cap)
SELECT t.entity_id, t.norm, any_value(t.type) AS type, any_value(t.year) AS year,
       sum(p.w[list_position(p.words, t.token)]) AS hit
FROM name_tokens t, p
WHERE t.token IN ({tokens})
  AND (p.types IS NULL OR list_contains(p.types, t.type))
  AND (p.ymin IS NULL OR t.year >= p.ymin)
  AND (p.ymax IS NULL OR t.year <= p.ymax)
  AND (p.req IS NULL OR list_has_all(string_split(t.norm, ' '), p.req))
GROUP BY t.entity_id, t.norm
ORDER BY hit DESC, t.entity_id
LIMIT (SELECT cap FROM p)
"""


def find(
    con: duckdb.DuckDBPyConnection,
    ontology: Ontology,
    query: str,
    *,
    type: str | None = None,
    year: int | tuple[int, int] | None = None,
    limit: int = 10,
    min_score: float = 60.0,
) -> pl.DataFrame:
    """Entities whose name or alias matches ``query``, best first, one row per entity.

    The ``name_tokens`` index picks candidates: names sharing a query word
    (or a vocabulary word within ``FIND_TYPO_SIMILARITY`` of one the
    vocabulary lacks), ranked by the summed rarity (idf) of the shared words,
    ``FIND_CANDIDATES`` at most. Words in more than ``FIND_COMMON`` names do
    not select candidates unless the query has nothing rarer; then the names
    holding all the query's words are taken, rarest word first. rapidfuzz
    ``WRatio`` on the normalised names decides the order and the cut.
    """
    types = _types_under(ontology, type)
    ymin, ymax = (year, year) if isinstance(year, int) else (year or (None, None))
    empty = pl.DataFrame(schema=_FIND_EMPTY)
    q, words = _query_words(con, query)
    known = {t: n for t, n in words.items() if n > 0}
    if not q or not known:
        return empty
    total = _count_names(con)
    selective = {t: n for t, n in known.items() if n <= FIND_COMMON}
    if selective:
        lookup, require = selective, None
    else:  # only common words: names with all of them, found through the rarest
        rarest = min(known, key=known.__getitem__)
        lookup, require = {rarest: known[rarest]}, sorted(known)
    tokens = sorted(lookup)
    weights = [math.log(1.0 + total / lookup[t]) for t in tokens]
    cands = frame(
        con,
        _POSTINGS_SQL.format(tokens=placeholders(len(tokens))),
        [tokens, weights, types, ymin, ymax, require, FIND_CANDIDATES, *tokens],
    )
    if cands.height == 0:
        return empty
    scores = process.cdist([q], cands["norm"].to_list(), scorer=fuzz.WRatio, dtype=np.float32, workers=1)[0]
    exact = (cands["norm"] == q).cast(pl.Float64) * 0.5  # an exact name beats a partial one of equal score
    best = (
        cands.with_columns(score=pl.Series(scores, dtype=pl.Float64) + exact)
        .filter(pl.col("score") >= min_score)
        .sort(["score", "hit", "entity_id"], descending=[True, True, False])
        .unique("entity_id", keep="first", maintain_order=True)
        .head(limit)
    )
    if best.height == 0:
        return empty
    ids = best["entity_id"].to_list()
    canonical = entity_rows(con, ids).select("entity_id", "name")
    written = frame(  # the name as a source wrote it, for each matched normalised name
        con,
        f"SELECT entity_id, norm, min(name) AS matched FROM names WHERE entity_id IN ({placeholders(len(ids))}) "
        "GROUP BY ALL",
        ids,
    )
    return (
        best.join(canonical, on="entity_id", how="left", maintain_order="left")
        .join(written, on=["entity_id", "norm"], how="left", maintain_order="left")
        .with_columns(pl.col("score").clip(upper_bound=100.0).round(1))
        .select(list(_FIND_EMPTY))
        .cast(_FIND_EMPTY)
    )


def _count_names(con: duckdb.DuckDBPyConnection) -> int:
    """Rows of the token index: the N of idf (the table's row count is kept in its metadata)."""
    row = one(con, "SELECT count(*) FROM name_tokens")
    return int(row[0] or 0) if row else 0


# -- neighbours and relations ----------------------------------------------------------------------

_EDGE_COLUMNS = "e.subject_id, e.object_id, e.confidence, e.n_evidence"


def _edges_at_sql(direction: str, id_list: str) -> str:
    """Edges at a list of ids, one UNION branch per direction, so each branch is one index lookup per id.

    Nothing but the id goes into the WHERE clause: DuckDB uses an ART index
    only when the indexed column is a scan's one filter (one more condition,
    on the relation or the confidence, and it reads the whole table), so the
    other filters are applied to the rows fetched.
    """
    sides = {"out": ("subject_id", "object_id"), "in": ("object_id", "subject_id")}
    return " UNION ALL ".join(
        f"SELECT e.edge_id, '{d}' AS direction, e.relation, e.{end} AS id, e.{other} AS neighbor_id, {_EDGE_COLUMNS} "
        f"FROM edges e WHERE e.{end} IN ({id_list})"
        for d, (end, other) in sides.items()
        if direction in (d, "both")
    )


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise StoreError(f"direction must be one of {DIRECTIONS}, not {direction!r}")


def _as_float32(value: float | None) -> float | None:
    """``min_confidence`` as stored confidences are: FLOAT (0.95 is 0.949999988...), so 0.95 keeps 0.95."""
    return None if value is None else float(np.float32(value))


def _edge_filter(relations: list[str] | None, min_confidence: float | None) -> pl.Expr:
    cond = pl.lit(True)
    if relations is not None:
        cond &= pl.col("relation").is_in(relations)
    if min_confidence is not None:
        cond &= pl.col("confidence") >= _as_float32(min_confidence)
    return cond


def edges_at(
    con: duckdb.DuckDBPyConnection,
    ids: Sequence[str],
    *,
    direction: str = "both",
    relations: list[str] | None = None,
    min_confidence: float | None = None,
) -> pl.DataFrame:
    """Edges whose subject ('out'), object ('in') or either end ('both') is one of ``ids``.

    Columns: edge_id, direction, relation, id (the end in ``ids``), neighbor_id (the other end),
    subject_id, object_id, confidence, n_evidence.
    """
    _check_direction(direction)
    ids = list(dict.fromkeys(ids))
    n_sides = 2 if direction == "both" else 1
    if len(ids) <= IN_LIST_MAX:
        found = frame(con, _edges_at_sql(direction, placeholders(len(ids))), ids * n_sides)
    else:
        found = frame(con, _edges_at_sql(direction, "SELECT unnest(?::VARCHAR[])"), [ids] * n_sides)
    return found.filter(_edge_filter(relations, min_confidence))


_NEIGHBOR_SCHEMA = {"edge_id": pl.String, "direction": pl.String, "relation": pl.String, "neighbor_id": pl.String,
                    "neighbor_type": pl.String, "neighbor_name": pl.String, "neighbor_year": pl.Int32,
                    "confidence": pl.Float32, "n_evidence": pl.Int32}
_HIT_COLUMNS = ("edge_id", "direction", "relation", "neighbor_id", "confidence", "n_evidence")


def neighbors(
    con: duckdb.DuckDBPyConnection,
    entity_id: str,
    *,
    relation: str | Sequence[str] | None = None,
    direction: str = "both",
    min_confidence: float | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Edges at ``entity_id``: direction 'out' (it is the subject), 'in' (the object) or 'both'.

    Two index look-ups, fetched as Python rows (a neighbourhood is small; Arrow's
    per-query setup would cost more than the rows): the edges at the entity,
    then the neighbours' type, name and year.
    """
    _check_direction(direction)
    sides = {"out": ("subject_id", "object_id"), "in": ("object_id", "subject_id")}
    branches = [
        f"SELECT e.edge_id, '{d}' AS direction, e.relation, e.{other} AS neighbor_id, e.confidence, e.n_evidence "
        f"FROM edges e WHERE e.{end} = ?"
        for d, (end, other) in sides.items()
        if direction in (d, "both")
    ]
    hits = rows(con, " UNION ALL ".join(branches), [entity_id] * len(branches))
    if not hits:
        require_entity(con, entity_id)
    rels, minc = _relations(relation), _as_float32(min_confidence)
    if rels is not None:
        hits = [h for h in hits if h[2] in rels]
    if minc is not None:
        hits = [h for h in hits if h[4] is not None and h[4] >= minc]
    if not hits:
        return pl.DataFrame(schema=_NEIGHBOR_SCHEMA)
    if len(hits) > IN_LIST_MAX:  # a hub: columnar all the way
        return _hub_neighbors(con, hits, limit)
    # A few rows: sorting and joining them in Python costs microseconds, each polars operation a tenth of a ms.
    hits.sort(key=lambda h: (h[2], h[1], h[4] is None, -(h[4] or 0.0), h[3]))
    hits = hits[:limit] if limit is not None else hits
    ids = list(dict.fromkeys(h[3] for h in hits))
    info = {r[0]: r[1:] for r in rows(
        con, f"SELECT entity_id, type, name, year FROM entities WHERE entity_id IN ({placeholders(len(ids))})", ids
    )}
    missing = (None, None, None)
    return pl.DataFrame(
        [(*h[:4], *info.get(h[3], missing), *h[4:]) for h in hits], schema=_NEIGHBOR_SCHEMA, orient="row"
    )


def _hub_neighbors(con: duckdb.DuckDBPyConnection, hits: list[tuple], limit: int | None) -> pl.DataFrame:
    edges = pl.DataFrame(hits, schema={k: _NEIGHBOR_SCHEMA[k] for k in _HIT_COLUMNS}, orient="row").sort(
        ["relation", "direction", "confidence", "neighbor_id"], descending=[False, False, True, False],
        nulls_last=True,
    )
    if limit is not None:
        edges = edges.head(limit)
    others = entity_rows(con, edges["neighbor_id"].unique().to_list()).select(
        neighbor_id="entity_id", neighbor_type="type", neighbor_name="name", neighbor_year="year"
    )
    return edges.join(others, on="neighbor_id", how="left", maintain_order="left").select(list(_NEIGHBOR_SCHEMA))


_RELATIONS_SQL = """
SELECT r.edge_id, r.subject_id, s.name AS subject_name, s.type AS subject_type, r.relation,
       r.object_id, o.name AS object_name, o.type AS object_type, r.confidence, r.n_evidence,
       r.first_run, r.last_run
FROM edges r JOIN entities s ON s.entity_id = r.subject_id JOIN entities o ON o.entity_id = r.object_id
WHERE ($rels::VARCHAR[] IS NULL OR list_contains($rels::VARCHAR[], r.relation))
  AND ($minc::FLOAT IS NULL OR r.confidence >= $minc::FLOAT)
ORDER BY r.relation, r.confidence DESC NULLS LAST, r.edge_id
LIMIT $limit
"""


def relations(
    con: duckdb.DuckDBPyConnection,
    *,
    type: str | Sequence[str] | None = None,
    min_confidence: float | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Edges of the given relation type(s) at or above ``min_confidence``, with both endpoints' names."""
    return frame(
        con,
        _RELATIONS_SQL,
        {"rels": _relations(type), "minc": min_confidence, "limit": limit if limit is not None else 2**62},
    )


_EVIDENCE_SQL = """
SELECT c.edge_id, c.claim_id, c.subject, c.relation, c.object, c.confidence, c.doc_id, c.start, c."end",
       c.evidence, c.model, c.prompt_version, c.run_id, r.merged_at, c.status
FROM claims c LEFT JOIN runs r USING (run_id)
WHERE c.edge_key = $key
ORDER BY c.confidence DESC NULLS LAST, c.doc_id, c.start, c.claim_id
"""

_MD5_HEX = re.compile("[0-9a-f]{32}")


def evidence(con: duckdb.DuckDBPyConnection, edge_id: str) -> pl.DataFrame:
    """Why an edge is in the graph: each accepted claim (document, span, quote, model, prompt, run).

    Every edge has at least one accepted claim (edges are made from them), so
    no claim means no such edge.
    """
    if not _MD5_HEX.fullmatch(edge_id):
        raise StoreError(f"no edge with id {edge_id!r}")
    # Looked up by the 64-bit key alone (DuckDB scans the whole table when a second condition joins the indexed
    # one), then checked in full: two edges may share a key.
    found = frame(con, _EVIDENCE_SQL, {"key": edge_key(edge_id)}).filter(pl.col("edge_id") == edge_id)
    if found.height == 0:
        raise StoreError(f"no edge with id {edge_id!r}")
    return found


def edge_id_of(
    con: duckdb.DuckDBPyConnection, ontology: Ontology, subject_id: str, relation: str, object_id: str
) -> str | None:
    """The id of the edge ``subject -relation-> object`` (either way round for symmetric relations)."""
    rel = ontology.relation_types.get(relation)
    pairs = [(subject_id, object_id)]
    if rel is not None and rel.symmetric:
        pairs.append((object_id, subject_id))
    for s, o in pairs:  # look up by subject alone (the index), then pick the relation and object
        for edge_id, rel_, obj in rows(con, "SELECT edge_id, relation, object_id FROM edges WHERE subject_id = ?", [s]):
            if rel_ == relation and obj == o:
                return str(edge_id)
    return None


# -- walks -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One edge on a path, as stored (``subject_id -relation-> object_id``)."""

    edge_id: str
    subject_id: str
    relation: str
    object_id: str


@dataclass(frozen=True)
class Path:
    """A shortest path: ``nodes[i]`` and ``nodes[i + 1]`` are joined by ``steps[i]``."""

    nodes: list[str]
    steps: list[Step]

    def __len__(self) -> int:
        return len(self.steps)


def shortest_path(
    con: duckdb.DuckDBPyConnection,
    source: str,
    target: str,
    *,
    max_hops: int = 6,
    relation: str | Sequence[str] | None = None,
    directed: bool = False,
    min_confidence: float | None = None,
) -> Path | None:
    """A shortest path from ``source`` to ``target``, or None within ``max_hops``.

    Breadth-first from both ends at once, one query per hop, always growing
    the smaller frontier: on a graph with hubs this visits far fewer nodes
    than a search from one end. Paths of equal length are chosen by the
    smallest ids, so the answer does not depend on storage order.
    """
    require_entity(con, source)
    require_entity(con, target)
    if source == target:
        return Path([source], [])
    rels = _relations(relation)
    # parent[node] = (node one step closer to that side's start, the step between them)
    parents: tuple[dict[str, tuple[str, Step] | None], dict[str, tuple[str, Step] | None]] = (
        {source: None}, {target: None},
    )
    frontiers = ([source], [target])
    for _ in range(max_hops):
        side = 0 if len(frontiers[0]) <= len(frontiers[1]) else 1
        # forward side follows edges out of the frontier, the backward side into it (unless undirected)
        direction = "both" if not directed else ("out" if side == 0 else "in")
        hits = edges_at(con, frontiers[side], direction=direction, relations=rels, min_confidence=min_confidence)
        seen = parents[side]
        new = (
            hits.filter(~pl.col("neighbor_id").is_in(list(seen)))
            .sort(["neighbor_id", "id", "edge_id"])
            .unique("neighbor_id", keep="first", maintain_order=True)
        )
        if new.height == 0:
            return None
        for r in new.select("neighbor_id", "id", "edge_id", "subject_id", "relation", "object_id").iter_rows():
            seen[r[0]] = (r[1], Step(r[2], r[3], r[4], r[5]))
        frontiers = (new["neighbor_id"].to_list(), frontiers[1]) if side == 0 else (frontiers[0],
                                                                                  new["neighbor_id"].to_list())
        meet = sorted(set(frontiers[side]) & set(parents[1 - side]))
        if meet:
            return _join_paths(parents, meet[0])
    return None


def _join_paths(parents: tuple[dict, dict], middle: str) -> Path:
    """The path source -> middle (walking parents of side 0 back) then middle -> target (side 1)."""
    nodes, steps = [middle], []
    node = middle
    while parents[0][node] is not None:
        prev, step = parents[0][node]
        nodes.append(prev)
        steps.append(step)
        node = prev
    nodes.reverse()
    steps.reverse()
    node = middle
    while parents[1][node] is not None:
        nxt, step = parents[1][node]
        nodes.append(nxt)
        steps.append(step)
        node = nxt
    return Path(nodes, steps)


@dataclass(frozen=True)
class Subgraph:
    """Nodes (entity rows) and the edges among them."""

    nodes: pl.DataFrame
    edges: pl.DataFrame


def subgraph(
    con: duckdb.DuckDBPyConnection,
    ids: Sequence[str],
    *,
    hops: int = 1,
    relation: str | Sequence[str] | None = None,
    min_confidence: float | None = None,
) -> Subgraph:
    """The entities within ``hops`` edges (either direction) of ``ids`` and all edges among them."""
    start = entity_rows(con, ids)
    missing = sorted(set(ids) - set(start["entity_id"].to_list()))
    if missing:
        raise UnknownEntity(f"no entity with id {missing[0]!r}" + (f" (and {len(missing) - 1} more)"
                                                                    if len(missing) > 1 else ""))
    rels = _relations(relation)
    seen = list(dict.fromkeys(ids))
    members = set(seen)
    frontier = seen
    for _ in range(hops):
        if not frontier:
            break
        hits = edges_at(con, frontier, relations=rels, min_confidence=min_confidence)
        frontier = hits.filter(~pl.col("neighbor_id").is_in(list(members)))["neighbor_id"].unique(
            maintain_order=True
        ).to_list()
        seen.extend(frontier)
        members.update(frontier)
    nodes = entity_rows(con, seen) if hops else start
    edges = (
        edges_at(con, seen, direction="out", relations=rels, min_confidence=min_confidence)
        .filter(pl.col("object_id").is_in(list(members)))
        .select("edge_id", "subject_id", "relation", "object_id", "confidence", "n_evidence")
        .sort("edge_id")
    )
    return Subgraph(nodes, edges)


def whole_graph(
    con: duckdb.DuckDBPyConnection,
    *,
    relation: str | Sequence[str] | None = None,
    min_confidence: float | None = None,
) -> Subgraph:
    """Every entity and every edge (of the given relations, at or above ``min_confidence``): two table scans."""
    nodes = frame(con, f"SELECT {_ENTITY_COLUMNS} FROM entities ORDER BY entity_id")
    edges = frame(
        con, "SELECT edge_id, subject_id, relation, object_id, confidence, n_evidence FROM edges ORDER BY edge_id"
    ).filter(_edge_filter(_relations(relation), min_confidence))
    return Subgraph(nodes, edges)
