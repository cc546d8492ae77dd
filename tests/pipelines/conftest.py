"""A small pipeline project on disk: an entry file, a helper module, requirements."""

from __future__ import annotations

from pathlib import Path

import pytest

from .samples import HELPERS, PIPELINE, write


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`proj/` holding pipeline.py, helpers.py and requirements.txt."""
    root = tmp_path / "proj"
    write(root / "pipeline.py", PIPELINE)
    write(root / "helpers.py", HELPERS)
    write(root / "requirements.txt", "numpy\n")
    return root


@pytest.fixture
def values(tmp_path: Path) -> Path:
    """A data folder for the sample pipeline."""
    return write(tmp_path / "values" / "values.txt", "1 2 -3 3\n").parent
