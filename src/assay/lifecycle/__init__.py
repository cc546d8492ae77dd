"""Deleting what was recorded, and collecting the store's garbage: the use cases that
must know every concept (what depends on a version, what refers to an object)."""
