"""How matching time and memory grow with the number of records, each size in a fresh process.

    python bench/match_scaling.py --entities 50000 500000 5000000 --data ~/kg-bench   # 100k, 1M, 10M records

Runs ``match_vs_splink.py`` for each size (``--splink`` to include the peer at
every size) and prints one line per size: records, wall and CPU seconds of
each side, pairs, F1, and the peak resident memory of the whole process tree
(this process's children, so worker processes count).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, nargs="+", default=[50_000, 150_000, 500_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--splink", action="store_true", help="run the Splink peer at every size too")
    parser.add_argument("--records-per-partition", type=int, default=125_000,
                        help="partitions = records / this, at least 8 (a partition's inputs stay about one size)")
    parser.add_argument("--data", type=Path, help="keep each size's catalogue under DATA/<entities> and reuse it")
    parser.add_argument("--keep-runs", type=Path, help="keep each size's run under KEEP_RUNS/<entities> "
                        "(match_vs_splink.py --run-dir)")
    parser.add_argument("--clean-sources", nargs="*", default=[], metavar="SOURCE",
                        help="one-to-one clustering between these sources (match_vs_splink.py --clean-sources)")
    args = parser.parse_args()
    rows = []
    for n in args.entities:
        with tempfile.NamedTemporaryFile(suffix=".json") as out:
            partitions = max(8, math.ceil(2 * n / args.records_per_partition))  # records ≈ 2 x entities
            cmd = [sys.executable, str(HERE / "match_vs_splink.py"), "--entities", str(n), "--workers",
                   str(args.workers), "--partitions", str(partitions), "--json", out.name]
            if args.data:
                cmd += ["--data", str(args.data / str(n))]
            if args.keep_runs:
                cmd += ["--run-dir", str(args.keep_runs / str(n))]
            if args.clean_sources:
                cmd += ["--clean-sources", *args.clean_sources]
            if not args.splink:
                cmd.append("--skip-splink")
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            subprocess.run(cmd, check=True)
            peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
            figures = json.loads(Path(out.name).read_text())
        ours = figures["ours"]
        row = {"entities": n, "records": figures["records"], "partitions": partitions,
               "ours_wall": round(ours["wall"]["total"], 1), "ours_cpu": round(ours["cpu"]["total"], 1),
               "pairs": ours["pairs"], "ours_f1": ours["quality"]["f1"],
               "peak_mib_largest_process": round(peak)}
        if "quality_components" in ours:
            row["ours_f1_components"] = ours["quality_components"]["f1"]
        if "splink" in figures:
            row |= {"splink_wall": round(figures["splink"]["wall"]["total"], 1),
                    "splink_f1": figures["splink"]["quality"]["f1"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\nrecords (partitions) → ours wall s (CPU s), pairs, F1, peak MiB")
    for r in rows:
        print(f"{r['records']:>10,} ({r['partitions']}) → {r['ours_wall']:>7} ({r['ours_cpu']}), {r['pairs']:,}, "
              f"{r['ours_f1']:.4f}, "
              f"{r['peak_mib_largest_process']:,}")


if __name__ == "__main__":
    main()
