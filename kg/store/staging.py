"""Staged merges: merge into a copy of the store and swap the copy in whole, so readers elsewhere keep reading.

DuckDB gives a file to one read-write process or to many read-only ones. An
analyst's notebook holding the graph open therefore blocks every in-place
merge, and an in-place merge blocks every reader in another process. A
staged merge copies the file, merges into the copy and renames the copy over
the original, which is atomic on POSIX file systems: a reader that opened the
store before keeps its snapshot (its open file is the old one, whatever the
name now points at), a reader that opens after sees every merge of the
stage, and nobody waits for anybody.

What it costs: one copy of the file per stage (seconds per GB, so stage a
whole run's merges together, not each table) and room on disk for the copy;
the old file's space comes back when its last reader closes it.

Who excludes whom: staged merges of one file take turns through a lock file
next to it (``<name>.merge-lock``, an ``flock`` the kernel drops when the
process dies); a stage keeps the original open read-only from the copy to the
swap, so an in-place writer can neither start during a stage (it gets the
usual "locked" error, or waits with ``wait=``) nor be running when one
starts. A process killed mid-stage leaves the original untouched and a
``<name>.staging`` copy that the next stage removes.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import duckdb

from kg.store.db import DEFAULT_PATH, Store, _connect, pauses
from kg.store.errors import StoreError

STAGING_SUFFIX = ".staging"
LOCK_SUFFIX = ".merge-lock"
_CHUNK = 16 << 20  # bytes per read while copying


@contextmanager
def staged(path: str | Path = DEFAULT_PATH, *, wait: float = 0.0, migrate: bool = False) -> Iterator[Store]:
    """A read-write ``Store`` on a copy of ``path``; on a clean exit the copy replaces ``path`` in one rename.

    Merge with it as with ``Store.open``: ``with staged("graph.duckdb") as
    store: merge_entities(store, ...); merge_relations(store, ...)``. An
    exception in the block (or a crash) publishes nothing and leaves ``path``
    as it was. ``wait``: seconds to keep trying while another stage or an
    in-place writer holds the store. A missing ``path`` is created, as by
    ``Store.open``; ``migrate`` upgrades an older store in the copy.

    Readers in this same process share DuckDB's handle on the old file until
    every one of them has closed it; staging is for readers in other
    processes (notebooks, ``kg query``, services).
    """
    path = Path(path)
    if path.is_dir():
        raise StoreError(f"{path}: is a directory, not a graph store file")
    staging = path.with_name(path.name + STAGING_SUFFIX)
    with _merge_lock(path, wait), ExitStack() as held:  # released last to first: original, read lock, copy
        _remove(staging)  # what a stage killed before its swap left behind
        held.callback(_remove, staging)  # a failed stage's copy, whole or partial
        if path.exists():
            held.callback(_hold(path, wait).close)
            # Copied through a descriptor kept open to the end: closing any descriptor of a file drops every
            # fcntl lock the process holds on it, DuckDB's shared lock included.
            original = held.enter_context(open(path, "rb"))
            with open(staging, "wb") as copy:
                shutil.copyfileobj(original, copy, _CHUNK)
        store = Store.open(staging, migrate=migrate)
        try:
            yield store
            _checkpoint(store)  # everything into the file: its WAL would not be renamed with it
        finally:
            store.close()
        if _wal(staging).exists():
            raise StoreError(f"{staging}: the copy kept a write-ahead log after its checkpoint; not published")
        _fsync(staging)
        os.replace(staging, path)
        _fsync(path.parent)


@contextmanager
def _merge_lock(path: Path, wait: float) -> Iterator[None]:
    """The exclusive lock staged merges of ``path`` take turns on (retried like ``Store.open``'s ``wait``)."""
    lock = path.with_name(path.name + LOCK_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        retries = pauses(wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if next(retries, None) is None:
                    after = f" after waiting {wait:g} s" if wait else ""
                    raise StoreError(
                        f"{path}: another staged merge holds {lock.name}{after}; try again when it is done (wait=)"
                    ) from None
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _hold(path: Path, wait: float) -> duckdb.DuckDBPyConnection:
    """A read-only handle on ``path`` with everything committed in the file itself, not in a WAL beside it.

    The handle's shared lock keeps in-place writers out until the swap. A
    WAL left by a writer that was killed holds commits the copy would lose
    (and, left beside the new file, would be replayed onto it): a read-write
    open replays it and a checkpoint writes it into the file first.
    """
    con = _connect(path, True, wait)
    if not _wal(path).exists():
        return con
    con.close()
    with Store.open(path, wait=wait) as store:
        _checkpoint(store)
    con = _connect(path, True, wait)
    if _wal(path).exists():
        con.close()
        raise StoreError(f"{path}: its write-ahead log could not be checkpointed; open it read-write once and retry")
    return con


def _checkpoint(store: Store) -> None:
    """Write the WAL into the file now: closing a connection does not, while DuckDB keeps its instance alive."""
    cursor = store.cursor()
    try:
        cursor.execute("CHECKPOINT")
    finally:
        cursor.close()


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
    _wal(path).unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    """Flush ``path`` (a file, or a folder's entries after a rename) to disk before anyone relies on it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
