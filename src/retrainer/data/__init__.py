"""Incoming files: reading a batch, the landing location (fsspec), the quarantine."""
