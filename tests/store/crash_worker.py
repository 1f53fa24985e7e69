"""Child process for the kill -9 test: builds a large merge, says 'start', merges, says 'committed'."""

from __future__ import annotations

import sys

import pyarrow as pa

from kg.store import RunInfo, Store, merge_entities
from schemas.tables import CROSSWALK, RECORDS


def bulk(n: int, tag: str) -> tuple[pa.Table, pa.Table]:
    ids = pa.array([f"{tag}-{i}" for i in range(n)])
    names = pa.array([f"Film number {i} of {tag}" for i in range(n)])
    aliases = pa.array([[f"Alias {i}", f"Другое имя {i}"] for i in range(n)], pa.list_(pa.string()))
    recs = {f.name: pa.nulls(n, f.type) for f in RECORDS}
    recs.update(source=pa.array([tag] * n), source_id=ids, type=pa.array(["movie"] * n), name=names,
                aliases=aliases, year=pa.array([1950 + i % 70 for i in range(n)], pa.int32()))
    cw = {"source": pa.array([tag] * n), "source_id": ids,
          "entity_id": pa.array([f"E{tag}-{i // 2}" for i in range(n)]),  # two records per entity
          "type": pa.array(["movie"] * n), "run_id": pa.array([tag] * n)}
    return pa.table(recs, schema=RECORDS), pa.table(cw, schema=CROSSWALK)


def main() -> None:
    path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    recs, cw = bulk(n, tag)
    with Store.open(path) as store:
        print("start", flush=True)
        merge_entities(store, recs, cw, RunInfo(tag, "matching"))
        print("committed", flush=True)


if __name__ == "__main__":
    main()
