"""Every command behaves the same locally and with `--remote`.

Two equivalent workspaces: one on this machine, one behind a real `assay server`. Each
step runs the same command on both (locally in the first, with `--remote` from a folder
with no workspace against the second) and compares what a user sees: the exit code, the
output and, for `--json`, the document. Only what must differ is normalized: run ids
(random), times and durations, ports (free ones), and the two folders' paths.

The commands run in this process (the console script's `main`, `invoke_assay`): a fresh
interpreter per command was most of this test's two minutes. The `assay` script itself,
in its own processes, runs in the README's tour (tests/test_readme.py), the demo and
tests/client/test_remote.py.

The steps run in order (later ones read what earlier ones made); a failing step shows the
two outputs side by side.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from client.conftest import (  # type: ignore[import-not-found]  # tests/ is on sys.path
    assay_server,
    invoke_assay,
)

# processes and HTTP, not the database: one metadata backend is enough.
# The steps build on one another (one workspace pair): one xdist worker runs them, in order.
pytestmark = [pytest.mark.one_backend, pytest.mark.xdist_group("parity")]

PIPELINE = """
import assay

@assay.step
def load(data):
    return [float(x) for x in (data / "n.txt").read_text().split()]

@assay.step
def train(load, params):
    return {"w": sum(load) * params["k"]}

@assay.step
def evaluate(train):
    return {"score": train["w"] / 10}

pipeline = assay.Pipeline("tiny", [load, train, evaluate])
"""

PEOPLE_1 = "id,name,age\n1,ann,31\n2,bob,45\n3,cid,200\n"
PEOPLE_2 = "id,name,age\n1,ann,31\n2,bob,46\n4,dee,29\n"
CHECKS = "columns:\n  age: {type: integer, max: 120}\n  name: {unique: true}\n"
MONITOR = "schedule: 1h\nwindow: {last: 100}\n"


@dataclass
class Pair:
    """A workspace on this machine and a server's, made and changed in step."""

    here: Path  # the local workspace, and the folder local commands run in
    laptop: Path  # remote commands run here: the same files, no workspace
    url: str
    environ: dict[str, str]
    secret: str
    runs: dict[str, list[str]] = field(default_factory=lambda: {"local": [], "remote": []})

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        done: subprocess.CompletedProcess[str] = invoke_assay(
            *args, cwd=self.here, env=self.environ
        )
        return done

    def remote(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**self.environ, "ASSAY_TOKEN": self.secret}
        done: subprocess.CompletedProcess[str] = invoke_assay(
            *args, "--remote", self.url, cwd=self.laptop, env=env
        )
        return done


def _inputs(folder: Path) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pipeline.py").write_text(PIPELINE)
    (folder / "params.json").write_text('{"k": 2}')
    (folder / "d").mkdir()
    (folder / "d" / "n.txt").write_text("1 2 3")
    for name, text in (("p1", PEOPLE_1), ("p2", PEOPLE_2)):
        (folder / name).mkdir()
        (folder / name / "people.csv").write_text(text)
    (folder / "checks.yaml").write_text(CHECKS)
    (folder / "monitor.yaml").write_text(MONITOR)
    X, y = load_iris(return_X_y=True, as_frame=True)
    models = folder.parent / "models"  # one path for both sides: a version records its source
    models.mkdir()
    sio.dump(DecisionTreeClassifier(max_depth=1, random_state=0).fit(X, y), models / "t.skops")
    sio.dump(LogisticRegression(max_iter=500).fit(X, y), models / "l.skops")


# Session-wide: on an xdist worker that runs other modules' tests between these steps, a
# module fixture would be torn down and made afresh, losing what the earlier steps made.
@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp("parity")
    here, server, laptop = root / "here", root / "server", root / "laptop"
    server.mkdir()
    _inputs(here)
    shutil.copytree(here, laptop)  # the same bytes (a model file's differ from fit to fit)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    # What the server records names the token ("admin"); the local author is the same.
    environ.update(ASSAY_AUTHOR="admin", COLUMNS="200", NO_COLOR="1")
    with assay_server(server, environ) as (url, secret):
        made = Pair(here, laptop, url, environ, secret)
        assert made.local("init").returncode == 0
        assert made.local("tokens", "create", "admin", "--scope", "admin").returncode == 0
        yield made
        for side in (made.local, made.remote):
            side("services", "stop", "svc")
            side("abtests", "stop", "ab")


# ---- what may differ, made equal -----------------------------------------------------------

_ISO = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?")
_SECONDS = re.compile(r"\b\d+(\.\d+)?\s?(s|ms|µs|min|h)\b")
_MEMORY = re.compile(r"\bpeak \d+(\.\d+)? [KMG]?B\b")
_HASH = re.compile(r"\b[0-9a-f]{16,64}\b")
_AGO = re.compile(r"\b(\d+ \w+ ago|just now)\b")
# Progress of work done here (files hashed, uploaded); the server's is not streamed back.
_PROGRESS = re.compile(r"^.*\d+/\d+ \w+ \(\d+%\)\n", re.MULTILINE)
# What a long step is doing, said after a second: when depends on the machine's speed.
_STATUS = re.compile(
    r"^(Run on \S+|(Creating|Concluding|Starting|Deploying|Updating|Stopping) ?\w*): .*\n",
    re.MULTILINE,
)
_PORT = re.compile(r"((?:127\.0\.0\.1|0\.0\.0\.0|localhost):)\d+")
_VARYING = {
    "created_at", "started_at", "ended_at", "finished_at", "updated_at", "concluded_at",
    "stopped_at", "ts", "time", "duration_s", "wall_s", "cpu_s", "resources", "environment",
    "pid", "port", "url", "uptime_s", "seconds", "last_used_at", "cost", "heartbeat_at",
    "queued_at", "workers_now", "packages", "cached_s", "elapsed_s", "p50_ms", "p95_ms",
    "p99_ms", "latency_ms", "bundle", "prefix", "checked_at", "started", "ended", "created",
    "last_check_at",
}  # fmt: skip


def _ids(pair: Pair, side: str, text: str) -> str:
    for n, run in enumerate(pair.runs[side], start=1):
        text = text.replace(run, f"<run{n}>").replace(run[:8], f"<run{n}>")
    return text


def normalize(pair: Pair, side: str, text: str, as_json: bool = False) -> str:
    text = _ids(pair, side, text)
    for folder in (pair.here.parent / "models", pair.here, pair.laptop):
        text = text.replace(str(folder), "<folder>")
    text = _ISO.sub("<time>", text)
    text = _AGO.sub("<ago>", text)
    text = _MEMORY.sub("peak <memory>", text)
    text = _PORT.sub(r"\1<port>", text)
    text = _SECONDS.sub("<seconds>", text)
    if as_json:  # a document's varying fields are blanked by name instead
        return text
    # A model bundle's hash covers its zip's timestamps: each registration makes its own.
    text = _HASH.sub("<hash>", text)
    # Tables size their columns to what they hold, which the above may have changed.
    return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.split("\n"))


def _blank(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: "<varies>" if k in _VARYING else _blank(v) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_blank(v) for v in doc]
    return doc


def outcome(pair: Pair, side: str, done: subprocess.CompletedProcess[str], as_json: bool) -> Any:
    out = normalize(pair, side, done.stdout, as_json)
    err = _STATUS.sub("", _PROGRESS.sub("", normalize(pair, side, done.stderr)))
    if as_json and done.returncode == 0:
        return done.returncode, _blank(json.loads(out)), err
    return done.returncode, out, err


# ---- the steps ------------------------------------------------------------------------------

# (arguments, compare the files written there); RUN1/RUN2 stand for the runs made so far.
# fmt: off
STEPS: list[tuple[tuple[str, ...], str | None]] = [
    # data
    (("data", "commit", "n", "d", "-m", "numbers"), None),
    (("data", "commit", "people", "p1", "--json"), None),
    (("data", "commit", "people", "p2", "-m", "fixed"), None),
    (("data", "commit", "people", "p2"), None),  # unchanged: no version
    (("data", "list"), None),
    (("data", "list", "--json"), None),
    (("data", "list", "--all", "--json"), None),
    (("data", "log", "people"), None),
    (("data", "log", "people", "--json"), None),
    (("data", "show", "people@1"), None),
    (("data", "show", "people@2", "--json"), None),
    (("data", "tag", "people@1", "first"), None),
    (("data", "tag", "people@2", "first", "--force", "--json"), None),
    (("data", "tag", "people@1", "first"), None),  # refused: the tag names another version
    (("data", "diff", "people@1", "people@2"), None),
    (("data", "diff", "people@1", "people@2", "--key", "id", "--json"), None),
    (("data", "profile", "people@2"), None),
    (("data", "profile", "people@1", "--json"), None),
    (("data", "validate", "people@1", "--checks", "checks.yaml"), None),
    (("data", "validate", "people@2", "--checks", "checks.yaml", "--json"), None),
    (("data", "checkout", "people@1", "out1"), "out1"),
    (("data", "verify"), None),
    (("data", "verify", "--json"), None),
    (("data", "show", "nope@1"), None),
    # pipelines
    (("pipelines", "register", "pipeline.py"), None),
    (("pipelines", "register", "pipeline.py", "--json"), None),
    (("pipelines", "list"), None),
    (("pipelines", "list", "--json"), None),
    (("pipelines", "log", "tiny", "--json"), None),
    (("pipelines", "show", "tiny@1"), None),
    (("pipelines", "show", "tiny@1", "--json"), None),
    (("pipelines", "diff", "tiny@1", "tiny@latest", "--json"), None),
    # runs
    (("run", "pipeline.py", "--data", "n@1", "--params", "params.json", "--json"), None),
    (("run", "tiny", "--data", "n@1", "--params", "params.json", "--param", "k=3", "--json"), None),
    (("runs", "list"), None),
    (("runs", "list", "--json"), None),
    (("runs", "list", "--filter", "metrics.score > 1", "--json"), None),
    (("runs", "show", "RUN1"), None),
    (("runs", "show", "RUN2", "--json"), None),
    (("runs", "compare", "RUN1", "RUN2"), None),
    (("runs", "compare", "RUN1", "RUN2", "--json"), None),
    (("runs", "logs", "RUN1", "--json"), None),
    (("runs", "leaderboard", "-e", "tiny", "-m", "score"), None),
    (("runs", "leaderboard", "-e", "tiny", "-m", "score", "--json"), None),
    (("runs", "experiments"), None),
    (("runs", "experiments", "--json"), None),
    (("runs", "code", "RUN1", "--json"), None),
    (("runs", "archive", "RUN2"), None),
    (("runs", "list", "--json"), None),
    (("runs", "restore", "RUN2"), None),
    # models
    (("models", "register", "MODELS/t.skops", "--name", "iris"), None),
    (("models", "register", "MODELS/l.skops", "--name", "iris", "--json"), None),
    (("models", "list"), None),
    (("models", "list", "--json"), None),
    (("models", "show", "iris"), None),
    (("models", "show", "iris@1", "--json"), None),
    (("models", "alias", "iris@1", "champion"), None),
    (("models", "alias", "iris@2", "staging", "--json"), None),
    (("models", "alias", "iris", "staging", "--delete"), None),
    (("models", "lineage", "iris@1", "--json"), None),
    (("models", "export", "iris@champion", "exported"), "exported"),
    (("models", "show", "iris@nope"), None),
    # services
    (("services", "deploy", "svc", "--model", "iris@1", "--timeout", "12", "--json"), None),
    (("services", "list"), None),
    (("services", "list", "--json"), None),
    (("services", "update", "svc", "--model", "iris@2", "--json"), None),
    (("services", "stop", "svc", "--timeout", "5", "--json"), None),
    (("services", "start", "svc", "--json"), None),
    (("services", "stop", "svc"), None),
    (("services", "status", "nope"), None),
    # A/B tests
    (
        (
            "abtests",
            "create",
            "ab",
            "--variant",
            "A=iris@1",
            "--variant",
            "B=iris@2",
            "--workers",
            "2",
            "--baseline",
            "0.7",
            "--mde",
            "0.2",
            "--json",
        ),
        None,
    ),
    (("abtests", "list", "--json"), None),
    (("abtests", "report", "ab", "--json"), None),
    (("abtests", "pause", "ab"), None),
    (("abtests", "resume", "ab"), None),
    (("abtests", "set-weights", "ab", "80,20"), None),
    (("abtests", "conclude", "ab", "--winner", "B", "--no-promote", "--json"), None),
    (("models", "show", "iris", "--json"), None),  # champion did not move
    (("abtests", "list"), None),
    # monitoring, sweeps, tokens
    (("monitor", "list", "--json"), None),
    (("monitor", "snapshots", "--json"), None),
    (("monitor", "retrains", "--json"), None),
    (("sweeps", "list", "--json"), None),
    (("tokens", "list", "--json"), None),
    # deleting and collecting
    (("runs", "delete", "RUN2"), None),
    (("models", "delete", "iris@2", "--json"), None),
    (("data", "delete", "people@1"), None),
    (("data", "delete", "people@2", "--json"), None),
    (("gc", "--dry-run", "--json"), None),
]
# fmt: on


# The steps that must fail (the same way on both sides).
REFUSED = {
    ("data", "tag", "people@1", "first"),
    ("data", "validate", "people@1", "--checks", "checks.yaml"),
    ("data", "show", "nope@1"),
    ("models", "show", "iris@nope"),
    ("services", "status", "nope"),
    ("models", "delete", "iris@2", "--json"),  # an A/B test holds it
    ("data", "delete", "people@2", "--json"),  # a tag names it
}


def _id(step: tuple[tuple[str, ...], str | None]) -> str:
    return " ".join(step[0])[:60]


def test_every_command_answers_the_same_locally_and_remotely(pair: Pair) -> None:
    """The steps in order, in one test: each builds on what the ones before it made (on
    an xdist worker a parametrized case may run away from its neighbours)."""
    for step in STEPS:
        _check_step(pair, step)


def _check_step(pair: Pair, step: tuple[tuple[str, ...], str | None]) -> None:
    args, written = step
    sides = {}
    for side, call in (("local", pair.local), ("remote", pair.remote)):
        real = [_real(pair, side, a) for a in args]
        done = call(*real)
        if args[0] == "run":  # later steps name it
            assert done.returncode == 0, (_id(step), side, done.stderr)
            pair.runs[side].append(json.loads(done.stdout)["id"])
        sides[side] = outcome(pair, side, done, "--json" in args)
    assert sides["local"] == sides["remote"], (_id(step), _diff(sides["local"], sides["remote"]))
    code, _, err = sides["local"]
    assert code == 0 or args in REFUSED, (_id(step), err)  # failing both ways proves little
    if written:  # the same files; a model's bytes differ by their zip's timestamps
        here, there = _tree(pair.here / written), _tree(pair.laptop / written)
        assert here.keys() == there.keys(), _id(step)
        if written != "exported":
            assert here == there, _id(step)


def _diff(local: Any, remote: Any) -> str:
    import difflib
    import pprint

    a, b = pprint.pformat(local, width=100), pprint.pformat(remote, width=100)
    lines = difflib.unified_diff(a.splitlines(), b.splitlines(), "local", "remote", lineterm="")
    return "\n".join(lines)


def _real(pair: Pair, side: str, arg: str) -> str:
    if arg.startswith("RUN"):
        return pair.runs[side][int(arg[3:]) - 1]
    if arg.startswith("MODELS/"):
        return str(pair.here.parent / "models" / arg.removeprefix("MODELS/"))
    return arg


def _tree(folder: Path) -> dict[str, bytes]:
    assert folder.is_dir(), folder
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}  # fmt: skip
