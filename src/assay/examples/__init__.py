"""Example pipelines that ship with Assay (used by `assay demo` and the README)."""
