"""extraction package (see docs/architecture.md)."""
