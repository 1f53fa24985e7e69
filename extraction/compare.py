"""Two runs on the same documents, side by side: how far they agree and what each cost.

Agreement is over accepted relations keyed by (document, subject, relation,
object) with names case/space-folded: ``both`` / ``only_a`` / ``only_b`` and
their Jaccard overlap. Without gold labels that is the honest measure: two
models that agree are not necessarily right, but where they disagree one of
them is wrong. Quality per run is what the gates saw: accepted, rejected by
reason, grounding rate (candidates whose evidence was found in the text).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from extraction.run import ExtractionResult

UNGROUNDED = ("ungrounded", "subject_ungrounded", "object_ungrounded")


def _keys(result: ExtractionResult) -> set[tuple]:
    frame = pl.from_arrow(result.accepted())
    if frame.height == 0:
        return set()
    folded = frame.select(
        "doc_id",
        pl.col("subject").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars(),
        "relation",
        pl.col("object").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars(),
    )
    return set(folded.iter_rows())


def quality(result: ExtractionResult) -> dict:
    """One run's figures as the gates and the clock saw them."""
    r = result.report
    rejected = sum(r.relations_rejected.values())
    candidates = r.relations_accepted + rejected
    ungrounded = sum(r.relations_rejected.get(k, 0) for k in UNGROUNDED)
    docs = max(r.documents, 1)
    tokens = r.usage.get("prompt_tokens", 0) + r.usage.get("completion_tokens", 0)
    return {
        "model": r.model,
        "candidates": candidates,
        "accepted": r.relations_accepted,
        "rejected": rejected,
        "grounding_rate": (candidates - ungrounded) / candidates if candidates else None,
        "rejected_by_reason": dict(r.relations_rejected),
        "failed_requests": sum(r.failed_requests.values()),
        "tokens_per_doc": tokens / docs,
        "seconds_per_doc": r.total_seconds / docs,
        "cost": r.cost,
    }


@dataclass(frozen=True)
class Comparison:
    a: dict
    b: dict
    both: int
    only_a: int
    only_b: int

    @property
    def jaccard(self) -> float | None:
        union = self.both + self.only_a + self.only_b
        return self.both / union if union else None

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "both": self.both, "only_a": self.only_a, "only_b": self.only_b,
                "jaccard": self.jaccard}


def compare(a: ExtractionResult, b: ExtractionResult) -> Comparison:
    """Agreement of two runs over the same documents, and each run's quality figures."""
    ka, kb = _keys(a), _keys(b)
    return Comparison(quality(a), quality(b), len(ka & kb), len(ka - kb), len(kb - ka))
