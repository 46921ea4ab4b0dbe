"""Datasets in the store: registration, the built-in ml-100k, filters and splits."""
