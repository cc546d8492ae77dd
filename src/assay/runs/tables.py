"""The runs' tables: experiments, runs, their params, metrics, steps and artifacts.

Params and final metrics are stored one row per key with a numeric shadow
column, so that `params.C > 1 and metrics.val_f1 >= 0.9` is an indexed query.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from assay.store.db import metadata

experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Archived: kept whole, but out of listings (its runs too) until restored.
    Column("archived_at", DateTime(timezone=True), nullable=True),
    # How many runs it has made (never goes down): the next run is `<name>-<runs_made + 1>`.
    Column("runs_made", Integer, nullable=False, server_default="0"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("experiment_id", ForeignKey("experiments.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("pipeline", String(255), nullable=True),
    Column("pipeline_version", Integer, nullable=True),
    Column("dataset", String(255), nullable=True),
    Column("data_version", Integer, nullable=True),
    Column("params_dataset", String(255), nullable=True),
    Column("params_version", Integer, nullable=True),
    # hash(pipeline version, data version, params version): a run is known by its inputs.
    Column("inputs_key", String(64), nullable=True),
    Column("rerun_of", String(32), nullable=True),
    # The run this one was made inside (a search's candidate under the search).
    Column("parent_id", String(32), nullable=True),
    # The content hash of the code version it executed (see assay.runs.code).
    Column("code", String(64), nullable=True),
    # Archived: kept whole, but out of listings until restored.
    Column("archived_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    # Who answers for the run: the command that queued it while it is queued, the
    # runner executing it once it runs (pid, host, and the process's start time, so
    # that a reused pid is not taken for it).
    Column("pid", Integer, nullable=True),
    Column("host", String(255), nullable=True),
    Column("pid_started", BigInteger, nullable=True),
    Column("error", Text, nullable=True),
    Column("logs", String(64), nullable=True),
    Column("model", String(64), nullable=True),
    Column("model_flavor", String(64), nullable=True),
    Column("resources", JSON, nullable=True),
    Column("environment", JSON, nullable=True),
    Column("extra", JSON, nullable=True),
    # Its params as one JSON object, flat, as `run_params` holds them row by row (which
    # filters and sorts use): what a listing reads, one value per run where rows were fifty.
    Column("params_doc", Text, nullable=True),
    # Set by whoever wants a running run stopped (a sweep's pruner); the runner's
    # heartbeat sees it and ends the run with this status.
    Column("stop_reason", String(32), nullable=True),
    Index("ix_runs_experiment_created", "experiment_id", "created_at"),
    Index("ix_runs_inputs_key", "inputs_key"),
    Index("ix_runs_status", "status"),  # every read looks for silent running runs
    Index("ix_runs_parent_id", "parent_id"),
)

run_params = Table(
    "run_params",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("value_num", Float, nullable=True),
    Column("value_str", String(255), nullable=True),
    sqlite_with_rowid=False,  # rows kept in the key's order (migration 0017)
)

# Every logged point (the series); the final value per key lives in run_metrics_latest.
metric_points = Table(
    "metric_points",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=True),
    Column("ts", Float, nullable=False),
    Index("ix_metric_points_run_key", "run_id", "key"),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Float, nullable=True),
    Column("step", BigInteger, nullable=True),
    sqlite_with_rowid=False,  # rows kept in the key's order (migration 0017)
)

# Every param and metric name a run has (or had: a deleted run's names stay until
# `delete_runs` prunes them), for column choosers. An index on `run_params.key` would
# serve them too, but cost each run one page per name (migration 0014).
param_keys = Table("param_keys", metadata, Column("key", String(255), primary_key=True))
metric_keys = Table("metric_keys", metadata, Column("key", String(255), primary_key=True))

run_steps = Table(
    "run_steps",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("seconds", Float, nullable=True),
    Column("output", String(64), nullable=True),
    Column("output_format", String(32), nullable=True),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("path", String(1024), primary_key=True),
    Column("hash", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
)

# A step whose code, inputs and the params it read are unchanged reuses its output.
step_cache = Table(
    "step_cache",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False),  # hash(code, input hashes)
    Column("params_read", JSON, nullable=False),  # {name: value} the step read
    Column("params_digest", String(64), nullable=False),
    # The names the step read, sorted, as JSON: a lookup hashes the current params
    # over each distinct set of names and asks for that digest (an index seek), so
    # it stays fast however many param sets a step has seen.
    Column("params_keys", Text, nullable=True),
    Column("output", String(64), nullable=False),
    Column("output_format", String(32), nullable=False),
    # Metric points the step logged, replayed into a run that reuses the output.
    Column("logged", JSON, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_step_cache_key", "key"),
    Index("ix_step_cache_key_digest", "key", "params_digest"),
)


__all__ = [
    "experiments",
    "metric_keys",
    "metric_points",
    "param_keys",
    "run_artifacts",
    "run_metrics",
    "run_params",
    "run_steps",
    "runs",
    "step_cache",
]
