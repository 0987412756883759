"""Formats, at the bottom: digests, canonical JSON, keys, DSSE, statements, recipes, Merkle trees,
checkpoints, GGUF parsing. Imports nothing above it (tests/unit/test_package_layers.py)."""
