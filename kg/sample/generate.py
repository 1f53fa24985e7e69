"""``generate_sample``: the seeded demo catalog and scale-benchmark input for matching.

One loop over chunks of entity indices: generate the chunk's true entities,
render each source's records, append them and their truth rows, forget the
chunk. Memory is bounded by ``chunk_size`` whatever ``n_entities`` is, and
since every draw is keyed by entity index and records stay in entity order,
the raw files do not depend on the chunk size (the truth's rows group by
chunk, then by source).
"""

from __future__ import annotations

import shutil
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from kg.sample.catalog import entities
from kg.sample.noise import SOURCES
from kg.sample.render import render
from kg.sample.write import RawWriter, TruthWriter

RAW_FILES = {"studio": "studio.jsonl", "catalog": "catalog.csv", "guide": "guide.json"}
MAPPINGS_DIR = Path(__file__).parent / "mappings"
TRUTH_FILE = "truth.parquet"


@dataclass(frozen=True)
class SampleInfo:
    """Where a generated sample lies and what it holds."""

    out_dir: Path
    seed: int
    n_entities: int
    raw: dict[str, Path]  # source -> raw file
    mappings: dict[str, Path]  # source -> its mapping, copied next to the data
    truth: Path
    entities: dict[str, int] = field(default_factory=dict)  # entity type -> count
    records: dict[str, int] = field(default_factory=dict)  # source -> raw records
    cases: dict[str, int] = field(default_factory=dict)  # hard-case kind -> records tagged with it

    @property
    def total_records(self) -> int:
        return sum(self.records.values())


def mapping_path(source: str) -> Path:
    """The packaged mapping of one generated source."""
    return MAPPINGS_DIR / f"{source}.toml"


def generate_sample(
    out_dir: str | Path, n_entities: int = 2000, seed: int = 7, chunk_size: int = 100_000
) -> SampleInfo:
    """Write the three raw sources, their mappings and ``truth.parquet`` under ``out_dir``.

    The same (n_entities, seed, chunk_size) gives byte-identical files; another
    ``chunk_size`` gives the same raw files and the same truth rows, grouped differently.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    out = Path(out_dir)
    (out / "mappings").mkdir(parents=True, exist_ok=True)
    mappings = {s: Path(shutil.copyfile(mapping_path(s), out / "mappings" / f"{s}.toml")) for s in SOURCES}
    raw = {s: out / RAW_FILES[s] for s in SOURCES}
    types: Counter[str] = Counter()
    records: Counter[str] = Counter({s: 0 for s in SOURCES})
    cases: Counter[str] = Counter()
    with ExitStack() as stack:
        writers = {s: RawWriter(raw[s], raw[s].suffix.lstrip(".")) for s in SOURCES}
        truth = TruthWriter(out / TRUTH_FILE)
        for w in (*writers.values(), truth):
            stack.callback(w.close)
        for start in range(0, n_entities, chunk_size):
            chunk = entities(seed, n_entities, start, start + chunk_size)
            for frame in (chunk.works, chunk.persons):
                types.update(dict(frame["type"].value_counts().iter_rows()))
            for source, rendered in render(seed, chunk).items():
                writers[source].write(rendered.rows)
                truth.write(rendered.truth)
                records[source] += rendered.truth.height
                if rendered.truth.height:
                    cases.update(dict(rendered.truth["cases"].explode().drop_nulls().value_counts().iter_rows()))
    return SampleInfo(
        out_dir=out, seed=seed, n_entities=n_entities, raw=raw, mappings=mappings, truth=out / TRUTH_FILE,
        entities=dict(sorted(types.items())), records=dict(records), cases=dict(sorted(cases.items())),
    )
