"""What runs recorded, row by row: their params (as rows for filters and sorts, and as one
document per run for listings), their metrics (every point, and each key's final value) and
the names both use. `RunValues` is the part of `RunRepository` that reads and writes them,
within the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, select, update

from assay.limits import bounded
from assay.runs.params import json_scalar
from assay.runs.tables import (
    metric_keys,
    metric_points,
    param_keys,
    run_params,
    runs,
)

Point = tuple[str, float | None, int | None, float]  # key, value, step, unix time


def param_row(run_id: str, key: str, value: Any) -> dict[str, Any]:
    """A params row with its numeric / string shadows, so filters can use indexes."""
    num: float | None = None
    text: str | None = None
    if isinstance(value, bool | int | float):
        num = float(value)
    elif isinstance(value, str):
        text = value[:255]
    return {"run_id": run_id, "key": key, "value": value, "value_num": num, "value_str": text}


def params_doc(params: dict[str, Any]) -> str:
    """A run's flat params as the document `runs.params_doc` holds."""
    return json.dumps(params, sort_keys=True)


def read_params_doc(doc: str) -> dict[str, Any]:
    values: dict[str, Any] = json.loads(doc)
    if "[" not in doc and doc.find("{", 1) < 0:
        return values  # no list or object inside: nothing to bound (nearly every run)
    for key, value in values.items():
        if isinstance(value, dict | list):
            # Stored before `assay.limits` held, it may nest too deep to list.
            values[key] = bounded(value)
    return values


class RunValues:
    """Params and metrics of runs within one transaction (`RunRepository` is one)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @property
    def _mark(self) -> str:
        """The driver's placeholder, for statements that go straight to it."""
        return "%s" if self.conn.dialect.paramstyle in ("format", "pyformat") else "?"

    def _insert_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Straight to the driver's executemany, as `add_points`: SQLAlchemy's processing
        of each row (a dict, a JSON bind, five values) cost more than the insert. The
        value is the text SQLAlchemy's JSON type would have written (`json.dumps`)."""
        mark = self._mark
        as_json = f"{mark}::json" if mark == "%s" else mark
        rows = []
        for key, value in params.items():
            kind = type(value)
            if kind is int or kind is float:  # what nearly every param is
                rows.append((run_id, key, json_scalar(value), float(value), None))
            else:
                row = param_row(run_id, key, value)
                rows.append((run_id, key, json.dumps(value), row["value_num"], row["value_str"]))
        self.conn.exec_driver_sql(
            "INSERT INTO run_params (run_id, key, value, value_num, value_str) "
            f"VALUES ({mark}, {mark}, {as_json}, {mark}, {mark})",
            rows,
        )
        self._note_names("param_keys", params)

    def _note_names(self, table: str, names: Iterable[str]) -> None:
        """Add names to `param_keys` or `metric_keys`. A name already there (nearly
        always: runs reuse their names) changes no page."""
        mark = self._mark
        self.conn.exec_driver_sql(
            f"INSERT INTO {table} (key) VALUES ({mark}) ON CONFLICT (key) DO NOTHING",
            [(name,) for name in names],
        )

    def add_params(self, run_id: str, params: dict[str, Any]) -> None:
        """Add the params the run does not have yet (a param logged once keeps its value).

        The run's row is locked first (PostgreSQL; SQLite's write transaction already
        excludes other writers): two `log_params` at once would otherwise each write back
        a document without the other's names.
        """
        doc = self.conn.scalar(
            select(runs.c.params_doc).where(runs.c.id == run_id).with_for_update()
        )
        have = set(self.conn.scalars(select(run_params.c.key).where(run_params.c.run_id == run_id)))
        fresh = {k: v for k, v in params.items() if k not in have}
        if not fresh:
            return
        self._insert_params(run_id, fresh)
        merged = (
            {**json.loads(doc), **fresh}  # as stored: a deep value is cut only when read
            if doc is not None
            else self.params_of([run_id]).get(run_id, {})  # written before 0016: the rows
        )
        self.conn.execute(
            update(runs).where(runs.c.id == run_id).values(params_doc=params_doc(merged))
        )

    def params_from(self, rows: Sequence[Any]) -> dict[str, dict[str, Any]]:
        """The params of these `runs` rows, by run id: from each row's document, or from
        the params rows for a run written before there were documents."""
        out: dict[str, dict[str, Any]] = {}
        missing = []
        for row in rows:
            if row.params_doc is None:
                missing.append(row.id)
            else:
                out[row.id] = read_params_doc(row.params_doc)
        if missing:
            out.update(self.params_of(missing))
        return out

    def params_of(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        # SQLite hands back JSON text (or, where the column's numeric affinity kicked
        # in, a number); psycopg has already decoded it.
        raw = self.conn.dialect.name == "sqlite"
        for run_id, key, value in self._values_of("run_params", ids):
            if raw and isinstance(value, str):
                value = json.loads(value)
            if isinstance(value, dict | list):
                # Stored before `assay.limits` held, it may nest too deep to list.
                value = bounded(value)
            out.setdefault(run_id, {})[key] = value
        return out

    def metrics_of(self, ids: list[str]) -> dict[str, dict[str, float | None]]:
        """The final value of each metric of these runs, by run id."""
        out: dict[str, dict[str, float | None]] = {}
        for run_id, key, value in self._values_of("run_metrics", ids):
            out.setdefault(run_id, {})[key] = value
        return out

    def _values_of(self, table: str, ids: list[str]) -> Iterator[Any]:
        """(run id, key, value) of these runs' rows in `run_params` or `run_metrics`.

        Through the driver, 500 ids a statement: a page of 100 runs of 50 params or 10
        metrics spent more in SQLAlchemy's expanding IN and its per-row processing than in
        the database (three times the driver's time, for params)."""
        mark = self._mark
        for i in range(0, len(ids), 500):
            chunk = ids[i : i + 500]
            rows = self.conn.exec_driver_sql(
                f"SELECT run_id, key, value FROM {table} WHERE run_id IN "
                f"({', '.join([mark] * len(chunk))})",
                tuple(chunk),
            )
            # All at once: iterating the result fetches row by row, in Python.
            yield from rows.fetchall()

    def add_points(
        self, run_id: str, points: list[tuple[str, float | None, int | None, float]]
    ) -> None:
        """Append metric points and move each key's final value to its newest point."""
        if not points:
            return
        # Straight to the driver's executemany: building a dict per point and letting
        # SQLAlchemy process each row cost three times the insert itself.
        mark = self._mark
        self.conn.exec_driver_sql(
            "INSERT INTO metric_points (run_id, key, value, step, ts) "
            f"VALUES ({', '.join([mark] * 5)})",
            [(run_id, k, v, st, t) for k, v, st, t in points],
        )
        latest: dict[str, tuple[float | None, int | None, float]] = {}
        for k, v, s, t in points:
            prev = latest.get(k)
            if prev is None or (s or 0, t) >= (prev[1] or 0, prev[2]):
                latest[k] = (v, s, t)
        # One upsert for every key (SQLite and PostgreSQL share the syntax): a key's
        # final value moves only to a step at least as late as the one it holds.
        self.conn.exec_driver_sql(
            "INSERT INTO run_metrics (run_id, key, value, step) "
            f"VALUES ({', '.join([mark] * 4)}) "
            "ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, step = excluded.step "
            "WHERE COALESCE(excluded.step, 0) >= COALESCE(run_metrics.step, 0)",
            [(run_id, k, v, s) for k, (v, s, _) in latest.items()],
        )
        self._note_names("metric_keys", latest)

    def series(
        self, run_id: str, key: str | None = None
    ) -> list[tuple[str, float | None, int | None, float]]:
        query = select(
            metric_points.c.key, metric_points.c.value, metric_points.c.step, metric_points.c.ts
        ).where(metric_points.c.run_id == run_id)
        if key is not None:
            query = query.where(metric_points.c.key == key)
        return [
            (k, v, st, t) for k, v, st, t in self.conn.execute(query.order_by(metric_points.c.id))
        ]

    def keys(self, limit: int = 500) -> tuple[list[str], list[str]]:
        """The param names and metric names runs have, sorted (for column choosers)."""
        params = self.conn.scalars(select(param_keys.c.key).order_by(param_keys.c.key).limit(limit))
        metrics = self.conn.scalars(
            select(metric_keys.c.key).order_by(metric_keys.c.key).limit(limit)
        )
        return list(params), list(metrics)
