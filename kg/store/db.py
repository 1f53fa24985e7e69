"""Opening the DuckDB file: version checks, migrations, clear errors, transactions, indexes.

DuckDB gives one process a read-write handle or many processes read-only
handles, never both at once; inside a process every cursor is its own
connection with snapshot isolation. So merges run on a fresh cursor in one
transaction, readers use their own cursor, and a reader never sees half a
merge. Merges in one process take turns (a lock per file), which is what
keeps natural keys unique in tables that have no key constraint. All DuckDB
failures at open time become a ``StoreError`` that says what is wrong with
the file (missing, corrupt, locked, too old, too new) instead of a raw
driver message. Another process holding the file is the one failure worth
waiting out (``wait``): a merge holds it only while it merges.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from kg.store.errors import StoreError
from kg.store.schema import INDEXES, META_TABLE, MIGRATIONS, SCHEMA_VERSION, Migration

DEFAULT_PATH = Path("graph.duckdb")

# Index builds run at once by ensure_indexes (each is itself parallel, but only in part).
_INDEX_BUILDS = 2

# One writer at a time per store file within this process (DuckDB's file lock covers other processes).
_WRITE_LOCKS: dict[Path, threading.RLock] = {}
_WRITE_LOCKS_GUARD = threading.Lock()


def _write_lock(path: Path) -> threading.RLock:
    key = path.resolve()
    with _WRITE_LOCKS_GUARD:
        return _WRITE_LOCKS.setdefault(key, threading.RLock())


def first(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None) -> tuple | None:
    """The first row of ``sql`` or None; fetches to the end so the connection is free for the next query."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


class Store:
    """A handle on one graph store file; use ``Store.open``, then ``close`` (or ``with``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool):
        self._con = con
        self.path = path
        self.read_only = read_only
        self.migrated_from: int | None = None  # the version this open upgraded the store from, if it did

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, path: str | Path = DEFAULT_PATH, *, read_only: bool = False, migrate: bool = False, wait: float = 0.0
    ) -> Store:
        """Open the store at ``path``; read-write creates an empty store where there is none.

        ``wait``: seconds to keep trying while another process holds the file
        (a merge elsewhere, or, for a writer, a reader): the open then sees
        that merge whole. After that, or with 0, a held file is a
        ``StoreError`` naming the process.

        A store of an older schema version is refused unless ``migrate`` is
        set (read-write only): then every missing migration runs in one
        transaction (``kg migrate`` does this). A store of a newer version is
        always refused. Read-write, any lookup index a bulk merge did not get
        to rebuild (the process was killed after its commit) is built again.
        """
        path = Path(path)
        if read_only and not path.exists():
            raise StoreError(f"{path}: no graph store there (open it read-write once to create it)")
        if path.exists() and path.is_dir():
            raise StoreError(f"{path}: is a directory, not a graph store file")
        con = _connect(path, read_only, wait)
        if not read_only:
            # Let DuckDB append in parallel without keeping row order: about half the work of an ordered
            # bulk insert, which writes row groups twice. Store queries say ORDER BY wherever order matters.
            con.execute("SET preserve_insertion_order = false")
        store = cls(con, path, read_only)
        try:
            store._check_version(migrate)
            if not read_only:
                store.ensure_indexes()
        except duckdb.Error as exc:  # the header opened, the catalog or a table did not
            con.close()
            raise StoreError(_explain_open_error(path, exc)) from exc
        except BaseException:
            con.close()
            raise
        return store

    def _check_version(self, migrate: bool) -> None:
        try:
            tables = {
                r[0]
                for r in self._con.execute(
                    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
                ).fetchall()
            }
        except duckdb.Error as exc:
            raise StoreError(f"{self.path}: cannot read the catalog: {exc}") from exc
        if META_TABLE not in tables:
            if tables:
                raise StoreError(f"{self.path}: a DuckDB file, but not a kg graph store (no {META_TABLE} table)")
            if self.read_only:
                raise StoreError(f"{self.path}: an empty DuckDB file; open it read-write to create the store")
            self._migrate(0)
            return
        version = self.version()
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: store has schema version {version}, this toolkit reads up to "
                f"{SCHEMA_VERSION}; upgrade kg-toolkit to open it"
            )
        if version < SCHEMA_VERSION:
            if self.read_only or not migrate:
                raise StoreError(
                    f"{self.path}: store has schema version {version}, this toolkit needs {SCHEMA_VERSION}; "
                    f"migrate it first: kg migrate --db {self.path} (back the file up before)"
                )
            self._migrate(version)
            self.migrated_from = version

    def version(self) -> int:
        """The schema version stamped in the store."""
        row = first(self._con, f"SELECT value FROM {META_TABLE} WHERE key = 'schema_version'")
        if row is None:
            raise StoreError(f"{self.path}: {META_TABLE} has no schema_version")
        try:
            return int(row[0])
        except ValueError as exc:
            raise StoreError(f"{self.path}: schema_version {row[0]!r} is not a number") from exc

    def _migrate(self, current: int, migrations: list[Migration] | None = None) -> None:
        """Apply every migration above ``current`` in one transaction: all of them, or none."""
        steps = [m for m in (migrations or MIGRATIONS) if m.version > current]
        if not steps:
            return
        with self.transaction("migration") as con:
            for step in steps:
                for statement in step.statements:
                    con.execute(statement)
                con.execute(
                    "INSERT INTO schema_history VALUES (?, ?, ?)",
                    [step.version, step.description, datetime.now(UTC).replace(tzinfo=None)],
                )
            con.execute(
                f"INSERT INTO {META_TABLE} VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [str(steps[-1].version)],
            )

    # -- use ---------------------------------------------------------------------------------------

    def _require_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only; open it with read_only=False to merge")

    def write_lock(self) -> threading.RLock:
        """The lock merges on this file take in this process (re-entrant)."""
        return _write_lock(self.path)

    def table_rows(self) -> dict[str, int]:
        """Rows per store table, from DuckDB's catalog (no scan)."""
        return dict(
            self._con.execute(
                "SELECT table_name, estimated_size FROM duckdb_tables() "
                "WHERE database_name = current_database() AND schema_name = 'main'"
            ).fetchall()
        )

    def _index_names(self) -> set[str]:
        return {
            r[0]
            for r in self._con.execute(
                "SELECT index_name FROM duckdb_indexes() WHERE database_name = current_database()"
            ).fetchall()
        }

    def drop_indexes(self, tables: list[str]) -> list[str]:
        """Drop the lookup indexes of ``tables`` (each in its own commit); returns the names dropped."""
        self._require_writable()
        if not tables:
            return []
        with self.write_lock():
            have = self._index_names()
            dropped = [name for name, (table, _) in INDEXES.items() if table in tables and name in have]
            for name in dropped:  # names come from the INDEXES constant
                self._con.execute(f"DROP INDEX IF EXISTS {name}")
            return dropped

    def ensure_indexes(self) -> list[str]:
        """Build the lookup indexes the store lacks, each over committed rows; returns the names built.

        Two tables' indexes are built at a time, each table's on its own
        cursor, biggest table first: one ART build keeps the cores busy only
        part of the time (a bulk load's rebuilds took 10.9 s one after the
        other, 9.5 s two at a time). A table's own indexes are built one after
        the other, so no two builds ever change the same table.
        """
        self._require_writable()
        with self.write_lock():
            have = self._index_names()
            missing = [name for name in INDEXES if name not in have]
            if not missing:  # every open lands here: no catalog query, no thread pool
                return missing
            by_table: dict[str, list[str]] = {}
            for name in missing:
                by_table.setdefault(INDEXES[name][0], []).append(name)
            sizes = self.table_rows()
            with ThreadPoolExecutor(max_workers=_INDEX_BUILDS) as pool:
                builds = [pool.submit(self._build_indexes, names)
                          for _, names in sorted(by_table.items(), key=lambda kv: -sizes.get(kv[0], 0))]
                for build in builds:
                    build.result()
            return missing

    def _build_indexes(self, names: list[str]) -> None:
        con = self._con.cursor()
        try:
            for name in names:  # names and columns come from the INDEXES constant
                table, columns = INDEXES[name]
                con.execute(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
        finally:
            con.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database: its own transactions and snapshot."""
        return self._con.cursor()

    @contextmanager
    def transaction(self, what: str = "merge") -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor inside BEGIN ... COMMIT, holding the file's write lock; any exception rolls back.

        DuckDB writes a transaction to its WAL only at COMMIT, so a process
        killed before that leaves no trace of it on disk.
        """
        self._require_writable()
        with _write_lock(self.path), self._transaction(what) as con:
            yield con

    @contextmanager
    def _transaction(self, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._con.cursor()
        try:
            con.begin()
            try:
                yield con
            except duckdb.Error as exc:
                con.rollback()
                raise StoreError(f"{self.path}: {what} failed and was rolled back: {exc}") from exc
            except BaseException:
                con.rollback()
                raise
            con.commit()
        finally:
            con.close()

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def damaged(exc: duckdb.Error) -> bool:
    """Whether DuckDB says the file itself is broken (bad checksum, truncated), not the query."""
    text = str(exc)
    return "Corrupt database file" in text or "checksum" in text or "Could not read enough bytes" in text


def pauses(wait: float) -> Iterator[float]:
    """Sleeps between tries of something another process holds: 50 ms doubling to 1 s, ``wait`` seconds in all.

    Each ``next`` sleeps the next pause and returns it; the iterator ends
    when ``wait`` is spent (at once when it is 0), and the caller gives up.
    """
    deadline = time.monotonic() + wait
    pause = 0.05
    while (left := deadline - time.monotonic()) > 0:
        slept = min(pause, left)
        time.sleep(slept)
        yield slept
        pause = min(pause * 2, 1.0)


def _connect(path: Path, read_only: bool, wait: float) -> duckdb.DuckDBPyConnection:
    """DuckDB's handle on ``path``, retried (:func:`pauses`) while another process holds the file."""
    retries = pauses(wait)
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if not _held(exc) or next(retries, None) is None:
                raise StoreError(_explain_open_error(path, exc, waited=wait)) from exc


def _held(exc: duckdb.Error) -> bool:
    return "lock" in str(exc).lower()


def _explain_open_error(path: Path, exc: duckdb.Error, *, waited: float = 0.0) -> str:
    """Turn DuckDB's open-time message into one that says what to do."""
    text = str(exc)
    if "not a valid DuckDB database file" in text:
        return f"{path}: not a valid DuckDB database file (corrupt or another format); restore it from a backup"
    if damaged(exc):
        return f"{path}: the store file is damaged ({text.splitlines()[0]}); restore it from a backup"
    if _held(exc):
        pid = re.search(r"PID (\d+)", text)
        who = f" by process {pid.group(1)}" if pid else ""
        after = f" after waiting {waited:g} s" if waited else ""
        return f"{path}: locked{who}{after}; a merge or another process holds it: try again when it is done (wait=)"
    if "newer" in text or "version" in text.lower():
        return f"{path}: written by another DuckDB storage version: {text}"
    return f"{path}: cannot open graph store: {text}"


@dataclass(frozen=True)
class Migrated:
    """What ``migrate`` did: the versions before and after, and the steps applied (none when current)."""

    path: Path
    from_version: int
    to_version: int
    steps: list[str]


def migrate(path: str | Path) -> Migrated:
    """Upgrade the store at ``path`` to this toolkit's schema version, all steps in one transaction.

    A store already at the current version is left alone; one from a newer
    toolkit is refused; so is a path with no store (``migrate`` never
    creates one).
    """
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no graph store there to migrate")
    with Store.open(path, migrate=True) as store:
        before = store.migrated_from if store.migrated_from is not None else store.version()
        steps = [f"{m.version}: {m.description}" for m in MIGRATIONS if before < m.version <= SCHEMA_VERSION]
        return Migrated(path, before, store.version(), steps)
