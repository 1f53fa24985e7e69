"""Known names (from the graph store or a records table) and where they occur in text.

The gazetteer holds one row per (entity, name or alias) with the matching
package's normalised keys: a plain key (folded, punctuation dropped), a title
key (``normalize_title``: leading article, roman numerals) for works and a
person key (``normalize_person`` + ``person_key``: token order free) for
people. Looking a string up is a hash join on those keys, then, for strings
with no exact hit, rapidfuzz ``cpdist`` over candidates that share a rare
name token: the same block-then-score shape as record matching, so it stays
columnar whatever the number of names.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rapidfuzz import fuzz, process

from extraction.errors import ExtractionError
from extraction.spans import ngrams, tokenize
from matching.normalize import fold, normalize_person, normalize_title, person_key
from schemas.ontology import Ontology, load_ontology

MIN_FUZZY_TOKEN = 4  # tokens shorter than this do not propose fuzzy candidates
MAX_NGRAM = 8

CANDIDATE_SCHEMA = {
    "qid": pl.UInt32, "entity_id": pl.String, "name": pl.String, "type": pl.String, "year": pl.Int32,
    "score": pl.Float64, "exact": pl.Boolean,
}  # fmt: skip


def plain_key(expr: pl.Expr) -> pl.Expr:
    """Folded, apostrophes dropped, every other non-letter/digit run one space; empty → null."""
    text = (
        fold(expr)
        .str.replace_all(r"['’`´]", "")
        .str.replace_all("&", " and ")
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars()
    )
    return text.replace("", None)  # not when/then, which would run the chain twice


def _types_under(ontology: Ontology, ancestor: str) -> list[str]:
    if ancestor not in ontology.entity_types:
        return []
    return [t for t in ontology.concrete_types if ontology.is_a(t, ancestor)]


class Gazetteer:
    """Names and aliases of known entities, keyed for exact and fuzzy lookup.

    ``names`` needs ``entity_id`` and ``name``; ``type`` and ``year`` may be
    null (type inference fills types for entities that have none).
    """

    def __init__(self, names: pl.DataFrame, ontology: Ontology | None = None):
        missing = {"entity_id", "name"} - set(names.columns)
        if missing:
            raise ExtractionError(f"gazetteer: missing column(s) {sorted(missing)}")
        self.ontology = ontology or load_ontology()
        for col, dtype in (("type", pl.String), ("year", pl.Int32)):
            if col not in names.columns:
                names = names.with_columns(pl.lit(None, dtype).alias(col))
        works = _types_under(self.ontology, "work")
        people = _types_under(self.ontology, "person")
        untyped = pl.col("type").is_null()
        self.names = (
            names.select(
                pl.col("entity_id").cast(pl.String),
                pl.col("name").cast(pl.String),
                pl.col("type").cast(pl.String),
                pl.col("year").cast(pl.Int32, strict=False),
            )
            .drop_nulls(["entity_id", "name"])
            .unique(maintain_order=True)
            .with_columns(key=plain_key(pl.col("name")))
            .drop_nulls("key")
            .with_columns(
                title_key=pl.when(untyped | pl.col("type").is_in(works)).then(normalize_title(pl.col("name"))),
                person_key=pl.when(untyped | pl.col("type").is_in(people)).then(
                    person_key(normalize_person(pl.col("name")))
                ),
                ntok=pl.col("key").str.count_matches(" ") + 1,
            )
            .with_row_index("nid")
        )

    def __len__(self) -> int:
        return self.names.height

    @cached_property
    def max_tokens(self) -> int:
        """Longest name in tokens (capped): how long the n-grams looked up in text need to be."""
        return int(min(self.names["ntok"].max() or 1, MAX_NGRAM)) if self.names.height else 1

    @cached_property
    def _token_index(self) -> pl.DataFrame:
        """token -> nid for name tokens long enough to be telling, with the token's block size."""
        return (
            self.names.select("nid", token=pl.col("key").str.split(" "))
            .explode("token")
            .filter(pl.col("token").str.len_chars() >= MIN_FUZZY_TOKEN)
            .unique()
            .with_columns(block=pl.len().over("token"))
        )

    # -- constructors ------------------------------------------------------------------------------

    @classmethod
    def from_graph(cls, graph, ontology: Ontology | None = None) -> Gazetteer:  # graph: kg.graph.Graph
        """Every name and alias of the store's active entities."""
        frame = graph.sql(
            "SELECT n.entity_id, n.name, e.type, e.year FROM names n JOIN entities e USING (entity_id) "
            "WHERE e.status = 'active'"
        )
        return cls(frame, ontology or graph.ontology)

    @classmethod
    def from_store(cls, path: str | Path, ontology: Ontology | None = None) -> Gazetteer:
        """Open the store read-only, read its names, close it."""
        from kg.graph import Graph

        with Graph.open(path, read_only=True, ontology=ontology) as graph:
            return cls.from_graph(graph, ontology)

    @classmethod
    def from_records(cls, records: pa.Table | pl.DataFrame | str | Path, ontology: Ontology | None = None) -> Gazetteer:
        """Names and aliases of a records table; the entity id is ``source:source_id``."""
        if isinstance(records, str | Path):
            records = pq.read_table(records, columns=["source", "source_id", "type", "name", "aliases", "year"])
        frame = records if isinstance(records, pl.DataFrame) else pl.from_arrow(records)
        missing = {"source", "source_id", "type", "name"} - set(frame.columns)
        if missing:
            raise ExtractionError(f"records table for the gazetteer: missing column(s) {sorted(missing)}")
        entity_id = pl.concat_str("source", "source_id", separator=":").alias("entity_id")
        year = pl.col("year") if "year" in frame.columns else pl.lit(None, pl.Int32).alias("year")
        base = frame.select(entity_id, "name", "type", year)
        if "aliases" in frame.columns:
            aliases = frame.select(entity_id, pl.col("aliases").alias("name"), "type", year).explode("name")
            base = pl.concat([base, aliases], how="vertical_relaxed")
        return cls(base, ontology)

    # -- lookups -----------------------------------------------------------------------------------

    def candidates(self, queries: pl.DataFrame, *, fuzzy_cutoff: float = 88.0, max_block: int = 200) -> pl.DataFrame:
        """Entities whose name matches each query string, best score per (query, entity).

        ``queries``: ``qid`` (u32) and ``text``. Exact: equal plain, title or
        person key (score 100). Fuzzy, only for queries without an exact hit:
        names sharing a token of 4+ letters that at most ``max_block`` names
        share, with one token more or less, scored by rapidfuzz
        ``token_sort_ratio`` on plain keys, kept from ``fuzzy_cutoff`` up.
        """
        if queries.height == 0 or self.names.height == 0:
            return pl.DataFrame(schema=CANDIDATE_SCHEMA)
        q = queries.select(pl.col("qid").cast(pl.UInt32), "text").with_columns(
            key=plain_key(pl.col("text")),
            title_key=normalize_title(pl.col("text")),
            person_key=person_key(normalize_person(pl.col("text"))),
        )
        q = q.drop_nulls("key").with_columns(ntok=pl.col("key").str.count_matches(" ") + 1)
        exact = pl.concat(
            [
                q.join(self.names.select("nid", k), on=k, how="inner").select("qid", "nid")
                for k in ("key", "title_key", "person_key")
            ]
        ).unique()
        exact = exact.with_columns(score=pl.lit(100.0), exact=pl.lit(True))
        fuzzy = self._fuzzy(q.join(exact.select("qid").unique(), on="qid", how="anti"), fuzzy_cutoff, max_block)
        hits = pl.concat([exact, fuzzy])
        return (
            hits.join(self.names.select("nid", "entity_id", "name", "type", "year"), on="nid")
            .sort(["qid", "exact", "score", "nid"], descending=[False, True, True, False])
            .unique(["qid", "entity_id"], keep="first", maintain_order=True)
            .select(list(CANDIDATE_SCHEMA))
            .cast(CANDIDATE_SCHEMA)
        )

    def _fuzzy(self, q: pl.DataFrame, cutoff: float, max_block: int) -> pl.DataFrame:
        empty = pl.DataFrame(schema={"qid": pl.UInt32, "nid": pl.UInt32, "score": pl.Float64, "exact": pl.Boolean})
        if q.height == 0:
            return empty
        tokens = (
            q.select("qid", "ntok", token=pl.col("key").str.split(" "))
            .explode("token")
            .filter(pl.col("token").str.len_chars() >= MIN_FUZZY_TOKEN)
        )
        index = self._token_index.filter(pl.col("block") <= max_block)
        pairs = (
            tokens.join(index, on="token")
            .select("qid", "nid", "ntok")
            .unique(["qid", "nid"])
            .join(self.names.select("nid", name_ntok="ntok", name_key="key"), on="nid")
            .filter((pl.col("ntok") - pl.col("name_ntok")).abs() <= 1)
            .join(q.select("qid", "key"), on="qid")
        )
        if pairs.height == 0:
            return empty
        scores = process.cpdist(
            pairs["key"].to_list(), pairs["name_key"].to_list(), scorer=fuzz.token_sort_ratio, dtype=np.float32,
            workers=-1,
        )
        return (
            pairs.select("qid", "nid")
            .with_columns(score=pl.Series(scores, dtype=pl.Float64), exact=pl.lit(False))
            .filter(pl.col("score") >= cutoff)
        )

    def spot(
        self,
        texts: Sequence[str],
        sentences: Sequence[Sequence[tuple[int, int]]],
        *,
        fuzzy_cutoff: float = 90.0,
        max_block: int = 200,
    ) -> pl.DataFrame:
        """Known names in ``texts``: non-overlapping spans, each with every entity it may name.

        Spans are n-grams within one sentence that start with a capital (a
        single function word is never one). Where spans overlap the exact
        one wins, then the longer, then the better scored; an entity choice
        among a span's candidates is left to linking. Columns: ``span``,
        ``text`` (index into ``texts``), ``start``, ``end``, ``surface`` (the
        text's slice), ``sentence``, then the candidate columns of ``candidates``.
        """
        schema = {"span": pl.UInt32, "text": pl.UInt32, "sentence": pl.Int64, "start": pl.Int64, "end": pl.Int64,
                  "surface": pl.String}
        empty = pl.DataFrame(schema={**schema, **{k: v for k, v in CANDIDATE_SCHEMA.items() if k != "qid"}})
        if not texts or self.names.height == 0:
            return empty
        grams = ngrams(tokenize(texts, sentences), self.max_tokens).with_row_index("qid")
        cands = self.candidates(grams.select("qid", text="raw"), fuzzy_cutoff=fuzzy_cutoff, max_block=max_block)
        if cands.height == 0:
            return empty
        best = (
            cands.group_by("qid")
            .agg(pl.col("exact").max(), pl.col("score").max())
            .join(grams.select("qid", "text", "sentence", "start", "end", "n"), on="qid")
            .sort(["text", "exact", "n", "score", "start"], descending=[False, True, True, True, False])
        )
        chosen = _non_overlapping(best)
        spans = (
            best.filter(pl.col("qid").is_in(chosen))
            .sort(["text", "start"])
            .with_row_index("span")
            .select("span", "qid", "text", "sentence", "start", "end")
        )
        surface = [texts[t][s:e] for t, s, e in spans.select("text", "start", "end").iter_rows()]
        return (
            spans.with_columns(surface=pl.Series(surface, dtype=pl.String))
            .join(cands, on="qid")
            .drop("qid")
            .sort(["span", "exact", "score"], descending=[False, True, True])
            .select(empty.columns)
            .cast(empty.schema)
        )


def _non_overlapping(ranked: pl.DataFrame) -> list[int]:
    """Greedy pick in rank order of spans that overlap no span picked before (per text).

    Runs over matched spans only (a handful per sentence), not over text.
    """
    taken: dict[int, list[tuple[int, int]]] = {}
    chosen = []
    for qid, text, start, end in ranked.select("qid", "text", "start", "end").iter_rows():
        spans = taken.setdefault(text, [])
        if all(end <= s or start >= e for s, e in spans):
            spans.append((start, end))
            chosen.append(qid)
    return chosen
