"""The prediction log: what a service answered, recorded off the request path as Parquet
segments in the object store (a local folder and S3), read back with feedback joined."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from assay.errors import CorruptObjectError, StorageError
from assay.monitoring.entities import Window
from assay.monitoring.live import read_window
from assay.registry.bundle import LoadedBundle
from assay.serving.app import ServingState, create_app
from assay.serving.metrics import monitor_gauges
from assay.serving.predlog import LogConfig, PredictionLog
from assay.serving.served import prepare
from assay.store.segments import SegmentStore, short_digest

from .conftest import IRIS_ROW, MIXED, MIXED_ROW, Columns, TestClient, make_bundle

EVERYTHING = Window(start=datetime(2000, 1, 1, tzinfo=UTC))

Logged = Callable[..., tuple[TestClient, PredictionLog]]


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Logged]:
    """Serve a bundle with the real app and a prediction log into `tmp_path/store`."""
    clients: list[TestClient] = []

    def make(bundle: LoadedBundle, **log: Any) -> tuple[TestClient, PredictionLog]:
        config = LogConfig(store=str(tmp_path / "store"), prefix="predictions/services/s", **log)
        state = ServingState()
        state.log = PredictionLog(config)
        state.install(prepare(bundle, state.metrics))
        client = TestClient(create_app(state))
        client.__enter__()
        clients.append(client)
        return client, state.log

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def _rows(log: PredictionLog) -> Any:
    return read_window(log.store, EVERYTHING, datetime.now(UTC)).rows


def test_every_answer_names_its_request_and_its_rows_are_logged(
    logged: Logged, iris: LoadedBundle
) -> None:
    client, log = logged(iris)
    one = client.post("/v1/models/iris:predict", json={"instances": [IRIS_ROW, IRIS_ROW]})
    assert one.status_code == 200, one.text
    assert one.json()["predictions"] == ["setosa", "setosa"]  # the body is as it was
    first = one.headers["x-assay-request-id"]
    columns = {k: [v, v] for k, v in IRIS_ROW.items()}
    two = client.post("/v1/models/iris:predict_proba", json={"inputs": columns})
    v2 = client.post(
        "/v2/models/iris/infer",
        json={"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64",
                          "data": list(IRIS_ROW.values())}]},
        headers={"X-Request-Id": "order-7"},
    )  # fmt: skip
    assert v2.headers["x-assay-request-id"] == "order-7"  # the caller's own id is kept
    refused = client.post("/v1/models/iris:predict", json={"instances": [{"petal": 1}]})
    assert refused.status_code == 400
    assert refused.headers["x-assay-request-id"]
    fb = client.post("/feedback", json={"request_id": first, "label": ["setosa", "virginica"]})
    assert fb.json() == {"request_id": first, "logged": True}
    log.close()

    rows = _rows(log)
    assert len(rows) == 5  # 2 + 2 + 1 rows; the refused request logged nothing
    assert set(rows["request_id"]) == {first, two.headers["x-assay-request-id"], "order-7"}
    assert set(rows["model"]) == {"iris"}
    assert set(rows["version"]) == {3}
    assert rows["in.petal length (cm)"].tolist() == [1.4] * 5
    assert rows["prediction"].tolist() == ["setosa"] * 5  # predict_proba logs its class
    mine = rows[rows["request_id"] == first]
    assert mine["row"].tolist() == [0, 1]
    assert mine["label"].tolist() == ["setosa", "virginica"]
    assert rows[rows["request_id"] == "order-7"]["label"].isna().all()


def test_mixed_columns_keep_their_kinds(logged: Logged) -> None:
    bundle = make_bundle(Columns(), MIXED, [MIXED_ROW], name="mixed")
    client, log = logged(bundle)
    rows = [MIXED_ROW, {**MIXED_ROW, "city": None, "n": 4}]
    assert client.post("/v1/models/mixed:predict", json={"instances": rows}).status_code == 200
    log.close()
    got = _rows(log)
    assert got["in.city"].iloc[0] == "Oslo"
    assert got["in.city"].isna().iloc[1]
    assert got["in.n"].tolist() == [3, 4]
    assert got["in.flag"].tolist() == [True, True]


def test_segments_roll_by_rows_and_a_stopped_log_writes_what_it_held(
    logged: Logged, iris: LoadedBundle
) -> None:
    client, log = logged(iris, max_rows=3)
    for _ in range(7):
        client.post("/v1/models/iris:predict", json={"instances": [IRIS_ROW]})
    log.close()
    names = log.store.names("predictions")
    assert len(names) >= 3  # 3 + 3 rolled by size, the last one at the stop
    assert sum(pq.read_table(io.BytesIO(log.store.get(n))).num_rows for n in names) == 7


def test_a_sample_rate_logs_that_share_and_zero_turns_logging_off(
    logged: Logged, iris: LoadedBundle
) -> None:
    client, log = logged(iris, sample=0.25)
    for _ in range(400):
        client.post("/v1/models/iris:predict", json={"instances": [IRIS_ROW]})
    log.close()
    assert 50 <= len(_rows(log)) <= 150
    assert LogConfig.from_doc({"store": "x", "prefix": "p", "sample": 0}) is None


def test_feedback_needs_a_log_and_a_well_formed_body(iris: LoadedBundle) -> None:
    client = TestClient(create_app(ServingState.of(iris)))  # no log
    off = client.post("/feedback", json={"request_id": "r1", "label": 1})
    assert off.status_code == 409
    assert "--log-sample" in off.json()["error"]["message"]
    for body in ({"label": 1}, {"request_id": "r1"}, {"request_id": "r1", "reward": "x"}):
        bad = client.post("/feedback", json=body)
        assert bad.status_code == 400, bad.text


def test_a_store_that_fails_never_fails_a_request(tmp_path: Path, iris: LoadedBundle) -> None:
    (tmp_path / "store").write_text("a file where the store's folder should be")
    state = ServingState()
    state.log = PredictionLog(LogConfig(str(tmp_path / "store"), "predictions/services/s"))
    state.install(prepare(iris, state.metrics))
    with TestClient(create_app(state)) as client:
        resp = client.post("/v1/models/iris:predict", json={"instances": [IRIS_ROW]})
        assert resp.status_code == 200
    assert state.log.written == 0


def test_a_torn_write_is_never_listed_and_a_damaged_segment_is_skipped_by_name(
    tmp_path: Path,
) -> None:
    store = SegmentStore(str(tmp_path), "predictions/services/s")
    table = pa.table({"request_id": ["a"], "ts": [1.7e9], "model": ["m"], "version": [1],
                      "variant": [None], "row": [0], "in.x": [0.5], "prediction": [1]})  # fmt: skip
    sink = io.BytesIO()
    pq.write_table(table, sink)
    data = sink.getvalue()
    good = f"predictions/1700000000000-1700000000000-w1-000001-{short_digest(data)}.parquet"
    bad = f"predictions/1700000000000-1700000000000-w1-000002-{short_digest(data)}.parquet"
    store.put(good, data)
    store.put(bad, data[:-7] + b"garbage")
    folder = tmp_path / "logs" / "predictions" / "services" / "s" / "predictions"
    (folder / ".tmp-0123").write_bytes(data[:100])  # a writer killed mid-write
    assert store.names("predictions") == [good, bad]
    with pytest.raises(CorruptObjectError, match="corrupt"):
        store.get(bad)
    live = read_window(store, EVERYTHING, datetime.now(UTC))
    assert len(live.rows) == 1
    assert live.skipped == [bad]


def test_segments_live_in_s3_as_in_a_folder(s3_url: str) -> None:
    store = SegmentStore(s3_url, "predictions/services/s")
    store.put("feedback/0000000001000-0000000002000-w1-000001-x.parquet", b"one")
    store.put("predictions/0000000001000-0000000002000-w1-000001-y.parquet", b"two")
    assert store.names("predictions") == [
        "predictions/0000000001000-0000000002000-w1-000001-y.parquet"
    ]
    assert store.get("feedback/0000000001000-0000000002000-w1-000001-x.parquet") == b"one"
    assert SegmentStore(s3_url, "predictions/services/other").names("predictions") == []


def test_the_monitor_state_is_exported_as_gauges(tmp_path: Path) -> None:
    path = tmp_path / "monitor.json"
    assert monitor_gauges(path) == b""
    path.write_text(
        '{"monitor": "churn-api", "state": "drift", "at": 1700000000, "rows": 900,'
        '"features": {"tenure": {"state": "drift", "psi": 0.4, "p_adjusted": 1e-9},'
        '"plan \\"x\\"": {"state": "ok", "psi": 0.01, "p_adjusted": 1.0}},'
        '"performance": {"metric": "accuracy", "value": 0.81}}'
    )
    text = monitor_gauges(path).decode()
    assert 'assay_monitor_state{monitor="churn-api"} 2.0' in text
    assert 'assay_monitor_feature_psi{monitor="churn-api",feature="tenure"} 0.4' in text
    assert 'feature="plan \\"x\\""' in text  # label values escaped
    assert 'assay_monitor_performance{monitor="churn-api",metric="accuracy"} 0.81' in text
    from prometheus_client.parser import text_string_to_metric_families

    names = {f.name for f in text_string_to_metric_families(text)}
    assert "assay_monitor_feature_p_value" in names


def test_a_store_that_cannot_be_opened_says_so() -> None:
    with pytest.raises(StorageError, match="Cannot open store"):
        SegmentStore("nosuchscheme-xyz://bucket", "p")
