"""Ingest throughput: the pyarrow + polars fast path vs a plain-Python json.loads + dict-mapping peer.

Both read the same JSON Lines file (the sample catalog's nested ``studio``
source, grown to the size asked for) with the same mapping and write the
same records table; the figure that matters is the ratio, measured in one
run because this machine is noisy.

    .venv/bin/python bench/ingest_throughput.py --gb 1.0
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from python_baseline import ingest_python  # noqa: E402

from kg.ingest import ingest_source, load_mapping  # noqa: E402
from kg.sample import generate_sample  # noqa: E402

BYTES_PER_ENTITY = 460  # studio.jsonl bytes per generated entity, measured on the sample; only sizes the input


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gb", type=float, default=1.0, help="size of the JSON Lines input")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write (default: a temp folder, removed)")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kg-bench-ingest-"))
    try:
        entities = int(args.gb * 1e9 / BYTES_PER_ENTITY)
        t0 = time.perf_counter()
        sample = generate_sample(work / "raw", n_entities=entities, seed=11)
        raw = sample.raw["studio"]
        mb = raw.stat().st_size / 1e6
        print(f"input: {raw} {mb:,.0f} MB, {sample.records['studio']:,} records (generated in "
              f"{time.perf_counter() - t0:.0f} s)")
        mapping = load_mapping(sample.mappings["studio"])

        t0 = time.perf_counter()
        report = ingest_source(mapping, [raw], work / "fast")
        fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        records, quarantined = ingest_python(mapping, raw, work / "python.parquet")
        slow = time.perf_counter() - t0

        print(f"{'path':<28}{'seconds':>10}{'MB/s':>10}{'records/s':>14}{'records':>12}{'quarantined':>13}")
        for name, sec, rec, bad in (
            ("pyarrow + polars (kg)", fast, report.records, report.quarantined),
            ("json.loads + dict mapping", slow, records, quarantined),
        ):
            print(f"{name:<28}{sec:>10.1f}{mb / sec:>10.1f}{rec / sec:>14,.0f}{rec:>12,}{bad:>13,}")
        print(f"ratio (fast path speed-up): {slow / fast:.1f}x")
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
