"""Tokens with offsets, the capitalised-span detector, and known names found in text (exact and fuzzy)."""

from __future__ import annotations

import polars as pl

from extraction.documents import sentence_spans
from extraction.gazetteer import Gazetteer
from extraction.spans import capitalised_spans, tokenize
from tests.store.helpers import records

TEXTS = [
    "Knives Out is a 2019 film by Rian Johnson. In Paris, Daniel Craig met Ana de Armas.",
    "Amélie Poulain lives in Montréal; Ocean's 11 and Spider-Man. It rains.",
]


def _sentences(texts: list[str]) -> list:
    return [sentence_spans(t) for t in texts]


def test_token_offsets_match_the_text() -> None:
    tokens = tokenize(TEXTS, _sentences(TEXTS))
    for row in tokens.iter_rows(named=True):
        assert TEXTS[row["text"]][row["start"] : row["end"]] == row["raw"]
    raws = tokens.filter(pl.col("text") == 1)["raw"].to_list()
    assert raws[:6] == ["Amélie", "Poulain", "lives", "in", "Montréal", "Ocean's"]
    assert "Spider-Man" in raws  # joiners inside words stay
    assert tokens.filter(pl.col("raw") == "Daniel")["sentence"].item() == 1
    assert tokenize([], None).height == 0 and tokenize(["... !!"], None).height == 0


def test_capitalised_spans_propose_names_not_sentence_starts() -> None:
    spans = capitalised_spans(tokenize(TEXTS, _sentences(TEXTS)))
    got = [(TEXTS[t][s:e], raw) for t, s, e, raw in spans.select("text", "start", "end", "raw").iter_rows()]
    assert [g[0] for g in got] == [
        "Knives Out",
        "Rian Johnson",
        "Paris",
        "Daniel Craig",
        "Ana de Armas",
        "Amélie Poulain",
        "Montréal",
        "Ocean's 11",
        "Spider-Man",
    ]
    assert all(a == b for a, b in got)  # the surface form is the text's own slice


def test_gazetteer_spots_known_names_aliases_and_typos() -> None:
    gazetteer = Gazetteer.from_records(records())
    texts = [
        "Bong Joon-ho's Madeo premiered before Parasite. Darren Aronofskyy made Mother! with Christian Bale.",
        "Nothing known here, just Paris.",
    ]
    spots = gazetteer.spot(texts, _sentences(texts))
    found = spots.group_by("span", maintain_order=True).agg(
        pl.col("surface").first(), pl.col("exact").first(), pl.col("entity_id").unique().sort()
    )
    rows = {r["surface"]: (r["exact"], r["entity_id"]) for r in found.iter_rows(named=True)}
    assert rows["Madeo"] == (True, ["imdb:tt1216496"])  # an alias
    assert rows["Bong Joon-ho"] == (True, ["imdb:nm0094435"])  # alias "Joon-ho Bong", token order free
    assert rows["Parasite"] == (True, ["imdb:tt6751668"])
    assert rows["Darren Aronofskyy"] == (False, ["imdb:nm0001467"])  # fuzzy
    assert rows["Mother"] == (True, ["imdb:tt1216496", "imdb:tt5109784"])  # both films: linking decides
    assert rows["Christian Bale"][0]
    assert set(spots["text"].to_list()) == {0}
    for r in spots.iter_rows(named=True):
        assert texts[r["text"]][r["start"] : r["end"]] == r["surface"]


def test_overlapping_spans_prefer_the_longer_exact_name() -> None:
    names = pl.DataFrame(
        {"entity_id": ["a", "b"], "name": ["Star Wars", "Star Wars: The Force Awakens"], "type": ["movie", "movie"]}
    )
    texts = ["Star Wars: The Force Awakens opened in 2015."]
    spots = Gazetteer(names).spot(texts, _sentences(texts))
    assert spots.select("surface", "entity_id").rows() == [("Star Wars: The Force Awakens", "b")]


def test_lower_case_words_and_lone_function_words_are_not_spotted() -> None:
    names = pl.DataFrame({"entity_id": ["m1", "m2"], "name": ["Heat", "It"], "type": ["movie", "movie"]})
    texts = ["The heat was terrible. It was Heat, the film."]
    spots = Gazetteer(names).spot(texts, _sentences(texts))
    assert spots.select("surface", "start").rows() == [("Heat", 30)]
