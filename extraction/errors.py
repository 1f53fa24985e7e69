"""Errors of the extraction pipeline; each names the file, line and field at fault."""

from __future__ import annotations

from kg.errors import KGError


class ExtractionError(KGError):
    """The pipeline was asked something it cannot do (bad option, missing input); nothing was written."""


class DocumentError(ExtractionError):
    """An input document cannot be read: the message says which file, line (or row) and field."""

    def __init__(self, file: str, line: int | None, field: str | None, reason: str):
        self.file, self.line, self.field, self.reason = file, line, field, reason
        where = file if line is None else f"{file}:{line}"
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {reason}")
