"""Guided mode: find the mentions without the LLM, then ask it only narrow multiple-choice questions.

1. Known names: the gazetteer spots graph/records names and aliases in the
   text (exact keys, then fuzzy), with offsets.
2. Other names: the capitalised-span detector proposes candidates that no
   known name covers.
3. Typing: for each candidate (and each known span whose candidates differ
   in type) the LLM picks one entity type or "none", seeing only its
   sentence.
4. Relations: for each pair of mentions in one sentence, the LLM picks one
   option among the relations the ontology allows between their types, in
   either direction, written out as sentences ("Rian Johnson directed Knives
   Out"), or "none". The evidence is that sentence, so it is grounded by
   construction.

A small model cannot propose a good triple list, but it can pick a label
from a short enum about a given pair: all the reading it must do is one
sentence, all it may answer is an option.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import combinations

import numpy as np
import polars as pl

from extraction.asking import Asker, cache_key
from extraction.documents import Document, chunk_document, sentence_spans
from extraction.found import Found, field_of, norm
from extraction.gates import GateConfig, combine_confidence
from extraction.gazetteer import Gazetteer
from extraction.llm import Request
from extraction.prompts import (
    RELATION_PROMPT,
    messages,
    relation_question,
    relation_words,
    type_prompt,
    type_question,
)
from extraction.responses import NONE, choice_model, schema_version, type_model
from extraction.spans import capitalised_spans, tokenize
from schemas.ontology import Ontology


def run_guided(
    docs: Sequence[Document],
    asker: Asker,
    model_name: str,
    ontology: Ontology,
    gates: GateConfig,
    gazetteer: Gazetteer | None,
    *,
    chunk_chars: int,
    chunk_overlap: int,
    max_tokens_type: int,
    max_tokens_relation: int,
    max_per_sentence: int,
) -> Found:
    found = Found()
    texts = [d.text for d in docs]
    sentences = [sentence_spans(t) for t in texts]
    chunk_starts = [np.array([c.start for c in chunk_document(d, chunk_chars, chunk_overlap)]) for d in docs]
    found.counts["chunks"] = sum(len(c) for c in chunk_starts)
    found.counts["sentences"] = sum(len(s) for s in sentences)

    def chunk_of(doc: int, offset: int) -> int:
        return int(np.searchsorted(chunk_starts[doc], offset, side="right") - 1)

    known, to_type = propose_mentions(texts, sentences, gazetteer)
    found.counts["known_spans"] = known.height
    found.counts["detected_spans"] = to_type.height
    mentions = [
        {"doc": r["text"], "sentence": r["sentence"], "start": r["start"], "end": r["end"], "text": r["surface"],
         "type": r["type"], "confidence": None, "model": None, "prompt_version": None}
        for r in known.iter_rows(named=True)
    ]
    typed, rejected = type_mentions(to_type, docs, sentences, asker, model_name, ontology, gates, max_tokens_type)
    mentions += typed
    for m in [*mentions, *rejected]:
        m["doc_id"] = docs[m["doc"]].doc_id
        m["chunk"] = chunk_of(m["doc"], m["start"])
    found.mentions = mentions
    found.rejected_mentions = rejected
    found.relations = classify_pairs(
        mentions, docs, sentences, asker, model_name, ontology, gates, max_tokens_relation, max_per_sentence,
        found.counts,
    )
    for r in found.relations:
        r["chunk"] = chunk_of(r["doc"], r["context_start"])
    return found


def propose_mentions(
    texts: list[str], sentences: list[list[tuple[int, int]]], gazetteer: Gazetteer | None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(known spans whose type the gazetteer settles, spans the LLM must type), both with text/sentence/start/end.

    A known span whose candidate entities disagree on type goes to the
    typing question, like a detected span that no known span overlaps.
    """
    span_schema = {"text": pl.UInt32, "sentence": pl.Int64, "start": pl.Int64, "end": pl.Int64,
                   "surface": pl.String}
    if gazetteer is not None and len(gazetteer):
        spots = gazetteer.spot(texts, sentences)
        spans = spots.group_by("span", maintain_order=True).agg(
            *[pl.col(c).first() for c in span_schema], types=pl.col("type").drop_nulls().unique()
        )
    else:
        spans = pl.DataFrame(schema={"span": pl.UInt32, **span_schema, "types": pl.List(pl.String)})
    known = spans.filter(pl.col("types").list.len() == 1).select(*span_schema, type=pl.col("types").list.first())
    unsure = spans.filter(pl.col("types").list.len() != 1).select(list(span_schema))
    detected = capitalised_spans(tokenize(texts, sentences)).rename({"raw": "surface"}).with_row_index("d")
    overlapping = detected.join(spans.select("text", ks="start", ke="end"), on="text").filter(
        (pl.col("start") < pl.col("ke")) & (pl.col("end") > pl.col("ks"))
    )
    fresh = detected.join(overlapping.select("d").unique(), on="d", how="anti").select(list(span_schema))
    return known, pl.concat([unsure, fresh]).cast(span_schema).sort("text", "start")


def _vote(answers: list, attr: str, samples: int) -> tuple[str, float | None] | None:
    """Majority answer over the samples (ties: first seen) with its combined confidence; None if all failed."""
    got = [a for a in answers if not isinstance(a, Exception)]
    if not got:
        return None
    votes = Counter(str(field_of(a.value, attr)) for a in got)
    winner = votes.most_common(1)[0][0]
    scores = [a.confidence for a in got if str(field_of(a.value, attr)) == winner]
    return winner, combine_confidence(scores, len(scores), samples)


def type_mentions(
    spans: pl.DataFrame,
    docs: Sequence[Document],
    sentences: list[list[tuple[int, int]]],
    asker: Asker,
    model_name: str,
    ontology: Ontology,
    gates: GateConfig,
    max_tokens: int,
) -> tuple[list[dict], list[dict]]:
    """Ask the type of each span (seeing its sentence); (typed mentions, rejected spans with the reason)."""
    prompt = type_prompt(ontology)
    response_model = type_model(ontology)
    version = schema_version(response_model)
    rows = spans.to_dicts()
    samples = gates.samples
    requests = []
    for r in rows:
        s0, s1 = sentences[r["text"]][r["sentence"]]
        doc = docs[r["text"]]
        requests += [
            Request(
                messages(prompt, doc.text[s0:s1], type_question(r["surface"])),
                response_model,
                cache_key("type", doc.sha256, s0, s1, r["start"], r["end"], prompt.version, version, s),
                max_tokens,
            )
            for s in range(samples)
        ]
    answers = asker.ask(requests, "guided: mention types")
    concrete = set(ontology.concrete_types)
    typed, rejected = [], []
    for i, r in enumerate(rows):
        base = {"doc": r["text"], "sentence": r["sentence"], "start": r["start"], "end": r["end"],
                "text": r["surface"], "model": model_name, "prompt_version": prompt.version}
        vote = _vote(answers[i * samples : (i + 1) * samples], "type", samples)
        if vote is None:
            rejected.append({**base, "type": None, "reason": "llm_error: no answer to the type question"})
        elif vote[0] == NONE:
            rejected.append({**base, "type": None, "reason": "not_an_entity: typed as none"})
        elif vote[0] not in concrete:
            rejected.append({**base, "type": vote[0], "reason": f"schema: type {vote[0]!r} is not a concrete type"})
        else:
            typed.append({**base, "type": vote[0], "confidence": vote[1]})
    return typed, rejected


def rotated(options: list[str], sample: int) -> list[str]:
    """The options starting at a different one for each sample.

    A small model tends to pick by position (the first option offered), not
    by the text; with the order rotated between samples such an answer
    changes with the order, the samples disagree, and the agreement-based
    confidence gate rejects it. Sample 0 keeps the ontology's order.
    """
    if not options:
        return options
    k = sample % len(options)
    return options[k:] + options[:k]


def pair_options(ontology: Ontology, a: dict, b: dict) -> dict[str, tuple[dict, str, dict]]:
    """Option sentence -> (subject, relation, object) for every relation allowed between ``a`` and ``b``."""
    options: dict[str, tuple[dict, str, dict]] = {}
    for subj, obj in ((a, b), (b, a)):
        for rel in ontology.relations_between(subj["type"], obj["type"]):
            if ontology.relation_types[rel].symmetric and subj is b:
                continue  # "A spouse of B" already offered
            options.setdefault(f"{subj['text']} {relation_words(rel)} {obj['text']}", (subj, rel, obj))
    return options


def classify_pairs(
    mentions: list[dict],
    docs: Sequence[Document],
    sentences: list[list[tuple[int, int]]],
    asker: Asker,
    model_name: str,
    ontology: Ontology,
    gates: GateConfig,
    max_tokens: int,
    max_per_sentence: int,
    counts: Counter,
) -> list[dict]:
    """One multiple-choice question per pair of mentions in a sentence; the chosen options as relation rows."""
    by_sentence: dict[tuple[int, int], list[dict]] = {}
    for m in sorted(mentions, key=lambda m: (m["doc"], m["start"])):
        by_sentence.setdefault((m["doc"], m["sentence"]), []).append(m)
    questions = []
    for (doc, sentence), group in by_sentence.items():
        if len(group) > max_per_sentence:
            counts["mentions_beyond_sentence_cap"] += len(group) - max_per_sentence
            group = group[:max_per_sentence]
        for a, b in combinations(group, 2):
            if norm(a["text"]) == norm(b["text"]) or a["end"] > b["start"]:
                continue
            options = pair_options(ontology, a, b)
            if options:
                questions.append((doc, sentence, a, b, options))
    counts["pairs_asked"] = len(questions)
    samples = gates.samples
    requests = []
    for doc, sentence, a, b, options in questions:
        s0, s1 = sentences[doc][sentence]
        response_model = choice_model(tuple(options))
        key = ("relation", docs[doc].sha256, s0, s1, a["start"], a["end"], b["start"], b["end"],
               RELATION_PROMPT.version, schema_version(response_model))
        for s in range(samples):
            listed = rotated(list(options), s)
            question = relation_question(a["text"], a["type"], b["text"], b["type"], listed)
            requests.append(
                Request(messages(RELATION_PROMPT, docs[doc].text[s0:s1], question), response_model,
                        cache_key(*key, s), max_tokens)
            )
    answers = asker.ask(requests, "guided: relations")
    rows = []
    for i, (doc, sentence, _a, _b, options) in enumerate(questions):
        vote = _vote(answers[i * samples : (i + 1) * samples], "choice", samples)
        if vote is None:
            continue  # counted by the asker as a failed question
        if vote[0] == NONE:
            counts["pairs_none"] += 1
            continue
        if vote[0] not in options:
            counts["pairs_off_menu"] += 1  # an answer outside the offered options never becomes a relation
            continue
        subj, rel, obj = options[vote[0]]
        s0, s1 = sentences[doc][sentence]
        rows.append(
            {"doc": doc, "doc_id": docs[doc].doc_id, "subject": subj["text"], "subject_type": subj["type"],
             "relation": rel, "object": obj["text"], "object_type": obj["type"], "evidence": docs[doc].text[s0:s1],
             "context_start": s0, "context_end": s1, "confidence": vote[1], "model": model_name,
             "prompt_version": RELATION_PROMPT.version}
        )
    return rows
