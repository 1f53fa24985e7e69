"""The entertainment knowledge-graph toolkit: ingest, the graph store, the CLI."""

__version__ = "0.1.0"
