"""The data repository: versioned, content-addressed datasets."""
