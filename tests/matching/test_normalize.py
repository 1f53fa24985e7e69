import polars as pl
import pytest

from matching.normalize import (
    fold,
    fold_text,
    in_key_order,
    looked_up,
    normalize_person,
    normalize_title,
    person_key,
    prepare,
    sequel_number,
    title_forms,
)
from tests.matching.builders import movie, person, records


def _titles(values: list[str | None]) -> pl.DataFrame:
    df = pl.DataFrame({"t": values}, schema={"t": pl.String})
    return df.with_columns(n=normalize_title(pl.col("t"))).with_columns(s=sequel_number(pl.col("n")))


@pytest.mark.parametrize(
    ("left", "right"),
    [
        ("Rocky IV", "Rocky 4"),
        ("The Godfather: Part II", "Godfather Part 2"),
        ("Harry Potter and the Deathly Hallows – Part One", "Harry Potter and the Deathly Hallows: Part 1"),
        ("Amélie", "AMELIE"),
        ("Ocean's Eleven", "Oceans Eleven"),
        ("L'Amour", "Amour"),
    ],
)
def test_title_variants_normalise_equal(left: str, right: str) -> None:
    n = _titles([left, right])["n"]
    assert n[0] == n[1]


def test_sequel_numbers() -> None:
    df = _titles(["Knives Out", "Glass Onion: A Knives Out Mystery", "Knives Out 2", "Rocky IV", "Blade Runner 2049"])
    assert df["s"].to_list() == [None, None, 2, 4, None]


def test_missing_and_empty_titles_stay_null() -> None:
    assert _titles([None, "!!!", "  "])["n"].to_list() == [None, None, None]


def test_person_last_first_order() -> None:
    df = pl.DataFrame({"p": ["Craig, Daniel", "Daniel Craig", "Penélope Cruz", None]}).with_columns(
        n=normalize_person(pl.col("p"))
    )
    assert df["n"].to_list() == ["daniel craig", "daniel craig", "penelope cruz", None]
    keys = df.select(person_key(pl.col("n")))["n"].to_list()
    assert keys[0] == "craig daniel"


def test_fold_text_decomposes_only_what_is_not_ascii() -> None:
    text = pl.Series(["Amélie in PARIS", "Plain ASCII Text", None, "Ça va, Ñandú", ""])
    expected = pl.select(fold(pl.lit(text))).to_series()
    assert fold_text(text).to_list() == expected.to_list()
    assert expected.to_list() == ["amelie in paris", "plain ascii text", None, "ca va, nandu", ""]


def test_prepare_numbers_records_by_key_whatever_their_order() -> None:
    rows = [movie("b", "2", "Heat", 1995), movie("a", "9", "Rocky IV"), person("a", "10", "Craig, Daniel", 1968)]
    shuffled = pl.from_arrow(records(rows))
    ordered = shuffled.sort("source", "source_id")
    assert not in_key_order(shuffled) and in_key_order(ordered)
    assert prepare(shuffled).equals(prepare(ordered))
    assert prepare(ordered)["source_id"].to_list() == ["10", "9", "2"]


def test_title_forms_are_the_name_then_new_aliases() -> None:
    names = pl.Series(["mother", None, "rocky 4", None, "amelie"])
    aliases = pl.Series([["madeo", "mother", "madeo"], ["glass onion"], None, None, []], dtype=pl.List(pl.String))
    assert title_forms(names, aliases).to_list() == [
        ["mother", "madeo"], ["glass onion"], ["rocky 4"], [], ["amelie"]
    ]


def test_looked_up_keeps_empty_and_missing_lists() -> None:
    """An empty list stays empty and a missing one missing: one output row per input row."""
    lookup = (pl.Series(["Amélie", "Rocky IV"]), pl.Series(["amelie", "rocky 4"]))
    column = pl.Series("titles", [["Amélie", "Unknown"], [], None, ["Rocky IV"]], dtype=pl.List(pl.String))
    assert looked_up(column, lookup).to_list() == [["amelie"], [], None, ["rocky 4"]]
