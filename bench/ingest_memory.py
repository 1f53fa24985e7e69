"""Peak memory of ingesting a large generated catalog, one source at a time, each in a fresh process.

Generates the sample catalog at the size asked for (records across the
three sources), then ingests each source in a child process and reports its
peak resident memory (ru_maxrss) next to its input size: JSON Lines and CSV
stream in blocks, so their peak should not grow with the file; the JSON array
source is read whole by design, and its peak shows what that costs.

    .venv/bin/python bench/ingest_memory.py --records 10000000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kg.sample import generate_sample

RECORDS_PER_ENTITY = 2.0  # measured on the generator: ~2 raw records per true entity across three sources

CHILD = """
import json, sys, time
from kg.ingest import ingest_source
t = time.perf_counter()
r = ingest_source(sys.argv[1], [sys.argv[2]], sys.argv[3])
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec.
hwm = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM"))
print(json.dumps({"records": r.records, "quarantined": r.quarantined, "seconds": time.perf_counter() - t,
                  "peak_mb": hwm / 1024}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=10_000_000, help="raw records to generate, all sources")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp folder, removed)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kg-bench-mem-"))
    try:
        t0 = time.perf_counter()
        sample = generate_sample(work / "raw", n_entities=int(args.records / RECORDS_PER_ENTITY), seed=13)
        gen = time.perf_counter() - t0
        gen_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"generated {sample.total_records:,} records in {gen:.0f} s (generator peak {gen_peak:,.0f} MB)")
        print(f"{'source':<10}{'format':<8}{'MB in':>10}{'records':>14}{'seconds':>10}{'peak RSS MB':>14}")
        total = 0
        for source, raw in sample.raw.items():
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(sample.mappings[source]), str(raw), str(work / "out")],
                capture_output=True, text=True, check=True,
            )
            r = json.loads(done.stdout.strip().splitlines()[-1])
            total += r["records"]
            fmt = raw.suffix.lstrip(".")
            print(f"{source:<10}{fmt:<8}{raw.stat().st_size / 1e6:>10,.0f}{r['records']:>14,}{r['seconds']:>10.1f}"
                  f"{r['peak_mb']:>14,.0f}")
        print(f"total records ingested: {total:,}")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
