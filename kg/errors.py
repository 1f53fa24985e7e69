"""Errors shared by the toolkit: each message names the file, line and field at fault."""

from __future__ import annotations


class KGError(Exception):
    """Base of the toolkit's own errors; the CLI prints these without a traceback."""


class MappingError(KGError):
    """A source mapping file is malformed; the message names the file and key."""


class LocatedError(KGError):
    """Bad input at a known place: the message reads ``file:line: field 'x': reason``."""

    def __init__(self, file: str, line: int | None, field: str | None, reason: str):
        self.file, self.line, self.field, self.reason = file, line, field, reason
        where = file if line is None else f"{file}:{line}"
        what = f" field {field!r}:" if field else ""
        super().__init__(f"{where}:{what} {reason}")


class IngestError(LocatedError):
    """A raw source cannot be read at all, or strict mode met a bad row."""
