"""`python -m assay.abtests TEST_DIR`: run an A/B test's router (see `router`)."""

from __future__ import annotations

import sys

from assay.abtests.worker import ABWorker
from assay.serving.worker import main

USAGE = (
    "usage: python -m assay.abtests TEST_DIR\n\n"
    "Route requests among the variants TEST_DIR/target.json names. "
    "`assay abtests create` writes the folder and starts this."
)

# Spawned worker processes import this module under another name: only the real
# entry point serves.
if __name__ == "__main__":
    sys.exit(main(worker_cls=ABWorker, usage=USAGE))
