"""The analyst API: ``Graph.open(path)`` and typed queries returning polars DataFrames or dataclasses.

Analysts open the store read-only (the default), so several notebooks or
processes can read one file at once and no query can change it. Methods
that read several tables do it inside one read transaction: an entity's
names, records and provenance always come from the same snapshot, even
while a merge commits in another connection of the same process.

    from kg.graph import Graph
    g = Graph.open("graph.duckdb")
    g.find("knives out", type="movie")
    g.neighbors(movie_id, relation="directed", direction="in")
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import networkx as nx
import polars as pl
import pyarrow as pa

from kg.store import query as q
from kg.store.db import DEFAULT_PATH, Store
from kg.store.errors import StoreError, UnknownEntity
from kg.store.export import FORMATS, export_neo4j, export_parquet, export_subgraph, subgraph_to_networkx
from kg.store.merge import MergeResult, merge_entities, merge_relations
from kg.store.query import Path as GraphPath
from kg.store.query import Subgraph
from kg.store.reviews import LabelExport, add_review, add_reviews, export_match_labels, reviews
from kg.store.runs import RunInfo
from kg.store.stats import Stats, stats
from schemas.ontology import Ontology, load_ontology

__all__ = ["EntityView", "Graph", "GraphPath", "LabelExport", "Subgraph"]


@dataclass(frozen=True)
class EntityView:
    """One entity with where it comes from: its names, source records and the runs that placed them."""

    entity_id: str
    type: str
    name: str | None
    year: int | None
    end_year: int | None
    status: str
    n_records: int
    names: pl.DataFrame  # name, kind, source, source_id
    records: pl.DataFrame  # the source records (provenance), with the matching run that mapped each
    aliases: list[str]  # ids that matching runs proposed for this entity
    merged_into: str | None = None  # retired: the entity that took most of its records


class Graph:
    """A graph store opened for analysis (and, opened read-write, for merges)."""

    def __init__(self, store: Store, ontology: Ontology | None = None):
        self.store = store
        self.ontology = ontology or load_ontology()
        self._con = store.cursor()

    @classmethod
    def open(
        cls,
        path: str | Path = DEFAULT_PATH,
        *,
        read_only: bool = True,
        ontology: Ontology | None = None,
        wait: float = 0.0,
    ) -> Graph:
        """Open the store at ``path``; read-only unless you mean to merge.

        DuckDB keeps other processes out while one merges, so a notebook
        opening the graph mid-merge gets a "locked" error, or, with ``wait``
        seconds, waits for the merge to finish and then reads all of it.
        """
        return cls(Store.open(path, read_only=read_only, wait=wait), ontology)

    def close(self) -> None:
        self._con.close()
        self.store.close()

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _snapshot(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Several reads from one consistent snapshot.

        Read-only, the file cannot change while it is open (DuckDB lets no
        process write it then), so every read sees one state already and the
        transaction is skipped: it was a tenth of a 1-hop look-up's 2 ms.
        """
        if self.store.read_only:
            yield self._con
            return
        self._con.begin()
        try:
            yield self._con
        finally:
            self._con.rollback()

    # -- lookups -----------------------------------------------------------------------------------

    def find(
        self,
        query: str,
        *,
        type: str | None = None,
        year: int | tuple[int, int] | None = None,
        limit: int = 10,
        min_score: float = 60.0,
    ) -> pl.DataFrame:
        """Fuzzy search over names and aliases; ``type`` may be abstract ("work"), ``year`` a (from, to) range.

        Columns: entity_id, type, name, year, matched (the name that matched), score (0-100).
        """
        return q.find(self._con, self.ontology, query, type=type, year=year, limit=limit, min_score=min_score)

    def entity(self, entity_id: str) -> EntityView:
        """The entity with its names, source records and provenance; ``UnknownEntity`` if absent."""
        with self._snapshot() as con:
            row = q.one(
                con,
                "SELECT entity_id, type, name, year, end_year, status, n_records, merged_into FROM entities "
                "WHERE entity_id = ?",
                [entity_id],
            )
            if row is None:
                raise UnknownEntity(f"no entity with id {entity_id!r}")
            names = q.frame(
                con,
                "SELECT name, kind, source, source_id FROM names WHERE entity_id = ? "
                "ORDER BY kind DESC, name, source, source_id",
                [entity_id],
            )
            records = q.entity_records(con, entity_id)
            aliases = [r[0] for r in q.rows(
                con, "SELECT alias_id FROM id_aliases WHERE entity_id = ? ORDER BY alias_id", [entity_id]
            )]
        return EntityView(*row[:7], names=names, records=records, aliases=aliases, merged_into=row[7])

    def neighbors(
        self,
        entity_id: str,
        *,
        relation: str | Sequence[str] | None = None,
        direction: str = "both",
        min_confidence: float | None = None,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """Edges at an entity. ``direction``: 'out' (entity is subject), 'in' (object) or 'both'."""
        with self._snapshot() as con:
            return q.neighbors(
                con, entity_id, relation=relation, direction=direction, min_confidence=min_confidence, limit=limit
            )

    def relations(
        self,
        *,
        type: str | Sequence[str] | None = None,
        min_confidence: float | None = None,
        limit: int | None = None,
    ) -> pl.DataFrame:
        """Edges of a relation type (or all), with endpoint names, confidence and evidence count."""
        return q.relations(self._con, type=type, min_confidence=min_confidence, limit=limit)

    def evidence(self, edge_id: str) -> pl.DataFrame:
        """Why an edge is here: its accepted claims with document, span, quote, model, prompt and run."""
        with self._snapshot() as con:
            return q.evidence(con, edge_id)

    def why(self, subject_id: str, relation: str, object_id: str) -> pl.DataFrame:
        """The evidence for ``subject -relation-> object``; ``StoreError`` when there is no such edge."""
        with self._snapshot() as con:
            edge_id = q.edge_id_of(con, self.ontology, subject_id, relation, object_id)
            if edge_id is None:
                raise StoreError(f"no edge {subject_id} -{relation}-> {object_id}")
            return q.evidence(con, edge_id)

    # -- walks -------------------------------------------------------------------------------------

    def shortest_path(
        self,
        source: str,
        target: str,
        *,
        max_hops: int = 6,
        relation: str | Sequence[str] | None = None,
        directed: bool = False,
        min_confidence: float | None = None,
    ) -> GraphPath | None:
        """A shortest path (edges followed either way unless ``directed``), or None within ``max_hops``."""
        with self._snapshot() as con:
            return q.shortest_path(
                con, source, target, max_hops=max_hops, relation=relation, directed=directed,
                min_confidence=min_confidence,
            )

    def subgraph(
        self,
        ids: Sequence[str],
        *,
        hops: int = 1,
        relation: str | Sequence[str] | None = None,
        min_confidence: float | None = None,
    ) -> Subgraph:
        """Entities within ``hops`` of ``ids`` and the edges among them."""
        with self._snapshot() as con:
            return q.subgraph(con, list(ids), hops=hops, relation=relation, min_confidence=min_confidence)

    def to_networkx(
        self,
        ids: Sequence[str] | None = None,
        *,
        hops: int = 1,
        relation: str | Sequence[str] | None = None,
        min_confidence: float | None = None,
    ) -> nx.MultiDiGraph:
        """A networkx MultiDiGraph of the subgraph around ``ids``, or of the whole graph when ``ids`` is None."""
        if ids is None:
            with self._snapshot() as con:
                sub = q.whole_graph(con, relation=relation, min_confidence=min_confidence)
        else:
            sub = self.subgraph(ids, hops=hops, relation=relation, min_confidence=min_confidence)
        return subgraph_to_networkx(sub)

    # -- SQL, stats, exports -----------------------------------------------------------------------

    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pl.DataFrame:
        """Run your own SQL with ``?`` or ``$name`` parameters; never format values into ``query``."""
        return q.frame(self._con, query, params)

    def stats(self) -> Stats:
        """Counts by table, entity type, relation, source and run."""
        with self._snapshot() as con:
            return stats(con)

    def export(
        self,
        fmt: str,
        out: str | Path,
        *,
        ids: Sequence[str] | None = None,
        hops: int = 1,
    ) -> list[Path]:
        """Export as 'parquet' (a folder of tables), 'neo4j' (a folder of CSVs), or 'graphml'/'json'
        (one file with the subgraph around ``ids``)."""
        if fmt not in FORMATS:
            raise StoreError(f"export format must be one of {FORMATS}, not {fmt!r}")
        with self._snapshot() as con:
            if fmt == "parquet":
                return export_parquet(con, out)
            if fmt == "neo4j":
                return export_neo4j(con, out)
            if not ids:
                raise StoreError(f"{fmt} export is for small subgraphs: give the entity ids to start from")
            return [export_subgraph(q.subgraph(con, list(ids), hops=hops), out, fmt)]

    # -- merges (read-write only) ------------------------------------------------------------------

    def merge_entities(self, records: pa.Table, crosswalk: pa.Table, run: RunInfo) -> MergeResult:
        """See ``kg.store.merge.merge_entities``."""
        return merge_entities(self.store, records, crosswalk, run, ontology=self.ontology)

    def merge_relations(self, relations: pa.Table, run: RunInfo, *, allow_unlinked: bool = False) -> MergeResult:
        """See ``kg.store.merge.merge_relations``."""
        return merge_relations(self.store, relations, run, ontology=self.ontology, allow_unlinked=allow_unlinked)

    # -- review labels (adding them needs read-write) ----------------------------------------------

    def add_review(
        self,
        kind: str,
        left: str | tuple[str, str],
        right: str | tuple[str, str] | None = None,
        *,
        label: str,
        reviewer: str | None = None,
        note: str | None = None,
    ) -> int:
        """Label two records ('records', (source, id) pairs), two entities ('entities'), an edge or a claim.

        Labels: match / non_match for pairs, correct / wrong for edges and
        claims, unsure for any. Returns 1 when the label changed, 0 when the
        reviewer had given that label already. See ``kg.store.reviews``.
        """
        return add_review(self.store, kind, left, right, label=label, reviewer=reviewer, note=note)

    def add_reviews(self, labels: pa.Table) -> int:
        """Store a table of labels (``schemas.tables.REVIEW_LABELS``) in one transaction."""
        return add_reviews(self.store, labels)

    def reviews(self, kind: str | None = None) -> pl.DataFrame:
        """Stored labels, newest first: kind, target, label, reviewer, note, created_at."""
        return reviews(self._con, kind)

    def export_match_labels(self, path: str | Path) -> LabelExport:
        """Reviewed record pairs as a PAIR_LABELS Parquet file, the training input of the matching model."""
        with self._snapshot() as con:
            return export_match_labels(con, path)
