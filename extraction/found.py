"""What an extraction mode hands to the gates: candidate mentions and relations, not yet judged.

Both modes (open, guided) produce the same shape, so gates, linking,
de-duplication and output are one code path whatever proposed the
candidates.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Found:
    """Candidates from one mode.

    ``mentions``: doc_id, chunk, text (the document's surface form), asked
    (the form the model gave, when it differs), type, start, end (document
    offsets), confidence, model, prompt_version. ``relations``: doc_id,
    chunk, context_start, context_end (the document span the question
    showed: a chunk or a sentence), subject, subject_type, relation, object,
    object_type, evidence, confidence, model, prompt_version.
    ``rejected_mentions``: doc_id, chunk, text, type, reason.
    ``counts``: what the mode did (chunks, questions, "none" answers).
    """

    mentions: list[dict] = field(default_factory=list)
    relations: list[dict] = field(default_factory=list)
    rejected_mentions: list[dict] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)


def norm(text: object) -> str:
    """Comparison form of a name inside one run: case and whitespace folded."""
    return " ".join(str(text).lower().split())


def field_of(item: object, name: str) -> object:
    """A field of an answer item, whether a pydantic object or a plain dict (a client that skipped validation)."""
    if isinstance(item, dict):
        return item.get(name)
    return getattr(item, name, None)


def text_of(item: object, name: str) -> str:
    value = field_of(item, name)
    return value if isinstance(value, str) else ("" if value is None else str(value))
