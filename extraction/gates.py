"""Quality gates between the LLM and the graph: grounding, ontology, confidence, and an optional judge.

Every candidate relation passes the gates in a fixed order and the first one
it fails names its rejection reason (``<gate>: <detail>``; reports count by
the part before the colon). Nothing is dropped: a rejected relation stays in
the RELATIONS table with ``status = 'rejected'``.

The gates trust nothing the model said. The ontology gate re-checks labels
the response model already restricts (so a client that skips validation, a
cached answer from an older ontology, or a prompt injection still cannot put
an off-ontology edge in the graph); the grounding gate accepts a quote only
if it is found in the document, and gives it the document's offsets.

Loops here run once per candidate relation, which the LLM produced one by
one at seconds each; the string work per candidate is rapidfuzz C code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

from schemas.ontology import Ontology

REASONS = (
    "schema",  # unknown relation or entity type, empty field
    "ontology",  # domain -> range not allowed
    "ungrounded",  # evidence quote not found in the document
    "subject_ungrounded",
    "object_ungrounded",
    "low_confidence",
    "judge",  # the LLM judge said the text does not support it
)


@dataclass(frozen=True)
class GateConfig:
    """What the gates require; the defaults suit a small local model behind grammar-enforced output."""

    min_confidence: float = 0.1  # reject below (logprob score x sample agreement); calibrate per model and prompt
    require_confidence: bool = False  # reject relations with no confidence at all (endpoint without logprobs)
    samples: int = 1  # answers per question; agreement among them is part of the confidence (needs temperature > 0)
    fuzzy_grounding: float = 90.0  # rapidfuzz partial alignment score (0-100) that still counts as found
    min_evidence_chars: int = 3
    judge: bool = False  # ask a second prompt whether the text supports each relation that passed


@dataclass(frozen=True)
class Grounding:
    """Where a quote was found: document offsets and how (exact, normalized, fuzzy)."""

    start: int
    end: int
    method: str
    score: float


# Characters a model commonly rewrites when copying: curly quotes and dashes, folded to ASCII (1:1 length).
_FOLD = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "\u00a0": " "})
_SPACE = re.compile(r"\s+")


@lru_cache(maxsize=512)
def _normalized(text: str) -> tuple[str, list[int]]:
    """Case-folded text with whitespace runs as one space, and each output char's offset in ``text``."""
    out: list[str] = []
    where: list[int] = []
    pos = 0
    for m in _SPACE.finditer(text):
        _append(text, pos, m.start(), out, where)
        out.append(" ")
        where.append(m.start())
        pos = m.end()
    _append(text, pos, len(text), out, where)
    return "".join(out), where


def _append(text: str, start: int, end: int, out: list[str], where: list[int]) -> None:
    piece = text[start:end].translate(_FOLD)
    lowered = piece.lower()
    if len(lowered) != len(piece):  # rare characters whose lower case is longer: keep as is
        lowered = piece
    out.append(lowered)
    where.extend(range(start, end))


def ground(quote: str, text: str, *, offset: int = 0, fuzzy: float = 90.0) -> Grounding | None:
    """Find ``quote`` in ``text``: exactly, then case/whitespace/quote-style normalised, then fuzzily.

    Offsets are into ``text`` plus ``offset`` (pass a chunk's start to get
    document offsets). The fuzzy step aligns the quote against the text with
    rapidfuzz ``partial_ratio_alignment`` and accepts the best window at
    ``fuzzy`` or above; it forgives a changed letter or two, not a made-up
    sentence.
    """
    quote = quote.strip()
    if not quote:
        return None
    at = text.find(quote)
    if at >= 0:
        return Grounding(offset + at, offset + at + len(quote), "exact", 100.0)
    norm_text, where = _normalized(text)
    norm_quote = _SPACE.sub(" ", quote.translate(_FOLD).lower())
    at = norm_text.find(norm_quote)
    if at >= 0:
        return Grounding(offset + where[at], offset + where[at + len(norm_quote) - 1] + 1, "normalized", 100.0)
    if fuzzy >= 100 or len(norm_quote) > len(norm_text):
        return None
    hit = fuzz.partial_ratio_alignment(norm_quote, norm_text, score_cutoff=fuzzy)
    if hit is None or hit.dest_end <= hit.dest_start:
        return None
    # The window is as long as the quote; a dropped letter leaves a word cut short: widen to whole words.
    start, end = hit.dest_start, hit.dest_end
    while start > 0 and norm_text[start - 1].isalnum() and norm_text[start].isalnum():
        start -= 1
    while end < len(norm_text) and norm_text[end - 1].isalnum() and norm_text[end].isalnum():
        end += 1
    return Grounding(offset + where[start], offset + where[end - 1] + 1, "fuzzy", hit.score)


def check_relation(
    row: dict, chunk_text: str, chunk_start: int, doc_text: str, ontology: Ontology, config: GateConfig
) -> dict:
    """``row`` with ``start``/``end`` of its evidence in the document, ``grounding`` (how it was found),
    ``evidence`` replaced by the document's own words, and ``status``/``reason`` set.

    Order: labels (schema, ontology), evidence grounding (in the chunk the
    answer came from, then anywhere in the document), both endpoints
    present in the document, confidence. The judge runs later, on the
    survivors only, because it costs an LLM call each.
    """
    out = {**row, "start": None, "end": None, "grounding": None}
    empty = [k for k in ("subject", "object", "relation") if not isinstance(row.get(k), str) or not row[k].strip()]
    if empty:
        reason: str | None = f"schema: empty {empty[0]}"
    else:
        reason = ontology_reason(ontology, row["relation"], row["subject_type"], row["object_type"])
    if reason is None:
        evidence = (row.get("evidence") or "").strip()
        hit = None
        if len(evidence) >= config.min_evidence_chars:
            hit = ground(evidence, chunk_text, offset=chunk_start, fuzzy=config.fuzzy_grounding) or ground(
                evidence, doc_text, fuzzy=config.fuzzy_grounding
            )
        if hit is None:
            reason = "ungrounded: evidence not found in the document"
        else:
            out["start"], out["end"], out["grounding"] = hit.start, hit.end, hit.method
            out["evidence"] = doc_text[hit.start : hit.end]
    if reason is None:
        for side in ("subject", "object"):
            if ground(row[side], doc_text, fuzzy=config.fuzzy_grounding) is None:
                reason = f"{side}_ungrounded: {row[side]!r} not found in the document"
                break
    if reason is None:
        reason = confidence_reason(row.get("confidence"), config)
    out["status"] = "accepted" if reason is None else "rejected"
    out["reason"] = reason
    return out


def ontology_reason(ontology: Ontology, relation: str, subject_type: str, object_type: str) -> str | None:
    """Why ``subject_type -relation-> object_type`` may not enter the graph, or None when it may."""
    concrete = set(ontology.concrete_types)
    if relation not in ontology.relation_types:
        return f"schema: unknown relation {relation!r}"
    for side, t in (("subject", subject_type), ("object", object_type)):
        if t not in concrete:
            return f"schema: {side} type {t!r} is not a concrete entity type"
    if not ontology.allows(relation, subject_type, object_type):
        return f"ontology: {subject_type} -{relation}-> {object_type} not allowed"
    return None


def confidence_reason(confidence: float | None, config: GateConfig) -> str | None:
    """Why a relation's confidence is not enough, or None."""
    if confidence is None:
        return "low_confidence: none available" if config.require_confidence else None
    if confidence < config.min_confidence:
        return f"low_confidence: {confidence:.2f} < {config.min_confidence:.2f}"
    return None


def combine_confidence(scores: list[float | None], agreeing: int, samples: int) -> float | None:
    """Confidence of an answer given by ``agreeing`` of ``samples`` answers with logprob scores ``scores``.

    The mean logprob score of the agreeing answers, times the share that
    agreed; with one sample and no logprobs there is nothing to go on (None).
    """
    known = [s for s in scores if s is not None]
    agreement = agreeing / samples if samples else 0.0
    if known:
        return float(sum(known) / len(known)) * agreement
    return agreement if samples > 1 else None


def reason_code(reason: str | None) -> str | None:
    """The counted part of a reason: 'ontology: person -directed-> country not allowed' -> 'ontology'."""
    return None if reason is None else reason.split(":", 1)[0]
