"""`assay monitor …` and `assay retrain` as a user types them: the subcommands beside the
default check, and every mistake a one-line error (the loop itself: tests/monitoring)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

pytestmark = pytest.mark.one_backend

CLI = Callable[..., Result]


def test_monitor_commands_and_their_errors(cli: CLI, tmp_path: Path) -> None:
    assert cli("init").exit_code == 0
    helped = cli("monitor", "--help")
    assert helped.exit_code == 0
    for word in ("snapshot", "config", "history", "watch", "retrains"):
        assert word in helped.output
    assert "No monitors yet" in cli("monitor", "list").output
    assert cli("monitor", "watch", "--once").exit_code == 0  # nothing is due
    (tmp_path / "bad.yaml").write_text("thresholds: {psi: {warnin: 0.2}}\n")
    for args, text in (
        (("monitor", "nope"), "No service or A/B test named 'nope' to monitor"),
        (("monitor", "nope", "--last", "soon"), "'soon' is not a duration"),
        (("monitor", "snapshot", "nope", "--to", "live"), "No service or A/B test named"),
        (("monitor", "config", "nope", "bad.yaml"), "No service or A/B test named"),
        (("monitor", "history", "nope"), "No service or A/B test named"),
        (("retrain", "m@1", "--with", "live@1"), "No model named 'm'"),
        (
            ("retrain", "m@1", "--with", "live@1", "--shadow", "--strategy", "weighted:90,10"),
            "--shadow and --strategy cannot be used together",
        ),
    ):
        done = cli(*args)
        assert done.exit_code == 1, (args, done.output)
        assert done.output.startswith("error: "), done.output
        assert text in done.output, done.output
        assert "Traceback" not in done.output
