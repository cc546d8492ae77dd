"""`assay demo` (what `make demo` runs) goes through the whole workflow without a failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_the_workflow_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    env["COLUMNS"] = "160"
    assay = str(Path(sys.executable).with_name("assay"))
    done = subprocess.run(
        [assay, "demo", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Traceback" not in output
    for text in (
        "Committed cancer@2",
        "→ model cancer@3 (sklearn)",
        "cancer@champion -> version",
        "Deployed cancer@",
        "HTTP 200",
        "HTTP 400",
        "expected a number",
        "A/B test cancer-ab routes champion=cancer@",
        "challenger vs champion",
        "split check",
        "cancer-ab  abtest  model cancer@",
        "state  ok",
        "Stopped cancer-ab",
        "Stopped cancer-api",
        "Done.",
    ):
        assert text in output, f"{text!r} not in the demo's output:\n{output}"
    # The demo stops what it started.
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    assert str(tmp_path) not in procs.stdout

    # Its closing hint runs as printed, from a plain shell (no virtual environment on PATH).
    hint = output.split("Look at it in the browser", 1)[1].splitlines()[1].strip()
    cd, tokens, server = hint.split(" && ")
    plain = {"PATH": "/usr/bin:/bin", "HOME": env.get("HOME", "/root")}
    made = subprocess.run(
        f"{cd} && {tokens}", shell=True, env=plain, capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    assert "Token me (admin)" in made.stdout, made.stderr
    helped = subprocess.run(
        f"{cd} && {server} --help", shell=True, env=plain, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert "Serve" in helped.stdout, helped.stderr
