"""``python -m kg.sample OUT_DIR --entities N --seed S``: write a sample and report its size, time and memory."""

from __future__ import annotations

import argparse
import resource
import time

from kg.sample.generate import generate_sample


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m kg.sample", description=__doc__)
    parser.add_argument("out_dir")
    parser.add_argument("--entities", type=int, default=2000, help="true entities to generate (default 2000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--chunk-size", type=int, default=100_000, help="entities per streamed chunk")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    info = generate_sample(args.out_dir, args.entities, args.seed, args.chunk_size)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(f"{info.n_entities} entities ({', '.join(f'{k} {v}' for k, v in info.entities.items())})")
    print(f"{info.total_records} records: " + ", ".join(f"{k} {v}" for k, v in info.records.items()))
    print("cases: " + ", ".join(f"{k} {v}" for k, v in info.cases.items()))
    print(f"wrote {info.out_dir} in {seconds:.1f} s, peak RSS {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
