"""Loading documents from every input kind, clear errors for bad input, chunks that keep document offsets."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from extraction.documents import Document, as_documents, chunk_document, load_documents, sentence_spans
from extraction.errors import DocumentError
from schemas.tables import RECORDS
from tests.store.helpers import table


def test_text_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "plots" / "sub").mkdir(parents=True)
    (tmp_path / "plots" / "a.txt").write_text("Heat is a 1995 film.", encoding="utf-8")
    (tmp_path / "plots" / "sub" / "b.md").write_text("Michael Mann directed it.", encoding="utf-8")
    (tmp_path / "plots" / "skip.csv").write_text("not,a,document", encoding="utf-8")
    (tmp_path / "plots" / "empty.txt").write_text("  \n", encoding="utf-8")
    single = tmp_path / "one.txt"
    single.write_text("Knives Out.", encoding="utf-8")
    corpus = load_documents([tmp_path / "plots", single])
    assert [d.doc_id for d in corpus.documents] == ["a.txt", "sub/b.md", single.as_posix()]
    assert corpus.documents[1].text == "Michael Mann directed it."
    assert corpus.skipped == {"empty text": 1}


def test_jsonl_text_and_id_fields(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    rows = [{"doc": "x1", "body": "First text."}, {"body": "No id here."}, {"doc": 7, "body": ""}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    corpus = load_documents([path], text_field="body", id_field="doc")
    assert [(d.doc_id, d.text, d.line) for d in corpus.documents] == [
        ("x1", "First text.", 1),
        ("docs.jsonl:2", "No id here.", 2),
    ]
    assert corpus.skipped == {"empty text": 1}


@pytest.mark.parametrize(
    ("line", "field", "message"),
    [
        ('{"text": "ok"', None, "not valid JSON"),
        ('["a list"]', None, "expected a JSON object"),
        ('{"body": "wrong field"}', "text", "missing"),
        ('{"text": 42}', "text", "expected a string"),
    ],
)
def test_jsonl_errors_name_file_line_field(tmp_path: Path, line: str, field: str | None, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(DocumentError) as err:
        load_documents([path])
    assert err.value.file == str(path) and err.value.line == 2 and err.value.field == field
    assert message in str(err.value) and f"{path}:2" in str(err.value)


def test_records_table_uses_abstracts(tmp_path: Path) -> None:
    rows = [
        {"source": "tmdb", "source_id": "1", "type": "movie", "name": "Heat", "abstract": "A heist film."},
        {"source": "tmdb", "source_id": "2", "type": "movie", "name": "Up", "abstract": None},
        {"source": "imdb", "source_id": "9", "type": "person", "name": "Al Pacino", "abstract": "An actor."},
    ]
    path = tmp_path / "records.parquet"
    pq.write_table(table(RECORDS, rows), path)
    corpus = load_documents([path])
    assert [(d.doc_id, d.text) for d in corpus.documents] == [("tmdb:1", "A heist film."), ("imdb:9", "An actor.")]
    assert corpus.skipped == {"no abstract": 1}


def test_parquet_without_text_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "other.parquet"
    pq.write_table(pa.table({"id": ["a"], "title": ["Heat"]}), path)
    with pytest.raises(DocumentError, match="no text column"):
        load_documents([path])


def test_missing_path_undecodable_file_and_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match="no such file"):
        load_documents([tmp_path / "nope.txt"])
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Amélie".encode("latin-1"))
    with pytest.raises(DocumentError, match="not UTF-8"):
        load_documents([bad])
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "a", "text": "one"}\n{"id": "a", "text": "two"}\n', encoding="utf-8")
    with pytest.raises(DocumentError, match="duplicate document id 'a'"):
        load_documents([dup])
    with pytest.raises(DocumentError, match="duplicate"):
        as_documents([("a", "x"), ("a", "y")])


def test_sentences_skip_initials_and_abbreviations() -> None:
    text = "J. R. R. Tolkien wrote it. Dr. Who met Mr. Smith! Then what?\n\nA new paragraph"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "J. R. R. Tolkien wrote it.",
        "Dr. Who met Mr. Smith!",
        "Then what?",
        "A new paragraph",
    ]


def test_chunks_keep_offsets_and_overlap() -> None:
    sentences = [f"Sentence number {i} talks about Film {i} and Person {i}." for i in range(30)]
    doc = Document("d", "  " + " ".join(sentences) + "\n")
    chunks = chunk_document(doc, max_chars=300, overlap=120)
    assert len(chunks) > 3
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text and len(c.text) <= 300
        assert c.text.startswith("Sentence") and c.text.endswith(".")  # whole sentences
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start < a.end  # consecutive chunks share text
        assert a.end - b.start <= 120
        assert b.end > a.end  # and always move forward
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())  # no text lost


def test_a_sentence_longer_than_a_chunk_is_cut_at_spaces() -> None:
    doc = Document("d", "word " * 200)
    chunks = chunk_document(doc, max_chars=100, overlap=0)
    assert all(len(c.text) <= 100 and doc.text[c.start : c.end] == c.text for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks) == doc.text.replace(" ", "")
