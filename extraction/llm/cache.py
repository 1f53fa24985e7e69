"""The persistent answer cache: a re-run of the same question against the same model costs no LLM call.

One SQLite file in WAL mode: readers never block the writer, several processes (a process pool, Metaflow
``foreach`` steps on one machine) can share it, and a crash mid-write leaves the previous state. Only validated
answers go in (their JSON, token counts, confidence), never a prompt or a key.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from kg.errors import KGError

SCHEMA_VERSION = 1


def cache_root() -> Path:
    """The toolkit's cache folder: ``$KG_CACHE_DIR``, else ``~/.cache/kg-toolkit`` (models/ and llm/ live under it)."""
    env = os.environ.get("KG_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "kg-toolkit"


@dataclass(frozen=True)
class CachedAnswer:
    value_json: str
    prompt_tokens: int
    completion_tokens: int
    confidence: float | None


class AnswerCache:
    """Answers keyed by (the caller's cache key, the resolved model name)."""

    def __init__(self, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "answers.sqlite"
        # One connection shared by the client's worker threads, serialised by a lock; the busy timeout lets other
        # processes' writes finish instead of failing with "database is locked".
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS answers ("
                " model TEXT NOT NULL, cache_key TEXT NOT NULL, value_json TEXT NOT NULL,"
                " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, confidence REAL,"
                " created_at REAL NOT NULL, PRIMARY KEY (model, cache_key))"
            )
            found = self._db.execute("PRAGMA user_version").fetchone()[0]
            if found == 0:
                self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif found != SCHEMA_VERSION:
                raise KGError(f"{self.path}: answer cache schema version {found}, this toolkit reads {SCHEMA_VERSION}")

    def get(self, cache_key: str, model: str) -> CachedAnswer | None:
        with self._lock:
            row = self._db.execute(
                "SELECT value_json, prompt_tokens, completion_tokens, confidence FROM answers"
                " WHERE model = ? AND cache_key = ?",
                (model, cache_key),
            ).fetchone()
        return CachedAnswer(*row) if row else None

    def put(self, cache_key: str, model: str, answer: CachedAnswer) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    cache_key,
                    answer.value_json,
                    answer.prompt_tokens,
                    answer.completion_tokens,
                    answer.confidence,
                    time.time(),
                ),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
