"""Plumbing shared by every concept: the metadata database and the object store."""
