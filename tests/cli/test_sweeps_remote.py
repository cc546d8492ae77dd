"""`assay sweep … --remote` and the sweep routes: a real `assay server` drives the trials.

A laptop folder with no workspace sends the sweep; the server records it, runs its
trials as its own runs, registers the best model, and stops and resumes it on request.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import assay
from assay.client import Client
from assay.config import Settings
from assay.sweeps.entities import Sweep
from assay.workspace import Workspace, init_workspace
from servers import ServerProcess  # type: ignore[import-not-found]  # tests/ is on sys.path

PIPELINE = """
import os
import time

import assay
import pandas as pd
from sklearn.linear_model import Ridge


@assay.step
def load(data):
    return pd.read_csv(data / "xy.csv")


@assay.step
def train(load, params):
    time.sleep(params.get("pause", 0.0))
    # A gate the test opens: the trial runs until then, however slow the machine is.
    while params.get("gate") and not os.path.exists(params["gate"]):
        time.sleep(0.05)
    return Ridge(alpha=params["alpha"]).fit(load[["x"]], load["y"])


@assay.step
def evaluate(train, load):
    return {"loss": float(((train.predict(load[["x"]]) - load["y"]) ** 2).mean())}


pipeline = assay.Pipeline("ridge", [load, train, evaluate])
"""

SPACE = "alpha: {log-float: [0.001, 1000]}\n"


@dataclass
class Site:
    """`assay server` on a loopback port and a workspace of its own, and a laptop folder
    (no workspace) with the pipeline, its params, a space and the data."""

    home: Path
    laptop: Path
    environ: dict[str, str]
    secret: str
    server: ServerProcess

    @property
    def url(self) -> str:
        return str(self.server.url)

    @property
    def env(self) -> dict[str, str]:
        """The laptop's environment: a token, no workspace."""
        out = {k: v for k, v in self.environ.items() if not k.startswith("ASSAY_")}
        out.update(ASSAY_TOKEN=self.secret, COLUMNS="200")
        return out

    def assay(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "assay", *args, "--remote", self.url],
            cwd=self.laptop, env=self.env, capture_output=True, text=True, timeout=180,
            check=False,
        )  # fmt: skip
        if check:
            assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done

    def client(self) -> Client:
        return Client(self.url, self.secret)


def _kill_leftovers(home: Path) -> None:
    """Sweep drivers and their runners outlive the server by design: a test that failed
    half-way must not leave them running."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if Path(proc / "cwd").resolve() != home.resolve():
                continue
        except OSError:
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(int(proc.name), signal.SIGKILL)


@pytest.fixture
def site(tmp_path: Path, env: dict[str, str]) -> Iterator[Site]:
    home = tmp_path / "server"
    home.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environ.update(env)
    settings, _ = init_workspace(Settings.at(home, environ))
    ws = Workspace(settings)
    secret = ws.tokens.create("admin", "admin")[1]
    ws.close()
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    (laptop / "pipeline.py").write_text(PIPELINE)
    (laptop / "params.json").write_text('{"alpha": 1.0}')
    (laptop / "space.yaml").write_text(SPACE)
    (laptop / "xy.csv").write_text("x,y\n" + "".join(f"{i},{2 * i + 1}\n" for i in range(20)))
    found = Site(home, laptop, environ, secret, ServerProcess(home, environ))
    try:
        found.server.start()
        with found.client() as client:
            client.data.commit("xy", laptop / "xy.csv")
        yield found
    finally:
        found.server.stop()
        _kill_leftovers(home)


def _until(client: Client, name: str, done: Callable[[Sweep], bool], timeout: float = 90) -> Sweep:
    deadline = time.monotonic() + timeout
    while True:
        sweep: Sweep = client.sweeps.get(name)
        if done(sweep):
            return sweep
        assert time.monotonic() < deadline, sweep
        time.sleep(0.1)


@pytest.mark.one_backend  # sweeps on PostgreSQL: test_sweeps_cli.py; here, the HTTP path
def test_a_remote_sweep_runs_its_trials_on_the_server_and_registers_the_best_model(
    site: Site,
) -> None:
    swept = site.assay(
        "sweep", "pipeline.py", "--data", "xy", "--params", "params.json",
        "--space", "space.yaml", "--trials", "4", "--parallel", "2", "--objective", "loss",
        "--sampler", "random", "--seed", "1", "--name", "rs",
    )  # fmt: skip
    out = swept.stdout
    assert f"Sweep rs: ridge@1 on xy@1, 4 of 4 trials to go, loss:min, sampler random, 2 at a " \
        f"time on local at {site.url}" in out, out  # fmt: skip
    assert out.count("complete") >= 4
    assert "finished: 4 complete" in out
    with site.client() as client:
        sweep = client.sweeps.get("rs")
        assert isinstance(sweep, Sweep)
        assert sweep.status == "finished"
        trials = sweep.trial_list
        assert [t.state for t in trials] == ["complete"] * 4
        # Every trial is a run on the server, in the sweep's experiment, with its params.
        runs = {r.id: r for r in client.runs.search(experiment="rs")}
        assert set(runs) == {t.run_id for t in trials}
        for t in trials:
            run = runs[t.run_id or ""]
            assert run.status == "succeeded"
            assert run.params["alpha"] == t.params["alpha"]
            assert run.metrics["loss"] == pytest.approx((t.values or [0])[0])
        best = min(trials, key=lambda t: (t.values or [0])[0])
        assert sweep.best_runs == (best.run_id,)
        assert f"Best: trial {best.number}, loss = " in out
        # ... and its model is registered, from that run.
        [ref] = sweep.best_models
        assert f"→ model {ref}" in out
        model = client.models.resolve(ref)
        assert model.name == "ridge"
        assert model.lineage.run_id == best.run_id
    listed = site.assay("sweeps", "list", "--json")
    assert [(s["name"], s["status"]) for s in json.loads(listed.stdout)] == [("rs", "finished")]


@pytest.mark.one_backend
def test_a_bad_space_or_objective_is_refused_in_one_line_and_records_nothing(
    site: Site,
) -> None:
    (site.laptop / "bad.yaml").write_text("alpha: {float: [0, 1]\n")
    (site.laptop / "typo.yaml").write_text("alpah: {float: [0, 1]}\n")
    args = ("sweep", "pipeline.py", "--data", "xy", "--params", "params.json", "--trials", "2")
    for extra, message in (
        (("--space", "bad.yaml", "--objective", "loss"), "bad.yaml is not valid YAML"),
        (("--space", "space.yaml", "--objective", "loss:up"), "the direction after ':'"),
        (("--space", "space.yaml", "--objective", "loss", "--sampler", "best"), "sampler"),
    ):
        refused = site.assay(*args, *extra, check=False)
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
        assert message in refused.stderr
        assert "Traceback" not in refused.stderr
    with site.client() as client:
        assert client.sweeps.sweeps() == []
        assert client.pipelines.pipelines() == []
        # Through the API the server checks the same, before it records anything.
        client.pipelines.register(site.laptop / "pipeline.py")
        with pytest.raises(assay.InvalidArgumentError, match=r"space.yaml is not valid YAML"):
            client.sweeps.create(
                "ridge", data="xy", space_text="alpha: {float: [0, 1]\n", trials=2,
                objectives=["loss"],
            )  # fmt: skip
        with pytest.raises(assay.InvalidArgumentError, match=r"'alpah'.*Did you mean 'alpha'"):
            client.sweeps.create(
                "ridge", data="xy", space_file=site.laptop / "typo.yaml", trials=2,
                objectives=["loss"], params={"alpha": 1.0},
            )  # fmt: skip
        with pytest.raises(assay.InvalidArgumentError, match="--trials must be at least 1"):
            client.sweeps.create(
                "ridge", data="xy", space_text=SPACE, trials=0, objectives=["loss"]
            )
        with pytest.raises(assay.InvalidArgumentError, match="register it first"):
            # The SDK registers a path first, as locally; the route itself refuses one.
            client.http.call("POST", "/sweeps", json={"pipeline": "pipeline.py", "data": "xy",
                             "space": SPACE, "trials": 1, "objectives": ["loss"]})  # fmt: skip
        with pytest.raises(assay.NotFoundError):
            client.sweeps.create(
                "ridge", data="nope", space_text=SPACE, trials=1, objectives=["loss"]
            )
        assert client.sweeps.sweeps() == []
        assert client.runs.search() == []
    # The CLI's typo in the space is the server's one-line error.
    typo = site.assay(*args, "--space", "typo.yaml", "--objective", "loss", check=False)
    assert typo.returncode == 1, typo.stderr
    assert len(typo.stderr.strip().splitlines()) == 1, typo.stderr
    assert "alpah" in typo.stderr


@pytest.mark.one_backend
def test_a_sweep_outlives_a_server_restart_and_is_stopped_and_resumed_through_the_api(
    site: Site,
) -> None:
    gate = site.laptop / "gate"  # trials wait until it exists: the sweep outlives the restart
    with site.client() as client:
        client.pipelines.register(site.laptop / "pipeline.py")
        made = client.sweeps.create(
            "ridge", data="xy", space_text=json.dumps({"alpha": {"log-float": [0.001, 1000]}}),
            space_name="space.json", trials=3,
            objectives=["loss:min"], params={"alpha": 1.0, "gate": str(gate)}, register="none",
            name="slow",
        )  # fmt: skip
        assert made.status == "created"
        assert made.name == "slow"
        running = _until(client, "slow", lambda s: any(t.state == "running" for t in s.trial_list))
    # The driver is no child of the server's: a restart leaves the sweep going.
    site.server.stop()
    site.server.start()
    with site.client() as client:
        assert client.sweeps.get("slow").status == "running"
        stopped = client.sweeps.stop("slow")
        assert stopped.status == "interrupted", stopped
        cut = [t for t in stopped.trial_list if t.state == "interrupted"]
        assert cut
        assert all(client.runs.get(t.run_id or "").status == "killed" for t in cut)
        assert running.trial_list[0].number in {t.number for t in stopped.trial_list}
        with pytest.raises(assay.ConflictError, match="is not running"):
            client.sweeps.stop("slow")
        gate.touch()
        resumed = client.sweeps.resume("slow")
        assert resumed.status == "queued"
        done = _until(client, "slow", lambda s: s.status not in ("queued", "running"))
        assert done.status == "finished", done.stop_cause
        assert done.counted() == 3, done.stop_cause
        retried = [t.number for t in done.trial_list if t.state == "retried"]
        assert retried == [t.number for t in cut]
        with pytest.raises(assay.ConflictError, match="has finished all its 3 trials"):
            client.sweeps.resume("slow")
        with pytest.raises(assay.NotFoundError):
            client.sweeps.stop("ghost")


@pytest.mark.one_backend
def test_ctrl_c_while_following_stops_the_sweep_on_the_server(site: Site) -> None:
    (site.laptop / "params.json").write_text('{"alpha": 1.0, "pause": 1.0}')
    follower = subprocess.Popen(
        [sys.executable, "-m", "assay", "sweep", "pipeline.py", "--data", "xy",
         "--params", "params.json", "--space", "space.yaml", "--trials", "2",
         "--objective", "loss", "--register", "none", "--name", "cut", "--remote", site.url],
        cwd=site.laptop, env=site.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        with site.client() as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    sweep = client.sweeps.get("cut")
                except assay.NotFoundError:
                    sweep = None
                if sweep is not None and any(t.state == "running" for t in sweep.trial_list):
                    break
                assert time.monotonic() < deadline
                assert follower.poll() is None
                time.sleep(0.1)
            follower.send_signal(signal.SIGINT)
            out, err = follower.communicate(timeout=60)
            assert follower.returncode == 130, (out, err)
            assert "Resume it with `assay sweep resume cut`" in err
            assert client.sweeps.get("cut").status == "interrupted"
    finally:
        if follower.poll() is None:
            follower.kill()
    resumed = json.loads(site.assay("sweeps", "resume", "cut", "--json").stdout)
    assert resumed["status"] == "finished"
    assert sorted(t["state"] for t in resumed["trial_list"]) == ["complete", "complete", "retried"]
