"""Extraction evaluation: metrics on hand-made tables, the WebNLG predicate mapping and parser, silver gold."""

from __future__ import annotations

import polars as pl
import pytest

from extraction.errors import ExtractionError
from extraction.evaluate import (
    dedupe_predictions,
    endpoint_grounding,
    evidence_grounding,
    match_relations,
    normalize_name,
    relation_scores,
)
from extraction.moviegraph_gold import derive_gold
from extraction.webnlg import entity_name, map_triples, parse_webnlg_xml, read_webnlg, sample_webnlg
from tests.conftest import SHARED_DATA


def pred(rows: list[tuple[str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["doc_id", "subject", "relation", "object"], orient="row")


def gold(rows: list[tuple[int, str, str, str, str]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=["gold_id", "doc_id", "subject", "relation", "object"], orient="row")


# -- names and matching ------------------------------------------------------------------------------


def test_normalize_name_folds_and_drops_disambiguators():
    names = pl.Series(["Magik_(rapper)", "Amélie", "Burbank,_California", "  O'Brien & Co. "])
    assert pl.select(normalize_name(pl.lit(names))).to_series().to_list() == [
        "magik", "amelie", "burbank california", "obrien and co"
    ]  # fmt: skip


def test_scores_count_true_false_and_missed_relations():
    g = gold([
        (0, "d1", "Eric Flint", "wrote", "1634: The Ram Rebellion"),
        (1, "d1", "Eric Flint", "born_in", "Burbank,_California"),
        (2, "d2", "Buzz Aldrin", "born_in", "Glen_Ridge,_New_Jersey"),
    ])  # fmt: skip
    p = pred([
        ("d1", "Eric Flint", "wrote", "1634: The Ram Rebellion"),  # exact
        ("d1", "Eric Flint", "born_in", "Burbank"),  # a whole-token subset of the gold name
        ("d1", "Burbank", "born_in", "Eric Flint"),  # wrong direction
        ("d2", "Buzz Aldrin", "citizen_of", "Glen Ridge"),  # wrong relation
    ])  # fmt: skip
    s = relation_scores(p, g)
    assert (s["tp"], s["fp"], s["fn"]) == (2, 2, 1)
    assert s["precision"] == pytest.approx(0.5)
    assert s["recall"] == pytest.approx(2 / 3)
    assert s["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    # Labelled: predictions about a gold pair of names, whatever the relation or direction: all four are.
    assert s["labelled_predicted"] == 4


def test_no_match_across_documents_or_below_the_similarity_bar():
    g = gold([(0, "d1", "Eric Flint", "wrote", "Rebellion")])
    assert relation_scores(pred([("d2", "Eric Flint", "wrote", "Rebellion")]), g)["tp"] == 0
    assert relation_scores(pred([("d1", "Eric Clapton", "wrote", "Rebellion")]), g)["tp"] == 0
    empty = relation_scores(pred([]), g)
    assert (empty["precision"], empty["recall"], empty["f1"]) == (None, 0.0, 0.0)


def test_matching_is_one_to_one_and_duplicates_are_counted_once():
    g = gold([(0, "d1", "Eric Flint", "wrote", "Rebellion")])
    p = pred([("d1", "Eric Flint", "wrote", "Rebellion"), ("d1", "eric  flint", "wrote", "rebellion"),
              ("d1", "Eric Flint", "wrote", "The Rebellion (novel)")])
    assert dedupe_predictions(p).height == 2  # the case/space variant is the same prediction
    s = relation_scores(p, g)
    assert (s["tp"], s["fp"]) == (1, 1)  # one gold item is matched once
    assert match_relations(dedupe_predictions(p), g)["pred_id"].to_list() == [0]  # the best pair wins


def test_symmetric_relations_match_either_way_and_alternatives_count_once():
    g = gold([(0, "d1", "Ann", "spouse_of", "Bob Smith"),
              (1, "d1", "Cy Young", "acted_in", "Show"), (1, "d1", "Cy Young", "wrote", "Show")])
    p = pred([("d1", "Bob Smith", "spouse_of", "Ann"), ("d1", "Cy Young", "wrote", "Show"),
              ("d1", "Cy Young", "acted_in", "Show")])
    s = relation_scores(p, g, symmetric=frozenset({"spouse_of"}))
    # gold item 1 admits acted_in or wrote: recalled once; the second prediction about it is a false positive
    assert (s["tp"], s["fp"], s["fn"], s["gold"]) == (2, 1, 0, 2)
    assert relation_scores(p, g)["tp"] == 1  # spouse_of not declared symmetric: direction counts


def test_grounding_checks_offsets_and_names():
    texts = {"d1": "Eric Flint wrote 1634: The Ram Rebellion. He was born in Burbank."}
    ev = "Eric Flint wrote 1634: The Ram Rebellion."
    accepted = pl.DataFrame({
        "doc_id": ["d1", "d1", "d1"],
        "subject": ["Eric Flint", "Eric Flint", "Eric Flint"],
        "object": ["1634: The Ram Rebellion", "Burbank", "Paris"],
        "evidence": [ev, "born in Burbank", "born in Burbank"],
        "start": [0, 10, 49],
        "end": [len(ev), 25, 64],
    })  # fmt: skip
    g = evidence_grounding(accepted, texts)
    # row 2: evidence not at its offsets; row 3: at its offsets but "Paris" is not in the text
    assert (g["accepted"], g["evidence_at_offsets"], g["names_in_text"], g["grounded"]) == (3, 2, 2, 1)
    proxy = endpoint_grounding(accepted, texts)
    assert (proxy["both_names_in_text"], proxy["ungrounded"]) == (2, 1)


# -- WebNLG ----------------------------------------------------------------------------------------

TINY = b"""<?xml version='1.0' encoding='utf-8'?>
<benchmark><entries>
  <entry category="WrittenWork" eid="Id1" shape="" shape_type="" size="3">
    <originaltripleset><otriple>ignored | author | ignored</otriple></originaltripleset>
    <modifiedtripleset>
      <mtriple>1634:_The_Ram_Rebellion | author | Eric_Flint</mtriple>
      <mtriple>1634:_The_Ram_Rebellion | country | United_States</mtriple>
      <mtriple>1634:_The_Ram_Rebellion | numberOfPages | "512"</mtriple>
    </modifiedtripleset>
    <lex comment="good" lid="Id1">Eric Flint wrote 1634: The Ram Rebellion, a 512 page American book.</lex>
    <lex comment="bad" lid="Id2">Nonsense.</lex>
  </entry>
  <entry category="City" eid="Id2" shape="" shape_type="" size="2">
    <modifiedtripleset>
      <mtriple>Austin,_Texas | country | United_States</mtriple>
      <mtriple>Ann_Smith | spouse | Bob_Jones</mtriple>
    </modifiedtripleset>
    <lex comment="good" lid="Id1">Austin, Texas is in the United States, where Ann Smith married Bob Jones.</lex>
  </entry>
</entries></benchmark>"""


def test_parser_reads_entries_triples_and_good_texts():
    entries, triples = parse_webnlg_xml(TINY, "3triples/WrittenWork.xml")
    assert [e["entry_id"] for e in entries] == ["3triples/WrittenWork/Id1", "3triples/WrittenWork/Id2"]
    assert entries[0]["texts"] == ["Eric Flint wrote 1634: The Ram Rebellion, a 512 page American book."]
    assert (entries[0]["category"], entries[0]["size"]) == ("WrittenWork", 3)
    assert len(triples) == 5  # modified triples only
    assert triples[0] == {"entry_id": "3triples/WrittenWork/Id1", "subject": "1634:_The_Ram_Rebellion",
                          "predicate": "author", "object": "Eric_Flint"}
    assert entity_name('"Virginia DeMarce and Eric Flint"') == "Virginia DeMarce and Eric Flint"


def test_parser_names_the_file_and_entry_at_fault():
    with pytest.raises(ExtractionError, match=r"x\.xml:1:"):
        parse_webnlg_xml(b"<benchmark><entry>", "x.xml")
    bad = b"<benchmark><entries><entry category='A' eid='Id9'><modifiedtripleset><mtriple>a | b</mtriple>" \
          b"</modifiedtripleset></entry></entries></benchmark>"
    with pytest.raises(ExtractionError, match="x.xml: entry Id9: field 'mtriple'"):
        parse_webnlg_xml(bad, "x.xml")


def test_mapping_flips_direction_and_scopes_by_subject_kind():
    entries, triples = parse_webnlg_xml(TINY, "3triples/WrittenWork.xml")
    m = map_triples(pl.DataFrame(triples)).select("predicate", "relation", "subject", "object", "scope").rows()
    assert m == [
        ("author", "wrote", "Eric Flint", "1634: The Ram Rebellion", "in"),  # X author Y → Y wrote X
        ("country", "country_of_origin", "1634: The Ram Rebellion", "United States", "in"),  # a work's country
        ("numberOfPages", None, "1634: The Ram Rebellion", "512", "no counterpart: numberOfPages"),
        ("country", "country_of_origin", "Austin, Texas", "United States", "subject is not a work: country"),
        ("spouse", "spouse_of", "Ann Smith", "Bob Jones", "in"),
    ]


def test_sample_is_seeded_and_keeps_only_entries_with_in_scope_gold(tmp_path):
    (tmp_path / "3triples").mkdir()
    (tmp_path / "3triples" / "WrittenWork.xml").write_bytes(TINY)
    data = read_webnlg(tmp_path)
    docs, triples = sample_webnlg(data, 5, seed=1)
    assert [d for d, _ in docs] == ["3triples/WrittenWork/Id1", "3triples/WrittenWork/Id2"]
    again, again_triples = sample_webnlg(data, 5, seed=1)
    assert again == docs and again_triples.equals(triples)
    assert set(triples["doc_id"]) == {d for d, _ in docs}
    with pytest.raises(ExtractionError, match="none of the categories"):
        sample_webnlg(data, 1, categories=("Film",))


@pytest.mark.data
def test_real_webnlg_dev_set_parses():
    path = SHARED_DATA / "webnlg" / "dev"
    if not path.is_dir():
        pytest.skip(f"WebNLG dev set not found at {path} (set KG_SHARED_DATA to its parent folder)")
    data = read_webnlg(path)
    assert data.entries.height == 1667  # the README's count of dev entries
    assert data.entries["texts"].list.len().sum() >= 4400
    mapped = map_triples(data.triples)
    assert mapped.height == data.triples.height
    in_scope = mapped.filter(pl.col("scope") == "in")
    assert in_scope.height > 300 and set(in_scope["relation"]) >= {"born_in", "wrote", "sequel_of"}
    docs, triples = sample_webnlg(data, 40, seed=0, categories=("Artist", "WrittenWork", "Politician"))
    assert len(docs) == 40 and all(t for _, t in docs)
    assert triples.filter(pl.col("scope") == "in")["doc_id"].n_unique() == 40


# -- moviegraph silver gold ------------------------------------------------------------------------


def test_silver_gold_from_records():
    lists = {"aliases": pl.List(pl.String), "professions": pl.List(pl.String)}
    records = pl.DataFrame(
        [
            ("tmdb", "1", "series", "Stoney Burke", None, None,
             "Stoney Burke is a western series on ABC. Jack Lord starred in Stoney Burke. Hawaii Five-0 followed."),
            ("tvdb", "7", "person", "Jack Lord", None, ["guestStars"], None),
            ("imdb", "8", "person", "Jack Lord", None, ["actor", "producer"], None),
            ("tmdb", "9", "company", "ABC", None, None, None),
            ("tmdb", "10", "series", "Hawaii Five-0", None, None, None),
            ("tmdb", "2", "episode", "Thomas Paine", None, None, "Mark Steel tells the life of Thomas Paine."),
            ("tvdb", "3", "person", "Thomas Paine", None, None, None),
            ("tvdb", "4", "person", "Mark Steel", None, ["writers"], None),
        ],
        schema={"source": pl.String, "source_id": pl.String, "type": pl.String, "name": pl.String,
                "aliases": pl.List(pl.String), "professions": pl.List(pl.String), "abstract": pl.String},
        orient="row",
    ).cast(lists)
    docs, g, counts = derive_gold(records)
    assert docs["doc_id"].to_list() == ["tmdb:1"]  # the episode's title names a person: it anchors nothing
    assert sorted(g.select("subject", "relation", "object").rows()) == [
        ("Jack Lord", "acted_in", "Stoney Burke"), ("Jack Lord", "produced", "Stoney Burke"),
        ("Stoney Burke", "production_company", "ABC"),
    ]  # fmt: skip
    assert g["gold_id"].n_unique() == 2  # Jack Lord is one item with two admissible relations
    assert counts["work_work_pairs_left_out"] == 1  # Hawaii Five-0: the records cannot say which relation


# -- evaluate() end to end, against a scripted model --------------------------------------------------

FLINT = "Eric Flint wrote 1634: The Ram Rebellion. Flint was born in Burbank, California."


def test_evaluate_scores_an_extract_run():
    from extraction.evaluate import EvalSet, evaluate
    from tests.extraction.fakes import ScriptedClient, open_answer

    def responder(request):
        wrote = {"evidence": "Eric Flint wrote 1634: The Ram Rebellion", "subject": "Eric Flint",
                 "subject_type": "person", "relation": "wrote", "object": "1634: The Ram Rebellion",
                 "object_type": "book"}
        invented = {"evidence": "Flint lived in Paris", "subject": "Eric Flint", "subject_type": "person",
                    "relation": "born_in", "object": "Paris", "object_type": "place"}
        return open_answer(request, [], [wrote, invented])

    evalset = EvalSet("tiny", [("d1", FLINT)], gold([
        (0, "d1", "Eric Flint", "wrote", "1634:_The_Ram_Rebellion"),
        (1, "d1", "Eric Flint", "born_in", "Burbank,_California"),
    ]))  # fmt: skip
    report = evaluate([evalset], ScriptedClient(responder), modes=("open",))
    m = report["sets"]["tiny"]["modes"]["open"]
    assert (m["tp"], m["fp"], m["fn"]) == (1, 0, 1)  # the invented quote never reached the accepted table
    assert m["rejected_by_reason"] == {"ungrounded": 1}
    assert m["grounding"] == {"accepted": 1, "evidence_at_offsets": 1, "names_in_text": 1, "grounded": 1, "rate": 1.0}
    assert m["documents"] == 1 and m["requests"] == 1 and m["tokens_per_doc"] > 0
    assert 0.0 <= m["outside_llm_share"] <= 1.0


def test_the_command_runs_both_modes_on_webnlg(tmp_path):
    from contextlib import contextmanager

    from extraction.eval_cli import run_eval
    from tests.extraction.fakes import ScriptedClient, kind, open_answer

    (tmp_path / "webnlg" / "dev" / "3triples").mkdir(parents=True)
    (tmp_path / "webnlg" / "dev" / "3triples" / "WrittenWork.xml").write_bytes(TINY)

    def responder(request):
        if kind(request) == "open":
            return open_answer(request, [], [])
        if kind(request) == "type":
            return request.response_model(type="none")
        return request.response_model(choice="none")

    @contextmanager
    def scripted(endpoint, use_cache):
        assert endpoint.is_bundled and not use_cache
        yield ScriptedClient(responder)

    report = run_eval(tmp_path, ["webnlg"], ["open", "guided"], sample=5, seed=0, base_url=None, model=None,
                      concurrency=1, use_cache=False, open_client=scripted)
    entry = report["sets"]["webnlg"]
    assert entry["documents"] == 1 and entry["gold_items"] == 2  # the WrittenWork entry: wrote, country_of_origin
    assert entry["out_of_scope"] == {"no counterpart: numberOfPages": 1}
    for mode in ("open", "guided"):
        assert entry["modes"][mode]["predicted"] == 0 and entry["modes"][mode]["recall"] == 0.0
    with pytest.raises(ExtractionError, match="--mode"):
        run_eval(tmp_path, ["webnlg"], ["closed"], sample=1, seed=0, base_url=None, model=None, concurrency=1,
                 use_cache=False, open_client=scripted)
