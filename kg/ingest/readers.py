"""Raw files → chunks of parsed rows, each row knowing its line in the file.

The fast path hands whole byte blocks to pyarrow's multithreaded C++
readers and never touches a row in Python. Rows that break a block (bad
JSON, bad encoding, a JSON type that changes between rows) send only that
block down the slow path, where each line is parsed alone so the bad ones
can be quarantined with their line number and the good ones kept.

Line numbers stay exact on both paths: a block's rows are its non-blank
lines in order, counted with C-speed byte operations; only blocks that hold
blank or invalid lines are split in Python to find which lines they are.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from kg.errors import IngestError
from kg.ingest.mapping import SourceSpec

BLOCK_BYTES = 16 << 20
RAW_LIMIT = 1000
_BOM = b"\xef\xbb\xbf"
_JSON_BLANK = b" \t\r"  # pyarrow.json skips whitespace-only lines
_CSV_BLANK = b"\r"  # pyarrow.csv skips empty lines only


@dataclass
class BadRow:
    """A raw row that could not be parsed at all."""

    line: int
    reason: str
    raw: str


@dataclass
class Chunk:
    """Parsed rows of one block: a columnar ``frame`` (fast path) or parsed ``objects`` (slow path)."""

    lines: np.ndarray
    frame: pl.DataFrame | None = None
    objects: list[dict] | None = None
    bad: list[BadRow] = field(default_factory=list)
    blank: int = 0

    @property
    def rows_in(self) -> int:
        """Rows the file held in this block, parsed or not (blank lines are not rows)."""
        return len(self.lines) + len(self.bad)


def _clip(raw: bytes | str) -> str:
    text = raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")
    return text[:RAW_LIMIT]


def _blocks(path: Path, first_line: int, start: int = 0) -> Iterator[tuple[bytes, int]]:
    """Byte blocks cut at line ends, with the line number each block starts at."""
    line = first_line
    with path.open("rb") as fh:
        fh.seek(start)
        carry = b""
        if start == 0:
            head = fh.read(3)
            carry = head[3:] if head.startswith(_BOM) else head
        while True:
            data = fh.read(BLOCK_BYTES)
            if not data:
                break
            data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            yield block, line
            line += block.count(b"\n")
        if carry:
            yield carry, line


def _valid_text(block: bytes, first_line: int, encoding: str) -> tuple[bytes, list[BadRow]]:
    """The block as UTF-8, with lines that do not decode blanked out (and reported) so numbering holds."""
    try:
        text = block.decode(encoding)
        return (block if encoding.replace("-", "").lower() == "utf8" else text.encode("utf-8")), []
    except UnicodeDecodeError:
        pass
    out, bad = [], []
    for i, raw in enumerate(block.split(b"\n")):
        try:
            out.append(raw.decode(encoding).encode("utf-8"))
        except UnicodeDecodeError as exc:
            bad.append(BadRow(first_line + i, f"invalid {encoding} at byte {exc.start + 1} of the line", _clip(raw)))
            out.append(b"")
    return b"\n".join(out), bad


def _split_lines(block: bytes) -> list[bytes]:
    """The block's lines; a final newline ends the last line rather than starting an empty one."""
    lines = block.split(b"\n")
    return lines[:-1] if block.endswith(b"\n") else lines


def _has_blank(block: bytes, blank: bytes) -> bool:
    """Whether any line consists only of ``blank`` bytes, without splitting the block in Python.

    The pattern starts with a literal newline so the regex engine skips
    ahead quickly; the block's first and last lines are checked apart.
    """
    if re.search(rb"\n[" + re.escape(blank) + rb"]*\n", block):
        return True
    head = block.split(b"\n", 1)[0]
    tail = block.rsplit(b"\n", 1)[-1]
    return not head.strip(blank) or (bool(tail) and not tail.strip(blank))


def _line_numbers(block: bytes, first_line: int, blank: bytes, skip: set[int]) -> np.ndarray:
    """Line numbers of the block's rows: its lines minus blank ones and those in ``skip``."""
    n = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    if not skip and not _has_blank(block, blank):
        return np.arange(first_line, first_line + n, dtype=np.int64)
    return np.array(
        [
            first_line + i
            for i, raw in enumerate(_split_lines(block))
            if raw.strip(blank) and first_line + i not in skip
        ],
        dtype=np.int64,
    )


def _blank_count(block: bytes, rows: int, bad: int) -> int:
    n = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
    return n - rows - bad


def read_jsonl(path: Path, spec: SourceSpec) -> Iterator[Chunk]:
    """JSON Lines through ``pyarrow.json`` block by block; a block it refuses is parsed line by line."""
    for raw_block, first in _blocks(path, 1):
        block, bad = _valid_text(raw_block, first, spec.encoding)
        lines = _line_numbers(block, first, _JSON_BLANK, {b.line for b in bad})
        if not lines.size:
            yield Chunk(lines=lines, bad=bad, blank=_blank_count(block, 0, len(bad)))
            continue
        try:
            table = pajson.read_json(
                pa.py_buffer(block), read_options=pajson.ReadOptions(use_threads=True, block_size=1 << 22)
            )
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            table = None
        if table is None or table.num_rows != lines.size:
            yield _jsonl_slow(block, first, bad)
            continue
        yield Chunk(lines=lines, frame=pl.from_arrow(table), bad=bad, blank=_blank_count(block, lines.size, len(bad)))


def _jsonl_slow(block: bytes, first: int, bad: list[BadRow]) -> Chunk:
    """One line at a time: the exact reason and line for each row pyarrow would not take."""
    known_bad = {b.line for b in bad}
    objects, lines, blank = [], [], 0
    for i, raw in enumerate(_split_lines(block)):
        line = first + i
        if line in known_bad:
            continue
        if not raw.strip(_JSON_BLANK):
            blank += 1
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError as exc:
            bad.append(BadRow(line, f"malformed JSON: {exc.msg} at column {exc.colno}", _clip(raw)))
            continue
        if not isinstance(obj, dict):
            bad.append(BadRow(line, f"expected a JSON object, found {type(obj).__name__}", _clip(raw)))
            continue
        objects.append(obj)
        lines.append(line)
    bad.sort(key=lambda b: b.line)
    return Chunk(lines=np.array(lines, dtype=np.int64), objects=objects, bad=bad, blank=blank)


def read_csv_header(path: Path, spec: SourceSpec) -> tuple[list[str], int]:
    """Column names (renamed per ``spec.header``) and the byte offset where data starts."""
    with path.open("rb") as fh:
        first = fh.readline()
    offset = len(first)
    first = first.removeprefix(_BOM)
    if not first.strip():
        return [], offset
    try:
        text = first.decode(spec.encoding)
    except UnicodeDecodeError as exc:
        raise IngestError(str(path), 1, None, f"header is not valid {spec.encoding}: {exc.reason}") from exc
    names = next(csv.reader([text.rstrip("\r\n")], delimiter=spec.delimiter))
    if spec.header == "uri_last_segment":
        names = [re.split(r"[/#]", n.rstrip("/#"))[-1] for n in names]
    seen: set[str] = set()
    for n in names:
        if n in seen:
            raise IngestError(str(path), 1, n, "duplicate column name in the header")
        seen.add(n)
    return names, offset


def read_csv(path: Path, spec: SourceSpec) -> Iterator[Chunk]:
    """Delimited text through ``pyarrow.csv``, every column read as text (typing happens in one place)."""
    names, offset = read_csv_header(path, spec)
    if not names:
        return
    for raw_block, first in _blocks(path, 2, start=offset):
        block, bad = _valid_text(raw_block, first, spec.encoding)
        invalid: list[tuple[str, str]] = []

        def on_invalid(row: pacsv.InvalidRow, invalid: list = invalid) -> str:
            invalid.append((row.text, f"expected {row.expected_columns} columns, found {row.actual_columns}"))
            return "skip"

        table = pacsv.read_csv(
            io.BytesIO(block),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=True, block_size=1 << 22),
            parse_options=pacsv.ParseOptions(delimiter=spec.delimiter, invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        _locate(block, first, invalid, bad)
        lines = _line_numbers(block, first, _CSV_BLANK, {b.line for b in bad})
        bad.sort(key=lambda b: b.line)
        yield Chunk(lines=lines, frame=pl.from_arrow(table), bad=bad, blank=_blank_count(block, lines.size, len(bad)))


def _locate(block: bytes, first: int, invalid: list[tuple[str, str]], bad: list[BadRow]) -> None:
    """Add the rows pyarrow skipped to ``bad`` with their line numbers (its handler gets the text only)."""
    if not invalid:
        return
    lines = _split_lines(block)
    taken: set[int] = set()
    for text, reason in invalid:
        raw = text.encode("utf-8")
        for i, candidate in enumerate(lines):
            if i not in taken and candidate.rstrip(b"\r") == raw:
                taken.add(i)
                bad.append(BadRow(first + i, reason, _clip(raw)))
                break


def read_json_array(path: Path, spec: SourceSpec, rows: int = 200_000) -> Iterator[Chunk]:
    """A JSON array of objects; ``line`` is the 1-based record number.

    An array cannot be split safely without parsing it, so the file is read
    whole (polars' reader, then Python's only where polars refuses); use JSON
    Lines for files larger than memory.
    """
    data = path.read_bytes().removeprefix(_BOM)
    try:
        data = data.decode(spec.encoding).encode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(str(path), line, None, f"invalid {spec.encoding}: {exc.reason}") from exc
    if not data.strip():
        return
    if not data.lstrip().startswith(b"["):
        raise IngestError(str(path), 1, None, 'expected a JSON array of objects (format = "json")')
    try:
        frame = pl.read_json(io.BytesIO(data), infer_schema_length=None)
    except Exception:  # noqa: BLE001 - polars raises several types; the slow path gives the precise reason
        frame = None
    if frame is not None and frame.width:
        for start in range(0, frame.height, rows):
            part = frame.slice(start, rows)
            yield Chunk(lines=np.arange(start + 1, start + part.height + 1, dtype=np.int64), frame=part)
        return
    try:
        items = json.loads(data)
    except json.JSONDecodeError as exc:
        raise IngestError(str(path), exc.lineno, None, f"malformed JSON: {exc.msg} at column {exc.colno}") from exc
    for start in range(0, len(items), rows):
        objects, lines, bad = [], [], []
        for n, obj in enumerate(items[start : start + rows], start=start + 1):
            if isinstance(obj, dict):
                objects.append(obj)
                lines.append(n)
            else:
                bad.append(BadRow(n, f"expected a JSON object, found {type(obj).__name__}", _clip(json.dumps(obj))))
        yield Chunk(lines=np.array(lines, dtype=np.int64), objects=objects, bad=bad)


READERS = {"jsonl": read_jsonl, "csv": read_csv, "json": read_json_array}


def read_chunks(path: Path, spec: SourceSpec) -> Iterator[Chunk]:
    """Chunks of ``path`` read with the reader its mapping's format names.

    The next chunk is parsed on a worker thread while the caller maps the
    current one: pyarrow and polars both release the GIL, so reading and
    mapping overlap, at the cost of one more block in memory.
    """
    if not path.is_file():
        raise IngestError(str(path), None, None, "no such file")
    chunks = READERS[spec.format](path, spec)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="kg-read") as pool:
        pending = pool.submit(next, chunks, None)
        while (chunk := pending.result()) is not None:
            pending = pool.submit(next, chunks, None)
            yield chunk
