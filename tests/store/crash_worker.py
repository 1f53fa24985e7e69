"""Child process for the kill -9 tests: builds a large merge, says 'start', merges, says 'committed'.

    python -m tests.store.crash_worker PATH N TAG            # N records of TAG into N/2 movie entities
    python -m tests.store.crash_worker PATH N TAG relations  # N sequel_of relations among those movies
    python -m tests.store.crash_worker PATH N TAG staged     # the entity merge in a staged copy, 'published' at the end
    python -m tests.store.crash_worker PATH N TAG no-close   # the entity merge, killed with the store still open
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from kg.store import RunInfo, Store, merge_entities, merge_relations, staged
from schemas.tables import CROSSWALK, RECORDS, RELATIONS

ROOT = Path(__file__).resolve().parents[2]


def start(path: Path, n: int, tag: str, mode: str = "entities") -> subprocess.Popen[str]:
    """This worker in a child process, returned once it says 'start' (its stdin a pipe: 'no-close' reads it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store.crash_worker", str(path), str(n), tag, mode],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == "start", (line, proc.stderr.read() if proc.stderr else "")
    return proc


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


def sequels(n: int, movies: int, entity_tag: str, run_id: str) -> pa.Table:
    """n relation rows 'movie a sequel_of movie b' among the movies of ``bulk(2 * movies, entity_tag)``."""
    i = pa.array(range(n), pa.int64())
    subject = pc.binary_join_element_wise(f"E{entity_tag}-", pc.cast(pc.bit_wise_and(i, movies - 1), pa.string()),
                                          "")
    obj = pc.binary_join_element_wise(
        f"E{entity_tag}-", pc.cast(pc.bit_wise_and(pc.add(pc.multiply(i, 7), 1), movies - 1), pa.string()), "")
    doc = pc.binary_join_element_wise("doc-", pc.cast(i, pa.string()), "")
    cols = {f.name: pa.nulls(n, f.type) for f in RELATIONS}
    cols.update(
        subject=subject, subject_type=pa.array(["movie"] * n), relation=pa.array(["sequel_of"] * n), object=obj,
        object_type=pa.array(["movie"] * n), subject_id=subject, object_id=obj,
        confidence=pa.array([0.5 + (k % 50) / 100 for k in range(n)], pa.float32()), doc_id=doc,
        evidence=pc.binary_join_element_wise(subject, obj, " is a sequel of "), status=pa.array(["accepted"] * n),
        model=pa.array(["test-model"] * n), run_id=pa.array([run_id] * n),
    )
    return pa.table(cols, schema=RELATIONS)


def main() -> None:
    path, n, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    mode = sys.argv[4] if len(sys.argv) > 4 else "entities"
    if mode == "relations":
        rels = sequels(n, 4096, "bulk", tag)
        with Store.open(path) as store:
            print("start", flush=True)
            merge_relations(store, rels, RunInfo(tag, "extraction"))
            print("committed", flush=True)
        return
    recs, cw = bulk(n, tag)
    if mode == "staged":
        with staged(path) as store:
            print("start", flush=True)
            merge_entities(store, recs, cw, RunInfo(tag, "matching"))
            print("committed", flush=True)
        print("published", flush=True)
        return
    store = Store.open(path)
    print("start", flush=True)
    merge_entities(store, recs, cw, RunInfo(tag, "matching"))
    print("committed", flush=True)
    if mode == "no-close":  # the parent kills it now: its commits are in the WAL, not yet in the file
        sys.stdin.readline()
    store.close()


if __name__ == "__main__":
    main()
