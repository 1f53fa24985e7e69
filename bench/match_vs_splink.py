"""Matching end to end, ours vs Splink 5, on the same generated records in the same run.

    python bench/match_vs_splink.py --entities 500000        # ~1M records in 3 sources

Both sides get the same ingested RECORDS. Ours: plan → every partition
(blocking, features, LightGBM scoring; ``--workers`` processes) → clustering,
with a model trained beforehand on a separate catalogue (another seed; its
training time is reported apart, as a one-off cost). Splink: its own
cleaning, blocking, u sampling + EM training (unsupervised, so it is part of
its run) and prediction, then clustering: connected components on both
sides by default. The generated sources hold one record per entity each, as
licensed catalogues keyed by their own ids do; ``--clean-sources catalog
guide studio`` clusters one-to-one between them on both sides (our
``clean_sources``, Splink's single-best-links, which took 161.6 s and 20 GB
for 20k records here, so it is not the default). Printed per side: wall and CPU
seconds per stage, pairs, pairwise precision/recall/F1 of the entities each
produces; then the ratios. CPU seconds (over all threads and worker
processes) are steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).parent))

from splink_peer import cluster_pairs as splink_cluster_pairs  # noqa: E402
from splink_peer import evaluate, splink_match  # noqa: E402

from kg.demo import truth_pairs  # noqa: E402
from kg.ingest import ingest_source  # noqa: E402
from kg.sample import generate_sample  # noqa: E402
from kg.sample.generate import TRUTH_FILE  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the worker pool)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _catalogue(out: Path, entities: int, seed: int) -> tuple[list[Path], pl.DataFrame]:
    """Generated and ingested records, and the true pairs; a catalogue already under ``out`` for the same
    (entities, seed) is reused (ten million records take minutes and ~12 GB to make: not part of a measured run)."""
    stamp, wanted = out / "catalogue.json", {"entities": entities, "seed": seed}
    if stamp.is_file() and json.loads(stamp.read_text()) == wanted:
        return sorted((out / "records").glob("*.parquet")), truth_pairs(out / "raw" / TRUTH_FILE)
    sample = generate_sample(out / "raw", n_entities=entities, seed=seed)
    paths = [ingest_source(sample.mappings[s], [sample.raw[s]], out).records_path for s in sample.raw]
    stamp.write_text(json.dumps(wanted))
    return sorted(paths), truth_pairs(sample.truth)


def run_ours(paths: list[Path], model, run_dir: Path, partitions: int, workers: int, clean: list[str]) -> dict:
    from matching.cluster import cluster_pairs
    from matching.labels import crosswalk_pairs
    from matching.pipeline import (
        MatchConfig,
        accepted_pairs,
        cluster_run,
        plan_run,
        read_partition_stats,
        read_records,
        run_partitions,
    )

    config = MatchConfig(n_partitions=partitions, clean_sources=tuple(clean))
    wall, cpu = {}, {}
    t, c = time.perf_counter(), _cpu()
    records = read_records(paths)
    model.save(run_dir / "model.json")
    plan = plan_run(records, run_dir, config)
    ids, n_records = records.select("source", "source_id", "type"), records.height
    del records  # as match_records does: the partitions run without the catalogue in memory
    wall["plan"], cpu["plan"] = time.perf_counter() - t, _cpu() - c
    t, c = time.perf_counter(), _cpu()
    run_partitions(run_dir, range(plan.n_partitions), workers=workers)
    wall["partitions"], cpu["partitions"] = time.perf_counter() - t, _cpu() - c
    t, c = time.perf_counter(), _cpu()
    result = cluster_run(ids, run_dir, run_id="bench", config=config)
    wall["cluster"], cpu["cluster"] = time.perf_counter() - t, _cpu() - c
    wall["total"], cpu["total"] = sum(wall.values()), sum(cpu.values())
    stats = read_partition_stats(run_dir)
    seconds = stats["seconds"]
    # what the one-to-one constraint buys: the same accepted pairs clustered without it (after the clock stops;
    # nothing written, so the run folder keeps the timed run's crosswalk)
    unconstrained = (
        cluster_pairs(accepted_pairs(run_dir), ids, run_id="bench", max_size=config.max_cluster) if clean else None
    )
    return {
        "wall": wall, "cpu": cpu, "records": n_records, "pairs": int(stats["pairs"].sum()),
        "pairs_per_cpu_second": int(stats["pairs"].sum() / max(cpu["partitions"], 1e-9)),
        "stage_seconds": {k: round(float(stats[f"seconds_{k}"].sum()), 2) for k in ("blocking", "features", "scoring")},
        # the pair throughput: features + scoring only, per worker (a worker is one core)
        "features_scoring_pairs_per_worker_second": int(
            stats["pairs"].sum() / max(float((stats["seconds_features"] + stats["seconds_scoring"]).sum()), 1e-9)
        ),
        "screened_out": int(stats["screened_out"].sum()),
        "slowest_over_median_partition": round(float(seconds.max() / seconds.median()), 2),
        "entity_pairs": crosswalk_pairs(result.crosswalk),
        **({"components_entity_pairs": crosswalk_pairs(unconstrained.crosswalk)} if unconstrained else {}),
    }


def run_splink(paths: list[Path], threads: int, clean: list[str]) -> dict:
    records = pl.concat([pl.read_parquet(p) for p in paths])
    t, c = time.perf_counter(), _cpu()
    result = splink_match(records, threads=threads, duplicate_free=clean)
    wall, cpu = time.perf_counter() - t, _cpu() - c
    return {
        "wall": {**result.seconds, "total": wall}, "cpu": {**result.cpu_seconds, "total": cpu},
        "pairs": result.n_comparisons, "entity_pairs": splink_cluster_pairs(result.clusters),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=50_000, help="true entities (records ≈ 2x)")
    parser.add_argument("--train-entities", type=int, default=100_000,
                        help="entities of the training catalogue (more than 20k holds the look-alike people "
                             "a million records have: same surname, a near first name)")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-splink", action="store_true")
    parser.add_argument("--clean-sources", nargs="*", default=[], metavar="SOURCE",
                        help="sources known to hold one record per entity: one-to-one clustering on both sides "
                             "(default none: connected components)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--data", type=Path, help="keep the generated catalogues here and reuse them on the next run")
    parser.add_argument("--run-dir", type=Path,
                        help="write our run (plan, partition inputs, scores, crosswalk) here and keep it, to look "
                             "at its misses afterwards (default: a temporary folder)")
    args = parser.parse_args()

    from matching.pipeline import read_records
    from matching.train import train_on_truth

    with tempfile.TemporaryDirectory(prefix="kg-bench-") as tmp:
        tmp = Path(tmp)
        kept = args.data or tmp
        t = time.perf_counter()
        train_paths, train_truth = _catalogue(kept / "train", args.train_entities, args.seed + 1000)
        paths, truth = _catalogue(kept / "data", args.entities, args.seed)
        print(f"generated and ingested in {time.perf_counter() - t:.1f} s", flush=True)
        t, c = time.perf_counter(), _cpu()
        model = train_on_truth(read_records(train_paths), train_truth)
        training = {"wall": time.perf_counter() - t, "cpu": _cpu() - c, "trees": model.metadata["trees"]}
        print(f"ours: model trained on {len(train_truth):,} true pairs of a separate catalogue in "
              f"{training['wall']:.1f} s wall / {training['cpu']:.1f} s CPU (one-off, not in the totals)", flush=True)

        print(f"clean sources (one-to-one clustering, both sides): {', '.join(args.clean_sources) or 'none'}")
        ours = run_ours(paths, model, args.run_dir or tmp / "run", args.partitions, args.workers, args.clean_sources)
        ours["quality"] = evaluate(ours.pop("entity_pairs"), truth)
        if "components_entity_pairs" in ours:
            ours["quality_components"] = evaluate(ours.pop("components_entity_pairs"), truth)
            print(f"ours without the one-to-one constraint (same shards, connected components): "
                  f"F1 {ours['quality_components']['f1']:.4f}")
        _print("ours", ours)
        figures = {"records": ours["records"], "clean_sources": args.clean_sources, "training": training, "ours": ours}
        if not args.skip_splink:
            peer = run_splink(paths, threads=args.workers, clean=args.clean_sources)
            peer["quality"] = evaluate(peer.pop("entity_pairs"), truth)
            _print("splink", peer)
            figures["splink"] = peer
            figures["ratio"] = {
                "wall": round(peer["wall"]["total"] / ours["wall"]["total"], 2),
                "cpu": round(peer["cpu"]["total"] / ours["cpu"]["total"], 2),
                "f1_ours_minus_splink": round(ours["quality"]["f1"] - peer["quality"]["f1"], 4),
            }
            print(f"ratio Splink/ours: wall {figures['ratio']['wall']}x, CPU {figures['ratio']['cpu']}x; "
                  f"F1 ours - Splink = {figures['ratio']['f1_ours_minus_splink']:+.4f}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process {peak:,.0f} MiB")
        if args.json:
            args.json.write_text(json.dumps(figures, indent=1, default=float))


def _print(name: str, side: dict) -> None:
    stages = ", ".join(f"{k} {v:.1f}/{side['cpu'].get(k, 0):.1f}" for k, v in side["wall"].items() if k != "total")
    q = side["quality"]
    print(f"{name}: {side['wall']['total']:.1f} s wall / {side['cpu']['total']:.1f} s CPU ({stages}); "
          f"{side['pairs']:,} pairs scored; entities' pairwise P {q['precision']:.4f} R {q['recall']:.4f} "
          f"F1 {q['f1']:.4f}", flush=True)
    keys = ("pairs_per_cpu_second", "features_scoring_pairs_per_worker_second", "screened_out", "stage_seconds",
            "slowest_over_median_partition")
    extra = {k: side[k] for k in keys if k in side}
    if extra:
        print(f"  {extra}", flush=True)


if __name__ == "__main__":
    main()
