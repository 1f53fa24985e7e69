"""Adapters: mappings and loaders for public benchmark datasets."""
