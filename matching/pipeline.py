"""One matching run: plan, then each partition alone (block → features → score → its own shard), then clustering.

The plan step normalises the records once and writes what every partition
reads; a partition function takes the run folder and a partition number and
writes its own file, so the same call runs in this process, in a local
process pool (``run_partitions(workers=N)``) or as one Metaflow ``foreach``
task; nothing is gathered between them. Clustering reads only the accepted
pairs back.

Run folder layout::

    run/plan.pkl                 the partition plan (rules, heavy units, windows)
    run/block_sizes.parquet      the block-size histogram of the plan's units
    run/inputs/part-0007/        what partition 7 reads: its member records normalised once (prepared.arrow)
                                 and all their blocking units (units.arrow), rids numbered 0..m-1
    run/model.json               the pairwise model the run used
    run/scores/part-0007.parquet SCORES of partition 7 (every candidate, with the decision)
    run/stats/part-0007.json     pairs and seconds per stage of partition 7
    run/crosswalk.parquet        CROSSWALK: every record → entity
    run/evidence.parquet         accepted pairs that hold entities together
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq

from kg.errors import KGError
from matching.blocking import (
    MAKER_SIGS,
    BlockingRule,
    PartitionPlan,
    blocking_columns,
    candidate_rows,
    default_rules,
    load_plan,
    pairing_units,
    pairs_table,
    partition_members,
    plan_partitions,
    record_keys,
    record_units,
    save_plan,
    sort_key,
)
from matching.blocking_report import block_size_histogram
from matching.cluster import ClusterResult, cluster_pairs
from matching.features import feature_frame, model_features, prepare_features, screen_features
from matching.model import PairModel, load_model, scores_table, screened_scores
from schemas.ontology import load_ontology
from schemas.tables import RECORDS, SCORES, conform, conform_frame, empty

log = logging.getLogger("kg.match")

WORK_GROUPS = dict(load_ontology().groups)
"""The ontology's type groups (movie, series, episode): sources disagree on what a title is, so those
types pair and the model weighs it; the store accepts an entity holding records of one group's types."""


@dataclass(frozen=True)
class MatchConfig:
    """Knobs of a matching run, with defaults that suit entertainment catalogues."""

    n_partitions: int = 8
    max_block: int = 100
    top_k: int = 3
    groups: dict[str, str] = field(default_factory=lambda: dict(WORK_GROUPS))
    clean_sources: tuple[str, ...] = ()
    max_cluster: int = 50
    rules: tuple[BlockingRule, ...] | None = None  # None: matching.blocking.default_rules()

    @property
    def blocking_rules(self) -> tuple[BlockingRule, ...]:
        """The rules this run blocks with: a run's own, else the defaults of this toolkit version."""
        return tuple(self.rules) if self.rules else tuple(default_rules())

    def plan(
        self, records: pa.Table | pl.DataFrame, *, prepared: pl.DataFrame | None = None,
        keys: pl.DataFrame | None = None,
    ) -> PartitionPlan:
        """The partition plan these settings give for ``records``."""
        return plan_partitions(
            records, self.blocking_rules, n_partitions=self.n_partitions, max_block=self.max_block, top_k=self.top_k,
            groups=self.groups, prepared=prepared, keys=keys,
        )


DEFAULT_CONFIG = MatchConfig()


@dataclass(frozen=True)
class PartitionStats:
    """What one partition did: the skew report reads these."""

    partition: int
    pairs: int
    matches: int
    seconds_blocking: float
    seconds_features: float
    seconds_scoring: float
    screened_out: int = 0  # pairs the model's screen rejected without the costly features

    @property
    def seconds(self) -> float:
        return self.seconds_blocking + self.seconds_features + self.seconds_scoring


def read_records(paths: Sequence[str | Path]) -> pl.DataFrame:
    """RECORDS from one or more Parquet files (ingest output), checked and screened; what was screened is logged."""
    records, screened = read_screened_records(paths)
    for what, n in screened.items():
        if n:
            log.warning("records: %d %s", n, what)
    return records


def read_screened_records(paths: Sequence[str | Path]) -> tuple[pl.DataFrame, dict[str, int]]:
    """RECORDS checked against the schema and for duplicate keys, then ``screen_records``: the table and the counts."""
    if not paths:
        raise KGError("no records files given")
    frames = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise KGError(f"{path}: no such records file")
        frames.append(_read_records_file(path))
    records = pl.concat(frames)
    dup = records.filter(pl.struct("source", "source_id").is_duplicated())
    if not dup.is_empty():
        first = dup.row(0, named=True)
        raise KGError(f"records: ({first['source']}, {first['source_id']}) appears more than once across {paths}")
    return screen_records(records)


def _read_records_file(path: Path) -> pl.DataFrame:
    """One records file, checked by ``conform`` (columns, version stamp, nulls, types).

    Read by polars, not pyarrow: a pyarrow table converted to polars keeps
    the Arrow strings alive beside polars' views of them (ten million
    records: 6.6 GB resident instead of 10.0 GB), and handed on as read when
    its types are the schema's (``conform_frame``).
    """
    conform(pq.read_schema(path).empty_table(), RECORDS)  # the version stamp and the columns, before the rows
    return conform_frame(pl.read_parquet(path).select(RECORDS.names), RECORDS)  # nulls, types


YEARS = (1850, 2100)
"""Plausible release/birth years; outside them a year is a typo (20003) and would mislead the year features."""


def screen_records(records: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, int]]:
    """Null implausible years and count what matching cannot use, instead of failing or guessing.

    A record without a name gets no blocking key, so it is never paired and
    becomes its own entity; it is counted, not dropped.
    """
    low, high = YEARS
    bad = lambda c: pl.col(c).is_not_null() & ~pl.col(c).is_between(low, high)  # noqa: E731
    counts = records.select(
        no_name=(pl.col("name").is_null() | (pl.col("name").str.strip_chars() == "")).sum(),
        bad_year=bad("year").sum(),
        bad_end_year=bad("end_year").sum(),
    ).row(0, named=True)
    cleaned = records.with_columns(
        year=pl.when(bad("year")).then(None).otherwise("year"),
        end_year=pl.when(bad("end_year")).then(None).otherwise("end_year"),
    )
    return cleaned, {
        "without a name: never paired, each its own entity": counts["no_name"],
        f"with a year outside {low}-{high}: year ignored": counts["bad_year"],
        f"with an end year outside {low}-{high}: end year ignored": counts["bad_end_year"],
    }


PLAN_FILES = ("plan.pkl", "block_sizes.parquet", "inputs")
"""What the plan step writes; a partition reads ``partition_files(p)`` of it (and the model)."""


def partition_files(partition: int) -> list[str]:
    """The run-folder entries partition ``partition`` reads: the plan and its own inputs."""
    return ["plan.pkl", f"inputs/part-{partition:04d}"]


_INPUTS = ("prepared.arrow", "units.arrow")
"""A partition's inputs, as the plan writes them and its task reads them: member records, their units."""

PLAN_CHUNK = 1_000_000
"""Records the plan step normalises at once: normalising builds lookup tables several times the size of its
input, so a larger catalogue is normalised a chunk at a time (results kept, temporaries freed)."""


def plan_run(
    records: pl.DataFrame, run_dir: Path, config: MatchConfig = DEFAULT_CONFIG, *, compress_inputs: bool = False
) -> PartitionPlan:
    """Plan the partitions and write each one's inputs: its member records normalised, and their units.

    Normalising and keying a million records takes longer than blocking one
    partition; done here once, a partition task (in a pool or on another
    machine) reads its own two files, holding only the records that can pair
    in it, so a task's memory follows its partition, not the whole catalogue.

    ``compress_inputs``: lz4 frames, half the bytes, for inputs that travel
    (a flow whose run folder is on object storage). Left uncompressed, where
    the partitions read the disk the plan wrote, one partition's 537k records
    (1M-record catalogue) write in 0.08 s against 0.25 s and read in 0.09 s
    against 0.21 s.
    """
    run_dir = Path(run_dir)
    chunks, keys = _normalise(records, config)
    placing = ("rid", "src", "year", "name_norm", *MAKER_SIGS, "source", "source_id")
    blocking_view = pl.concat([chunk.select(placing) for chunk in chunks]).select("rid", "src", "year", sort_key())
    plan = config.plan(records, prepared=blocking_view, keys=keys)
    units = record_units(blocking_view, plan, keys=keys)
    del keys
    _write_atomic(block_size_histogram(units).to_arrow(), run_dir / "block_sizes.parquet")
    units = pairing_units(units, blocking_view, plan.within_source)
    # the plan file is written last, so a folder with a plan has every partition's inputs of that plan
    (run_dir / "plan.pkl").unlink(missing_ok=True)
    inputs = run_dir / "inputs"
    shutil.rmtree(inputs, ignore_errors=True)  # a re-plan with fewer partitions leaves no stale ones

    def write(partition: int, members: np.ndarray, member_units: pl.DataFrame) -> None:
        folder = inputs / f"part-{partition:04d}"
        part = _rows(chunks, members).with_columns(rid=pl.int_range(len(members), dtype=pl.UInt32))
        for name, table in zip(_INPUTS, (part, member_units), strict=True):
            _write_atomic(table.to_arrow(), folder / name, compress=compress_inputs)

    # encoding and compressing release the GIL: two writers keep both cores busy (~40% less time at 1M records)
    with ThreadPoolExecutor(max_workers=2) as writers:
        list(writers.map(lambda args: write(*args), partition_members(units, plan.n_partitions)))
    save_plan(plan, run_dir / "plan.pkl")
    return plan


def _normalise(records: pl.DataFrame, config: MatchConfig) -> tuple[list[pl.DataFrame], pl.DataFrame]:
    """Every record normalised for blocking and features, and its blocking keys, ``PLAN_CHUNK`` records at a time.

    Chunks are slices of the records in (source, source_id) order, so rids and
    source codes come out as one ``prepare`` of all records would number them;
    the title count is counted over all records once the chunks are done. The
    chunks stay separate (consecutive rids each): joining them would copy
    every normalised record once more.
    """
    codes = {source: code for code, source in enumerate(sorted(records["source"].unique().to_list()), start=1)}
    chunks, keys = [], []
    for start, chunk in _in_key_order(records, PLAN_CHUNK):
        prepared = blocking_columns(chunk, config.groups).with_columns(
            rid=pl.col("rid") + start, src=pl.col("source").replace_strict(codes, return_dtype=pl.UInt16)
        )
        keys.append(record_keys(prepared, config.blocking_rules))
        features = prepare_features(chunk, prepared=prepared)
        chunks.append(features.with_columns(prepared.select("rid", "src", *MAKER_SIGS)))
    if len(chunks) > 1:
        counts = pl.concat([chunk.select("name_norm") for chunk in chunks]).group_by("name_norm").len("title_count")
        counts = counts.with_columns(pl.col("title_count").cast(pl.Float32))
        chunks = [
            chunk.drop("title_count").join(counts, on="name_norm", how="left", nulls_equal=True, maintain_order="left")
            .select(chunk.columns)
            for chunk in chunks
        ]
    return chunks, pl.concat(keys, rechunk=False)


def _in_key_order(records: pl.DataFrame, size: int) -> Iterator[tuple[int, pl.DataFrame]]:
    """Slices of ``size`` records in (source, source_id) order, with the position of their first record.

    Never a sorted copy of all records, only of one slice at a time: a slice
    is its records filtered in place and sorted. At a million records this
    is 0.2 + 0.35 s where ``arg_sort_by`` and a gather took 0.47 + 0.95 s
    (polars' frame sort is faster at both, list columns above all).
    """
    if records.height <= size:
        yield 0, records.sort("source", "source_id")
        return
    order = records.select("source", "source_id").with_row_index("row").sort("source", "source_id")["row"]
    for start in range(0, records.height, size):
        in_slice = np.zeros(records.height, dtype=bool)
        in_slice[order.slice(start, size).to_numpy()] = True
        yield start, records.filter(pl.Series(in_slice)).sort("source", "source_id")


def _rows(chunks: list[pl.DataFrame], rids: np.ndarray) -> pl.DataFrame:
    """The rows of sorted ``rids`` from chunks of consecutive rids, one gather per chunk.

    Polars gathers from a frame of many chunks row by row through a chunk
    look-up, three times slower than gathering within each chunk.
    """
    bounds = np.cumsum([0] + [chunk.height for chunk in chunks])
    cuts = np.searchsorted(rids, bounds)
    return pl.concat([
        chunk[rids[a:b] - low] for chunk, low, a, b in zip(chunks, bounds[:-1], cuts[:-1], cuts[1:], strict=True)
    ])


def _write_atomic(table: pa.Table, path: Path, *, compress: bool = True) -> None:
    """Parquet, or for ``.arrow`` the Arrow IPC file format (lz4 frames where ``compress``).

    Partition inputs are written once and read once by one task, so their
    format is chosen for speed, not size: for 537k normalised records
    (1M-record catalogue), IPC+lz4 writes in 0.5 s and reads in 0.2 s where
    Parquet+snappy takes 0.9 s and 0.4 s, at 1.5x the bytes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".arrow":
        # one record batch, not pyarrow's 64k-row ones: a partition then reads each column as one chunk, which
        # its gathers want (1M A/B: partitions 15.7 / 15.3 -> 15.1 / 15.0 s)
        compression = "lz4" if compress else "uncompressed"
        feather.write_feather(table, tmp, compression=compression, chunksize=max(table.num_rows, 1))
    else:
        pq.write_table(table, tmp)
    tmp.replace(path)


def _stamp(path: Path) -> tuple[str, int]:
    """A file's identity for the per-worker cache: a re-planned run folder is read afresh."""
    try:
        return str(path), path.stat().st_mtime_ns
    except FileNotFoundError:
        raise _unplanned(path) from None


@lru_cache(maxsize=2)
def _plan_and_model(plan: tuple[str, int], model: tuple[str, int]) -> tuple[PartitionPlan, PairModel]:
    """Read once per worker process, which runs many partitions of one run."""
    return load_plan(plan[0]), load_model(model[0])


def _partition_inputs(run_dir: Path, partition: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A partition's records and units, memory-mapped by pyarrow: an uncompressed file is then not copied
    (537k records: 0.03 s against 0.1 s for ``pl.read_ipc``), and a compressed one is read as fast."""
    folder = run_dir / "inputs" / f"part-{partition:04d}"
    try:
        return tuple(pl.from_arrow(feather.read_table(folder / name, memory_map=True)) for name in _INPUTS)
    except FileNotFoundError:
        raise _unplanned(folder) from None


def _unplanned(path: Path) -> KGError:
    return KGError(f"{path}: missing; plan the run first (kg match, or matching.pipeline.plan_run)")


def score_partition(
    run_dir: str | Path, partition: int, *, model_path: str | Path | None = None, out_dir: str | Path | None = None
) -> PartitionStats:
    """Block, featurise and score one partition; write ``scores/part-NNNN.parquet`` and its stats.

    Reads only the run folder, so a failed partition can be re-run alone,
    anywhere, with the same result. ``out_dir`` writes the shard and stats
    there instead, leaving the run untouched (debugging a production run).
    """
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir
    model_path = Path(model_path or run_dir / "model.json")
    plan, model = _plan_and_model(_stamp(run_dir / "plan.pkl"), _stamp(model_path))
    if not 0 <= partition < plan.n_partitions:
        raise KGError(
            f"partition {partition} does not exist; the plan has {plan.n_partitions} (0..{plan.n_partitions - 1})"
        )
    prepared, units = _partition_inputs(run_dir, partition)
    t0 = time.perf_counter()
    rows = candidate_rows(prepared, units, plan, partition)
    pairs = pairs_table(rows, prepared, plan, partition)
    t1 = time.perf_counter()
    scores, rejected, featuring = _score(pairs, rows, prepared, model)
    scoring = time.perf_counter() - t1 - featuring
    _write_atomic(scores, out / "scores" / f"part-{partition:04d}.parquet")
    n_match = int(pl.from_arrow(scores["match"]).sum())
    stats = PartitionStats(partition, scores.num_rows, n_match, t1 - t0, featuring, scoring, rejected)
    stats_path = out / "stats" / f"part-{partition:04d}.json"
    stats_path.parent.mkdir(parents=True, exist_ok=True)
    stats_path.write_text(json.dumps(asdict(stats)))
    log.info("partition %d: %d pairs, %d matches, %.2f s", partition, stats.pairs, stats.matches, stats.seconds)
    return stats


def _score(
    pairs: pa.Table, rows: pl.DataFrame, prepared: pl.DataFrame, model: PairModel
) -> tuple[pa.Table, int, float]:
    """A partition's SCORES, how many pairs the model's screen rejected, and the seconds spent on features.

    With a screen, every pair gets the screen's cheap features and only the
    pairs it does not reject get the rest of the model's features.
    """
    if not pairs.num_rows:
        return empty(SCORES), 0, 0.0
    started = time.perf_counter()
    if model.screen is None:
        features = feature_frame(prepared, rows, model_features(model))
        featuring = time.perf_counter() - started
        return scores_table(pairs, model.predict(features), model), 0, featuring
    cheap = feature_frame(prepared, rows, screen_features(model))
    featuring, kept = time.perf_counter() - started, 0
    rest = tuple(f for f in model_features(model) if f.name not in model.screen.features)

    def costly(at: np.ndarray) -> pl.DataFrame:
        nonlocal featuring, kept
        begun, kept = time.perf_counter(), len(at)
        full = cheap[at].hstack(feature_frame(prepared, rows[at], rest))
        featuring += time.perf_counter() - begun
        return full

    score = screened_scores(cheap, model, costly)
    return scores_table(pairs, score, model), pairs.num_rows - kept, featuring


def run_partitions(
    run_dir: str | Path,
    partitions: Sequence[int],
    *,
    workers: int = 1,
    model_path: str | Path | None = None,
) -> list[PartitionStats]:
    """Score many partitions, in this process (workers=1) or a local process pool; each writes its own shard."""
    if workers <= 1:
        return [score_partition(run_dir, p, model_path=model_path) for p in partitions]
    # spawn, not fork: forking a process that already runs polars/rayon threads can deadlock the child
    with _threads_per_worker(workers), ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        futures = [pool.submit(score_partition, run_dir, p, model_path=model_path) for p in partitions]
        return [f.result() for f in futures]


@contextmanager
def _threads_per_worker(workers: int) -> Iterator[None]:
    """Give each pool worker its share of the cores (polars, and rapidfuzz through polars' pool size).

    Every worker otherwise starts a thread per core: 2 workers on 2 cores ran
    4 busy threads, and the partitions took 7% longer (1M records, 8
    partitions: 36.4-37.8 s against 34.4-34.7 s). The children read the
    variable when they import polars, so it is set while the pool runs and
    restored after.
    """
    before = os.environ.get("POLARS_MAX_THREADS")
    os.environ["POLARS_MAX_THREADS"] = str(max(1, pl.thread_pool_size() // workers))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("POLARS_MAX_THREADS", None)
        else:
            os.environ["POLARS_MAX_THREADS"] = before


def read_partition_stats(run_dir: str | Path) -> pl.DataFrame:
    """One row per finished partition: pairs, matches, pairs the screen rejected and seconds per stage (a stats
    file written before screens counts none)."""
    files = sorted((Path(run_dir) / "stats").glob("part-*.json"))
    stats = [PartitionStats(**json.loads(p.read_text())) for p in files]
    return pl.DataFrame([{**asdict(s), "seconds": s.seconds} for s in stats]) if stats else pl.DataFrame()


def accepted_pairs(run_dir: str | Path) -> pl.DataFrame:
    """Accepted pairs of every shard, read with a pushed-down filter: clustering never loads the rejects."""
    shards = sorted((Path(run_dir) / "scores").glob("part-*.parquet"))
    if not shards:
        raise KGError(f"{run_dir}: no score shards; run the partitions first")
    return pl.scan_parquet(shards).filter(pl.col("match")).collect()


def cluster_run(
    records: pl.DataFrame,
    run_dir: str | Path,
    *,
    run_id: str,
    config: MatchConfig = DEFAULT_CONFIG,
    previous: pa.Table | pl.DataFrame | None = None,
) -> ClusterResult:
    """Cluster a run's accepted pairs and write ``crosswalk.parquet`` and ``evidence.parquet``."""
    run_dir = Path(run_dir)
    result = cluster_pairs(
        accepted_pairs(run_dir), records, run_id=run_id, clean_sources=config.clean_sources,
        max_size=config.max_cluster, previous=previous,
    )
    pq.write_table(result.crosswalk, run_dir / "crosswalk.parquet")
    result.evidence.write_parquet(run_dir / "evidence.parquet")
    return result


def match_records(
    record_paths: Sequence[str | Path],
    model: PairModel,
    run_dir: str | Path,
    *,
    run_id: str,
    config: MatchConfig = DEFAULT_CONFIG,
    workers: int = 1,
    previous: pa.Table | pl.DataFrame | None = None,
) -> ClusterResult:
    """The whole run in one call: plan, every partition, clustering. Same functions a flow calls step by step."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    records = read_records(record_paths)
    model.save(run_dir / "model.json")
    plan = plan_run(records, run_dir, config)
    ids = records.select("source", "source_id", "type")  # all clustering needs of the records
    del records  # the partitions' workers then share the machine's memory without the catalogue
    run_partitions(run_dir, range(plan.n_partitions), workers=workers)
    return cluster_run(ids, run_dir, run_id=run_id, config=config, previous=previous)
