"""Open mode: the LLM reads each chunk and proposes typed mentions and relations, each with its quote.

One question per chunk (times ``samples``). With several samples an item's
confidence is the mean logprob score of the answers that contain it times
the share of answers that do: an item only one of five samples mentions is
worth little, however sure that sample was.
"""

from __future__ import annotations

from collections.abc import Sequence

from extraction.asking import Asker, cache_key
from extraction.documents import Chunk, Document, chunk_document
from extraction.found import Found, field_of, norm, text_of
from extraction.gates import GateConfig, combine_confidence, ground
from extraction.llm import Request
from extraction.prompts import messages, open_prompt, open_question
from extraction.responses import open_model, schema_version
from schemas.ontology import Ontology


def run_open(
    docs: Sequence[Document],
    asker: Asker,
    model_name: str,
    ontology: Ontology,
    gates: GateConfig,
    *,
    chunk_chars: int,
    chunk_overlap: int,
    max_tokens: int,
) -> Found:
    response_model = open_model(ontology)
    version = schema_version(response_model)
    prompt = open_prompt(ontology)
    chunks = [c for d in docs for c in chunk_document(d, chunk_chars, chunk_overlap)]
    samples = gates.samples
    requests = [
        Request(
            messages(prompt, c.text, open_question()),
            response_model,
            cache_key("open", c.doc_sha256, c.start, c.end, prompt.version, version, s),
            max_tokens,
        )
        for c in chunks
        for s in range(samples)
    ]
    answers = asker.ask(requests, "open: chunks")
    found = Found()
    found.counts["chunks"] = len(chunks)
    concrete = set(ontology.concrete_types)
    for i, chunk in enumerate(chunks):
        got = [a for a in answers[i * samples : (i + 1) * samples] if not isinstance(a, Exception)]
        if not got:
            continue
        base = {"doc_id": chunk.doc_id, "chunk": chunk.index, "model": model_name, "prompt_version": prompt.version}
        relations = _agree(got, "relations", _relation_key)
        for row, confidence in relations:
            found.relations.append(
                {**base, **row, "context_start": chunk.start, "context_end": chunk.end, "confidence": confidence}
            )
        mentions = _agree(got, "mentions", lambda m: (norm(m["text"]), m["type"]))
        # A relation's endpoints are mentions too, with the types the relation gave them.
        for row, confidence in relations:
            for side in ("subject", "object"):
                mentions.append(({"text": row[side], "type": row[f"{side}_type"]}, confidence))
        _ground_mentions(found, chunk, mentions, base, concrete, gates)
    return found


def _relation_fields(item: object) -> dict:
    return {
        k: text_of(item, k) for k in ("subject", "subject_type", "relation", "object", "object_type", "evidence")
    }


def _relation_key(row: dict) -> tuple:
    return (norm(row["subject"]), row["relation"], norm(row["object"]))


def _agree(answers: list, attr: str, key) -> list[tuple[dict, float | None]]:
    """Distinct items over the samples, each with its combined confidence (first-seen order)."""
    entries: dict[tuple, tuple[dict, list]] = {}
    for answer in answers:
        seen = set()
        for item in field_of(answer.value, attr) or []:
            row = _relation_fields(item) if attr == "relations" else {"text": text_of(item, "text"),
                                                                      "type": text_of(item, "type")}
            k = key(row)
            if k in seen:
                continue
            seen.add(k)
            entries.setdefault(k, (row, []))[1].append(answer.confidence)
    total = len(answers)
    return [(row, combine_confidence(scores, len(scores), total)) for row, scores in entries.values()]


def _ground_mentions(
    found: Found, chunk: Chunk, mentions: list[tuple[dict, float | None]], base: dict, concrete: set[str],
    gates: GateConfig,
) -> None:
    seen: set[tuple] = set()
    for row, confidence in mentions:
        key = (norm(row["text"]), row["type"])
        if key in seen:
            continue
        seen.add(key)
        reason = None
        if row["type"] not in concrete:
            reason = f"schema: type {row['type']!r} is not a concrete entity type"
        hit = None if reason or not row["text"].strip() else ground(
            row["text"], chunk.text, offset=chunk.start, fuzzy=gates.fuzzy_grounding
        )
        if reason is None and hit is None:
            reason = "ungrounded: mention not found in the chunk"
        if reason is not None:
            found.rejected_mentions.append({**base, "text": row["text"], "type": row["type"], "reason": reason})
            continue
        surface = chunk.text[hit.start - chunk.start : hit.end - chunk.start]
        found.mentions.append(
            {**base, "text": surface, "asked": row["text"], "type": row["type"], "start": hit.start,
             "end": hit.end, "confidence": confidence}
        )
