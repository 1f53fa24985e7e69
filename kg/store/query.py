"""Read queries behind the analyst API; each takes a DuckDB connection and returns polars or dataclasses.

All SQL here is parameterised. Graph walks (paths, subgraphs) run one SQL
join per hop over the whole frontier, so their cost grows with the number of
hops, not with the number of nodes visited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from kg.store.db import first
from kg.store.errors import StoreError, UnknownEntity
from schemas.ontology import Ontology

DIRECTIONS = ("out", "in", "both")

# How many name rows the SQL prefilter hands to rapidfuzz at most.
FIND_CANDIDATES = 5000


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence | dict | None = None) -> pl.DataFrame:
    """Run parameterised ``sql`` and return the rows as a polars DataFrame (via Arrow, no copy per row)."""
    try:
        return pl.from_arrow(con.sql(sql, params=params).to_arrow_table())  # type: ignore[return-value]
    except duckdb.Error as exc:
        raise StoreError(f"query failed: {exc}") from exc


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
    if first(con, "SELECT 1 FROM entities WHERE entity_id = ?", [entity_id]) is None:
        raise UnknownEntity(f"no entity with id {entity_id!r}")


# -- find ------------------------------------------------------------------------------------------

_FIND_SQL = """
SELECT n.entity_id, e.type, e.name, e.year, n.name AS matched, n.norm,
       jaro_winkler_similarity(n.norm, $q) AS jw
FROM names n JOIN entities e USING (entity_id)
WHERE e.status = 'active'
  AND ($types::VARCHAR[] IS NULL OR list_contains($types::VARCHAR[], e.type))
  AND ($ymin::INTEGER IS NULL OR e.year >= $ymin::INTEGER)
  AND ($ymax::INTEGER IS NULL OR e.year <= $ymax::INTEGER)
  AND (contains(n.norm, $q) OR jaro_winkler_similarity(n.norm, $q) >= 0.75
       OR list_has_any(string_split(n.norm, ' '), $tokens::VARCHAR[]))
ORDER BY jw DESC, n.entity_id
LIMIT $cap
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

    DuckDB narrows the names table to plausible candidates (substring, shared
    token of 3+ letters, or Jaro-Winkler >= 0.75 on normalised names) so
    rapidfuzz scores thousands of strings, not millions.
    """
    types = _types_under(ontology, type)
    ymin, ymax = (year, year) if isinstance(year, int) else (year or (None, None))
    row = first(con, "SELECT kg_norm(?)", [query])
    q = row[0] if row else ""
    empty = pl.DataFrame(
        schema={"entity_id": pl.String, "type": pl.String, "name": pl.String, "year": pl.Int32,
                "matched": pl.String, "score": pl.Float64}
    )
    if not q:
        return empty
    tokens = [t for t in q.split() if len(t) >= 3]
    cands = frame(
        con,
        _FIND_SQL,
        {"q": q, "types": types, "ymin": ymin, "ymax": ymax, "tokens": tokens, "cap": FIND_CANDIDATES},
    )
    if cands.height == 0:
        return empty
    scores = process.cdist([q], cands["norm"].to_list(), scorer=fuzz.WRatio, dtype=np.float32)[0]
    exact = (cands["norm"] == q).cast(pl.Float64) * 0.5  # an exact name beats a partial one of equal score
    return (
        cands.with_columns(score=pl.Series(scores, dtype=pl.Float64) + exact)
        .filter(pl.col("score") >= min_score)
        .sort(["score", "jw", "entity_id"], descending=[True, True, False])
        .unique("entity_id", keep="first", maintain_order=True)
        .head(limit)
        .with_columns(pl.col("score").clip(upper_bound=100.0).round(1))
        .select(empty.columns)
    )


# -- neighbours and relations ----------------------------------------------------------------------

_NEIGHBORS_SQL = """
WITH hits AS (
    SELECT edge_id, 'out' AS direction, relation, object_id AS neighbor_id, confidence, n_evidence
    FROM edges WHERE subject_id = $id AND $dir IN ('out', 'both')
    UNION ALL
    SELECT edge_id, 'in' AS direction, relation, subject_id AS neighbor_id, confidence, n_evidence
    FROM edges WHERE object_id = $id AND $dir IN ('in', 'both')
)
SELECT h.edge_id, h.direction, h.relation, h.neighbor_id, n.type AS neighbor_type,
       n.name AS neighbor_name, n.year AS neighbor_year, h.confidence, h.n_evidence
FROM hits h JOIN entities n ON n.entity_id = h.neighbor_id
WHERE ($rels::VARCHAR[] IS NULL OR list_contains($rels::VARCHAR[], h.relation))
  AND ($minc::FLOAT IS NULL OR h.confidence >= $minc::FLOAT)
ORDER BY h.relation, h.direction, h.confidence DESC NULLS LAST, h.neighbor_id
LIMIT $limit
"""


def neighbors(
    con: duckdb.DuckDBPyConnection,
    entity_id: str,
    *,
    relation: str | Sequence[str] | None = None,
    direction: str = "both",
    min_confidence: float | None = None,
    limit: int | None = None,
) -> pl.DataFrame:
    """Edges at ``entity_id``: direction 'out' (it is the subject), 'in' (the object) or 'both'."""
    if direction not in DIRECTIONS:
        raise StoreError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    require_entity(con, entity_id)
    return frame(
        con,
        _NEIGHBORS_SQL,
        {"id": entity_id, "dir": direction, "rels": _relations(relation), "minc": min_confidence,
         "limit": limit if limit is not None else 2**62},
    )


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
WHERE c.edge_id = $edge
ORDER BY c.confidence DESC NULLS LAST, c.doc_id, c.start
"""


def evidence(con: duckdb.DuckDBPyConnection, edge_id: str) -> pl.DataFrame:
    """Why an edge is in the graph: each accepted claim (document, span, quote, model, prompt, run)."""
    if first(con, "SELECT 1 FROM edges WHERE edge_id = ?", [edge_id]) is None:
        raise StoreError(f"no edge with id {edge_id!r}")
    return frame(con, _EVIDENCE_SQL, {"edge": edge_id})


def edge_id_of(
    con: duckdb.DuckDBPyConnection, ontology: Ontology, subject_id: str, relation: str, object_id: str
) -> str | None:
    """The id of the edge ``subject -relation-> object`` (either way round for symmetric relations)."""
    rel = ontology.relation_types.get(relation)
    pairs = [(subject_id, object_id)]
    if rel is not None and rel.symmetric:
        pairs.append((object_id, subject_id))
    for s, o in pairs:
        row = first(
            con, "SELECT edge_id FROM edges WHERE subject_id = ? AND relation = ? AND object_id = ?", [s, relation, o]
        )
        if row:
            return str(row[0])
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


_HOP_SQL = """
WITH f AS (SELECT unnest($frontier::VARCHAR[]) AS id)
SELECT e.edge_id, e.subject_id, e.relation, e.object_id, f.id AS src, e.object_id AS dst
FROM edges e JOIN f ON e.subject_id = f.id
WHERE ($rels::VARCHAR[] IS NULL OR list_contains($rels::VARCHAR[], e.relation))
  AND ($minc::FLOAT IS NULL OR e.confidence >= $minc::FLOAT)
UNION ALL
SELECT e.edge_id, e.subject_id, e.relation, e.object_id, f.id AS src, e.subject_id AS dst
FROM edges e JOIN f ON e.object_id = f.id
WHERE $undirected
  AND ($rels::VARCHAR[] IS NULL OR list_contains($rels::VARCHAR[], e.relation))
  AND ($minc::FLOAT IS NULL OR e.confidence >= $minc::FLOAT)
"""


def _hop(
    con: duckdb.DuckDBPyConnection,
    frontier: list[str],
    rels: list[str] | None,
    min_confidence: float | None,
    undirected: bool,
) -> pl.DataFrame:
    return frame(
        con,
        _HOP_SQL,
        {"frontier": frontier, "rels": rels, "minc": min_confidence, "undirected": undirected},
    )


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
    """A shortest path from ``source`` to ``target`` (breadth-first, one query per hop), or None."""
    require_entity(con, source)
    require_entity(con, target)
    if source == target:
        return Path([source], [])
    rels = _relations(relation)
    parent: dict[str, tuple[str, Step]] = {}
    seen = {source}
    frontier = [source]
    for _ in range(max_hops):
        hits = _hop(con, frontier, rels, min_confidence, not directed)
        new = (
            hits.filter(~pl.col("dst").is_in(list(seen)))
            .sort(["dst", "src", "edge_id"])
            .unique("dst", keep="first", maintain_order=True)
        )
        if new.height == 0:
            return None
        for r in new.iter_rows(named=True):
            parent[r["dst"]] = (r["src"], Step(r["edge_id"], r["subject_id"], r["relation"], r["object_id"]))
        frontier = new["dst"].to_list()
        seen.update(frontier)
        if target in parent:
            nodes, steps = [target], []
            while nodes[-1] != source:
                prev, step = parent[nodes[-1]]
                steps.append(step)
                nodes.append(prev)
            return Path(nodes[::-1], steps[::-1])
    return None


@dataclass(frozen=True)
class Subgraph:
    """Nodes (entity rows) and the edges among them."""

    nodes: pl.DataFrame
    edges: pl.DataFrame


_NODES_SQL = """
SELECT entity_id, type, name, year, end_year, n_records, status
FROM entities WHERE entity_id IN (SELECT unnest($ids::VARCHAR[])) ORDER BY entity_id
"""

_INDUCED_EDGES_SQL = """
SELECT edge_id, subject_id, relation, object_id, confidence, n_evidence FROM edges
WHERE subject_id IN (SELECT unnest($ids::VARCHAR[])) AND object_id IN (SELECT unnest($ids::VARCHAR[]))
  AND ($rels::VARCHAR[] IS NULL OR list_contains($rels::VARCHAR[], relation))
  AND ($minc::FLOAT IS NULL OR confidence >= $minc::FLOAT)
ORDER BY edge_id
"""


def subgraph(
    con: duckdb.DuckDBPyConnection,
    ids: Sequence[str],
    *,
    hops: int = 1,
    relation: str | Sequence[str] | None = None,
    min_confidence: float | None = None,
) -> Subgraph:
    """The entities within ``hops`` edges (either direction) of ``ids`` and all edges among them."""
    for entity_id in ids:
        require_entity(con, entity_id)
    rels = _relations(relation)
    seen = list(dict.fromkeys(ids))
    frontier = seen
    for _ in range(hops):
        if not frontier:
            break
        hits = _hop(con, frontier, rels, min_confidence, True)
        frontier = hits.filter(~pl.col("dst").is_in(seen))["dst"].unique(maintain_order=True).to_list()
        seen.extend(frontier)
    nodes = frame(con, _NODES_SQL, {"ids": seen})
    edges = frame(con, _INDUCED_EDGES_SQL, {"ids": seen, "rels": rels, "minc": min_confidence})
    return Subgraph(nodes, edges)
