"""MatchFlow vs the same work in one process and in a local pool, on the same records in the same run.

    python bench/match_flow_overhead.py --entities 500000          # ~1M records, 8 partitions

Generates and ingests a catalogue (3 sources) and trains a model on another
seed, then runs, each in a fresh process, back to back:
``match_records`` in one process (1 worker), the same with a local pool of 2
workers, and ``flows/match_flow.py run`` with ``--max-workers 1`` and ``2``
(Metaflow's local runtime, a temporary METAFLOW_HOME and datastore). Prints
one JSON line per variant: wall seconds, CPU seconds of the process tree,
peak RSS of the largest process, the slowest / median partition time, and for
the flows the seconds per step. Orchestration overhead = flow wall / one
process wall for the same worker count.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _prepare(data: Path, entities: int, seed: int, train_entities: int) -> None:
    """The catalogue under ``data`` and a model trained on another seed: the same steps as match_vs_splink.py."""
    sys.path.insert(0, str(Path(__file__).parent))
    from match_vs_splink import _catalogue

    from matching.pipeline import read_records
    from matching.train import train_on_truth

    _catalogue(data, entities, seed)
    train_paths, train_truth = _catalogue(data / "train", train_entities, seed + 1)
    train_on_truth(read_records(train_paths), train_truth).save(data / "model.json")


def _in_process(data: Path, workers: int, partitions: int) -> dict:
    from matching.model import load_model
    from matching.pipeline import MatchConfig, match_records, read_partition_stats

    run_dir = data / f"run_inproc{workers}"
    match_records(sorted((data / "records").glob("*.parquet")), load_model(data / "model.json"), run_dir,
                  run_id="bench", config=MatchConfig(n_partitions=partitions), workers=workers)
    seconds = read_partition_stats(run_dir)["seconds"]
    return {"slowest_over_median_partition": round(float(seconds.max() / seconds.median()), 2)}


def _flow(data: Path, workers: int, partitions: int) -> dict:
    records = sorted((data / "records").glob("*.parquet"))
    sources = data / "sources.toml"
    sources.write_text("records = [" + ", ".join(f'"{p}"' for p in records) + "]\n")
    env = {**os.environ, "METAFLOW_USER": "bench", "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(data / "mf"),
           "METAFLOW_HOME": str(data / "mfhome"), "KG_OUTPUT_ROOT": str(data / "out")}
    (data / "mf").mkdir(exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "flows" / "match_flow.py"), "--branch", f"bench{workers}", "run",
                    "--sources", str(sources), "--model", str(data / "model.json"), "--partitions", str(partitions),
                    "--max-workers", str(workers)], env=env, cwd=data / "mf", check=True, capture_output=True)
    os.environ.update({k: env[k] for k in ("METAFLOW_USER", "METAFLOW_DATASTORE_SYSROOT_LOCAL", "METAFLOW_HOME")})
    from metaflow import Flow, namespace

    from flows.figures import step_seconds

    namespace(None)
    run = Flow("MatchFlow").latest_run
    summary = run.data.figures["summary"]
    return {"steps": step_seconds(run.pathspec),
            "slowest_over_median_partition": summary["slowest/median partition time"]}


def _variant(data: Path, variant: str, partitions: int) -> None:
    """One variant in this (fresh) process; prints its JSON line."""
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    kind, workers = variant[:-1], int(variant[-1])
    extra = _in_process(data, workers, partitions) if kind == "inproc" else _flow(data, workers, partitions)
    wall = time.perf_counter() - started
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "variant": variant, "wall_s": round(wall, 1),
        "cpu_s": round(me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, 1),
        "peak_rss_mib": round(max(me.ru_maxrss, kids.ru_maxrss) / 1024), "load": os.getloadavg()[0], **extra,
    }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=50_000, help="true entities (records ≈ 2x)")
    parser.add_argument("--train-entities", type=int, default=100_000,
                        help="entities of the training catalogue, as in match_vs_splink.py")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--variants", nargs="+", default=["inproc1", "inproc2", "flow1", "flow2"])
    parser.add_argument("--data", type=Path, help="reuse this folder (made by an earlier run) instead of a temp one")
    parser.add_argument("--_variant", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._variant:
        _variant(args.data, args._variant, args.partitions)
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data or Path(tmp)
        if not (data / "model.json").exists():
            sys.path.insert(0, str(ROOT))
            t = time.perf_counter()
            _prepare(data, args.entities, args.seed, args.train_entities)
            print(f"generated, ingested, model trained in {time.perf_counter() - t:.1f} s", flush=True)
        for variant in args.variants:
            subprocess.run([sys.executable, __file__, "--data", str(data), "--partitions", str(args.partitions),
                            "--_variant", variant], check=True)


if __name__ == "__main__":
    main()
