"""Errors of the graph store.

They derive from ``KGError`` so the CLI prints them as one line, and every
one is raised *before* a merge commits: when you see a ``StoreError`` the
store is exactly as it was.
"""

from __future__ import annotations

from kg.errors import KGError


class StoreError(KGError):
    """The graph store refused an input or could not be opened; the store is unchanged."""


class UnknownEntity(StoreError, KeyError):
    """An entity id that the store does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown entity"
