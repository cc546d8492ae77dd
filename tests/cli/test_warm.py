"""The warm server (`assay.cli.warm`): a command run in a fork of a warm server answers
exactly as a new process does, signals reach it, it dies with its client, and a server
goes away when the code changes or it has been idle.

Each test has its own runtime folder (XDG_RUNTIME_DIR), so its servers are its own, and
stops them at the end. The client here is `PROBE`: `assay`'s own client code, which
also says whether a server answered (the console script cannot tell).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from assay.cli import warm
from servers import free_port  # type: ignore[import-not-found]  # tests/ is on sys.path

pytestmark = pytest.mark.one_backend  # processes and streams, not the database

ASSAY = str(Path(sys.executable).with_name("assay"))

PROBE = """
import json, os, signal, sys
from assay.cli import warm
if sys.argv[1] == "stale":
    warm.code_stamp = lambda: "the code as it is after an upgrade"
if sys.argv[1] == "no-ctrl-c":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
if sys.argv[1].startswith("elsewhere="):  # another server's socket, whatever the powers
    sock = sys.argv[1].split("=", 1)[1]
    warm.server_paths = lambda: (sock, sock + ".lock")
code = warm._via_server(json.loads(sys.argv[2]))
print(json.dumps({"served": code is not None, "code": code}), file=sys.stderr)
"""


@dataclass
class Answer:
    served: bool
    code: int | None
    out: str
    err: str


@pytest.fixture
def short() -> Iterator[Path]:
    """A runtime folder of this test's own, with a path short enough for a socket's
    (108 bytes; pytest's `tmp_path` under xdist is longer than `warm` accepts)."""
    folder = Path(tempfile.mkdtemp(prefix="aw-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def place(tmp_path: Path, short: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A workspace holding dataset `iris`, and an environment whose servers are this
    test's own; they are stopped at the end."""
    runtime = short
    root = tmp_path / "ws"
    root.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
        "XDG_RUNTIME_DIR": str(runtime),
        "COLUMNS": "200",
    }
    cold = {**env, "ASSAY_WARM": "0"}
    subprocess.run([ASSAY, "init"], cwd=root, env=cold, check=True, capture_output=True)
    (root / "iris.csv").write_text("id,sepal,species\n1,5.1,setosa\n2,4.9,setosa\n")
    subprocess.run([ASSAY, "data", "commit", "iris", "iris.csv"], cwd=root, env=cold, check=True)
    yield root, env
    for pid in servers(runtime):
        os.kill(pid, signal.SIGTERM)


def servers(runtime: Path) -> list[int]:
    """The warm servers whose sockets are in `runtime`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(str(runtime).encode() in part for part in cmdline) and b"serve" in b"".join(cmdline):
            found.append(int(entry.name))
    return found


def probe(
    args: list[str], root: Path, env: dict[str, str], mode: str = "-", prefix: tuple[str, ...] = ()
) -> Answer:
    done = subprocess.run(
        [*prefix, sys.executable, "-c", PROBE, mode, json.dumps(args)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    *lines, last = done.stderr.splitlines() or [""]
    report = json.loads(last)
    return Answer(report["served"], report["code"], done.stdout, "\n".join(lines))


def cold(args: list[str], root: Path, env: dict[str, str]) -> Answer:
    done = subprocess.run(
        [ASSAY, *args], cwd=root, env={**env, "ASSAY_WARM": "0"}, capture_output=True, text=True
    )
    return Answer(False, done.returncode, done.stdout, done.stderr.rstrip("\n"))


def until(check: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def warmed(root: Path, env: dict[str, str]) -> None:
    """Start this environment's server (the first probe does) and wait until it answers."""
    assert until(lambda: probe(["--help"], root, env).served), "no server answered in 60 s"


def test_commands_answer_warm_exactly_as_in_a_new_process(
    place: tuple[Path, dict[str, str]],
) -> None:
    root, env = place
    assert not probe(["runs", "list"], root, env).served  # none yet: this one starts it
    warmed(root, env)
    for args in (
        ["--help"],
        ["data", "log", "iris"],
        ["data", "list", "--json"],
        ["data", "show", "iris"],
        ["runs", "list"],
        ["models", "list"],
        ["data", "log", "nope"],  # an error: one line, exit 1
        ["runs", "lst"],  # a usage error: exit 2, "Did you mean"
    ):
        here, there = cold(args, root, env), probe(args, root, env)
        assert there.served, args
        assert (there.code, there.out, there.err) == (here.code, here.out, here.err), args


def test_a_warm_command_takes_its_clients_folder_environment_and_umask(
    place: tuple[Path, dict[str, str]],
) -> None:
    root, env = place
    warmed(root, env)
    (root / "sub").mkdir()
    (root / "sub" / "more.csv").write_text("a\n1\n")
    old = os.umask(0o077)
    try:
        answer = probe(
            ["data", "commit", "more", "more.csv", "-m", "from a sub-folder"],
            root / "sub",
            {**env, "ASSAY_AUTHOR": "warm-author"},
        )
        checkout = probe(["data", "checkout", "more@1", "out"], root / "sub", env)
    finally:
        os.umask(old)
    assert (answer.served, answer.code) == (True, 0), answer
    assert (checkout.served, checkout.code) == (True, 0), checkout
    log = cold(["data", "log", "more", "--json"], root, env)
    (version,) = json.loads(log.out)
    assert version["author"] == "warm-author"
    assert version["message"] == "from a sub-folder"
    mode = (root / "sub" / "out" / "more.csv").stat().st_mode
    assert mode & 0o077 == 0, oct(mode)  # the client's umask, not the server's (0o022)


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
            return True
    except OSError:
        return False


def _serve(root: Path, env: dict[str, str], mode: str = "-") -> tuple[subprocess.Popen[str], int]:
    """`assay server` through a probe client, once it answers."""
    port = free_port()
    client = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PROBE,
            mode,
            json.dumps(["server", "--no-auth", "--port", str(port)]),
        ],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert until(lambda: _answers(port)), "the warm `assay server` never answered"
    return client, port


def test_ctrl_c_reaches_the_command_and_its_exit_code_comes_back(
    place: tuple[Path, dict[str, str]],
) -> None:
    root, env = place
    warmed(root, env)
    client, port = _serve(root, env)
    client.send_signal(signal.SIGINT)
    _out, err = client.communicate(timeout=30)
    report = json.loads(err.splitlines()[-1])
    assert report["served"]
    assert report["code"] == 0  # uvicorn's graceful shutdown, as without a server
    assert not _answers(port)


def test_a_signal_its_client_ignores_the_command_ignores(
    place: tuple[Path, dict[str, str]],
) -> None:
    """A script's `assay … &` ignores Ctrl-C, as does the process it would start: so does
    the command a server runs for it, whatever the server's own dispositions."""
    root, env = place
    # The server is started by a client that ignores Ctrl-C, and inherits that.
    assert until(lambda: probe(["--help"], root, env, mode="no-ctrl-c").served)
    client, port = _serve(root, env, mode="no-ctrl-c")
    client.send_signal(signal.SIGINT)
    time.sleep(1)
    assert _answers(port), "Ctrl-C stopped a command whose client ignores it"
    client.send_signal(signal.SIGTERM)
    client.communicate(timeout=30)
    # uvicorn raises SIGTERM again once shut down: the command dies of it, and so does
    # its client, as `assay server` in a new process does (exit status 143 in a shell).
    assert client.returncode == -signal.SIGTERM
    assert not _answers(port)
    # A client that takes Ctrl-C gets a command that does, from the same server.
    client, port = _serve(root, env)
    client.send_signal(signal.SIGINT)
    _out, err = client.communicate(timeout=30)
    assert json.loads(err.splitlines()[-1]) == {"served": True, "code": 0}
    assert not _answers(port)


def test_a_client_with_a_closed_stream_runs_the_command_itself(
    place: tuple[Path, dict[str, str]],
) -> None:
    """With fd 0 closed, the socket would take its number and the command would read
    from the connection: such a client is not served."""
    root, env = place
    warmed(root, env)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "-", json.dumps(["--help"])],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        preexec_fn=lambda: os.close(0),
    )
    assert json.loads(done.stderr.splitlines()[-1]) == {"served": False, "code": None}


def test_a_server_refuses_a_client_with_other_powers(place: tuple[Path, dict[str, str]]) -> None:
    """A client that reaches another's socket (a sandboxed or `nice`d process of the same
    user) is refused, not run with the server's powers."""
    root, env = place
    warmed(root, env)
    (sock,) = Path(env["XDG_RUNTIME_DIR"]).rglob("*.sock")
    refused = probe(["--help"], root, env, mode=f"elsewhere={sock}", prefix=("nice", "-n", "7"))
    assert not refused.served
    assert probe(["--help"], root, env, mode=f"elsewhere={sock}").served  # the same powers


def test_a_command_dies_with_its_client(place: tuple[Path, dict[str, str]]) -> None:
    root, env = place
    warmed(root, env)
    client, port = _serve(root, env)
    client.kill()  # SIGKILL: the client cannot pass anything on
    client.communicate(timeout=30)
    assert until(lambda: not _answers(port), timeout=10), "the command outlived its client"


SLOW = """
import time
import assay

@assay.step
def wait(data, params):
    for i in range(300):
        assay.log_metric("tick", i, step=i)
        time.sleep(0.1)
    return {"done": 1.0}

pipeline = assay.Pipeline("slow", [wait], metrics="wait")
"""


def test_a_run_whose_client_is_killed_ends_killed(place: tuple[Path, dict[str, str]]) -> None:
    """`assay run` killed with -9 leaves its run recorded as killed, as it does without a
    server (the runner's lifeline), not running until its heartbeats go stale."""
    root, env = place
    (root / "slow.py").write_text(SLOW)
    (root / "p.json").write_text("{}")
    cold(["pipelines", "register", "slow.py"], root, env)
    warmed(root, env)
    client = subprocess.Popen(
        [sys.executable, "-c", PROBE, "-", json.dumps(["run", "slow", "--data", "iris@1",
         "--params", "p.json"])],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip

    def runs() -> list[dict[str, object]]:
        found: list[dict[str, object]] = json.loads(cold(["runs", "list", "--json"], root, env).out)
        return found

    assert until(lambda: any(r["metrics"] for r in runs())), "the run never logged a point"
    client.kill()
    client.wait()
    assert until(lambda: runs()[0]["status"] != "running", timeout=30)
    (run,) = runs()
    assert run["status"] == "killed"
    assert "died" in str(run["error"])


def test_a_server_gives_way_when_the_code_changes(place: tuple[Path, dict[str, str]]) -> None:
    root, env = place
    runtime = Path(env["XDG_RUNTIME_DIR"])
    warmed(root, env)
    (first,) = servers(runtime)
    assert not probe(["--help"], root, env, mode="stale").served  # run in its own process
    assert until(lambda: first not in servers(runtime), timeout=10), "the old server stayed"
    warmed(root, env)  # the stale client started a new server
    assert servers(runtime)
    assert first not in servers(runtime)


def test_an_idle_server_exits_and_removes_its_socket(place: tuple[Path, dict[str, str]]) -> None:
    root, env = place
    runtime = Path(env["XDG_RUNTIME_DIR"])
    env = {**env, "ASSAY_WARM_IDLE_S": "1"}
    probe(["--help"], root, env)  # starts the server
    assert until(lambda: bool(list(runtime.rglob("*.sock"))))
    assert until(lambda: not servers(runtime) and not list(runtime.rglob("*.sock")), 30)


def test_concurrent_commands_each_get_their_own_answer(
    place: tuple[Path, dict[str, str]],
) -> None:
    root, env = place
    warmed(root, env)
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE, "-", json.dumps(["data", "log", name, "--json"])],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("iris", "nope", "iris", "nope")
    ]
    outcomes = [c.communicate(timeout=60) for c in clients]
    codes = [json.loads(err.splitlines()[-1])["code"] for _out, err in outcomes]
    assert codes == [0, 1, 0, 1]
    assert json.loads(outcomes[0][0])[0]["number"] == 1
    assert "nope" in outcomes[1][1]


def paths_under(runtime: Path, *prefix: str) -> str:
    """What `server_paths()` says in a new process with this runtime folder."""
    show = "from assay.cli import warm; print(warm.server_paths())"
    done = subprocess.run(
        [*prefix, sys.executable, "-c", show],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_a_client_with_other_powers_gets_another_server(short: Path) -> None:
    """A fork of a server has the server's user, limits and priority: a client that
    differs (`nice`, `ulimit`, `setpriv`) must not be served by it."""
    plain = paths_under(short)
    nicer = paths_under(short, "nice", "-n", "5")
    limited = paths_under(short, "sh", "-c", 'ulimit -n 100 && exec "$0" "$@"')
    assert len({plain, nicer, limited}) == 3
    assert all(p.startswith(f"('{short}/assay/") for p in (plain, nicer, limited))


def test_no_server_is_started_when_turned_off(place: tuple[Path, dict[str, str]]) -> None:
    root, env = place
    runtime = Path(env["XDG_RUNTIME_DIR"])
    done = subprocess.run(
        [ASSAY, "runs", "list"], cwd=root, env={**env, "ASSAY_WARM": "0"}, capture_output=True
    )
    assert done.returncode == 0
    time.sleep(1)
    assert not servers(runtime)
    assert not list(runtime.rglob("*.sock"))
    assert not warm.enabled({"ASSAY_WARM": "off"})
    assert warm.enabled({})


def test_a_shared_runtime_folder_is_never_used(short: Path) -> None:
    """Another user could plant a socket in a folder others can write to."""
    shared = short / "shared"
    (shared / "assay").mkdir(parents=True)
    (shared / "assay").chmod(0o777)
    assert paths_under(shared) == "None"
    (shared / "assay").chmod(0o700)  # the same folder, now only its user's: used
    assert paths_under(shared).startswith(f"('{shared}/assay/")


def test_a_socket_path_too_long_for_the_kernel_means_no_server(short: Path) -> None:
    deep = short / ("d" * 90)
    deep.mkdir()
    assert paths_under(deep) == "None"
