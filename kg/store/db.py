"""Opening the DuckDB file: version checks, migrations, clear errors, transactions.

DuckDB gives one process a read-write handle or many processes read-only
handles, never both at once; inside a process every cursor is its own
connection with snapshot isolation. So merges run on a fresh cursor in one
transaction, readers use their own cursor, and a reader never sees half a
merge. All DuckDB failures at open time become a ``StoreError`` that says
what is wrong with the file (missing, corrupt, locked, too new) instead of a
raw driver message.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from kg.store.errors import StoreError
from kg.store.schema import META_TABLE, MIGRATIONS, SCHEMA_VERSION, Migration

DEFAULT_PATH = Path("graph.duckdb")


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

    # -- opening -----------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path = DEFAULT_PATH, *, read_only: bool = False) -> Store:
        """Open (and, read-write, create or migrate) the store at ``path``.

        Read-only needs an existing store of this schema version; read-write
        creates an empty store and upgrades an older one in one transaction.
        """
        path = Path(path)
        if read_only and not path.exists():
            raise StoreError(f"{path}: no graph store there (open it read-write once to create it)")
        if path.exists() and path.is_dir():
            raise StoreError(f"{path}: is a directory, not a graph store file")
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            raise StoreError(_explain_open_error(path, exc)) from exc
        store = cls(con, path, read_only)
        try:
            store._check_version()
        except BaseException:
            con.close()
            raise
        return store

    def _check_version(self) -> None:
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
            if self.read_only:
                raise StoreError(
                    f"{self.path}: store has schema version {version}, this toolkit needs {SCHEMA_VERSION}; "
                    "open it read-write once to migrate it"
                )
            self._migrate(version)

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
        with self.transaction() as con:
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

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new connection to the same database: its own transactions and snapshot."""
        return self._con.cursor()

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor inside BEGIN ... COMMIT; any exception rolls everything back.

        DuckDB writes a transaction to its WAL only at COMMIT, so a process
        killed before that leaves no trace of it on disk.
        """
        if self.read_only:
            raise StoreError(f"{self.path}: opened read-only; open it with read_only=False to merge")
        con = self._con.cursor()
        try:
            con.begin()
            try:
                yield con
            except duckdb.Error as exc:
                con.rollback()
                raise StoreError(f"{self.path}: merge failed and was rolled back: {exc}") from exc
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


def _explain_open_error(path: Path, exc: duckdb.Error) -> str:
    """Turn DuckDB's open-time message into one that says what to do."""
    text = str(exc)
    if "not a valid DuckDB database file" in text or "Corrupt" in text or "corrupt" in text:
        return f"{path}: not a valid DuckDB database file (corrupt or another format); restore it from a backup"
    if "lock" in text.lower():
        pid = re.search(r"PID (\d+)", text)
        who = f" by process {pid.group(1)}" if pid else ""
        return f"{path}: locked{who}; a merge or another writer holds it, try again when it is done"
    if "newer" in text or "version" in text.lower():
        return f"{path}: written by another DuckDB storage version: {text}"
    return f"{path}: cannot open graph store: {text}"
