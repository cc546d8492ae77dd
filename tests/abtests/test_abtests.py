"""A/B tests end to end: real router processes on loopback, real models, real feedback.

Most tests run on SQLite only (the backend plays no part in routing); one runs the
control plane on both backends.
"""

from __future__ import annotations

import json
import random
import struct
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assay import httpclient
from assay.abtests.entities import ABReport
from assay.abtests.worker import ABTarget
from assay.config import Settings
from assay.errors import ConflictError, InvalidArgumentError, NotFoundError
from assay.serialize import dump
from assay.workspace import Workspace, init_workspace

ROW = [5.1, 3.5, 1.4, 0.2]

Served = Callable[[Any, Any], Any]


def num(x: float | None) -> float:
    """A report's figure that must be there (the report writes None for "not known")."""
    assert x is not None
    return x


def _register_models(ws: Workspace, folder: Path) -> None:
    """iris@1, a one-split tree (about 67% right), and iris@2, a logistic regression."""
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    sio.dump(DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y), folder / "t.skops")
    sio.dump(LogisticRegression(max_iter=500).fit(X, y), folder / "l.skops")
    ws.registry.register_file(folder / "t.skops", "iris")
    ws.registry.register_file(folder / "l.skops", "iris")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Workspace]:
    settings, _ = init_workspace(Settings.at(tmp_path, {"ASSAY_AUTHOR": "tester"}))
    ws = Workspace(settings)
    _register_models(ws, tmp_path)
    try:
        yield ws
    finally:
        for test in ws.abtests.tests():
            if test.state != "stopped":
                ws.abtests.stop(test.name)
        for svc in ws.services.services():
            if svc.state in ("running", "starting"):
                ws.services.stop(svc.name, timeout_s=10)
        ws.close()


def _iris() -> tuple[list[list[float]], list[int]]:
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    return X.tolist(), y.tolist()


def _traffic(
    url: str,
    n: int,
    *,
    seed: int = 0,
    feedback: bool = True,
    concluding: bool = False,
    pause_s: float = 0.0,
) -> Counter[str]:
    """Send `n` iris rows, each followed by its true label; with `concluding`, feedback
    may be refused once the test has concluded (its predictions take none)."""
    X, y = _iris()
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    with httpclient.client(timeout=10) as client:
        for _ in range(n):
            j = rng.randrange(len(X))
            r = client.post(f"{url}/predict", json={"instances": [X[j]]})
            assert r.status_code == 200, r.text
            body = r.json()
            seen[body["variant"]] += 1
            if pause_s:
                time.sleep(pause_s)
            if feedback:
                f = client.post(
                    f"{url}/feedback", json={"request_id": body["request_id"], "label": y[j]}
                )
                assert f.status_code == 200 or (concluding and f.status_code == 404), f.text
    return seen


def test_every_prediction_says_which_model_made_it_and_where_it_came_from(
    lab: Workspace,
) -> None:
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "round-robin")
    assert test.state == "running"
    assert test.strategy == "round-robin"
    answers = []
    with httpclient.client(timeout=10) as client:
        for body in (
            {"instances": [ROW]},
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ROW}]},
        ):
            r = client.post(f"{test.url}/predict", json=body)
            assert r.status_code == 200, r.text
            answers.append(r)
    v1, v2 = (a.json() for a in answers)
    assert (v1["variant"], v1["model"], v1["version"]) == ("A", "iris", 1)
    assert v1["predictions"] == [0]
    assert len(v1["request_id"]) == 32
    assert v1["provenance"]["model"] == "iris"
    assert v1["provenance"]["version"] == 1
    assert (v2["variant"], v2["model_version"]) == ("B", "2")  # the V2 shape, answered by B
    assert answers[0].headers["X-Assay-Variant"] == "A"
    assert answers[0].headers["X-Assay-Request-Id"] == v1["request_id"]
    assert answers[1].headers["X-Assay-Model-Version"] == "2"


def test_the_router_takes_v1_inputs_and_binary_tensors_and_checks_datatypes(
    lab: Workspace,
) -> None:
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "round-robin")
    columns = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    head = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 16},
                }
            ],
            "outputs": [{"name": "predict", "parameters": {"binary_data": True}}],
        }
    ).encode()
    with httpclient.client(timeout=10) as client:
        rows = client.post(f"{test.url}/predict", json={"inputs": [ROW]})
        cols = client.post(
            f"{test.url}/predict",
            json={"inputs": {c: [v] for c, v in zip(columns, ROW, strict=True)}},
        )
        for r, variant in ((rows, "A"), (cols, "B")):  # both answered as KServe V1
            assert r.status_code == 200, r.text
            assert (r.json()["predictions"], r.json()["variant"]) == ([0], variant)

        binary = client.post(
            f"{test.url}/predict",
            content=head + struct.pack("<4f", *ROW),
            headers={"Inference-Header-Content-Length": str(len(head))},
        )
        assert binary.status_code == 200, binary.text
        assert binary.headers["content-type"] == "application/octet-stream"
        length = int(binary.headers["Inference-Header-Content-Length"])
        doc = json.loads(binary.content[:length])  # the variant is in the JSON ...
        assert (doc["variant"], doc["model_version"]) == ("A", "1")
        assert doc["outputs"][0]["parameters"] == {"binary_data_size": 8}
        assert struct.unpack("<q", binary.content[length:]) == (0,)  # ... the data after it
        # The answer was logged with its predictions: feedback by label finds them.
        f = client.post(f"{test.url}/feedback", json={"request_id": doc["request_id"], "label": 0})
        assert f.status_code == 200
        assert f.json()["reward"] == 1.0

        wrong = client.post(
            f"{test.url}/predict",
            json={
                "inputs": [
                    {"name": "x", "shape": [1, 4], "datatype": "UINT8", "data": [5, 3, 1, 300]}
                ]
            },
        )
        assert wrong.status_code == 400
        assert "is UINT8, but it holds integer 300" in wrong.json()["error"]["message"]


def test_feedback_joins_by_request_id_and_the_report_finds_the_better_model(
    lab: Workspace, as_served: Served
) -> None:
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "weighted:50,50")
    seen = _traffic(test.url, 600)
    with httpclient.client(timeout=10) as client:
        r = client.post(f"{test.url}/predict", json={"instances": [ROW]}).json()
        # Deep or large JSON is a JSON 4xx naming the limit, and records nothing.
        rid = r["request_id"].encode()
        for depth, status in ((40, 400), (100_000, 400), (200_000, 413)):
            deep = b'{"request_id": "%s", "label": %s0%s}' % (rid, b"[" * depth, b"]" * depth)
            resp = client.post(f"{test.url}/feedback", content=deep)
            assert resp.status_code == status, (depth, resp.text)
            message = resp.json()["error"]["message"]
            assert "32 levels" in message if status == 400 else "bytes" in message
        first = client.post(
            f"{test.url}/feedback", json={"request_id": r["request_id"], "reward": 1}
        )
        again = client.post(
            f"{test.url}/feedback", json={"request_id": r["request_id"], "reward": 0}
        )
        assert first.json()["duplicate"] is False
        assert again.json()["duplicate"] is True
        unknown = client.post(f"{test.url}/feedback", json={"request_id": "nope", "reward": 1})
        assert unknown.status_code == 404
        assert "nope" in unknown.json()["error"]["message"]
        for bad, field in (
            ({"request_id": r["request_id"], "reward": "high"}, "reward"),
            ({"request_id": r["request_id"], "reward": True}, "reward"),
            ({"request_id": r["request_id"]}, "reward"),
            ({"reward": 1}, "request_id"),
        ):
            resp = client.post(f"{test.url}/feedback", json=bad)
            assert resp.status_code == 400, bad
            assert resp.json()["error"]["details"]["field"] == field
        assert client.post(f"{test.url}/feedback", content=b"{oops").status_code == 400

    report = lab.abtests.report("iris-ab")
    variants = report["variants"]
    assert variants["A"]["requests"] + variants["B"]["requests"] == 601
    assert variants["A"]["requests"] == seen["A"] + (r["variant"] == "A")
    assert report["metric"] == "accuracy"
    assert num(variants["B"]["mean"]) > 0.9 > 0.75 > num(variants["A"]["mean"])
    low, high = variants["A"]["ci"]
    assert num(low) < num(variants["A"]["mean"]) < num(high)
    assert report["verdict"]["decided"]
    assert report["verdict"]["winner"] == "B"
    assert num(report["p_best"]["B"]) > 0.99
    assert report["srm"] is not None
    assert not report["srm"]["mismatch"]
    [comparison] = report["comparisons"]
    assert comparison["test"] == "two-proportion z"
    assert num(comparison["p_value"]) < 0.001
    assert report["series"]["values"]["B"][-1] == pytest.approx(variants["B"]["mean"])
    assert report["abtest"].name == "iris-ab"
    assert report["auto_concluded"] is False
    # Its type describes all of it: the API answers the same document.
    assert as_served(ABReport, report) == dump(report)


def test_sticky_keys_stay_put_across_requests_and_a_restart(lab: Workspace) -> None:
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "sticky:50,50", key="user")

    def assignments() -> dict[str, str]:
        out = {}
        with httpclient.client(timeout=10) as client:
            for i in range(40):
                body = {"instances": [ROW], "user": f"u{i}"}
                out[f"u{i}"] = client.post(f"{test.url}/predict", json=body).json()["variant"]
                by_header = client.post(
                    f"{test.url}/predict",
                    json={"instances": [ROW]},
                    headers={"X-Assay-Key": f"u{i}"},
                )
                assert by_header.json()["variant"] == out[f"u{i}"]
        return out

    before = assignments()
    assert set(before.values()) == {"A", "B"}
    assert assignments() == before
    lab.abtests.stop("iris-ab")
    lab.abtests.start("iris-ab")
    assert assignments() == before  # stable when the test restarts
    keyless = httpclient.post(f"{test.url}/predict", json={"instances": [ROW]})
    assert keyless.status_code == 400
    assert "key" in keyless.json()["error"]["message"]


def test_shadow_answers_with_the_primary_and_logs_the_copies(
    lab: Workspace, as_served: Served
) -> None:
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "shadow:A")
    # Copies run while the router is idle, so traffic with gaps between requests.
    seen = _traffic(test.url, 80, feedback=False, pause_s=0.005)
    assert seen == Counter({"A": 80})  # the shadow never answers
    report = lab.abtests.report("iris-ab")
    shadow = report["shadows"]["B"]
    assert shadow["copies"] >= 70
    assert shadow["errors"] == 0
    assert 0 < num(shadow["agreement"]) < 1  # the two models disagree on some flowers
    assert report["variants"]["B"]["requests"] == 0
    assert report["srm"] is None
    assert report["comparisons"] == []
    assert as_served(ABReport, report) == dump(report)


def test_a_bandit_shifts_traffic_toward_the_better_model(lab: Workspace) -> None:
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "thompson")
    early = _traffic(test.url, 60, seed=1)
    late = _traffic(test.url, 200, seed=2)
    assert late["B"] / 200 > 0.8 > early["B"] / 60 - 0.2
    arms = httpclient.get(test.url).json()["arms"]
    assert arms["B"]["mean"] > arms["A"]["mean"]


def test_pause_resume_weights_and_conclude_move_the_alias(lab: Workspace) -> None:
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "weighted:50,50")
    lab.abtests.pause("iris-ab")
    assert _traffic(test.url, 30, feedback=False) == Counter({"A": 30})
    report = lab.abtests.report("iris-ab")
    assert report["variants"]["A"]["requests"] == 0  # paused traffic is not analysed
    lab.abtests.resume("iris-ab")
    assert lab.abtests.set_weights("iris-ab", [0, 1]).strategy == "weighted:0,1"
    assert _traffic(test.url, 30, feedback=False) == Counter({"B": 30})
    with pytest.raises(InvalidArgumentError, match="variant 'C'"):
        lab.abtests.conclude("iris-ab", "C")
    done = lab.abtests.conclude("iris-ab", "B")
    assert (done.status, done.winner) == ("concluded", "B")
    # The router goes on answering, all of it with the winner, until it is stopped.
    assert _traffic(test.url, 20, feedback=False) == Counter({"B": 20})
    assert done.verdict is not None
    assert done.verdict["model"] == "iris@2"
    assert lab.registry.resolve("iris@champion").version == 2
    with pytest.raises(ConflictError, match="already concluded"):
        lab.abtests.conclude("iris-ab", "A")


def test_auto_promote_concludes_when_the_sequential_test_decides(lab: Workspace) -> None:
    test = lab.abtests.create(
        "iris-ab", ["A=iris@1", "B=iris@2"], "weighted:50,50", auto_promote=True
    )
    _traffic(test.url, 500, concluding=True)
    # The router looked at the sequential test as feedback came in, and decided on its
    # own: all traffic now goes to the winner.
    assert _traffic(test.url, 20, feedback=False) == Counter({"B": 20})
    concluded = lab.abtests.get("iris-ab")  # the control plane records it when it looks
    assert (concluded.status, concluded.winner) == ("concluded", "B")
    assert concluded.verdict is not None
    assert concluded.verdict["alias"] == "champion"
    assert lab.registry.resolve("iris@champion").version == 2


def test_variants_may_name_deployed_services(lab: Workspace) -> None:
    lab.services.deploy("live", "iris@2", drain_s=0.1)
    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=live"], "round-robin")
    assert [v.model_ref for v in test.variants] == ["iris@1", "iris@2"]
    assert test.variants[1].service == "live"


def test_bad_tests_are_clear_errors(lab: Workspace) -> None:
    for variants, strategy, error, text in (
        (["A=iris@1"], "weighted", InvalidArgumentError, "at least two variants"),
        (["A=iris@1", "A=iris@2"], "weighted", InvalidArgumentError, "used twice"),
        (["A=iris@1", "B=iris@9"], "weighted", NotFoundError, "no version 9"),
        (["A=iris@1", "B"], "weighted", InvalidArgumentError, "LABEL=MODEL@VERSION"),
        (["A=iris@1", "B=iris@2"], "weighted:1,2,3", InvalidArgumentError, "3 weights"),
        (["A=iris@1", "B=iris@2"], "weighted:0,0", InvalidArgumentError, "sum"),
        (["A=iris@1", "B=iris@2"], "coinflip", InvalidArgumentError, "Unknown routing"),
        (["A=iris@1", "B=iris@2"], "shadow:C", InvalidArgumentError, "'C'"),
    ):
        with pytest.raises(error, match=text):
            lab.abtests.create("bad", variants, strategy)
    assert lab.abtests.tests() == []
    with pytest.raises(NotFoundError, match="No A/B test named"):
        lab.abtests.report("nope")


def test_the_control_plane_records_tests_on_both_backends(ws: Workspace, tmp_path: Path) -> None:
    _register_models(ws, tmp_path)
    try:
        test = ws.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "weighted:70,30")
        assert [t.name for t in ws.abtests.tests()] == ["iris-ab"]
        target = ABTarget.read(ws.settings.services_dir / "abtests" / "iris-ab" / "target.json")
        assert [v.label for v in target.variants] == ["A", "B"]
        done = ws.abtests.conclude(test.name, "A", promote=False)
        assert done.status == "concluded"
        assert done.winner == "A"
    finally:
        for t in ws.abtests.tests():
            if t.state != "stopped":
                ws.abtests.stop(t.name)


def test_predicting_through_the_server_with_a_stopped_test_names_it_and_says_start_it(
    lab: Workspace,
) -> None:
    from starlette.testclient import TestClient

    from assay.server.app import create_app

    test = lab.abtests.create("iris-ab", ["A=iris@1", "B=iris@2"], "weighted:50,50")
    with TestClient(create_app(lab, auth=False)) as api:
        through = api.post("/api/v1/abtests/iris-ab/predict", json={"instances": [ROW]})
        assert through.status_code == 200, through.text
        lab.abtests.stop("iris-ab")
        answer = api.post("/api/v1/abtests/iris-ab/predict", json={"instances": [ROW]})
        assert answer.status_code == 409, answer.text
        error = answer.json()["error"]
        assert error["type"] == "ConflictError"
        assert "'iris-ab'" in error["message"]
        assert "abtests start iris-ab" in error["message"]
        assert error["details"] == {"abtest": "iris-ab", "state": "stopped"}
        assert str(test.port) not in answer.text
        assert "127.0.0.1" not in answer.text
