"""The iTunes-Amazon adapter: Ditto file parsing, song records, song pair features, the benchmark run."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from kg.adapters.itunes_amazon import (
    ATTRIBUTES,
    SONG_FEATURES,
    describe_song_features,
    evaluate_itunes_amazon,
    read_pairs,
    song_pair_features,
    song_records,
    train_ensemble,
)
from kg.errors import IngestError, KGError
from schemas.ontology import load_ontology
from schemas.tables import FEATURES, RECORDS, schema_version


def side(**values: str) -> str:
    """One Ditto record: every attribute in order, '' where not given."""
    return " ".join(f"COL {a} VAL {values.get(a, '')}" for a in ATTRIBUTES)


def write(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "pairs.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


SUNBURN = dict(
    Song_Name="Sunburn ( feat . X & Y ) [ Explicit ]", Artist_Name="Ed Sheeran", Album_Name="+ [ Deluxe Edition ]",
    Genre="Pop , Music , Singer/Songwriter", Price="$ 1.29", CopyRight="2011 Asylum Records UK", Time="4:35",
    Released="9-Sep-11",
)  # fmt: skip
SUNBURN_AMAZON = dict(
    Song_Name="Sunburn", Artist_Name="Ed Sheeran", Album_Name="+", Genre="Pop", Price="$ 1.29",
    CopyRight="( C ) 2011 Asylum Records UK", Time="4:36", Released="September 9 , 2011",
)  # fmt: skip


def test_read_pairs_dedupes_records_and_keeps_lines(tmp_path) -> None:
    other = side(Song_Name="Lego House", Artist_Name="Ed Sheeran", Time="3:05")
    path = write(tmp_path, f"{side(**SUNBURN)}\t{side(**SUNBURN_AMAZON)}\t1", f"{side(**SUNBURN)} \t{other}\t0", "")
    data = read_pairs(path)
    assert data.pairs["line"].to_list() == [1, 2]
    assert data.pairs["label"].to_list() == [1, 0]
    assert data.pairs["left_id"][0] == data.pairs["left_id"][1]  # same text, same record
    assert data.attributes.group_by("source").len().sort("source").rows() == [("amazon", 2), ("itunes", 1)]
    lego = data.attributes.filter(pl.col("source_id") == data.pairs["right_id"][1]).row(0, named=True)
    assert lego["Song_Name"] == "Lego House" and lego["Price"] is None and lego["line"] == 2
    again = read_pairs(write(tmp_path, f"{side(**SUNBURN)}\t{side(**SUNBURN_AMAZON)}\t1"))
    assert again.pairs["left_id"][0] == data.pairs["left_id"][0]  # ids are content hashes, not positions


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        (f"{side(**SUNBURN)}\t1", None, "expected 3 tab-separated fields"),
        (f"{side(**SUNBURN)}\t{side(**SUNBURN_AMAZON).replace('COL Genre VAL Pop ', '')}\t1", "right.Genre",
         "'Genre' missing"),
        (f"{side(**SUNBURN)}\t{side(**SUNBURN_AMAZON)}\tyes", "label", "expected 0 or 1"),
        (f"junk {side(**SUNBURN)}\t{side(**SUNBURN_AMAZON)}\t1", "left", "text before the first attribute"),
    ],
)  # fmt: skip
def test_malformed_line_names_file_line_and_field(tmp_path, line: str, field: str | None, words: str) -> None:
    good = f"{side(**SUNBURN)}\t{side(**SUNBURN_AMAZON)}\t1"
    path = write(tmp_path, good, line)
    with pytest.raises(IngestError) as err:
        read_pairs(path)
    assert err.value.file == str(path) and err.value.line == 2 and err.value.field == field
    assert words in str(err.value) and f"{path}:2:" in str(err.value)


def test_same_pair_with_both_labels_is_an_error(tmp_path) -> None:
    pair = f"{side(**SUNBURN)}\t{side(**SUNBURN_AMAZON)}"
    with pytest.raises(IngestError, match=r"line 1 is repeated with the other label on line\(s\) \[3\]"):
        read_pairs(write(tmp_path, f"{pair}\t1", f"{side(**SUNBURN)}\t{side(Song_Name='Other')}\t0", f"{pair}\t0"))


def test_missing_inputs_are_named(tmp_path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        read_pairs(tmp_path / "absent.txt")
    with pytest.raises(KGError, match="unknown iTunes-Amazon variant 'Clean'"):
        evaluate_itunes_amazon(tmp_path, "Clean")
    with pytest.raises(KGError, match="Structured: not found; pass the itunes-amazon folder"):
        evaluate_itunes_amazon(tmp_path, "Structured")


def test_song_records_conform_to_records(tmp_path) -> None:
    data = read_pairs(write(tmp_path, f"{side(**SUNBURN)}\t{side(**SUNBURN_AMAZON)}\t1"))
    table = song_records(data.attributes)
    assert schema_version(table.schema) == schema_version(RECORDS)
    rows = {r["source"]: r for r in table.to_pylist()}
    itunes, amazon = rows["itunes"], rows["amazon"]
    assert itunes["type"] == "song" and load_ontology().is_a("song", "work")
    assert itunes["aliases"] == ["Sunburn"] and amazon["aliases"] is None
    assert itunes["cast"] == ["Ed Sheeran", "X", "Y"] and itunes["parent"] == "+ [ Deluxe Edition ]"
    assert itunes["year"] == amazon["year"] == 2011
    assert itunes["runtime_min"] == pytest.approx(275 / 60)
    assert itunes["genres"] == ["Pop", "Music", "Singer/Songwriter"]


@pytest.fixture
def song_features(tmp_path) -> pl.DataFrame:
    """Hand-written pairs: boilerplate, a remix, a missing price, and a Dirty record with values in its title."""
    remix = {**SUNBURN_AMAZON, "Song_Name": "Sunburn ( Kasum Remix )", "Time": "5:10"}
    no_price = {**SUNBURN_AMAZON, "Price": ""}
    dirty = {a: "" for a in ATTRIBUTES} | {
        "Song_Name": "Sunburn Ed Sheeran + Pop $ 1.29 4:36 September 9 , 2011", "CopyRight": "( C ) 2011 Asylum",
    }  # fmt: skip
    path = write(
        tmp_path,
        *(f"{side(**SUNBURN)}\t{side(**other)}\t{y}" for other, y in
          ((SUNBURN_AMAZON, 1), (remix, 0), (no_price, 1), (dirty, 1))),
    )  # fmt: skip
    data = read_pairs(path)
    table = song_pair_features(data)
    assert schema_version(table.schema) == schema_version(FEATURES)
    return pl.from_arrow(table).join(data.pairs.select("right_id", "line"), on="right_id").sort("line")


def test_feature_columns_follow_the_registry(song_features) -> None:
    names = [c for c in song_features.columns if c not in {*FEATURES.names, "line"}]
    assert names == [f.name for f in SONG_FEATURES] == describe_song_features()["feature"].to_list()
    assert all(song_features.schema[n] == pl.Float32 for n in names)


def test_boilerplate_is_stripped_in_normalised_variants_only(song_features) -> None:
    same = song_features.row(0, named=True)
    assert same["song_ratio"] == 1.0 and same["song_core_ratio"] == 1.0
    assert same["song_ratio_raw"] < 0.5  # the raw title keeps '( feat . X & Y ) [ Explicit ]'
    assert same["time_diff"] == 1.0 and same["released_days_diff"] == 0.0 and same["released_year_diff"] == 0.0
    assert same["price_equal"] == 1.0 and same["copyright_token_set"] == 1.0 and same["copyright_year_diff"] == 0.0
    assert same["album_ratio"] == 1.0 and same["genre_overlap"] == 1.0 and same["song_versions_match"] == 1.0


def test_a_remix_is_another_version(song_features) -> None:
    remix = song_features.row(1, named=True)
    assert remix["song_versions_match"] == 0.0 and remix["song_core_ratio"] == 1.0
    assert remix["song_ratio"] < 1.0 and remix["time_diff"] == 35.0


def test_missing_stays_missing(song_features) -> None:
    no_price = song_features.row(2, named=True)
    assert no_price["price_equal"] is None and no_price["price_diff"] is None
    assert no_price["song_ratio"] == 1.0


def test_dirty_values_are_found_outside_their_attribute(song_features) -> None:
    dirty, clean = song_features.row(3, named=True), song_features.row(0, named=True)
    assert dirty["artist_token_set"] is None and dirty["album_ratio"] is None  # empty slots: missing, not 0
    assert dirty["time_diff"] == 1.0 and dirty["price_equal"] == 1.0 and dirty["released_days_diff"] == 0.0
    assert dirty["artist_in_other"] == 1.0 and dirty["song_in_other"] == 1.0
    assert math.isclose(dirty["record_token_set"], clean["record_token_set"], abs_tol=0.15)
    assert dirty["song_jaro_winkler"] > 0.6


def test_one_seed_ensemble_is_train_model_and_more_seeds_threshold_out_of_bag() -> None:
    rng = np.random.default_rng(3)
    n = 400
    y = (rng.random(n) < 0.25).astype(np.float32)
    keys = pl.DataFrame({
        "left_source": "a", "left_id": [f"l{i}" for i in range(n)], "right_source": "b",
        "right_id": [f"r{i}" for i in range(n)], "partition": pl.Series([0] * n, dtype=pl.Int32),
    })  # fmt: skip
    features = keys.with_columns(
        signal=pl.Series(y + rng.normal(0, 0.4, n), dtype=pl.Float32),
        noise=pl.Series(rng.normal(0, 1, n), dtype=pl.Float32),
    )
    one_thread = {"num_threads": 1}  # tiny data: threads only contend
    single = train_ensemble(features, y, seeds=(5,), params=one_thread)
    assert single.threshold == single.models[0].threshold and single.metadata["members"] == 1
    several = train_ensemble(features, y, seeds=(5, 6, 7, 8), params=one_thread)
    assert several.metadata["members"] == 4 and 0 < several.metadata["oob_pairs"] < n
    assert several.metadata["oob_f1"] > 0.8
    p = several.predict(features)
    np.testing.assert_allclose(p, np.mean([m.predict(features) for m in several.models], axis=0), rtol=1e-6)


@pytest.mark.data
@pytest.mark.slow
def test_structured_benchmark_f1(itunes_amazon_dir) -> None:
    result = evaluate_itunes_amazon(itunes_amazon_dir, "Structured", seed=7)
    assert result["valid_pairs"] == 109 and result["valid_matches"] == 27
    assert result["tp"] + result["fn"] == 27
    assert result["f1"] > 0.85, result
