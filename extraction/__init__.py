"""LLM extraction: documents → typed mentions and grounded, ontology-checked, linked relations.

The user's vocabulary, in one screen (the rest of the package is internal):

    from extraction import extract, load_documents, GateConfig, Gazetteer
    from extraction.llm import Endpoint, open_client

    corpus = load_documents(["plots/", "abstracts.jsonl"])       # or [(doc_id, text), ...]
    with open_client() as llm:                                   # bundled model; Endpoint(...) for others
        result = extract(corpus, llm, mode="guided", gazetteer=Gazetteer.from_store("graph.duckdb"))
    write_result(result, "relations.jsonl"); merge_result(result, "graph.duckdb")

Names are loaded on first use, so ``import extraction.llm`` (and ``kg --help``)
does not import the pipeline. See docs/extraction.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "extract": "extraction.run",
    "ExtractionResult": "extraction.run",
    "ExtractionReport": "extraction.run",
    "ExtractOptions": "extraction.run",
    "load_documents": "extraction.documents",
    "Document": "extraction.documents",
    "Corpus": "extraction.documents",
    "chunk_document": "extraction.documents",
    "GateConfig": "extraction.gates",
    "Gazetteer": "extraction.gazetteer",
    "LinkConfig": "extraction.linking",
    "infer_entity_types": "extraction.entity_types",
    "compare": "extraction.compare",
    "write_result": "extraction.output",
    "merge_result": "extraction.output",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'extraction' has no attribute {name!r}")
