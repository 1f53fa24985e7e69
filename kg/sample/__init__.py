"""A seeded, fictional entertainment catalog seen by three differently shaped sources.

The demo input and the matching benchmark: ``generate_sample(out_dir)`` writes
``studio.jsonl``, ``catalog.csv`` (``;``) and ``guide.json`` about the same
invented movies, series, episodes and people, one mapping per source for
``kg.ingest``, and ``truth.parquet`` naming every record's true entity and the
hard cases it exercises (sequels, remakes, shared titles, translations,
typos, missing fields, "Last, First", runtime units, a prolific director).
"""

from kg.sample.catalog import ENTITY_CASES
from kg.sample.generate import RAW_FILES, SampleInfo, generate_sample, mapping_path
from kg.sample.noise import RECORD_CASES, SOURCES
from kg.sample.write import TRUTH

CASES = ENTITY_CASES + RECORD_CASES

__all__ = [
    "CASES", "ENTITY_CASES", "RAW_FILES", "RECORD_CASES", "SOURCES", "TRUTH", "SampleInfo",
    "generate_sample", "mapping_path",
]
