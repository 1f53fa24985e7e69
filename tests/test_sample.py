"""The seeded sample catalog: determinism, truth coverage, hard cases, formats, mappings, ingest."""

from __future__ import annotations

import json
import re
from pathlib import Path

import polars as pl
import pytest

from kg.ingest import ingest_source
from kg.ingest.mapping import MAPPABLE, load_mapping
from kg.sample import CASES, SOURCES, SampleInfo, generate_sample, mapping_path
from kg.sample.catalog import entities

N, SEED = 600, 7
_FILES = ("studio.jsonl", "catalog.csv", "guide.json", "truth.parquet")
_NUMBERED = re.compile(r"( \d| [IVX]+|: Part [IVX]+)$")


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleInfo:
    return generate_sample(tmp_path_factory.mktemp("sample"), N, SEED)


@pytest.fixture(scope="module")
def truth(sample: SampleInfo) -> pl.DataFrame:
    return pl.read_parquet(sample.truth)


@pytest.fixture(scope="module")
def true_works(sample: SampleInfo) -> pl.DataFrame:
    return entities(SEED, N, 0, N).works


@pytest.fixture(scope="module")
def true_persons(sample: SampleInfo) -> pl.DataFrame:
    return entities(SEED, N, 0, N).persons


@pytest.fixture(scope="module")
def names(sample: SampleInfo, truth: pl.DataFrame) -> pl.DataFrame:
    """Every record's displayed name, joined to its truth row."""
    studio = pl.read_ndjson(sample.raw["studio"]).select(
        pl.col("id").alias("source_id"), pl.coalesce("title", "name").alias("shown"), pl.lit("studio").alias("source")
    )
    catalog = pl.read_csv(sample.raw["catalog"], separator=";", infer_schema=False).select(
        pl.col("cat_id").alias("source_id"), pl.col("title").alias("shown"), pl.lit("catalog").alias("source")
    )
    guide = pl.DataFrame(json.loads(sample.raw["guide"].read_text())).select(
        pl.col("gid").alias("source_id"), pl.coalesce("primary_title", "name").alias("shown"),
        pl.lit("guide").alias("source"),
    )
    return pl.concat([studio, catalog, guide]).join(truth, on=["source", "source_id"], validate="1:1")


def _has(case: str) -> pl.Expr:
    return pl.col("cases").list.contains(case)


def _bytes(info: SampleInfo) -> dict[str, bytes]:
    return {name: (info.out_dir / name).read_bytes() for name in _FILES}


def test_same_seed_gives_identical_files_and_another_seed_differs(sample: SampleInfo, tmp_path: Path) -> None:
    again = generate_sample(tmp_path / "again", N, SEED)
    other = generate_sample(tmp_path / "other", N, SEED + 1)
    assert _bytes(again) == _bytes(sample)
    assert all(_bytes(other)[f] != _bytes(sample)[f] for f in _FILES)


def test_chunked_generation_gives_the_same_records(sample: SampleInfo, truth: pl.DataFrame, tmp_path: Path) -> None:
    chunked = generate_sample(tmp_path / "chunked", N, SEED, chunk_size=97)
    for name in _FILES[:3]:
        assert (chunked.out_dir / name).read_bytes() == (sample.out_dir / name).read_bytes(), name
    keys = ["source", "source_id"]
    assert pl.read_parquet(chunked.truth).sort(keys).equals(truth.sort(keys))
    assert (chunked.records, chunked.cases, chunked.entities) == (sample.records, sample.cases, sample.entities)


def test_truth_names_every_record_exactly_once(sample: SampleInfo, truth: pl.DataFrame,
                                               names: pl.DataFrame) -> None:
    assert names.height == truth.height == sample.total_records
    assert truth.select("source", "source_id").is_duplicated().sum() == 0
    assert truth.group_by("source").len().sort("source").rows() == sorted(sample.records.items())
    assert set(truth["entity_type"]) == {"movie", "series", "episode", "person"}
    assert set(truth["source"]) == set(SOURCES)
    assert sum(sample.entities.values()) == N
    assert truth["entity_id"].n_unique() == N  # every entity is carried by at least one source


def test_every_hard_case_is_present(sample: SampleInfo, truth: pl.DataFrame) -> None:
    tagged = set(truth["cases"].explode().drop_nulls())
    assert tagged == set(CASES)
    assert all(sample.cases[c] > 0 for c in CASES)
    assert truth.filter(pl.col("cases").list.len() == 0).height > 0  # plain records exist too


def test_formats_parse(sample: SampleInfo) -> None:
    lines = sample.raw["studio"].read_text(encoding="utf-8").splitlines()
    assert all(isinstance(json.loads(line), dict) for line in lines)
    header = sample.raw["catalog"].read_text(encoding="utf-8").splitlines()[0]
    assert header.split(";")[:3] == ["cat_id", "format", "title"]
    rows = pl.read_csv(sample.raw["catalog"], separator=";", infer_schema=False)
    assert rows.height == sample.records["catalog"]
    assert rows["director"].drop_nulls().str.contains(r"^[^,|]+, [^,|]+(\|[^,|]+, [^,|]+)*$").all()
    guide = json.loads(sample.raw["guide"].read_text(encoding="utf-8"))
    assert isinstance(guide, list) and len(guide) == sample.records["guide"]
    assert {row["category"] for row in guide} == {"film", "show", "episode", "person"}


def test_sequels_are_other_entities_with_numbered_titles(true_works: pl.DataFrame, names: pl.DataFrame) -> None:
    bases = true_works.filter(_has("sequel_base")).select("title", pl.col("entity_id").alias("base_id"))
    sequels = true_works.filter(_has("sequel")).join(bases, on="title")
    assert sequels.height == true_works.filter(_has("sequel")).height > 0
    assert (sequels["entity_id"] != sequels["base_id"]).all()
    assert set(sequels["sequel_no"]) == {2, 3}
    shown = names.filter(_has("sequel"), ~_has("typo"))["shown"]
    assert shown.str.contains(_NUMBERED.pattern).all()
    styles = {m.group(1).split()[0] for m in map(_NUMBERED.search, shown) if m}
    assert len(styles) > 1  # "X 2", "X II", "X: Part II" all occur


def test_remakes_share_a_title_but_not_entity_year_or_director(true_works: pl.DataFrame) -> None:
    pairs = true_works.filter(_has("remake")).group_by("title").agg(
        pl.col("entity_id").n_unique().alias("ids"), pl.col("year").n_unique().alias("years"),
        pl.col("directors").list.first().n_unique().alias("directors"),
    )
    assert pairs.height > 0
    assert (pairs["ids"] == 2).all() and (pairs["years"] == 2).all() and (pairs["directors"] == 2).all()


def test_common_titles_are_shared_by_unrelated_works(true_works: pl.DataFrame) -> None:
    groups = true_works.filter(_has("common_title")).group_by(pl.col("title").str.strip_chars_end("!")).agg(
        pl.col("entity_id").n_unique().alias("ids"), pl.col("type").n_unique().alias("types"),
        pl.col("year").n_unique().alias("years"),
    )
    assert groups.height > 0
    assert (groups["ids"] >= 4).all() and (groups["types"] == 2).all() and (groups["years"] >= 2).all()


def test_prolific_director_is_on_many_movies(true_works: pl.DataFrame, true_persons: pl.DataFrame) -> None:
    director = true_persons.filter(_has("prolific_person"))
    assert director.height == 1 and "director" in director["professions"][0]
    movies = true_works.filter(pl.col("type") == "movie")
    credited = movies.filter(pl.col("directors").list.contains(director["name"][0]))
    assert credited.height / movies.height > 0.08
    assert credited["entity_id"].to_list() == movies.filter(_has("prolific_person"))["entity_id"].to_list()


def test_translated_titles_and_typos_are_tagged_where_they_occur(
    true_works: pl.DataFrame, true_persons: pl.DataFrame, names: pl.DataFrame
) -> None:
    works = names.join(true_works.filter(pl.col("sequel_no").is_null()), on="entity_id")
    plain = works.filter(~_has("typo"))
    translated = plain.filter(_has("translated_title"))
    assert translated.height > 0 and (translated["shown"] == translated["title"]).all()
    assert (translated["title"] != translated["original_title"]).all()
    original = plain.filter(~_has("translated_title"))
    assert (original["shown"] == original["original_title"]).all()
    typo = works.filter(_has("typo"))
    assert typo.height > 0
    assert ((typo["shown"] != typo["title"]) & (typo["shown"] != typo["original_title"])).all()
    people = names.join(true_persons, on="entity_id")
    assert ((people["shown"] != people["name"]) == people["cases"].list.contains("typo")).all()


def test_missing_fields_are_tagged(sample: SampleInfo, truth: pl.DataFrame) -> None:
    rows = pl.read_csv(sample.raw["catalog"], separator=";", infer_schema=False).join(
        truth.filter(source="catalog"), left_on="cat_id", right_on="source_id"
    )
    droppable = ["year", "runtime_sec", "country", "genre", "director", "cast", "synopsis"]
    empty = pl.any_horizontal([pl.col(c).is_null() for c in droppable])
    assert (rows.select(empty)[:, 0] == rows["cases"].list.contains("missing_fields")).all()


def test_mappings_validate_and_cover_every_mappable_field(sample: SampleInfo) -> None:
    covered: set[str] = set()
    for source in SOURCES:
        mapping = load_mapping(sample.mappings[source])
        assert mapping.source.name == source
        assert sample.mappings[source].read_bytes() == mapping_path(source).read_bytes()
        covered |= set(mapping.fields)
    assert covered == set(MAPPABLE)


def test_too_small_a_sample_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least"):
        generate_sample(tmp_path, 10)


def test_ingest_maps_every_record(sample: SampleInfo, truth: pl.DataFrame, tmp_path: Path) -> None:
    records = []
    for source in SOURCES:
        report = ingest_source(sample.mappings[source], [sample.raw[source]], tmp_path, strict=True)
        assert report.rows_in == report.records + report.quarantined == sample.records[source]
        records.append(pl.read_parquet(report.records_path))
    mapped = pl.concat(records).join(truth, on=["source", "source_id"], how="full", coalesce=True)
    assert mapped.height == truth.height
    assert mapped["type"].null_count() == 0 and mapped["entity_type"].null_count() == 0
    assert (mapped["type"] == mapped["entity_type"]).all()
    # The same movie's runtime agrees across minutes, seconds and hours (hours are rounded to 0.01).
    runtime = mapped.filter(pl.col("type") == "movie").pivot(
        "source", index="entity_id", values="runtime_min", aggregate_function="first"
    ).drop_nulls()
    assert runtime.height > 0
    assert ((runtime["catalog"] - runtime["studio"]).abs() < 1).all()
    assert ((runtime["guide"] - runtime["studio"]).abs() < 0.6).all()
    # "Last, First" credits come back in "First Last" order, equal to the studio's.
    cast = mapped.filter(pl.col("type") == "movie").pivot(
        "source", index="entity_id", values="directors", aggregate_function="first"
    ).drop_nulls()
    assert cast.height > 0 and (cast["catalog"] == cast["studio"]).all()
