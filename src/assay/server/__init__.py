"""The Assay server: one FastAPI app over the workspace's services (`assay server`)."""
