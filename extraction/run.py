"""``extract``: documents + an LLM client → MENTIONS and RELATIONS tables with provenance, and a report.

    from extraction import extract, load_documents
    from extraction.llm import open_client

    with open_client() as llm:                                  # bundled model; or Endpoint(model=..., base_url=...)
        result = extract(load_documents(["plots/"]), llm, mode="guided")
    result.relations        # RELATIONS: accepted and rejected rows, each with evidence, offsets, reason

Pipeline: a mode proposes candidates (``open_mode``, ``guided``) → gates
(labels, grounding, endpoints, confidence) → de-duplication across chunks
and samples → optional judge → linking → tables. Nothing is dropped on the way: a
candidate either comes out accepted, or rejected with its reason, and every
failed LLM question is counted in the report.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from extraction.asking import Asker, cache_key, usage_delta
from extraction.documents import Corpus, Document, as_documents, sentence_spans
from extraction.errors import ExtractionError
from extraction.found import Found, norm
from extraction.gates import GateConfig, check_relation, ontology_reason, reason_code
from extraction.gazetteer import Gazetteer
from extraction.guided import run_guided
from extraction.linking import LinkConfig, document_years, link_mentions, new_entity_tables
from extraction.llm import Request
from extraction.open_mode import run_open
from extraction.prompts import JUDGE_PROMPT, RELATION_PROMPT, judge_question, messages, open_prompt, type_prompt
from extraction.responses import JudgeVerdict, schema_version
from schemas.ontology import Ontology, load_ontology
from schemas.tables import MENTIONS, RELATIONS, conform

MODES = ("open", "guided")


@dataclass(frozen=True)
class ExtractOptions:
    """Sizes and bounds of a run (the gates and linking have their own configs)."""

    chunk_chars: int = 1500  # about 400 tokens of text: room for the prompt in a 4k context
    chunk_overlap: int = 200
    max_tokens_open: int = 1024
    max_tokens_type: int = 32
    max_tokens_relation: int = 96
    max_tokens_judge: int = 16
    max_mentions_per_sentence: int = 8  # guided: pairs grow quadratically; the rest of a crowded sentence is skipped


@dataclass
class ExtractionReport:
    """What a run did and what it cost; ``as_dict`` is what the CLI prints and writes."""

    run_id: str
    mode: str
    model: str
    prompt_versions: dict[str, str]
    documents: int = 0
    skipped_documents: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    failed_requests: dict[str, int] = field(default_factory=dict)
    mentions: int = 0
    mentions_by_link: dict[str, int] = field(default_factory=dict)
    mentions_rejected: dict[str, int] = field(default_factory=dict)
    relations_accepted: int = 0
    relations_rejected: dict[str, int] = field(default_factory=dict)
    grounding: dict[str, int] = field(default_factory=dict)
    duplicates_merged: int = 0
    usage: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    llm_wall_seconds: float = 0.0
    total_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def outside_llm_share(self) -> float:
        """Share of the run's wall time not spent waiting for the LLM (the pipeline's own overhead)."""
        if self.total_seconds <= 0:
            return 0.0
        return max(0.0, self.total_seconds - self.llm_wall_seconds) / self.total_seconds

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["relations_rejected_total"] = sum(self.relations_rejected.values())
        out["outside_llm_share"] = round(self.outside_llm_share, 4)
        return out


@dataclass
class ExtractionResult:
    """The tables of one run. ``records``/``crosswalk`` hold the entities first seen in text (link "new")."""

    mentions: pa.Table  # MENTIONS
    relations: pa.Table  # RELATIONS
    records: pa.Table  # RECORDS rows, source "text"
    crosswalk: pa.Table  # CROSSWALK rows for those records
    rejected_mentions: pl.DataFrame  # doc_id, chunk, text, type, reason
    report: ExtractionReport
    config: dict[str, Any] = field(default_factory=dict)

    def accepted(self) -> pa.Table:
        """The accepted relations only."""
        return self.relations.filter(pc.equal(self.relations["status"], "accepted"))


def new_run_id() -> str:
    return f"extract-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def extract(
    documents: Corpus | Iterable[Document | tuple[str, str]],
    client: Any,
    *,
    mode: str = "open",
    ontology: Ontology | None = None,
    gates: GateConfig | None = None,
    run_id: str | None = None,
    gazetteer: Gazetteer | None = None,
    linking: LinkConfig | None = None,
    options: ExtractOptions | None = None,
    progress: bool = False,
) -> ExtractionResult:
    """Extract typed mentions and relations from ``documents`` with ``client`` (an ``extraction.llm`` client).

    ``documents``: a ``Corpus`` from ``load_documents``, ``Document``s, or
    ``(doc_id, text)`` pairs. ``mode``: "open" (the LLM proposes) or
    "guided" (gazetteer + detector propose, the LLM answers narrow
    questions). ``gazetteer``: known names for guided spotting and for
    linking (either mode); without one every mention is new or unlinked.
    """
    t0 = time.perf_counter()
    if mode not in MODES:
        raise ExtractionError(f"mode must be one of {MODES}, not {mode!r}")
    ontology = ontology or load_ontology()
    gates = gates or GateConfig()
    if gates.samples < 1:
        raise ExtractionError(f"samples must be at least 1, got {gates.samples}")
    linking = linking or LinkConfig()
    options = options or ExtractOptions()
    run_id = run_id or new_run_id()
    skipped = dict(documents.skipped) if isinstance(documents, Corpus) else {}
    docs = as_documents(documents.documents if isinstance(documents, Corpus) else documents)
    model = str(client.model_name)
    before = client.usage.as_dict()

    with Asker(client, progress=progress) as asker:
        if mode == "open":
            found = run_open(
                docs, asker, model, ontology, gates, chunk_chars=options.chunk_chars,
                chunk_overlap=options.chunk_overlap, max_tokens=options.max_tokens_open,
            )
        else:
            found = run_guided(
                docs, asker, model, ontology, gates, gazetteer, chunk_chars=options.chunk_chars,
                chunk_overlap=options.chunk_overlap, max_tokens_type=options.max_tokens_type,
                max_tokens_relation=options.max_tokens_relation,
                max_per_sentence=options.max_mentions_per_sentence,
            )
        by_id = {d.doc_id: d for d in docs}
        relations = [_gate(r, by_id[r["doc_id"]].text, ontology, gates) for r in found.relations]
        relations, duplicates = _dedupe_relations(relations, ontology)  # before the judge: ask once per fact
        if gates.judge:
            relations = judge(relations, by_id, asker, ontology, options.max_tokens_judge)

    mentions = _link(found, docs, gazetteer, ontology, linking)
    relations = _attach_links(relations, mentions, ontology)
    mentions_table = _mentions_table(mentions, run_id)
    relations_table = _relations_table(relations, run_id)
    records, crosswalk = new_entity_tables(mentions, run_id)

    prompts = {"open": open_prompt(ontology).version} if mode == "open" else {
        "type": type_prompt(ontology).version, "relation": RELATION_PROMPT.version}
    if gates.judge:
        prompts["judge"] = JUDGE_PROMPT.version
    report = ExtractionReport(run_id, mode, model, prompts, documents=len(docs), skipped_documents=skipped)
    report.counts = dict(found.counts)
    report.requests = asker.requests
    report.failed_requests = dict(asker.failures)
    report.errors = list(asker.errors)
    report.mentions = mentions_table.num_rows
    report.mentions_by_link = dict(Counter(mentions.unique(["doc_id", "start", "end", "type"])["link"].to_list()))
    report.mentions_rejected = dict(Counter(reason_code(m["reason"]) for m in found.rejected_mentions))
    statuses = Counter(relations_table["status"].to_pylist())
    report.relations_accepted = statuses.get("accepted", 0)
    report.relations_rejected = dict(
        Counter(reason_code(r["reason"]) for r in relations if r["status"] == "rejected")
    )
    report.grounding = dict(Counter(r["grounding"] for r in relations if r["status"] == "accepted"))
    report.duplicates_merged = duplicates
    report.usage = usage_delta(before, client.usage.as_dict())
    report.cost = type(client.usage)(**report.usage).cost(client.endpoint)
    report.llm_wall_seconds = asker.wall_seconds
    report.total_seconds = time.perf_counter() - t0
    rejected_mentions = pl.DataFrame(
        [{k: m.get(k) for k in ("doc_id", "chunk", "text", "type", "reason")} for m in found.rejected_mentions],
        schema={"doc_id": pl.String, "chunk": pl.Int32, "text": pl.String, "type": pl.String, "reason": pl.String},
    )
    config = {"mode": mode, "model": model, "gates": gates.__dict__, "linking": linking.__dict__,
              "options": options.__dict__, "prompts": prompts}
    return ExtractionResult(mentions_table, relations_table, records, crosswalk, rejected_mentions, report, config)


# -- gates and judge -------------------------------------------------------------------------------


def _gate(row: dict, doc_text: str, ontology: Ontology, gates: GateConfig) -> dict:
    s0, s1 = row["context_start"], row["context_end"]
    return check_relation(row, doc_text[s0:s1], s0, doc_text, ontology, gates)


def judge(rows: list[dict], docs: dict[str, Document], asker: Asker, ontology: Ontology, max_tokens: int) -> list[dict]:
    """Ask the judge prompt about every accepted row; a "no" (or no answer) rejects it with reason ``judge``."""
    todo = [i for i, r in enumerate(rows) if r["status"] == "accepted"]
    version = schema_version(JudgeVerdict)
    requests = []
    spans: dict[str, list[tuple[int, int]]] = {}
    for i in todo:
        r = rows[i]
        doc = docs[r["doc_id"]]
        if doc.doc_id not in spans:
            spans[doc.doc_id] = sentence_spans(doc.text)
        c0, c1 = _sentence_window(spans[doc.doc_id], r["start"], r["end"])
        question = judge_question(r["subject"], r["relation"], r["object"],
                                  ontology.relation_types[r["relation"]].doc, r["evidence"])
        requests.append(Request(
            messages(JUDGE_PROMPT, doc.text[c0:c1], question), JudgeVerdict,
            cache_key("judge", doc.sha256, c0, c1, r["start"], r["end"], r["subject"], r["relation"], r["object"],
                      JUDGE_PROMPT.version, version),
            max_tokens,
        ))
    answers = asker.ask(requests, "judge")
    out = list(rows)
    for i, answer in zip(todo, answers, strict=True):
        if isinstance(answer, Exception):
            out[i] = {**rows[i], "status": "rejected", "reason": "judge: no verdict (the judge question failed)"}
        elif getattr(answer.value, "supported", None) != "yes":
            out[i] = {**rows[i], "status": "rejected", "reason": "judge: the text does not support it"}
    return out


def _sentence_window(sentences: list[tuple[int, int]], start: int, end: int) -> tuple[int, int]:
    """The sentences that overlap [start, end): what the judge reads."""
    spans = [s for s in sentences if s[0] < end and s[1] > start]
    return (spans[0][0], spans[-1][1]) if spans else (start, end)


# -- linking and de-duplication --------------------------------------------------------------------


def _link(found: Found, docs: list[Document], gazetteer: Gazetteer | None, ontology: Ontology,
          config: LinkConfig) -> pl.DataFrame:
    """Mentions (one row per document span) with entity_id, link_score, link and entity_type."""
    schema = {"doc_id": pl.String, "chunk": pl.Int32, "text": pl.String, "asked": pl.String, "type": pl.String,
              "start": pl.Int64, "end": pl.Int64, "confidence": pl.Float64, "model": pl.String,
              "prompt_version": pl.String}
    rows = [{k: m.get(k) for k in schema} for m in found.mentions]
    frame = pl.DataFrame(rows, schema=schema).with_columns(pl.col("asked").fill_null(pl.col("text")))
    # One linking decision per (document, name, type): the same name twice in a document is the same entity.
    keys = (
        frame.with_columns(key=pl.col("text").str.to_lowercase().str.replace_all(r"\s+", " "))
        .group_by("doc_id", "key", "type", maintain_order=True)
        .agg(pl.col("text").first(), pl.col("confidence").max())
        .with_row_index("mid")
    )
    years = document_years([d.doc_id for d in docs], [d.text for d in docs])
    linked = link_mentions(keys, gazetteer, years, ontology, config)
    types = gazetteer.names.select("entity_id", entity_type="type").unique("entity_id") if gazetteer else None
    if types is not None:
        linked = linked.join(types, on="entity_id", how="left")
    else:
        linked = linked.with_columns(entity_type=pl.lit(None, pl.String))
    linked = linked.with_columns(
        entity_type=pl.when(pl.col("link") == "linked").then(pl.col("entity_type").fill_null(pl.col("type")))
        .when(pl.col("entity_id").is_not_null()).then(pl.col("type"))
    )
    return (
        frame.with_columns(key=pl.col("text").str.to_lowercase().str.replace_all(r"\s+", " "))
        .join(linked.select("doc_id", "key", "type", "entity_id", "link_score", "link", "entity_type"),
              on=["doc_id", "key", "type"], how="left")
        .drop("key")
    )


def _attach_links(relations: list[dict], mentions: pl.DataFrame, ontology: Ontology) -> list[dict]:
    """Subject/object ids from the linked mentions; linked entity types are re-checked against the ontology.

    A mention typed "movie" may link to a stored "series" (a sibling type):
    the relation is then stated with the stored types, and rejected if the
    ontology does not allow it for them, so the store never sees a type
    combination it would refuse.
    """
    index: dict[tuple, tuple[str | None, str | None]] = {}
    for m in mentions.select("doc_id", "text", "asked", "type", "entity_id", "entity_type").iter_rows(named=True):
        for form in (m["text"], m["asked"]):
            index.setdefault((m["doc_id"], norm(form), m["type"]), (m["entity_id"], m["entity_type"]))
    out = []
    for r in relations:
        s_id, s_type = index.get((r["doc_id"], norm(r["subject"]), r["subject_type"]), (None, None))
        o_id, o_type = index.get((r["doc_id"], norm(r["object"]), r["object_type"]), (None, None))
        row = {**r, "subject_id": s_id, "object_id": o_id}
        if row["status"] == "accepted" and (s_type or o_type):
            st, ot = s_type or r["subject_type"], o_type or r["object_type"]
            reason = ontology_reason(ontology, r["relation"], st, ot)
            if reason is not None:
                row.update(status="rejected", reason=f"ontology: linked entity types: {reason}")
            else:
                row.update(subject_type=st, object_type=ot)
        out.append(row)
    return out


def _dedupe_relations(rows: list[dict], ontology: Ontology) -> tuple[list[dict], int]:
    """One row per (document, subject, relation, object, status, reason kind): the most confident one.

    Overlapping chunks (and samples) see the same statement twice; the store
    would keep both as separate claims with different spans. Symmetric
    relations count either direction as the same fact.
    """
    best: dict[tuple, dict] = {}
    for r in rows:
        s, o = norm(r["subject"]), norm(r["object"])
        rel = r["relation"]
        if rel in ontology.relation_types and ontology.relation_types[rel].symmetric:
            s, o = sorted((s, o))
        key = (r["doc_id"], s, rel, o, r["status"], reason_code(r["reason"]))
        kept = best.get(key)
        if kept is None or (r.get("confidence") or -1.0) > (kept.get("confidence") or -1.0):
            best[key] = r
    return list(best.values()), len(rows) - len(best)


# -- tables ----------------------------------------------------------------------------------------


def _mentions_table(mentions: pl.DataFrame, run_id: str) -> pa.Table:
    frame = (
        mentions.sort("doc_id", "start", "end", "chunk")
        .unique(["doc_id", "start", "end", "type"], keep="first", maintain_order=True)
        .with_columns(run_id=pl.lit(run_id))
        .select([f.name for f in MENTIONS])
    )
    return conform(frame.to_arrow(), MENTIONS)


def _relations_table(rows: list[dict], run_id: str) -> pa.Table:
    columns = {f.name: [r.get(f.name) for r in rows] for f in RELATIONS if f.name != "run_id"}
    columns["run_id"] = [run_id] * len(rows)
    for name in ("subject", "subject_type", "relation", "object", "object_type"):
        columns[name] = ["" if v is None else str(v) for v in columns[name]]
    table = pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in RELATIONS})
    return conform(table, RELATIONS)

