"""A failed step explained: the user's frames shown, library frames folded."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

from assay.runs.failures import STEP_ATTR, explain


def test_the_users_frames_are_shown_and_library_frames_folded(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "pipeline.py").write_text(
        "import json\n\ndef train(text):\n    return json.loads(text)\n"
    )
    train = runpy.run_path(str(code / "pipeline.py"))["train"]
    with pytest.raises(ValueError, match="Expecting property name") as caught:
        train("{oops")
    exc = caught.value
    setattr(exc, STEP_ATTR, "train")
    text = explain(exc, code, run_id="0123456789abcdef")
    lines = text.splitlines()
    assert lines[0].startswith("Step 'train' failed: JSONDecodeError: Expecting property name")
    assert lines[1:3] == ['  File "pipeline.py", line 4, in train', "    return json.loads(text)"]
    assert lines[3].startswith("  … ")
    assert "frame(s) in" in lines[3]
    assert "test_failures.py" not in text  # frames above the user's code are not theirs
    assert lines[-1] == "  (the whole traceback: `assay runs logs 01234567`)"


def test_without_any_frame_of_the_users_the_innermost_frames_are_shown(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError) as caught:
        _ = 1 / 0
    text = explain(caught.value, tmp_path)
    assert text.startswith("The run failed: ZeroDivisionError: division by zero")
    assert "test_failures.py" in text
