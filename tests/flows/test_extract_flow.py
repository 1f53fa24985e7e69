"""ExtractFlow on the local runtime against a scripted OpenAI-compatible server: shards, gates, merge, card."""

from __future__ import annotations

import json
import re

import pytest

from kg.graph import Graph
from tests.extraction.fake_openai import FakeOpenAI, completion
from tests.flows.helpers import card_components

pytestmark = pytest.mark.slow

DOCS = {
    "knives": "Knives Out is a 2019 mystery film written and directed by Rian Johnson.",
    "heat": "Heat is a 1995 crime film directed by Michael Mann.",
    "looper": "Looper is a 2012 science fiction film directed by Rian Johnson.",
}
FILMS = {"knives": "Knives Out", "heat": "Heat", "looper": "Looper"}
DIRECTORS = {"knives": "Rian Johnson", "heat": "Michael Mann", "looper": "Rian Johnson"}


def responder(received):
    """Open mode: the film and its director as mentions, 'directed' between them, and one ungrounded relation.

    Confident token log-probabilities, so mentions the (empty) graph does not know become new entities.
    """
    content = received.body["messages"][-1]["content"]
    text = re.search(r"<(doc-[0-9a-f]+)>\n(.*)\n</\1>", content, flags=re.S).group(2)
    key = next(k for k, t in DOCS.items() if t == text)
    film, director = FILMS[key], DIRECTORS[key]
    return completion({
        "mentions": [{"text": film, "type": "movie"}, {"text": director, "type": "person"}],
        "relations": [
            {"evidence": f"directed by {director}", "subject": director, "subject_type": "person",
             "relation": "directed", "object": film, "object_type": "movie"},
            {"evidence": "a quote that is not in the text", "subject": director, "subject_type": "person",
             "relation": "acted_in", "object": film, "object_type": "movie"},
        ],
    }, logprobs=[-0.01, -0.02, -0.01])


def test_extract_flow_shards_gates_and_merges(flow_env, tmp_path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": k, "text": t}) + "\n" for k, t in DOCS.items()), encoding="utf-8")
    with FakeOpenAI(responder=responder) as fake, flow_env.runner("extract_flow", branch="extracttest") as runner:
        done = runner.run(documents=str(docs), mode="open", shards=2, base_url=fake.url, llm_model="fake-model",
                          cache_dir=str(tmp_path / "cache"), max_workers=2)
        assert done.status == "successful", done.stdout + done.stderr
        run = done.run
    assert len(fake.requests) == 3  # one open question per document, the shards split the documents
    reports = run.data.reports
    assert [r["documents"] for r in reports] == [2, 1]
    assert sum(r["relations_accepted"] for r in reports) == 3
    assert sum(sum(r["relations_rejected"].values()) for r in reports) == 3  # the ungrounded quotes
    graph = run.data.merged["graph"]
    assert graph.endswith("test.extracttest/graph.duckdb")
    with Graph.open(graph) as g:
        edges = g.sql("SELECT count(*) AS n FROM edges")["n"][0]
        directors = g.sql("SELECT count(*) AS n FROM entities WHERE type = 'person'")["n"][0]
    assert edges == 3
    assert directors == 2  # Rian Johnson, seen in both shards, is one new entity
    charts = [c["spec"]["title"] for c in card_components(run["end"].task) if c["type"] == "vegaChart"]
    assert "Rejected relations by reason" in charts
