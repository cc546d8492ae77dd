"""The `assay` command line: Typer commands that parse, call a service and print."""
