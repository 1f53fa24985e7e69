"""The pipeline on the real bundled model (Gemma 3 270M): validity and plumbing, never content.

Whatever the tiny model answers, every accepted relation must be grounded
(its evidence is the document's text at its offsets) and allowed by the
ontology, every mention must sit at its offsets, and every question must be
accounted for (answered or counted as failed).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from extraction.gazetteer import Gazetteer
from extraction.llm import Endpoint, open_client
from extraction.run import ExtractOptions, extract
from schemas.ontology import load_ontology
from schemas.tables import MENTIONS, RELATIONS
from tests.store.helpers import build

pytestmark = [pytest.mark.slow, pytest.mark.llm]

DOCS = [
    ("knives", "Knives Out is a 2019 film directed by Rian Johnson."),
    ("parasite", "Parasite is a film by Bong Joon Ho."),
]
ONTOLOGY = load_ontology()


def _check(result, docs: dict[str, str]) -> None:
    assert result.relations.schema.equals(RELATIONS, check_metadata=True)
    assert result.mentions.schema.equals(MENTIONS, check_metadata=True)
    for r in pl.from_arrow(result.relations).filter(pl.col("status") == "accepted").iter_rows(named=True):
        assert docs[r["doc_id"]][r["start"] : r["end"]] == r["evidence"]
        assert r["subject_type"] in ONTOLOGY.concrete_types and r["object_type"] in ONTOLOGY.concrete_types
        assert ONTOLOGY.allows(r["relation"], r["subject_type"], r["object_type"])
    for r in pl.from_arrow(result.relations).filter(pl.col("status") == "rejected").iter_rows(named=True):
        assert r["reason"]
    for m in pl.from_arrow(result.mentions).iter_rows(named=True):
        assert docs[m["doc_id"]][m["start"] : m["end"]] == m["text"]
    report = result.report
    assert report.usage["calls"] + report.usage["cached"] >= report.requests - sum(report.failed_requests.values())
    assert report.total_seconds >= report.llm_wall_seconds > 0


def test_both_modes_on_the_bundled_model(tmp_path: Path) -> None:
    store = build(tmp_path / "graph.duckdb")
    endpoint = Endpoint(threads=1, concurrency=1, max_reasks=0)
    texts = dict(DOCS)
    with open_client(endpoint, cache_dir=tmp_path / "cache") as llm:
        guided = extract(DOCS, llm, mode="guided", gazetteer=Gazetteer.from_store(store))
        opened = extract(DOCS[:1], llm, mode="open", options=ExtractOptions(max_tokens_open=256))
    _check(guided, texts)
    _check(opened, texts)
    assert guided.report.counts["pairs_asked"] >= 2  # the known names were found without the LLM
    assert guided.report.model == opened.report.model == llm.model_name
