"""WebNLG (2020 challenge, English) as an extraction test set: texts with the DBpedia triples they express.

Layout (``dev/<N>triples/<Category>.xml``): ``<entry category eid size>``
elements, each with one ``<modifiedtripleset>`` of ``<mtriple>Subject |
property | Object</mtriple>`` lines and one or more ``<lex>`` texts that
state exactly those triples (``originaltripleset`` is DBpedia's raw form and
is ignored: the modified set is what the texts were written from). ``eid``
repeats across files, so an entry's id here is ``<N>triples/<Category>/<eid>``.

DBpedia properties are not our relations. ``PREDICATE_MAP`` says, for each
property with a counterpart in ``schemas/ontology.toml``, which relation it is,
whether the direction flips (``author``: the book's author *wrote* the book),
and whether it only counts when its subject is a creative work (``country``
of a book is its country of origin; ``country`` of a city is no relation of
ours). Every other property is out of scope: its triples are listed and
counted, never scored. The subject of a triple is a work when, in the same
entry, it is the subject of a property only works have (``WORK_PROPERTIES``).
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from extraction.errors import ExtractionError

# predicate -> (relation, inverse, needs_work_subject, why)
PREDICATE_MAP: dict[str, tuple[str, bool, bool, str]] = {
    "author": ("wrote", True, False, "X author Y: Y wrote X"),
    "starring": ("acted_in", True, False, "X starring Y: Y acted in X"),
    "birthPlace": ("born_in", False, False, "person born in a place or country"),
    "nationality": ("citizen_of", False, False, "a person's nationality (objects may be demonyms: 'Americans')"),
    "spouse": ("spouse_of", False, False, "symmetric"),
    "award": ("won_award", False, False, "DBpedia 'award' lists awards received"),
    "publisher": ("production_company", False, False, "a publisher distributes the work (company: 'publisher')"),
    "broadcastedBy": ("production_company", False, False, "a broadcaster distributes the work (company: 'network')"),
    "precededBy": ("sequel_of", False, False, "X preceded by Y: X is the sequel of Y"),
    "followedBy": ("sequel_of", True, False, "X followed by Y: Y is the sequel of X"),
    "series": ("appears_in", False, False, "a comics character's series"),
    "firstAppearanceInFilm": ("appears_in", False, False, "the character appears in the film"),
    "academicDiscipline": ("about", False, False, "a journal is about its discipline (a concept)"),
    "country": ("country_of_origin", False, True, "only for works: a city's country is no relation of ours"),
    "language": ("originally_in_language", False, True, "only for works: a country's language is no relation of ours"),
    "genre": ("has_genre", False, True, "only for works: the ontology has no genre for people or bands"),
}

# Properties whose subject is always a creative work (book, journal, comic, series, film) in DBpedia.
WORK_PROPERTIES = frozenset({
    "author", "publisher", "isbnNumber", "oclcNumber", "issnNumber", "eissnNumber", "LCCN_number", "codenCode",
    "mediaType", "numberOfPages", "precededBy", "followedBy", "academicDiscipline", "editor", "impactFactor",
    "firstPublicationYear", "frequency", "libraryofCongressClassification", "starring", "broadcastedBy",
    "firstAired", "lastAired", "director", "producer", "musicComposer", "cinematography", "editing", "runtime",
})  # fmt: skip

ENTRY_SCHEMA = {"entry_id": pl.String, "category": pl.String, "size": pl.Int32, "file": pl.String,
                "texts": pl.List(pl.String)}
TRIPLE_SCHEMA = {"entry_id": pl.String, "subject": pl.String, "predicate": pl.String, "object": pl.String}


@dataclass(frozen=True)
class WebNLG:
    """``entries``: entry_id, category, size, file, texts (the good lexicalisations, or all when none is
    marked good). ``triples``: entry_id, subject, predicate, object, names as in the data (underscores)."""

    entries: pl.DataFrame
    triples: pl.DataFrame


def entity_name(value: str) -> str:
    """How a text writes a DBpedia resource or literal: underscores as spaces, literal quotes dropped."""
    text = value.strip()
    if len(text) >= 2 and text[0] == '"' and text[-1] == '"':
        text = text[1:-1]
    return text.replace("_", " ").strip()


def entity_name_expr(expr: pl.Expr) -> pl.Expr:
    """``entity_name`` as a polars expression."""
    return expr.str.strip_chars().str.replace(r'^"(.*)"$', "${1}").str.replace_all("_", " ").str.strip_chars()


def parse_webnlg_xml(source: str | bytes, file: str) -> tuple[list[dict], list[dict]]:
    """(entry rows, triple rows) of one WebNLG XML document; ``file`` names it in errors and entry ids."""
    try:
        root = ET.fromstring(source)
    except ET.ParseError as e:
        line, column = e.position
        raise ExtractionError(f"{file}:{line}:{column}: not WebNLG XML: {e}") from None
    entries, triples = [], []
    stem = file.replace("\\", "/").removesuffix(".xml").removesuffix("_allSolutions")
    for n, entry in enumerate(root.iter("entry"), 1):
        eid, category = entry.get("eid"), entry.get("category")
        if not eid or not category:
            raise ExtractionError(f"{file}: entry #{n}: missing attribute {'eid' if not eid else 'category'!r}")
        entry_id = f"{stem}/{eid}"
        tripleset = entry.find("modifiedtripleset")
        if tripleset is None:
            raise ExtractionError(f"{file}: entry {eid}: no <modifiedtripleset>")
        for m in tripleset.findall("mtriple"):
            parts = [p.strip() for p in (m.text or "").split(" | ")]
            if len(parts) != 3 or not all(parts):
                raise ExtractionError(f"{file}: entry {eid}: field 'mtriple': expected 'S | p | O', got {m.text!r}")
            triples.append({"entry_id": entry_id, "subject": parts[0], "predicate": parts[1], "object": parts[2]})
        lexes = [(lx.get("comment"), (lx.text or "").strip()) for lx in entry.findall("lex")]
        good = [t for c, t in lexes if c == "good" and t] or [t for _, t in lexes if t]
        size = entry.get("size")
        entries.append({"entry_id": entry_id, "category": category, "size": int(size) if size else None,
                        "file": file, "texts": good})
    return entries, triples


def read_webnlg(path: str | Path) -> WebNLG:
    """Every ``*.xml`` below ``path`` (e.g. ``../shared/data/webnlg/dev``), in a stable order."""
    root = Path(path)
    files = sorted(root.rglob("*.xml")) if root.is_dir() else [root]
    if not files or not files[0].is_file():
        raise ExtractionError(f"{root}: no WebNLG XML files (expected <N>triples/<Category>.xml below it)")
    entries, triples = [], []
    for f in files:
        rel = f.relative_to(root).as_posix() if root.is_dir() else f.name
        e, t = parse_webnlg_xml(f.read_bytes(), rel)
        entries += e
        triples += t
    return WebNLG(pl.DataFrame(entries, schema=ENTRY_SCHEMA), pl.DataFrame(triples, schema=TRIPLE_SCHEMA))


def mapping_table() -> pl.DataFrame:
    """PREDICATE_MAP as a frame: predicate, relation, inverse, needs_work_subject, note (for reports and docs)."""
    rows = [{"predicate": p, "relation": r, "inverse": inv, "needs_work_subject": w, "note": why}
            for p, (r, inv, w, why) in PREDICATE_MAP.items()]
    return pl.DataFrame(rows, schema={"predicate": pl.String, "relation": pl.String, "inverse": pl.Boolean,
                                      "needs_work_subject": pl.Boolean, "note": pl.String})


def map_triples(triples: pl.DataFrame) -> pl.DataFrame:
    """Each triple with ``relation``, ``subject``/``object`` in our direction (names as text writes them),
    and ``scope``: "in" or why it is out ("no counterpart: genre", "subject is not a work: country")."""
    works = triples.filter(pl.col("predicate").is_in(list(WORK_PROPERTIES))).select("entry_id", "subject").unique()
    mapped = (
        triples.with_row_index("triple")
        .join(mapping_table().drop("note"), on="predicate", how="left")
        .join(works.with_columns(is_work=pl.lit(True)), on=["entry_id", "subject"], how="left")
        .with_columns(pl.col("is_work").fill_null(False))
    )
    scope = (
        pl.when(pl.col("relation").is_null()).then(pl.lit("no counterpart: ") + pl.col("predicate"))
        .when(pl.col("needs_work_subject") & ~pl.col("is_work"))
        .then(pl.lit("subject is not a work: ") + pl.col("predicate"))
        .otherwise(pl.lit("in"))
    )
    s, o = entity_name_expr(pl.col("subject")), entity_name_expr(pl.col("object"))
    return mapped.select(
        "triple", "entry_id", "predicate", "relation",
        subject=pl.when(pl.col("inverse")).then(o).otherwise(s),
        object=pl.when(pl.col("inverse")).then(s).otherwise(o),
        scope=scope,
    ).sort("triple")  # fmt: skip


def sample_webnlg(
    data: WebNLG, n: int, *, seed: int = 0, categories: tuple[str, ...] | None = None
) -> tuple[list[tuple[str, str]], pl.DataFrame]:
    """``n`` entries (seeded) with at least one in-scope triple, one text each: (documents, mapped triples).

    Documents are ``(entry_id, text)``; the text is one of the entry's
    lexicalisations, picked with the same seed. Triples are ``map_triples``
    rows of the chosen entries with ``doc_id`` = entry id (out-of-scope ones
    included, so a report can say what was not scored).
    """
    mapped = map_triples(data.triples)
    entries = data.entries.filter(pl.col("texts").list.len() > 0)
    if categories:
        if not set(categories) & set(data.entries["category"].unique()):
            raise ExtractionError(f"WebNLG data has none of the categories {sorted(categories)}")
        entries = entries.filter(pl.col("category").is_in(list(categories)))
    eligible = mapped.filter(pl.col("scope") == "in")["entry_id"].unique()
    entries = entries.filter(pl.col("entry_id").is_in(eligible.to_list())).sort("entry_id")
    rng = random.Random(seed)
    chosen = sorted(rng.sample(range(entries.height), min(n, entries.height)))
    picked = entries[chosen]
    docs = [(e, texts[rng.randrange(len(texts))]) for e, texts in picked.select("entry_id", "texts").iter_rows()]
    triples = mapped.filter(pl.col("entry_id").is_in(picked["entry_id"].to_list())).rename({"entry_id": "doc_id"})
    return docs, triples

