"""flows package (see docs/architecture.md)."""
