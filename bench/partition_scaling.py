"""Partition phase speed-up from 1 to N workers when each worker has its own cores, as on a cluster.

    python bench/partition_scaling.py --entities 500000 --data ~/kg-bench     # ~1M records, 8 partitions

On a laptop-sized machine a single worker already uses every core (polars,
rapidfuzz and LightGBM run threads), so adding workers there measures the
machine, not the design. Here each worker is pinned to its own set of cores
(``os.sched_setaffinity``) and told to use only those (``POLARS_MAX_THREADS``
and friends), the way a Metaflow ``foreach`` task gets its own ``@resources``:
one worker on ``cores`` cores, then N workers on ``cores`` cores each. Both
run the same partitions of one plan, back to back, each in a fresh pool, and
must write identical shards. Prints the wall seconds of each and the ratio.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

THREAD_VARS = ("POLARS_MAX_THREADS", "RAYON_NUM_THREADS", "OMP_NUM_THREADS")


def _pin(slots, cores: int) -> None:
    """Pool initializer: take the next free block of ``cores`` CPUs (the threads were capped by the environment)."""
    with slots.get_lock():
        slot = slots.value
        slots.value += 1
    first = slot * cores
    os.sched_setaffinity(0, set(range(first, first + cores)))


def run_pinned(run_dir: Path, partitions: int, workers: int, cores: int) -> float:
    """Wall seconds for every partition of ``run_dir`` on ``workers`` pinned workers of ``cores`` cores each."""
    from matching.pipeline import score_partition

    context = multiprocessing.get_context("spawn")
    slots = context.Value("i", 0)
    saved = {name: os.environ.get(name) for name in THREAD_VARS}
    os.environ.update({name: str(cores) for name in THREAD_VARS})  # spawned workers read them at import
    try:
        started = time.perf_counter()
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_pin, initargs=(slots, cores)) as pool:
            list(pool.map(score_partition, [run_dir] * partitions, range(partitions)))
        return time.perf_counter() - started
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=50_000, help="true entities (records ≈ 2x)")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="the N of 1 → N")
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--train-entities", type=int, default=100_000,
                        help="entities of the training catalogue, as in match_vs_splink.py")
    parser.add_argument("--data", type=Path, help="keep the generated catalogues here and reuse them")
    args = parser.parse_args()
    if args.workers * args.cores > len(os.sched_getaffinity(0)):
        parser.error(f"{args.workers} workers x {args.cores} cores > {len(os.sched_getaffinity(0))} cores here")

    sys.path.insert(0, str(Path(__file__).parent))
    import polars as pl  # here, not at the top: a worker imports this module and must be pinned before polars starts
    from match_vs_splink import _catalogue

    from matching.pipeline import MatchConfig, plan_run, read_records
    from matching.train import train_on_truth

    with tempfile.TemporaryDirectory(prefix="kg-bench-") as tmp:
        kept = args.data or Path(tmp)
        train_paths, train_truth = _catalogue(kept / "train", args.train_entities, args.seed + 1000)
        paths, _ = _catalogue(kept / "data", args.entities, args.seed)
        run_dir = Path(tmp) / "run"
        run_dir.mkdir()
        train_on_truth(read_records(train_paths), train_truth).save(run_dir / "model.json")
        records = read_records(paths)
        plan_run(records, run_dir, MatchConfig(n_partitions=args.partitions))
        n_records = records.height
        del records
        one = run_pinned(run_dir, args.partitions, 1, args.cores)
        first = run_dir / "scores_one"
        shutil.move(run_dir / "scores", first)
        many = run_pinned(run_dir, args.partitions, args.workers, args.cores)
        for shard in sorted(first.iterdir()):
            if not pl.read_parquet(shard).equals(pl.read_parquet(run_dir / "scores" / shard.name)):
                raise SystemExit(f"{shard.name}: the {args.workers}-worker run wrote a different shard")
    figures = {"records": n_records, "partitions": args.partitions, "cores_per_worker": args.cores,
               "one_worker_s": round(one, 1), f"{args.workers}_workers_s": round(many, 1),
               "speedup": round(one / many, 2), "load": [round(x, 1) for x in os.getloadavg()]}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
