"""Documents in, chunks out: text files, folders, JSON Lines, records tables; chunks keep document offsets.

Every span the pipeline stores (a mention, an evidence quote) is a character
offset into the *original* document text, so a chunk is never a copy that
was cleaned or re-joined: it is ``text[start:end]`` of its document, and a
local offset inside it becomes a document offset by adding ``start``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from extraction.errors import DocumentError

TEXT_SUFFIXES = (".txt", ".md")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class Document:
    """One text to extract from; ``source``/``line`` say where it was read, for error messages."""

    doc_id: str
    text: str
    source: str | None = None
    line: int | None = None

    @cached_property
    def sha256(self) -> str:
        """Content hash: part of every cache key, so an edited document is asked about again."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Chunk:
    """``text == document.text[start:end]``; ``index`` counts chunks within the document."""

    doc_id: str
    index: int
    start: int
    end: int
    text: str
    doc_sha256: str


@dataclass
class Corpus:
    """Loaded documents plus how many inputs were skipped and why (empty text, no abstract)."""

    documents: list[Document] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    def __len__(self) -> int:
        return len(self.documents)


# -- loading ---------------------------------------------------------------------------------------


def load_documents(
    paths: Sequence[str | Path],
    *,
    text_field: str = "text",
    id_field: str = "id",
) -> Corpus:
    """Read every input: a text file, a folder (``*.txt``/``*.md`` below it), JSON Lines, or Parquet.

    JSON Lines rows need ``text_field`` (a string); the id is ``id_field``
    or, when a row has none, ``file:line``. A Parquet file with ``abstract``,
    ``source`` and ``source_id`` columns is a records table (doc id
    ``source:source_id``, rows without an abstract skipped and counted);
    another Parquet file is read like JSON Lines. Two documents with one id
    are an error: results keyed by doc id would silently mix.
    """
    corpus = Corpus()
    seen: dict[str, str] = {}
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DocumentError(str(path), None, None, "no such file or folder")
        for doc in _read_path(path, text_field, id_field, corpus.skipped):
            where = f"{doc.source}:{doc.line}" if doc.line is not None else str(doc.source)
            if doc.doc_id in seen:
                first = seen[doc.doc_id]
                raise DocumentError(where, None, id_field, f"duplicate document id {doc.doc_id!r} (first in {first})")
            seen[doc.doc_id] = where
            corpus.documents.append(doc)
    return corpus


def as_documents(items: Iterable[Document | tuple[str, str]]) -> list[Document]:
    """Documents from ``Document`` objects or ``(doc_id, text)`` pairs (what an evaluator has)."""
    docs = [item if isinstance(item, Document) else Document(str(item[0]), str(item[1])) for item in items]
    ids = Counter(d.doc_id for d in docs)
    dupes = [i for i, n in ids.items() if n > 1]
    if dupes:
        raise DocumentError("<documents>", None, "doc_id", f"duplicate document id(s) {sorted(dupes)[:5]}")
    return docs


def _read_path(path: Path, text_field: str, id_field: str, skipped: Counter) -> Iterable[Document]:
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise DocumentError(str(path), None, None, f"folder holds no {'/'.join(TEXT_SUFFIXES)} files")
        for file in files:
            yield from _read_text(file, file.relative_to(path).as_posix(), skipped)
        return
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        yield from _read_jsonl(path, text_field, id_field, skipped)
    elif suffix in PARQUET_SUFFIXES:
        yield from _read_parquet(path, text_field, id_field, skipped)
    else:
        yield from _read_text(path, path.as_posix(), skipped)


def _read_text(path: Path, doc_id: str, skipped: Counter) -> Iterable[Document]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(str(path), None, None, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise DocumentError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from exc
    if not text.strip():
        skipped["empty text"] += 1
        return
    yield Document(doc_id, text, str(path), None)


def _read_jsonl(path: Path, text_field: str, id_field: str, skipped: Counter) -> Iterable[Document]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise DocumentError(str(path), None, None, f"cannot read: {exc.strerror or exc}") from exc
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                doc = _jsonl_row(path, number, line, text_field, id_field)
                if doc.text.strip():
                    yield doc
                else:
                    skipped["empty text"] += 1
        except UnicodeDecodeError as exc:
            raise DocumentError(str(path), None, None, f"not UTF-8 text ({exc.reason})") from exc


def _jsonl_row(path: Path, number: int, line: str, text_field: str, id_field: str) -> Document:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DocumentError(str(path), number, None, f"not valid JSON: {exc.msg} (column {exc.colno})") from exc
    if not isinstance(row, dict):
        raise DocumentError(str(path), number, None, f"expected a JSON object, got {type(row).__name__}")
    if text_field not in row:
        raise DocumentError(str(path), number, text_field, f"missing (fields: {sorted(row)[:10]}; see --text-field)")
    text = row[text_field]
    if not isinstance(text, str):
        raise DocumentError(str(path), number, text_field, f"expected a string, got {type(text).__name__}")
    doc_id = row.get(id_field)
    if isinstance(doc_id, dict | list):
        raise DocumentError(str(path), number, id_field, "a document id must be a string or number")
    return Document(str(doc_id) if doc_id is not None else f"{path.name}:{number}", text, str(path), number)


def _read_parquet(path: Path, text_field: str, id_field: str, skipped: Counter) -> Iterable[Document]:
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise DocumentError(str(path), None, None, f"not a readable Parquet file: {exc}") from exc
    names = set(schema.names)
    if {"abstract", "source", "source_id"} <= names:
        table = pq.read_table(path, columns=["source", "source_id", "abstract"])
        ids = pc.binary_join_element_wise(table["source"], table["source_id"], ":")
        texts = table["abstract"]
        field_name = "abstract"
    elif text_field in names:
        columns = [text_field] + ([id_field] if id_field in names else [])
        table = pq.read_table(path, columns=columns)
        texts = table[text_field]
        if id_field in names:
            ids = table[id_field].cast(pa.string())
        else:
            ids = pa.chunked_array([[f"{path.name}:{i}" for i in range(1, table.num_rows + 1)]], pa.string())
        field_name = text_field
    else:
        raise DocumentError(
            str(path), None, text_field,
            f"no text column: a records table needs 'abstract', 'source', 'source_id'; columns: {sorted(names)[:12]}",
        )
    if not pa.types.is_string(texts.type) and not pa.types.is_large_string(texts.type):
        raise DocumentError(str(path), None, field_name, f"expected a string column, got {texts.type}")
    for row, (doc_id, text) in enumerate(zip(ids.to_pylist(), texts.to_pylist(), strict=True), start=1):
        if text is None or not text.strip():
            skipped["no text" if field_name != "abstract" else "no abstract"] += 1
            continue
        if doc_id is None:
            raise DocumentError(str(path), row, id_field, "missing document id")
        yield Document(doc_id, text, str(path), row)


# -- sentences and chunks ----------------------------------------------------------------------------

# A sentence ends at . ! ? (optionally followed by closing quotes/brackets) and whitespace, when the next
# sentence starts with an upper-case letter, a digit or an opening quote.
_BOUNDARY = re.compile(r"""[.!?…]+["'”’)\]]*(\s+)(?=["'“‘(\[]?[A-ZÀ-ÖØ-Þ\d])""")
_ABBREVIATIONS = frozenset(
    ["mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "no", "vol", "ch", "pt", "inc", "ltd", "co", "corp",
     "dept", "est", "fig", "gen", "gov", "lt", "col", "sgt", "capt", "rev"]
)
_PARAGRAPH = re.compile(r"\n\s*\n")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, whitespace between sentences excluded; a paragraph break always splits.

    Rule-based on purpose: no model to load, and a wrong split only makes a
    chunk boundary or a pair window slightly off, never loses text.
    """
    cuts: set[int] = set()
    for m in _BOUNDARY.finditer(text):
        before = text[: m.start(1)].rstrip(".!?…\"'”’)]")
        word = before[before.rfind(" ") + 1 :] if " " in before else before
        if len(word) == 1 and word.isupper():  # an initial: "J. R. R. Tolkien"
            continue
        if word.lower().strip("(\"'") in _ABBREVIATIONS:
            continue
        cuts.add(m.start(1))
        cuts.add(m.end(1))
    for m in _PARAGRAPH.finditer(text):
        cuts.add(m.start())
        cuts.add(m.end())
    bounds = sorted(cuts | {0, len(text)})
    spans = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            lead = len(piece) - len(piece.lstrip())
            spans.append((start + lead, start + lead + len(stripped)))
    return spans


def _split_long(start: int, end: int, text: str, max_chars: int) -> list[tuple[int, int]]:
    """A sentence longer than a chunk, cut at the last whitespace before each ``max_chars`` limit."""
    pieces = []
    while end - start > max_chars:
        cut = text.rfind(" ", start + 1, start + max_chars)
        cut = cut if cut > start else start + max_chars
        pieces.append((start, cut))
        start = cut
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        pieces.append((start, end))
    return pieces


def chunk_document(doc: Document, max_chars: int = 1500, overlap: int = 200) -> list[Chunk]:
    """Chunks of whole sentences up to ``max_chars``; consecutive chunks share up to ``overlap`` characters.

    The overlap is whole sentences taken back from the end of the previous
    chunk, so a relation stated across a boundary is seen whole at least
    once; duplicates that the overlap produces are merged after extraction.
    """
    if max_chars < 50:
        raise ValueError(f"max_chars must be at least 50, got {max_chars}")
    if not 0 <= overlap < max_chars:
        raise ValueError(f"overlap must be in [0, max_chars), got {overlap}")
    units = [p for s, e in sentence_spans(doc.text) for p in _split_long(s, e, doc.text, max_chars)]
    chunks: list[Chunk] = []
    i = 0
    while i < len(units):
        j = i
        while j + 1 < len(units) and units[j + 1][1] - units[i][0] <= max_chars:
            j += 1
        start, end = units[i][0], units[j][1]
        chunks.append(Chunk(doc.doc_id, len(chunks), start, end, doc.text[start:end], doc.sha256))
        if j + 1 >= len(units):
            break
        nxt = j + 1
        while nxt - 1 > i and end - units[nxt - 1][0] <= overlap:
            nxt -= 1
        i = nxt
    return chunks
