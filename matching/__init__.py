"""matching package (see docs/architecture.md)."""
