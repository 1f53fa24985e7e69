"""Run metadata: who merged what, when, with which configuration."""

from __future__ import annotations

import getpass
import json
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from kg import __version__


def current_user() -> str:
    """The login name of whoever runs the toolkit, for run and review records."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        return "unknown"


@dataclass(frozen=True)
class RunInfo:
    """The run a merged table came from; every row it adds points back to ``run_id``."""

    run_id: str
    kind: str  # "matching", "extraction", ...
    started_at: datetime | None = None
    user: str = field(default_factory=current_user)
    host: str = field(default_factory=socket.gethostname)
    tool_version: str = __version__
    config: dict[str, Any] = field(default_factory=dict)
    note: str | None = None


def record_run(con: duckdb.DuckDBPyConnection, run: RunInfo) -> int:
    """Insert the run unless it is already there (a re-merge keeps the first merge's row)."""
    started = run.started_at.astimezone(UTC).replace(tzinfo=None) if run.started_at else None
    rows = con.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id) DO NOTHING",
        [
            run.run_id,
            run.kind,
            started,
            datetime.now(UTC).replace(tzinfo=None),
            run.user,
            run.host,
            run.tool_version,
            json.dumps(run.config, sort_keys=True, default=str),
            run.note,
        ],
    ).fetchall()
    return int(rows[0][0]) if rows else 0
