"""`assay abtests …` through the CLI: plan, create, report (and over REST), conclude."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import Result

from assay import httpclient

# processes and HTTP, not the database: one metadata backend is enough.
pytestmark = pytest.mark.one_backend

CLI = Callable[..., Result]


@pytest.fixture
def lab(cli: CLI, cli_workspace: Path, tmp_path: Path) -> Iterator[CLI]:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    sio.dump(DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y), tmp_path / "t.skops")
    sio.dump(LogisticRegression(max_iter=500).fit(X, y), tmp_path / "l.skops")
    assert cli("models", "register", "t.skops", "--name", "iris").exit_code == 0
    assert cli("models", "register", "l.skops", "--name", "iris").exit_code == 0
    yield cli
    cli("abtests", "stop", "flowers")


def test_plan_create_report_and_conclude(lab: CLI) -> None:
    planned = lab("abtests", "plan", "--baseline", "0.8", "--mde", "0.02")
    assert planned.exit_code == 0
    assert "6,039 samples per variant" in planned.output
    made = lab(
        "abtests", "create", "flowers", "--variant", "A=iris@1", "--variant", "B=iris@2",
        "--strategy", "weighted:50,50", "--baseline", "0.7", "--mde", "0.2", "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    url = json.loads(made.stdout)["url"]
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    rng = random.Random(0)
    with httpclient.client(timeout=10) as client:
        for _ in range(300):
            j = rng.randrange(len(X))
            answer = client.post(f"{url}/predict", json={"instances": [X[j].tolist()]}).json()
            client.post(
                f"{url}/feedback", json={"request_id": answer["request_id"], "label": int(y[j])}
            )
        over_rest = client.get(f"{url}/report").json()
    assert over_rest["verdict"]["winner"] == "B"

    report = lab("abtests", "report", "flowers").output
    for text in ("accuracy", "95% CI", "P(best)", "B vs A", "two-proportion z", "split check",
                 "over time", "B beats A", "plan:"):  # fmt: skip
        assert text in report, report
    assert "flowers" in lab("abtests", "list").output

    done = lab("abtests", "conclude", "flowers", "--winner", "B")
    assert done.exit_code == 0
    assert "iris@champion -> version 2" in done.output
    assert "concluded" in lab("abtests", "list").output


def test_bad_abtest_commands_are_one_line_errors(lab: CLI) -> None:
    for args, text in (
        (("abtests", "report", "nope"), "No A/B test named 'nope'"),
        (
            (
                "abtests",
                "create",
                "x",
                "--variant",
                "A=iris@1",
                "--variant",
                "B=iris@2",
                "--strategy",
                "weighted:1",
            ),
            "1 weight",
        ),
        (("abtests", "plan", "--baseline", "1.2", "--mde", "0.1"), "baseline"),
        (("abtests", "set-weights", "nope", "1,x"), "not numbers"),
        (
            (
                "abtests",
                "create",
                "x",
                "--variant",
                "A=iris@1",
                "--variant",
                "B=iris@2",
                "--baseline",
                "0.8",
            ),
            "both --baseline and --mde",
        ),
    ):
        result = lab(*args)
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, result.output
        assert text in errors[0], result.output
