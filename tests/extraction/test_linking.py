"""Linking mentions to graph entities: thresholds, type compatibility, year context, new and unlinked mentions."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from extraction.gazetteer import Gazetteer
from extraction.linking import LinkConfig, document_years, link_mentions, new_entity_tables
from schemas.ontology import load_ontology
from schemas.tables import CROSSWALK, RECORDS
from tests.store.helpers import build

ONTOLOGY = load_ontology()


@pytest.fixture(scope="module")
def gazetteer(tmp_path_factory: pytest.TempPathFactory) -> Gazetteer:
    path = build(Path(tmp_path_factory.mktemp("store")) / "graph.duckdb")
    return Gazetteer.from_store(path)


def _mentions(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        [{"mid": i, "doc_id": d, "text": t, "type": ty, "confidence": c} for i, (d, t, ty, c) in enumerate(rows)],
        schema={"mid": pl.UInt32, "doc_id": pl.String, "text": pl.String, "type": pl.String, "confidence": pl.Float64},
    )


DOCS = {
    "a": "Knives Out (2019) stars Daniel Craig. Bong Joon-ho's Mother premiered in 2009.",
    "b": "Mother is a film. Craig, Daniel appears. Benoit Blanc is a detective.",
}


def _link(gazetteer: Gazetteer, rows: list[tuple], config: LinkConfig | None = None) -> dict:
    years = document_years(list(DOCS), list(DOCS.values()))
    out = link_mentions(_mentions(rows), gazetteer, years, ONTOLOGY, config or LinkConfig())
    return {(r["doc_id"], r["text"], r["type"]): (r["link"], r["entity_id"]) for r in out.iter_rows(named=True)}


def test_links_exact_alias_and_reordered_names(gazetteer: Gazetteer) -> None:
    got = _link(
        gazetteer,
        [
            ("a", "Knives Out", "movie", None),
            ("a", "Daniel Craig", "person", None),
            ("b", "Craig, Daniel", "person", None),  # "Last, First" from normalize_person
            ("a", "Bong Joon-ho", "person", None),  # alias "Joon-ho Bong"
            ("a", "Gisaengchung", "movie", None),  # alias of Parasite
        ],
    )
    assert got[("a", "Knives Out", "movie")] == ("linked", "E-knives")
    assert got[("a", "Daniel Craig", "person")] == ("linked", "P-craig")
    assert got[("b", "Craig, Daniel", "person")] == ("linked", "P-craig")
    assert got[("a", "Bong Joon-ho", "person")] == ("linked", "P-bong")
    assert got[("a", "Gisaengchung", "movie")] == ("linked", "E-parasite")


def test_year_in_the_document_settles_a_tie_without_it_it_stays_ambiguous(gazetteer: Gazetteer) -> None:
    got = _link(gazetteer, [("a", "Mother", "movie", 0.9), ("b", "Mother", "movie", 0.9)])
    assert got[("a", "Mother", "movie")] == ("linked", "E-mother")  # "2009" is in document a
    assert got[("b", "Mother", "movie")] == ("ambiguous", None)  # Mother (2009) or Mother! (2017)


def test_type_compatibility(gazetteer: Gazetteer) -> None:
    got = _link(
        gazetteer,
        [
            ("b", "Knives Out", "series", 0.3),  # sibling type: penalised below the bar, not new (low confidence)
            ("b", "Knives Out", "person", 0.9),  # incompatible type: no candidate, new entity
        ],
    )
    assert got[("b", "Knives Out", "series")] == ("unlinked", None)
    assert got[("b", "Knives Out", "person")] == ("new", "text:person:knives out")
    lenient = LinkConfig(type_penalty=5.0)
    assert _link(gazetteer, [("b", "Knives Out", "series", 0.3)], lenient)[("b", "Knives Out", "series")] == (
        "linked",
        "E-knives",
    )


def test_new_entities_need_confidence(gazetteer: Gazetteer) -> None:
    got = _link(
        gazetteer,
        [
            ("b", "Benoit Blanc", "character", 0.8),
            ("b", "Some Stranger", "person", 0.4),
            ("b", "No Logprobs", "person", None),
        ],
    )
    assert got[("b", "Benoit Blanc", "character")] == ("new", "text:character:benoit blanc")
    assert got[("b", "Some Stranger", "person")] == ("unlinked", None)
    assert got[("b", "No Logprobs", "person")] == ("unlinked", None)


def test_without_a_gazetteer_mentions_are_new_or_unlinked() -> None:
    out = link_mentions(
        _mentions([("a", "Knives Out", "movie", 0.9), ("a", "X", "movie", 0.1)]), None, document_years([], []), ONTOLOGY
    )
    assert out["link"].to_list() == ["new", "unlinked"]


def test_new_entity_tables_fit_the_store_schemas() -> None:
    mentions = pl.DataFrame(
        {
            "text": ["Benoit Blanc", "benoit  blanc", "Harlan"],
            "type": ["character", "character", "character"],
            "link": ["new", "new", "unlinked"],
            "entity_id": ["text:character:benoit blanc", "text:character:benoit blanc", None],
        }
    )
    records, crosswalk = new_entity_tables(mentions, "run-1")
    assert records.schema.equals(RECORDS, check_metadata=True) and crosswalk.schema.equals(CROSSWALK)
    assert records.num_rows == 1 and crosswalk.to_pylist()[0] == {
        "source": "text",
        "source_id": "character:benoit blanc",
        "entity_id": "text:character:benoit blanc",
        "type": "character",
        "run_id": "run-1",
    }
    assert sorted([records["name"][0].as_py(), *records["aliases"][0].as_py()]) == ["Benoit Blanc", "benoit  blanc"]
