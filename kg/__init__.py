"""The entertainment knowledge-graph toolkit: ingest, the graph store, the CLI.

Analysts start with ``from kg import Graph; g = Graph.open("graph.duckdb")``.
"""

__version__ = "0.1.0"

from kg.graph import Graph  # noqa: E402 - the store reads __version__ above while it imports

__all__ = ["Graph", "__version__"]
