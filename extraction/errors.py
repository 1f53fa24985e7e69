"""Errors of the extraction pipeline; each names the file, line and field at fault."""

from __future__ import annotations

from kg.errors import KGError, LocatedError


class ExtractionError(KGError):
    """The pipeline was asked something it cannot do (bad option, missing input); nothing was written."""


class DocumentError(LocatedError, ExtractionError):
    """An input document cannot be read: the message says which file, line (or row) and field."""
