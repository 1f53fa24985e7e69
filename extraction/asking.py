"""Asking many questions at once: cache keys, a progress bar, wall-clock and usage accounting.

The LLM client does the concurrency, retries and caching (``ask_many``);
this wrapper measures how long the pipeline waited on it (to report the
share of wall time spent *outside* the LLM) and keeps one progress bar
across the phases of a run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from extraction.llm import Answer, LLMError, Request

MAX_ERRORS_KEPT = 50  # failure messages kept verbatim in a report; all are counted


def cache_key(*parts: object) -> str:
    """sha256 of the parts joined by a separator no part contains (unit separator)."""
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Asker(AbstractContextManager):
    """``ask(requests, label)`` → answers or errors in order; counts failures and wall seconds waited."""

    client: Any  # extraction.llm.LLMClient or anything with the same surface
    progress: bool = False
    wall_seconds: float = 0.0
    requests: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _bar: Progress | None = None

    def __enter__(self) -> Asker:
        console = Console(stderr=True)
        if self.progress and console.is_terminal:
            self._bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                console=console, transient=True,
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def ask(self, requests: Sequence[Request], label: str) -> list[Answer | LLMError]:
        if not requests:
            return []
        task = self._bar.add_task(label, total=len(requests)) if self._bar is not None else None

        def done(_: int) -> None:
            if self._bar is not None and task is not None:
                self._bar.advance(task)

        t0 = time.perf_counter()
        answers = self.client.ask_many(list(requests), on_done=done)
        self.wall_seconds += time.perf_counter() - t0
        self.requests += len(requests)
        for answer in answers:
            if isinstance(answer, Exception):
                self.failures[label] = self.failures.get(label, 0) + 1
                if len(self.errors) < MAX_ERRORS_KEPT:
                    self.errors.append(f"{label}: {answer}")
        return answers


def usage_delta(before: dict, after: dict) -> dict:
    """What a run added to a client's running ``Usage`` totals (a client may serve several runs)."""
    return {k: after[k] - before.get(k, 0) for k in after}
