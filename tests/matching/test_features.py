import math

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from rapidfuzz import fuzz
from rapidfuzz.distance import JaroWinkler

from kg.errors import KGError
from matching.features import FEATURE_REGISTRY, PairFrame, describe_features, pair_features
from schemas.tables import CANDIDATE_PAIRS, conform
from tests.matching.builders import movie, person, records


def _pairs(*pairs: tuple[str, str, str, str]) -> pa.Table:
    rows = [
        {"left_source": a, "left_id": b, "right_source": c, "right_id": d, "partition": 0, "rule": "test"}
        for a, b, c, d in pairs
    ]
    return conform(pa.Table.from_pylist(rows, schema=CANDIDATE_PAIRS), CANDIDATE_PAIRS)


@pytest.fixture
def features() -> pl.DataFrame:
    recs = records([
        movie("a", "ko", "Knives Out", 2019, runtime_min=130.0, directors=["Rian Johnson"], cast=["Craig, Daniel"]),
        movie("b", "ko", "Knives Out", 2019, runtime_min=131.0, directors=["rian johnson"],
              cast=["Daniel Craig", "Ana de Armas"], aliases=["Puñales por la espalda"]),
        movie("b", "ko2", "Knives Out 2", 2022),
        movie("b", "go", "Glass Onion: A Knives Out Mystery", None),
        movie("a", "r4", "Rocky IV", 1985), movie("b", "r4", "Rocky 4", 1985),
        person("a", "dc", "Craig, Daniel", 1968), person("b", "dc", "Daniel Craig", None),
    ])  # fmt: skip
    pairs = _pairs(
        ("a", "ko", "b", "ko"), ("a", "ko", "b", "ko2"), ("a", "ko", "b", "go"),
        ("a", "r4", "b", "r4"), ("a", "dc", "b", "dc"),
    )  # fmt: skip
    return pl.from_arrow(pair_features(pairs, recs))


def _row(df: pl.DataFrame, left: str, right: str) -> dict:
    return df.filter((pl.col("left_id") == left) & (pl.col("right_id") == right)).row(0, named=True)


def test_schema_is_float32_per_registered_feature(features: pl.DataFrame) -> None:
    names = [f.name for f in FEATURE_REGISTRY]
    assert features.columns == ["left_source", "left_id", "right_source", "right_id", "partition", *names]
    assert all(features[n].dtype == pl.Float32 for n in names)
    assert describe_features().height == len(names)
    assert describe_features().filter("costly")["feature"].to_list() == [
        "title_token_set", "title_token_sort", "title_jaro_winkler", "title_ratio_raw", "alias_best",
        "country_jaccard", "language_jaccard", "genre_jaccard", "profession_jaccard", "role_jaccard",
        "abstract_ratio"]


@pytest.mark.parametrize("kinds", ["expressions", "arrays", "costly", "cheap"])
def test_any_subset_of_features_gives_the_full_computation_s_values(kinds: str) -> None:
    """A subset gathers only the columns its features read (the screen's features, then the rest): the values
    must not depend on which other features were computed beside them."""
    recs = records([
        movie("a", "ko", "Knives Out", 2019, runtime_min=130.0, directors=["Rian Johnson"], countries=["US"]),
        movie("b", "ko", "Knives Out", 2019, runtime_min=131.0, directors=["rian johnson"], countries=["us", "gb"],
              aliases=["Puñales por la espalda"]),
        movie("b", "go", "Glass Onion: A Knives Out Mystery", None, genres=["Mystery"]),
        person("a", "dc", "Craig, Daniel", 1968, professions=["actor"]), person("b", "dc", "Daniel Craig", None),
    ])  # fmt: skip
    pairs = _pairs(("a", "ko", "b", "ko"), ("a", "ko", "b", "go"), ("a", "dc", "b", "dc"))
    everything = pl.from_arrow(pair_features(pairs, recs))
    subset = {
        "costly": tuple(f for f in FEATURE_REGISTRY if f.costly),
        "cheap": tuple(f for f in FEATURE_REGISTRY if not f.costly),
        # polars expressions only; numpy arrays only (rapidfuzz scorers)
        "expressions": tuple(f for f in FEATURE_REGISTRY if f.name in {"year_diff", "directors_jaccard", "type_match"}),
        "arrays": tuple(f for f in FEATURE_REGISTRY if f.name in {"title_ratio", "alias_best", "abstract_ratio"}),
    }[kinds]
    got = pl.from_arrow(pair_features(pairs, recs, features=subset))
    assert got.columns == [*everything.columns[:5], *[f.name for f in subset]]
    assert got.equals(everything.select(got.columns))


def test_same_film_scores_high(features: pl.DataFrame) -> None:
    row = _row(features, "ko", "ko")
    assert row["title_ratio"] == 1.0
    assert row["year_diff"] == 0.0
    assert row["runtime_diff"] == 1.0
    assert row["directors_jaccard"] == 1.0
    assert row["cast_overlap"] == 1.0  # 'Craig, Daniel' = 'Daniel Craig'
    assert row["sequel_mismatch"] == 0.0
    assert row["type_match"] == 1.0


def test_sequels_and_spinoffs(features: pl.DataFrame) -> None:
    assert _row(features, "ko", "ko2")["sequel_mismatch"] == 1.0
    assert _row(features, "r4", "r4")["sequel_mismatch"] == 0.0
    assert _row(features, "r4", "r4")["title_ratio"] == 1.0
    glass = _row(features, "ko", "go")
    assert glass["sequel_mismatch"] == 0.0
    assert glass["title_ratio"] < 0.6 < glass["title_token_set"]


def test_missing_stays_null(features: pl.DataFrame) -> None:
    glass = _row(features, "ko", "go")
    for name in ("year_diff", "runtime_diff", "directors_jaccard", "cast_overlap", "country_jaccard"):
        assert glass[name] is None, name
    people = _row(features, "dc", "dc")
    assert people["birth_year_diff"] is None
    assert people["year_diff"] is None  # a work feature: null for a person pair
    assert people["title_ratio"] == 1.0
    assert not any(isinstance(v, float) and math.isnan(v) for v in people.values())


def test_alias_best_uses_alternate_titles() -> None:
    recs = records([movie("a", "1", "Puñales por la espalda", 2019),
                    movie("b", "1", "Knives Out", 2019, aliases=["Punales por la Espalda"])])
    row = pl.from_arrow(pair_features(_pairs(("a", "1", "b", "1")), recs)).row(0, named=True)
    assert row["alias_best"] == 1.0
    assert row["title_ratio"] < 0.5


def test_title_frequency_counts_all_records() -> None:
    recs = records([movie(s, str(i), "Mother", 2000 + i) for i in range(4) for s in ("a", "b")])
    row = pl.from_arrow(pair_features(_pairs(("a", "0", "b", "0")), recs)).row(0, named=True)
    assert row["title_freq"] == 3.0  # log2(8)


@pytest.mark.parametrize(
    "scorer", [fuzz.ratio, fuzz.token_set_ratio, fuzz.token_sort_ratio, fuzz.partial_ratio, fuzz.WRatio,
               JaroWinkler.normalized_similarity],
)
def test_string_scores_are_the_scorers_own_identical_values_included(scorer) -> None:
    """Identical values skip the scorer only where it would give its top score: not a string without a word."""
    left = ["knives out", "knives out", "!!", " ", "", "rocky 4", None, "a"]
    right = ["knives out", "glass onion", "!!", " ", "", "rocky iv", "a", None]
    frame = PairFrame.joined(pl.DataFrame({"t": left, "t_r": right}))
    got = frame.score("t", scorer)
    top = 1.0 if scorer is JaroWinkler.normalized_similarity else 100.0
    want = [np.nan if a is None or b is None else scorer(a, b) / top for a, b in zip(left, right, strict=True)]
    np.testing.assert_allclose(got, np.array(want, dtype=np.float32), rtol=1e-6)
    assert fuzz.token_set_ratio(" ", " ") == 0.0  # why the shortcut needs a letter or digit


def test_alias_best_takes_a_shared_form_as_full_and_scores_the_rest() -> None:
    recs = records([
        movie("a", "1", "Knives Out", 2019, aliases=["Punales por la espalda"]),
        movie("b", "1", "Punales por la Espalda", 2019, aliases=["Cuchillos"]),
        movie("a", "2", "The Sisters", 2019, aliases=["Schwestern"]),
        movie("b", "2", "Sister", 2019, aliases=["Die Schwester"]),
    ])  # fmt: skip
    rows = pl.from_arrow(pair_features(_pairs(("a", "1", "b", "1"), ("a", "2", "b", "2")), recs))
    assert _row(rows, "1", "1")["alias_best"] == 1.0
    forms = (["sisters", "schwestern"], ["sister", "schwester"])
    best = max(fuzz.token_sort_ratio(x, y) for x in forms[0] for y in forms[1]) / 100
    assert _row(rows, "2", "2")["alias_best"] == pytest.approx(best, rel=1e-6)


def test_alias_best_compares_a_nameless_records_first_alias_with_the_partners_name() -> None:
    """The cross product skips name against name (title_token_sort has it) only where both records have a name."""
    recs = records([
        movie("a", "1", "?!", 2019, aliases=["Knives Out", "Rian Johnson Mystery"]),
        movie("b", "1", "Knives Out 2", 2019, aliases=["Cuchillos"]),
    ])  # fmt: skip
    row = pl.from_arrow(pair_features(_pairs(("a", "1", "b", "1")), recs)).row(0, named=True)
    assert row["title_token_sort"] is None  # 'a:1' has no name left once normalised
    assert row["alias_best"] == pytest.approx(fuzz.token_sort_ratio("knives out", "knives out 2") / 100, rel=1e-6)


def test_set_features_count_shared_names() -> None:
    recs = records([
        movie("a", "1", "Heat", 1995, directors=["Michael Mann", "Craig, Daniel"], cast=["Al Pacino", "Robert De Niro"],
              genres=["Crime", "Drama"]),
        movie("b", "1", "Heat", 1995, directors=["Daniel Craig", "Ridley Scott"], cast=["robert de niro"],
              genres=["crime", "thriller", "drama", "action"]),
    ])  # fmt: skip
    row = pl.from_arrow(pair_features(_pairs(("a", "1", "b", "1")), recs)).row(0, named=True)
    assert row["directors_jaccard"] == pytest.approx(1 / 3)  # 'Craig, Daniel' = 'Daniel Craig'
    assert row["cast_overlap"] == 1.0  # the smaller cast, all shared
    assert row["genre_jaccard"] == 0.5


def test_a_pair_naming_an_unknown_record_is_an_error() -> None:
    recs = records([movie("a", "1", "Heat", 1995), movie("b", "1", "Heat", 1995)])
    with pytest.raises(KGError, match="1 pair.*right record.*b:2"):
        pair_features(_pairs(("a", "1", "b", "1"), ("a", "1", "b", "2")), recs)
