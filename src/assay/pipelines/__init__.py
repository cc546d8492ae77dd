"""Versioned training pipelines: ordinary Python steps, snapshotted by content hash."""
