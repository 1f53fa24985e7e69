import multiprocessing
import os
import pickle
import shutil
from concurrent.futures import ProcessPoolExecutor

import polars as pl
import pytest

from kg.errors import KGError
from matching import pipeline
from matching.blocking import candidate_pairs, candidate_rows, load_plan, pairs_table, save_plan
from matching.evaluate import pairwise_metrics
from matching.features import pair_features
from matching.labels import crosswalk_pairs
from matching.model import score_pairs
from matching.pipeline import (
    PLAN_FILES,
    MatchConfig,
    _threads_per_worker,
    match_records,
    plan_run,
    read_partition_stats,
    run_partitions,
    score_partition,
)
from matching.train import train_on_truth


@pytest.fixture(scope="module")
def model(training_run):
    # with a screen, though the sample is too small to trust one: the runs here take the screen's path
    return train_on_truth(training_run.records, training_run.truth_pairs, screen_min_accepted=1)


@pytest.fixture(scope="module")
def run(model, sample_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("run")
    result = match_records(sample_run.record_paths, model, run_dir, run_id="r1", config=MatchConfig(n_partitions=4))
    return run_dir, result


def test_run_finds_the_sample_entities(run, sample_run) -> None:
    run_dir, result = run
    cw = pl.from_arrow(result.crosswalk)
    assert cw.height == sample_run.records.height  # every record has an entity
    metrics = pairwise_metrics(crosswalk_pairs(cw), sample_run.truth_pairs)
    assert metrics["f1"] > 0.9, metrics
    assert sorted(p.name for p in (run_dir / "scores").iterdir()) == [f"part-{i:04d}.parquet" for i in range(4)]
    stats = read_partition_stats(run_dir)
    assert stats.height == 4 and stats["pairs"].sum() > 0


def test_one_partition_reruns_alone_to_the_same_shard(run, sample_run) -> None:
    run_dir, _ = run
    before = pl.read_parquet(run_dir / "scores" / "part-0002.parquet")
    (run_dir / "scores" / "part-0002.parquet").unlink()
    score_partition(run_dir, 2)
    assert pl.read_parquet(run_dir / "scores" / "part-0002.parquet").equals(before)


def test_a_partition_gathers_its_pairs_records_by_the_rows_blocking_kept(run) -> None:
    """The rids blocking keeps name the same pairs, and give the same features, as looking the keys up."""
    run_dir, _ = run
    plan = load_plan(run_dir / "plan.pkl")
    for p in range(plan.n_partitions):
        prepared, units = pipeline._partition_inputs(run_dir, p)
        rows = candidate_rows(prepared, units, plan, p)
        pairs = pairs_table(rows, prepared, plan, p)
        assert pairs.num_rows > 0
        assert pairs.equals(candidate_pairs(None, plan, p, prepared=prepared, units=units))
        assert pair_features(pairs, prepared=prepared, rows=rows).equals(pair_features(pairs, prepared=prepared))


def test_a_partition_scores_as_score_pairs_does_on_every_feature(run, model) -> None:
    """The screen's shortcut (costly features only for the pairs it does not reject) changes no score."""
    run_dir, _ = run
    assert model.screen is not None
    plan = load_plan(run_dir / "plan.pkl")
    screened = 0
    for p in range(plan.n_partitions):
        prepared, units = pipeline._partition_inputs(run_dir, p)
        rows = candidate_rows(prepared, units, plan, p)
        features = pair_features(pairs_table(rows, prepared, plan, p), prepared=prepared, rows=rows)
        shard = pl.read_parquet(run_dir / "scores" / f"part-{p:04d}.parquet")
        assert shard.equals(pl.from_arrow(score_pairs(features, model)))
        screened += int((model.screen.probability(pl.from_arrow(features)) < model.screen.cut).sum())
    assert 0 < read_partition_stats(run_dir)["screened_out"].sum() == screened


def test_partition_inputs_hold_what_its_pairs_need(run, sample_run) -> None:
    """Each partition reads only its members, yet blocks to exactly the pairs all records give it."""
    run_dir, _ = run
    plan = load_plan(run_dir / "plan.pkl")
    keys = ["left_source", "left_id", "right_source", "right_id"]
    sizes = []
    for p in range(plan.n_partitions):
        inputs = run_dir / "inputs" / f"part-{p:04d}"
        prepared, units = pl.read_ipc(inputs / "prepared.arrow"), pl.read_ipc(inputs / "units.arrow")
        sizes.append(prepared.height)
        from_members = candidate_pairs(None, plan, p, prepared=prepared, units=units)
        from_all = candidate_pairs(sample_run.records, plan, p)
        assert pl.from_arrow(from_members).sort(keys).equals(pl.from_arrow(from_all).sort(keys))
        scored = pl.read_parquet(run_dir / "scores" / f"part-{p:04d}.parquet")
        assert scored.height == from_all.num_rows
    assert max(sizes) < sample_run.records.height  # no partition reads every record


def test_normalising_in_chunks_plans_the_same_inputs(run, sample_run, monkeypatch, tmp_path) -> None:
    """A catalogue larger than PLAN_CHUNK is normalised in slices: rids, source codes and title counts agree."""
    run_dir, _ = run
    monkeypatch.setattr(pipeline, "PLAN_CHUNK", sample_run.records.height // 3 + 1)
    plan_run(sample_run.records, tmp_path, MatchConfig(n_partitions=4))
    _assert_same_inputs(tmp_path, run_dir, 4)


def test_compressed_inputs_hold_the_same_records(run, sample_run, tmp_path) -> None:
    """Inputs that travel are lz4-compressed (fewer bytes); a partition reads the same tables either way."""
    run_dir, _ = run
    plan_run(sample_run.records, tmp_path, MatchConfig(n_partitions=4), compress_inputs=True)
    path = "inputs/part-0000/prepared.arrow"
    assert (tmp_path / path).stat().st_size < (run_dir / path).stat().st_size
    _assert_same_inputs(tmp_path, run_dir, 4)


def _assert_same_inputs(one, other, n_partitions: int) -> None:
    for p in range(n_partitions):
        for name in ("prepared.arrow", "units.arrow"):
            path = f"inputs/part-{p:04d}/{name}"
            assert pl.read_ipc(one / path).equals(pl.read_ipc(other / path)), path


def test_process_pool_gives_the_same_shards(run, sample_run, tmp_path) -> None:
    run_dir, _ = run
    for name in (*PLAN_FILES, "model.json"):
        copy = shutil.copytree if (run_dir / name).is_dir() else shutil.copyfile
        copy(run_dir / name, tmp_path / name)
    run_partitions(tmp_path, range(4), workers=2)
    for i in range(4):
        shard = f"scores/part-{i:04d}.parquet"
        assert pl.read_parquet(tmp_path / shard).equals(pl.read_parquet(run_dir / shard))


def test_rerun_keeps_entity_ids(run, model, sample_run, tmp_path) -> None:
    _, first = run
    again = match_records(
        sample_run.record_paths, model, tmp_path, run_id="r2", config=MatchConfig(n_partitions=4),
        previous=first.crosswalk,
    )
    a = pl.from_arrow(first.crosswalk).select("source", "source_id", "entity_id")
    b = pl.from_arrow(again.crosswalk).select("source", "source_id", "entity_id")
    assert a.equals(b)


def test_unknown_partition_is_a_clear_error(run, sample_run) -> None:
    run_dir, _ = run
    with pytest.raises(KGError, match="partition 9 does not exist; the plan has 4"):
        score_partition(run_dir, 9)


def test_plan_pickles_and_refuses_another_polars_or_format(run, tmp_path) -> None:
    run_dir, _ = run
    plan = load_plan(run_dir / "plan.pkl")
    assert [r.name for r in pickle.loads(pickle.dumps(plan)).rules] == [r.name for r in plan.rules]
    path = save_plan(plan, tmp_path / "plan.pkl")
    doc = pickle.loads(path.read_bytes())
    doc["polars"] = "0.0.1"
    path.write_bytes(pickle.dumps(doc))
    with pytest.raises(KGError, match="polars 0.0.1"):
        load_plan(path)
    doc["format"] = 6  # an older toolkit's plan: its windows name keys hashed another way
    path.write_bytes(pickle.dumps(doc))
    with pytest.raises(KGError, match="a plan of format 6, this toolkit reads format 7; re-plan"):
        load_plan(path)


def test_missing_records_file_is_named(model, tmp_path) -> None:
    with pytest.raises(KGError, match="absent.parquet: no such records file"):
        match_records([tmp_path / "absent.parquet"], model, tmp_path / "run", run_id="r")


def test_bad_records_are_screened_and_counted(model, tmp_path) -> None:
    import pyarrow.parquet as pq

    from matching.pipeline import read_records, screen_records
    from schemas.tables import RECORDS
    from tests.matching.builders import movie, records

    table = records([movie("a", "1", "Heat", 1995), movie("a", "2", None, 2001), movie("b", "1", "Heat", 20003)])
    pq.write_table(table, tmp_path / "ab.parquet")
    pq.write_table(RECORDS.empty_table(), tmp_path / "empty.parquet")
    _, counts = screen_records(pl.from_arrow(table))
    assert list(counts.values()) == [1, 1, 0]
    recs = read_records([tmp_path / "ab.parquet", tmp_path / "empty.parquet"])
    assert recs.filter(pl.col("source_id") == "1")["year"].to_list() == [1995, None]
    result = match_records([tmp_path / "ab.parquet", tmp_path / "empty.parquet"], model, tmp_path / "run", run_id="r")
    assert pl.from_arrow(result.crosswalk).height == 3  # the nameless record is its own entity, not lost



def test_records_files_are_checked_as_read(tmp_path) -> None:
    """A records file of another schema version, missing a column, with a null key or castable types."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from matching.pipeline import read_records
    from schemas.tables import RECORDS, SchemaMismatch
    from tests.matching.builders import movie, records

    table = records([movie("a", "1", "Heat", 1995), movie("a", "2", "Ronin", 1998)])
    pq.write_table(table.replace_schema_metadata({**RECORDS.metadata, b"kg.version": b"9"}), tmp_path / "v9.parquet")
    with pytest.raises(SchemaMismatch, match="records: table is version 9"):
        read_records([tmp_path / "v9.parquet"])
    pq.write_table(table.drop_columns(["name"]), tmp_path / "noname.parquet")
    with pytest.raises(SchemaMismatch, match="missing column 'name'"):
        read_records([tmp_path / "noname.parquet"])
    nulls = table.set_column(1, "source_id", pa.array([None, "2"], pa.string()))
    pq.write_table(nulls, tmp_path / "nullkey.parquet")
    with pytest.raises(SchemaMismatch, match="'source_id' has 1 nulls"):
        read_records([tmp_path / "nullkey.parquet"])
    wide = table.set_column(table.schema.get_field_index("year"), "year", table["year"].cast(pa.int64()))
    pq.write_table(wide.select(list(reversed(wide.column_names))), tmp_path / "wide.parquet")
    read = read_records([tmp_path / "wide.parquet"])
    assert read.columns == RECORDS.names and read["year"].dtype == pl.Int32 and read["year"].to_list() == [1995, 1998]


def test_config_rules_replace_the_default_blocking(sample_run, tmp_path) -> None:
    from matching.blocking import load_plan, title_exact
    from matching.pipeline import plan_run, read_records

    records = read_records(sample_run.record_paths)
    assert len(MatchConfig().plan(records).rules) > 1
    plan_run(records, tmp_path, MatchConfig(n_partitions=2, rules=(title_exact().keep(1),)))
    assert [r.name for r in load_plan(tmp_path / "plan.pkl").rules] == ["title_exact"]


def test_pool_workers_get_their_share_of_the_cores() -> None:
    before = os.environ.get("POLARS_MAX_THREADS")
    with _threads_per_worker(2), ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        threads = pool.submit(pl.thread_pool_size).result()
    assert threads == max(1, pl.thread_pool_size() // 2)
    assert os.environ.get("POLARS_MAX_THREADS") == before
