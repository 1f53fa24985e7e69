"""Types for entities that have none, read from the documents that mention them.

Each occurrence of an entity's name (found by the gazetteer, as in guided
mode) gets the guided mode's narrow type question, seeing only its
sentence; the entity takes the type most occurrences got. "none" answers
abstain. The confidence is the winning type's share of the typed
occurrences times their mean logprob score, so one lucky mention does not
outweigh three that disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import polars as pl

from extraction.asking import Asker
from extraction.documents import Corpus, Document, as_documents, sentence_spans
from extraction.errors import ExtractionError
from extraction.gates import GateConfig
from extraction.gazetteer import Gazetteer
from extraction.guided import type_mentions
from schemas.ontology import Ontology, load_ontology

RESULT_SCHEMA = {"entity_id": pl.String, "name": pl.String, "type": pl.String, "votes": pl.UInt32,
                 "occurrences": pl.UInt32, "confidence": pl.Float64}


def infer_entity_types(
    documents: Corpus | Iterable[Document | tuple[str, str]],
    client: Any,
    entities: pl.DataFrame,
    *,
    ontology: Ontology | None = None,
    samples: int = 1,
    max_tokens: int = 32,
    progress: bool = False,
) -> pl.DataFrame:
    """For each entity of ``entities`` (``entity_id``, ``name``, optional ``type``) whose type is null.

    Returns one row per such entity found in the documents: ``type`` (null
    when every occurrence answered "none"), ``votes`` for it,
    ``occurrences`` asked about, ``confidence``. Entities never found in the
    documents are not in the result.
    """
    if not {"entity_id", "name"} <= set(entities.columns):
        raise ExtractionError("entities: need columns 'entity_id' and 'name'")
    ontology = ontology or load_ontology()
    untyped = entities.filter(pl.col("type").is_null()) if "type" in entities.columns else entities
    gazetteer = Gazetteer(untyped.select("entity_id", "name"), ontology)
    docs = as_documents(documents.documents if isinstance(documents, Corpus) else documents)
    texts = [d.text for d in docs]
    sentences = [sentence_spans(t) for t in texts]
    spots = gazetteer.spot(texts, sentences)
    if spots.height == 0:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    spans = spots.unique("span", maintain_order=True).select("text", "sentence", "start", "end", "surface")
    with Asker(client, progress=progress) as asker:
        typed, rejected = type_mentions(
            spans, docs, sentences, asker, str(client.model_name), ontology, GateConfig(samples=samples), max_tokens
        )
    answers = pl.DataFrame(
        [{"text": m["doc"], "start": m["start"], "type": m["type"], "confidence": m["confidence"]} for m in typed]
        + [{"text": m["doc"], "start": m["start"], "type": None, "confidence": None} for m in rejected],
        schema={"text": pl.UInt32, "start": pl.Int64, "type": pl.String, "confidence": pl.Float64},
    )
    per_entity = spots.select("text", "start", "entity_id", "name").join(answers, on=["text", "start"])
    votes = (
        per_entity.filter(pl.col("type").is_not_null())
        .group_by("entity_id", "type")
        .agg(votes=pl.len().cast(pl.UInt32), mean_conf=pl.col("confidence").mean())
        .sort(["entity_id", "votes", "type"], descending=[False, True, False])
        .unique("entity_id", keep="first", maintain_order=True)
    )
    occurrences = per_entity.group_by("entity_id").agg(
        pl.col("name").first(), occurrences=pl.len().cast(pl.UInt32),
        typed=pl.col("type").is_not_null().sum(),
    )
    return (
        occurrences.join(votes, on="entity_id", how="left")
        .with_columns(
            confidence=pl.col("votes") / pl.col("typed") * pl.col("mean_conf").fill_null(1.0),
            votes=pl.col("votes").fill_null(0),
        )
        .select(list(RESULT_SCHEMA))
        .cast(RESULT_SCHEMA)
        .sort("entity_id")
    )
