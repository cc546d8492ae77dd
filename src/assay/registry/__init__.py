"""The model repository: versioned models in safe formats, with signatures and lineage."""
