"""``extract`` end to end against a scripted client.

Both modes, de-duplication across chunks, samples, failures, cache, judge, outputs, and the merge into a store.
"""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from extraction.entity_types import infer_entity_types
from extraction.gates import GateConfig
from extraction.gazetteer import Gazetteer
from extraction.linking import LinkConfig
from extraction.output import merge_result, output_paths, write_result
from extraction.run import ExtractOptions, extract
from kg.graph import Graph
from schemas.ontology import load_ontology
from schemas.tables import MENTIONS, RELATIONS
from tests.extraction.fakes import ScriptedClient, asked_mention, document_text, kind, open_answer, options
from tests.store.helpers import build

ONTOLOGY = load_ontology()
KNIVES = (
    "Knives Out is a 2019 mystery film written and directed by Rian Johnson. "
    "It stars Daniel Craig as the detective Benoit Blanc. The film premiered in Toronto."
)
DIRECTED = {
    "evidence": "written and directed by Rian Johnson",
    "subject": "Rian Johnson",
    "subject_type": "person",
    "relation": "directed",
    "object": "Knives Out",
    "object_type": "movie",
}
PLAYED = {
    "evidence": "Daniel Craig as the detective Benoit Blanc",
    "subject": "Daniel Craig",
    "subject_type": "person",
    "relation": "played",
    "object": "Benoit Blanc",
    "object_type": "character",
}


def open_responder(request):
    """States each relation whose quote is in the chunk it was shown (what a good model does)."""
    text = document_text(request)
    relations = [r for r in (DIRECTED, PLAYED) if r["evidence"] in text]
    mentions = [{"text": n, "type": t} for n, t in (("Knives Out", "movie"), ("Toronto", "place")) if n in text]
    return open_answer(request, mentions, relations)


def guided_responder(request):
    k = kind(request)
    if k == "type":
        mention = asked_mention(request)
        return request.response_model(type={"Benoit Blanc": "character", "Toronto": "place"}.get(mention, "none"))
    if k == "relation":
        wanted = ("Rian Johnson directed Knives Out", "Daniel Craig played Benoit Blanc")
        return request.response_model(choice=next((o for o in options(request) if o in wanted), "none"))
    return request.response_model(supported="yes")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return build(tmp_path / "graph.duckdb")


def test_open_mode_tables_provenance_and_report() -> None:
    client = ScriptedClient(open_responder, model_name="model-a", price_in=1.0, price_out=2.0)
    result = extract([("knives", KNIVES)], client, mode="open", run_id="run-1")
    assert result.relations.schema.equals(RELATIONS, check_metadata=True)
    assert result.mentions.schema.equals(MENTIONS, check_metadata=True)
    rel = pl.from_arrow(result.relations)
    assert rel["status"].to_list() == ["accepted", "accepted"]
    for r in rel.iter_rows(named=True):
        assert KNIVES[r["start"] : r["end"]] == r["evidence"]
        assert (r["doc_id"], r["model"], r["prompt_version"], r["run_id"]) == ("knives", "model-a", "open-1", "run-1")
    mentions = pl.from_arrow(result.mentions)
    assert set(mentions["text"]) == {"Knives Out", "Toronto", "Rian Johnson", "Daniel Craig", "Benoit Blanc"}
    for m in mentions.iter_rows(named=True):
        assert KNIVES[m["start"] : m["end"]] == m["text"]
    report = result.report
    assert (report.documents, report.counts["chunks"], report.requests) == (1, 1, 1)
    assert report.relations_accepted == 2 and report.relations_rejected == {}
    assert report.usage["calls"] == 1 and report.usage["prompt_tokens"] > 0
    assert report.cost == pytest.approx((report.usage["prompt_tokens"] + 2 * report.usage["completion_tokens"]) / 1e6)
    assert 0.0 <= report.outside_llm_share <= 1.0 and report.total_seconds >= report.llm_wall_seconds


def test_overlapping_chunks_do_not_duplicate_relations_or_mentions() -> None:
    filler = " ".join(f"Filler sentence {i} says nothing at all." for i in range(12))
    text = f"{filler} {KNIVES} {filler}"
    client = ScriptedClient(open_responder)
    result = extract([("long", text)], client, mode="open", options=ExtractOptions(chunk_chars=400, chunk_overlap=250))
    assert result.report.counts["chunks"] > 3
    asked = [document_text(r) for r in client.asked]
    assert sum(DIRECTED["evidence"] in t for t in asked) >= 2  # the overlap shows the sentence more than once
    rel = pl.from_arrow(result.relations)
    assert rel.filter(pl.col("relation") == "directed").height == 1
    assert result.report.duplicates_merged >= 1
    mentions = pl.from_arrow(result.mentions)
    assert mentions.filter(pl.col("text") == "Knives Out").height == 1


def test_agreement_between_samples_is_the_confidence() -> None:
    seen = {"n": 0}

    def flaky(request):  # the played relation in 1 sample of 3, the directed one in all
        seen["n"] += 1
        relations = [DIRECTED] + ([PLAYED] if seen["n"] == 1 else [])
        return open_answer(request, [], relations), None  # an endpoint without logprobs

    result = extract([("k", KNIVES)], ScriptedClient(flaky), gates=GateConfig(samples=3, min_confidence=0.5))
    rel = {r["relation"]: r for r in pl.from_arrow(result.relations).iter_rows(named=True)}
    assert rel["directed"]["status"] == "accepted" and rel["directed"]["confidence"] == pytest.approx(1.0)
    assert rel["played"]["status"] == "rejected" and rel["played"]["reason"].startswith("low_confidence")
    assert rel["played"]["confidence"] == pytest.approx(1 / 3)


def test_failed_questions_are_counted_and_the_rest_goes_on() -> None:
    def failing(request):
        return (
            RuntimeError("HTTP 500 from the endpoint")
            if "Toronto" in document_text(request)
            else open_responder(request)
        )

    result = extract(
        [("ok", KNIVES.split(" The film")[0]), ("bad", "The film premiered in Toronto.")], ScriptedClient(failing)
    )
    assert result.report.failed_requests == {"open: chunks": 1}
    assert "HTTP 500" in result.report.errors[0]
    assert result.report.relations_accepted == 2


def test_a_rerun_is_answered_from_the_cache() -> None:
    client = ScriptedClient(open_responder)
    first = extract([("k", KNIVES)], client)
    second = extract([("k", KNIVES)], client)
    assert second.report.usage["calls"] == 0 and second.report.usage["cached"] == 1
    assert first.relations.drop_columns(["run_id"]).equals(second.relations.drop_columns(["run_id"]))
    edited = extract([("k", KNIVES + " Sequels followed.")], client)
    assert edited.report.usage["calls"] == 1  # another text, another key


def test_judge_rejects_what_it_does_not_support() -> None:
    def responder(request):
        if kind(request) == "judge":
            return request.response_model(
                supported="no" if "Benoit Blanc" in request.messages[-1]["content"].split("Fact:")[1] else "yes"
            )
        return open_responder(request)

    result = extract([("k", KNIVES)], ScriptedClient(responder), gates=GateConfig(judge=True))
    rel = {r["relation"]: r for r in pl.from_arrow(result.relations).iter_rows(named=True)}
    assert rel["directed"]["status"] == "accepted"
    assert rel["played"]["status"] == "rejected" and rel["played"]["reason"].startswith("judge")
    assert result.report.relations_rejected == {"judge": 1} and result.report.prompt_versions["judge"] == "judge-1"


def test_guided_mode_asks_only_narrow_questions(store: Path) -> None:
    client = ScriptedClient(guided_responder)
    result = extract([("knives", KNIVES)], client, mode="guided", gazetteer=Gazetteer.from_store(store))
    kinds = [kind(r) for r in client.asked]
    assert set(kinds) == {"type", "relation"} and "open" not in kinds
    typed = sorted(asked_mention(r) for r in client.asked if kind(r) == "type")
    assert typed == ["Benoit Blanc", "Toronto"]  # known names are not asked about
    for request in client.asked:
        if kind(request) == "relation":
            assert document_text(request) in KNIVES  # one sentence only
            assert options(request)[-1] == "none"
    rel = pl.from_arrow(result.relations).sort("relation")
    assert rel.select("subject_id", "relation", "object_id", "status").rows() == [
        ("P-rian", "directed", "E-knives", "accepted"),
        ("P-craig", "played", "text:character:benoit blanc", "accepted"),
    ]
    assert rel["evidence"][0] == "Knives Out is a 2019 mystery film written and directed by Rian Johnson."
    mentions = pl.from_arrow(result.mentions)
    toronto = mentions.filter(pl.col("text") == "Toronto").row(0, named=True)
    assert (toronto["type"], toronto["prompt_version"]) == ("place", "type-1")
    assert result.report.counts["pairs_asked"] == 2  # one pair in each of the first two sentences


def test_guided_options_are_the_ontologys_allowed_relations_both_ways(store: Path) -> None:
    client = ScriptedClient(guided_responder)
    extract([("k", "Rian Johnson directed Knives Out.")], client, mode="guided", gazetteer=Gazetteer.from_store(store))
    (request,) = [r for r in client.asked if kind(r) == "relation"]
    forward = [f"Rian Johnson {r.replace('_', ' ')} Knives Out" for r in ONTOLOGY.relations_between("person", "movie")]
    backward = [f"Knives Out {r.replace('_', ' ')} Rian Johnson" for r in ONTOLOGY.relations_between("movie", "person")]
    assert options(request) == [*forward, *backward, "none"]
    assert backward == ["Knives Out based on Rian Johnson", "Knives Out about Rian Johnson"]


def test_linked_entity_types_are_rechecked(store: Path) -> None:
    def responder(request):
        return open_answer(
            request,
            [],
            [
                {
                    "evidence": "Knives Out",
                    "subject": "Rian Johnson",
                    "subject_type": "person",
                    "relation": "wrote",
                    "object": "Knives Out",
                    "object_type": "book",
                },
                {
                    "evidence": "The Pilot of Knives Out",
                    "subject": "The Pilot",
                    "subject_type": "episode",
                    "relation": "episode_of",
                    "object": "Knives Out",
                    "object_type": "series",
                },
            ],
        )

    text = "The Pilot of Knives Out was written by Rian Johnson."
    result = extract(
        [("k", text)],
        ScriptedClient(responder),
        gazetteer=Gazetteer.from_store(store),
        linking=LinkConfig(type_penalty=5.0),
    )
    rel = {r["relation"]: r for r in pl.from_arrow(result.relations).iter_rows(named=True)}
    assert rel["wrote"]["status"] == "accepted" and rel["wrote"]["object_type"] == "movie"  # the stored type
    assert rel["episode_of"]["status"] == "rejected" and "linked entity types" in rel["episode_of"]["reason"]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_outputs_by_suffix(tmp_path: Path, suffix: str) -> None:
    result = extract([("k", KNIVES)], ScriptedClient(open_responder))
    paths = write_result(result, tmp_path / f"out{suffix}")
    assert paths == output_paths(tmp_path / f"out{suffix}")
    if suffix == ".jsonl":
        rows = [json.loads(line) for line in paths["relations"].read_text().splitlines()]
        mentions = paths["mentions"].read_text().splitlines()
    else:
        rows = pq.read_table(paths["relations"]).to_pylist()
        mentions = pq.read_table(paths["mentions"]).to_pylist()
    assert len(rows) == 2 and len(mentions) == result.mentions.num_rows
    assert all(KNIVES[r["start"] : r["end"]] == r["evidence"] for r in rows)
    report = json.loads(paths["report"].read_text())
    assert report["report"]["relations_accepted"] == 2 and report["new_entities"]
    assert not list(tmp_path.glob(".*tmp"))


def test_merge_into_a_real_store_is_idempotent(store: Path) -> None:
    result = extract(
        [("knives", KNIVES)],
        ScriptedClient(open_responder),
        gazetteer=Gazetteer.from_store(store),
        run_id="extract-test",
    )
    first = merge_result(result, store)
    assert sum(m.total for m in first) > 0
    assert sum(m.total for m in merge_result(result, store)) == 0
    with Graph.open(store) as g:
        why = g.why("P-rian", "directed", "E-knives").filter(pl.col("run_id") == "extract-test")
        assert why["evidence"].to_list() == ["written and directed by Rian Johnson"]
        assert g.entity("text:character:benoit blanc").type == "character"
        assert g.why("P-craig", "played", "text:character:benoit blanc").height == 1


def test_type_inference_for_untyped_entities() -> None:
    def responder(request):
        mention = asked_mention(request)
        text = document_text(request)
        guess = {"Benoit Blanc": "character", "Toronto": "place" if "premiered" in text else "none"}
        return request.response_model(type=guess.get(mention, "none"))

    entities = pl.DataFrame(
        {
            "entity_id": ["c1", "p1", "m1", "x1"],
            "name": ["Benoit Blanc", "Toronto", "Knives Out", "Atlantis"],
            "type": [None, None, "movie", None],
        }
    )
    docs = [("a", KNIVES), ("b", "Toronto is cold. Benoit Blanc solves it.")]
    out = infer_entity_types(docs, ScriptedClient(responder), entities)
    rows = {r["entity_id"]: r for r in out.iter_rows(named=True)}
    assert set(rows) == {"c1", "p1"}  # typed entities are left alone, absent ones are not invented
    assert (rows["c1"]["type"], rows["c1"]["votes"], rows["c1"]["occurrences"]) == ("character", 2, 2)
    assert (rows["p1"]["type"], rows["p1"]["votes"], rows["p1"]["occurrences"]) == ("place", 1, 2)
    assert rows["p1"]["confidence"] == pytest.approx(0.9)  # 1 of 1 typed answers, logprob score 0.9


@pytest.mark.parametrize("mode", ["open", "guided"])
def test_no_documents_give_typed_empty_tables(mode: str) -> None:
    client = ScriptedClient(open_responder)
    result = extract([], client, mode=mode)
    assert result.relations.num_rows == result.mentions.num_rows == 0
    assert result.relations.schema.equals(RELATIONS) and client.asked == []


def test_position_biased_answers_disagree_across_samples_and_are_rejected(store: Path) -> None:
    """A model that takes the first option the prompt lists: rotated orders make its samples disagree."""

    def listed(request) -> list[str]:
        return [line[2:] for line in request.messages[-1]["content"].splitlines() if line.startswith("- ")]

    def first_listed(request):
        if kind(request) == "relation":
            return request.response_model(choice=listed(request)[0])
        if kind(request) == "type":
            return request.response_model(type="none")
        return request.response_model(supported="yes")

    client = ScriptedClient(first_listed)
    gates = GateConfig(samples=3, min_confidence=0.5)
    result = extract([("k", "Rian Johnson directed Knives Out.")], client, mode="guided",
                     gazetteer=Gazetteer.from_store(store), gates=gates)
    firsts = [listed(r)[0] for r in client.asked if kind(r) == "relation"]
    assert len(set(firsts)) == 3  # each sample saw another option first
    rel = pl.from_arrow(result.relations)
    assert rel.filter(pl.col("status") == "accepted").is_empty()
    assert set(rel["reason"].str.split(":").list.first()) == {"low_confidence"}
