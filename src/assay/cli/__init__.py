"""The `assay` command line: Typer commands that parse, call a service and print."""

import gc

# A command is short-lived and allocates many small objects while it imports its
# libraries and walks a tree (10,000 file entries for a 10,000-file commit): the
# default collector, running every 700 allocations, took a third of a re-commit's
# time. Collecting rarely keeps memory bounded and gives that time back.
gc.set_threshold(200_000, 20, 20)
