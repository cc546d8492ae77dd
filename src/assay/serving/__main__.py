"""`python -m assay.serving SERVICE_DIR`: run an inference service (see `process`)."""

from __future__ import annotations

import sys

from assay.serving.worker import main

# Spawned worker processes import this module under another name: only the real
# entry point serves.
if __name__ == "__main__":
    sys.exit(main())
