"""Silver gold relations for the moviegraph abstracts, derived from the records (the data has no relation fields).

The benchmark's records are bare nodes: titles, names, years, professions,
abstracts; no cast, crew or episode-series links. What can be derived
honestly is *who is related to the work an abstract describes*:

1. Documents: abstracts of works (movie, series, episode; TMDb and TVDb)
   whose own title occurs in the abstract (found by the gazetteer with the
   record's own id, exact key): only then can a relation about the work be
   stated in the text at all. A title that is also a person's name (an
   episode called "Thomas Paine") anchors nothing.
2. Entities: other records named in the abstract (gazetteer, exact key,
   spans not overlapping the work's own title), of type person (two tokens
   or more, so "Snow" is not Dan Snow) or company.
3. Relations: person → work with the relations their professions admit
   (union over every record of that name: actor/actress/guestStars →
   acted_in, director(s) → directed, writer(s) → wrote, producer →
   produced, composer → composed_music_for); work → company:
   production_company. A person with none of these professions, and work–work
   pairs (based_on? sequel_of? the records cannot tell), are left out and
   counted.

One gold *item* per (document, entity); it is recalled when any of its
admissible relations is predicted in the right direction. It is distant
supervision, not annotation: a person named in an abstract need not be
related to the work as the text puts it ("based on the novel by Michael
Dobbs" is no ``wrote`` of the series), and a profession need not be the
role in *this* work. Precision is therefore judged only on predictions about
a gold pair (see ``extraction.evaluate``), and the protocol's counts go into
the report.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl

from extraction.documents import sentence_spans
from extraction.errors import ExtractionError
from extraction.gazetteer import Gazetteer, plain_key

WORK_TYPES = ("movie", "series", "episode")
PROFESSION_RELATIONS = {
    "actor": "acted_in", "actress": "acted_in", "guestStars": "acted_in",
    "director": "directed", "directors": "directed",
    "writer": "wrote", "writers": "wrote",
    "producer": "produced",
    "composer": "composed_music_for",
}  # fmt: skip
GOLD_SCHEMA = {"gold_id": pl.Int64, "doc_id": pl.String, "subject": pl.String, "relation": pl.String,
               "object": pl.String}


def load_records(data_dir: str | Path, work_dir: str | Path) -> pl.DataFrame:
    """Ingest the three sources (``kg.adapters.moviegraph``) into ``work_dir`` and return all records."""
    from kg.adapters.moviegraph import ingest_moviegraph

    reports = ingest_moviegraph(data_dir, work_dir)
    return pl.concat([pl.read_parquet(r.records_path) for r in reports.values()], how="vertical_relaxed")


def derive_gold(records: pl.DataFrame, gazetteer: Gazetteer | None = None) -> tuple[pl.DataFrame, pl.DataFrame, dict]:
    """(documents: doc_id, text, name, type; gold rows: gold_id, doc_id, subject, relation, object; counts).

    Only documents with at least one gold item are returned.
    """
    gazetteer = gazetteer or Gazetteer.from_records(records)
    docs = (
        records.filter(pl.col("abstract").is_not_null() & pl.col("type").is_in(WORK_TYPES))
        .select(doc_id=pl.concat_str("source", "source_id", separator=":"), text="abstract", name="name", type="type")
        .unique("doc_id", maintain_order=True)
    )
    texts = docs["text"].to_list()
    spots = gazetteer.spot(texts, [sentence_spans(t) for t in texts], fuzzy_cutoff=101.0)
    spots = spots.filter(pl.col("exact")).sort("text", "start", "entity_id").join(
        docs.with_row_index("i").select(pl.col("i").cast(pl.UInt32).alias("text"), "doc_id", doc_name="name"),
        on="text",
    )
    person_keys = records.filter(pl.col("type") == "person").select(key=plain_key(pl.col("name"))).unique()
    # An episode titled "Thomas Paine" names a person, not itself: such titles anchor nothing.
    own = spots.filter(pl.col("entity_id") == pl.col("doc_id")).with_columns(key=plain_key(pl.col("surface")))
    own = own.join(person_keys, on="key", how="anti").drop("key")
    own_spans = own.select("doc_id", "span", own_surface="surface").unique(["doc_id", "span"], maintain_order=True)
    anchored = own_spans.unique("doc_id", keep="first", maintain_order=True)
    counts = {"work_abstracts": docs.height, "abstracts_naming_their_work": anchored.height}

    others = (
        spots.join(anchored.select("doc_id", "own_surface"), on="doc_id")
        .join(own_spans.select("doc_id", "span"), on=["doc_id", "span"], how="anti")
        .with_columns(key=plain_key(pl.col("surface")))
        .filter(pl.col("key") != plain_key(pl.col("doc_name")))
    )
    professions = (
        records.filter(pl.col("type") == "person")
        .select(key=plain_key(pl.col("name")), profession=pl.col("professions"))
        .explode("profession")
        .with_columns(relation=pl.col("profession").replace_strict(PROFESSION_RELATIONS, default=None))
        .drop_nulls("relation")
        .select("key", "relation")
        .unique(maintain_order=True)
    )
    people = others.filter((pl.col("type") == "person") & (pl.col("key").str.count_matches(" ") >= 1))
    person_rows = people.select("doc_id", "key", "surface", "own_surface").unique(
        ["doc_id", "key"], maintain_order=True
    ).join(professions, on="key", how="left")
    no_profession = person_rows.filter(pl.col("relation").is_null()).select("doc_id", "key").unique().height
    person_gold = person_rows.drop_nulls("relation").select(
        "doc_id", "key", subject="surface", relation="relation", object="own_surface"
    )
    company_gold = (
        others.filter(pl.col("type") == "company")
        .unique(["doc_id", "key"], maintain_order=True)
        .select("doc_id", "key", subject="own_surface", relation=pl.lit("production_company"), object="surface")
    )
    work_pairs = others.filter(pl.col("type").is_in(WORK_TYPES)).select("doc_id", "key").unique().height
    gold = pl.concat([person_gold, company_gold]).unique(maintain_order=True).sort("doc_id", "key", "relation")
    gold = gold.with_columns(gold_id=pl.struct("doc_id", "key").rank("dense").cast(pl.Int64) - 1)
    gold = gold.select(list(GOLD_SCHEMA)).cast(GOLD_SCHEMA)
    counts |= {
        "gold_items": gold["gold_id"].n_unique(),
        "person_pairs_without_mapped_profession": no_profession,
        "work_work_pairs_left_out": work_pairs,
    }
    docs = docs.filter(pl.col("doc_id").is_in(gold["doc_id"].unique().to_list()))
    counts["documents_with_gold"] = docs.height
    return docs, gold, counts


def sample_moviegraph(
    records: pl.DataFrame, n: int, *, seed: int = 0
) -> tuple[list[tuple[str, str]], pl.DataFrame, Gazetteer, dict]:
    """``n`` seeded documents with gold: (documents, their gold rows, the records gazetteer, protocol counts)."""
    gazetteer = Gazetteer.from_records(records)
    docs, gold, counts = derive_gold(records, gazetteer)
    if docs.height == 0:
        raise ExtractionError("moviegraph: no abstract names its own work and another record; nothing to score")
    docs = docs.sort("doc_id")
    chosen = sorted(random.Random(seed).sample(range(docs.height), min(n, docs.height)))
    picked = docs[chosen]
    gold = gold.filter(pl.col("doc_id").is_in(picked["doc_id"].to_list()))
    counts = {**counts, "sampled_documents": picked.height, "sampled_gold_items": gold["gold_id"].n_unique()}
    return list(picked.select("doc_id", "text").iter_rows()), gold, gazetteer, counts
