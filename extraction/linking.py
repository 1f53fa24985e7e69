"""Mentions → graph entities: link to a known one, propose a new one, or leave unlinked.

Candidates come from the gazetteer (name blocking keys from
``matching.normalize`` + rapidfuzz scores). Each candidate's score is then
adjusted by what the document says around the mention:

* type: a candidate of the mention's type keeps its score; one of a sibling
  type under the same root (a movie mention, a series entity) loses
  ``type_penalty``; an unrelated type (a person mention, a movie entity) is
  no candidate at all;
* context: a candidate whose year appears in the document gains
  ``year_bonus`` ("Mother (2009)" vs "Mother! (2017)").

A mention links when its best candidate reaches ``link_threshold`` and beats
the best candidate *of another entity* by ``margin``; otherwise it is
ambiguous. A mention with no candidate at the bar becomes a new entity when
its own confidence reaches ``new_entity_confidence``, else it stays
unlinked. New entity ids are ``text:<type>:<plain key>``: stable, so a rerun
or another document proposing the same name lands on the same entity.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
import pyarrow as pa

from extraction.gazetteer import Gazetteer, plain_key
from schemas.ontology import Ontology
from schemas.tables import CROSSWALK, RECORDS

LINK_STATES = ("linked", "new", "ambiguous", "unlinked")
NEW_SOURCE = "text"  # source name of records for entities first seen in text


@dataclass(frozen=True)
class LinkConfig:
    """Thresholds of linking; scores are 0-100 like rapidfuzz's."""

    link_threshold: float = 90.0
    margin: float = 3.0
    new_entity_confidence: float = 0.6
    type_penalty: float = 15.0
    year_bonus: float = 5.0
    fuzzy_cutoff: float = 85.0


def _roots(ontology: Ontology) -> dict[str, str]:
    roots = {}
    for name in ontology.entity_types:
        current = name
        while ontology.entity_types[current].parent is not None:
            current = ontology.entity_types[current].parent
        roots[name] = current
    return roots


def document_years(doc_ids: list[str], texts: list[str]) -> pl.DataFrame:
    """(doc_id, year) for every 4-digit year (1800-2099) written in each document."""
    return (
        pl.DataFrame({"doc_id": doc_ids, "t": texts}, schema={"doc_id": pl.String, "t": pl.String})
        .select("doc_id", year=pl.col("t").str.extract_all(r"\b(?:18|19|20)\d\d\b"))
        .explode("year")
        .drop_nulls("year")
        .select("doc_id", pl.col("year").cast(pl.Int32))
        .unique()
    )


def link_mentions(
    mentions: pl.DataFrame,
    gazetteer: Gazetteer | None,
    years: pl.DataFrame,
    ontology: Ontology,
    config: LinkConfig = LinkConfig(),
) -> pl.DataFrame:
    """Add ``entity_id``, ``link_score`` and ``link`` (one of LINK_STATES) to ``mentions``.

    ``mentions`` needs ``mid`` (unique u32), ``doc_id``, ``text``, ``type``
    and ``confidence`` (nullable). ``years`` is ``document_years`` of the
    documents. Without a gazetteer every mention is new or unlinked.
    """
    base = mentions.with_columns(pl.col("mid").cast(pl.UInt32))
    if gazetteer is not None and len(gazetteer):
        cands = gazetteer.candidates(base.select(qid="mid", text="text"), fuzzy_cutoff=config.fuzzy_cutoff)
        scored = _score(base, cands.rename({"qid": "mid", "type": "cand_type", "name": "cand_name"}), years,
                        ontology, config)
    else:
        scored = pl.DataFrame(schema={"mid": pl.UInt32, "cand_id": pl.String, "best": pl.Float64,
                                      "runner_up": pl.Float64})
    out = base.join(scored, on="mid", how="left")
    at_bar = pl.col("best").is_not_null() & (pl.col("best") >= config.link_threshold)
    clear = pl.col("runner_up").is_null() | (pl.col("best") - pl.col("runner_up") >= config.margin)
    new = pl.col("confidence").is_not_null() & (pl.col("confidence") >= config.new_entity_confidence)
    link = (
        pl.when(at_bar & clear).then(pl.lit("linked"))
        .when(at_bar).then(pl.lit("ambiguous"))
        .when(new).then(pl.lit("new"))
        .otherwise(pl.lit("unlinked"))
    )
    new_id = pl.concat_str(pl.lit(NEW_SOURCE), pl.col("type"), plain_key(pl.col("text")), separator=":")
    return out.with_columns(link=link).with_columns(
        entity_id=pl.when(pl.col("link") == "linked").then(pl.col("cand_id"))
        .when(pl.col("link") == "new").then(new_id),
        link_score=pl.when(pl.col("link") == "linked").then(pl.col("best").clip(upper_bound=100.0) / 100.0)
        .when(pl.col("link") == "new").then(pl.col("confidence")),
    ).drop("cand_id", "best", "runner_up")


def _score(
    mentions: pl.DataFrame, cands: pl.DataFrame, years: pl.DataFrame, ontology: Ontology, config: LinkConfig
) -> pl.DataFrame:
    roots = _roots(ontology)
    pairs = cands.join(mentions.select("mid", "doc_id", "type"), on="mid")
    pairs = pairs.with_columns(
        m_root=pl.col("type").replace_strict(roots, default=None),
        c_root=pl.col("cand_type").replace_strict(roots, default=None),
    )
    same = pl.col("type").is_null() | pl.col("cand_type").is_null() | (pl.col("type") == pl.col("cand_type"))
    sibling = pl.col("m_root") == pl.col("c_root")
    in_doc = years.with_columns(year_hit=pl.lit(True))
    pairs = (
        pairs.filter(same | sibling)
        .join(in_doc, on=["doc_id", "year"], how="left")
        .with_columns(
            adjusted=pl.col("score")
            - pl.when(same).then(0.0).otherwise(config.type_penalty)
            + pl.when(pl.col("year_hit")).then(config.year_bonus).otherwise(0.0)
        )
        .sort(["mid", "adjusted", "exact", "entity_id"], descending=[False, True, True, False])
    )
    return pairs.group_by("mid", maintain_order=True).agg(
        cand_id=pl.col("entity_id").first(),
        best=pl.col("adjusted").first(),
        runner_up=pl.col("adjusted").filter(pl.col("entity_id") != pl.col("entity_id").first()).max(),
    )


def new_entity_tables(mentions: pl.DataFrame, run_id: str) -> tuple[pa.Table, pa.Table]:
    """RECORDS and CROSSWALK rows for mentions linked as ``new``, one record per new entity id.

    The record is the provenance of the entity (source ``text``, source id
    ``<type>:<key>``); its name is the longest surface form seen, other forms
    are aliases, so the next run's gazetteer finds all of them.
    """
    new = mentions.filter(pl.col("link") == "new")
    grouped = (
        new.with_columns(length=pl.col("text").str.len_chars())
        .sort(["entity_id", "length", "text"], descending=[False, True, False])
        .group_by("entity_id", maintain_order=True)
        .agg(pl.col("type").first(), name=pl.col("text").first(), forms=pl.col("text").unique(maintain_order=True))
        .with_columns(aliases=pl.col("forms").list.set_difference(pl.concat_list("name")))
    )
    source_id = pl.col("entity_id").str.strip_prefix(f"{NEW_SOURCE}:")
    records = grouped.select(pl.lit(NEW_SOURCE).alias("source"), source_id.alias("source_id"), "type", "name",
                             "aliases")
    record_table = pa.table(
        {f.name: (records[f.name].to_arrow() if f.name in records.columns else pa.nulls(records.height, f.type))
         for f in RECORDS},
    )
    crosswalk = grouped.select(
        pl.lit(NEW_SOURCE).alias("source"), source_id.alias("source_id"), "entity_id", "type",
        pl.lit(run_id).alias("run_id"),
    )
    return _cast(record_table, RECORDS), _cast(crosswalk.to_arrow(), CROSSWALK)


def _cast(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return pa.table([table[f.name].cast(f.type) for f in schema], schema=schema)
