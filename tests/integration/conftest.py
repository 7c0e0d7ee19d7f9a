"""Integration fixtures (being written)."""
