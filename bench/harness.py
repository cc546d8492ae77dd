"""What every side-by-side benchmark shares: paths, the scale knob, the scratch folder,
failure reporting and the speedup rule. Each `bench/NAME.py` imports it and calls
`main(...)` with its own measuring and reporting.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

BENCH_DIR = Path(__file__).resolve().parent
WORK_ROOT = BENCH_DIR / ".work"  # git-ignored, on the same filesystem as the repository
BIN = Path(sys.executable).parent
ASSAY = str(BIN / "assay")

out = Console(highlight=False)
log = Console(stderr=True, highlight=False)

Figures = dict[str, float]


class BenchFailed(Exception):
    """A tool failed, or the tools disagreed; the message says how."""


def speedup(peer: float, ours: float) -> float:
    """The peer's time divided by Assay's: above 1, Assay is faster."""
    return round(peer / ours, 2) if ours > 0 else float("inf")


def main(
    name: str,
    bench: Callable[[Path, float], Figures],
    report: Callable[[Figures, float], None],
    missing: Callable[[], str | None] = lambda: None,
) -> int:
    """Read ASSAY_BENCH_SCALE, run `bench` in a scratch folder, always clean up, report."""
    scale = float(os.environ.get("ASSAY_BENCH_SCALE", "1.0"))
    if not 0 < scale <= 10:
        log.print(f"ASSAY_BENCH_SCALE must be in (0, 10], got {scale}.")
        return 2
    problem = missing()
    if problem:
        log.print(f"{problem}; run `make bench-deps` first.")
        return 2
    out.print(f"scale: {scale:g}")
    WORK_ROOT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=WORK_ROOT))
    # The warm servers of the `assay` commands this benchmark runs are its own
    # (`assay.cli.warm`), and stop with it.
    runtime = work / "run"
    runtime.mkdir(mode=0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        figures = bench(work, scale)
    except BenchFailed as exc:
        log.print(f"benchmark failed: {exc}", markup=False)
        return 1
    finally:
        stop_warm_servers()
        shutil.rmtree(work, ignore_errors=True)
    report(figures, scale)
    return 0


# ---- wrk, the load generator of the serving benchmarks ------------------------------------

# Sends the body read from a file, again and again; with `keyed`, each request carries an
# `X-Assay-Key: user-N` header, N counting up (for sticky routing).
_WRK_SCRIPT = """\
local f = assert(io.open([[{body}]], "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
wrk.headers["Content-Type"] = "application/json"
f:close()
local keyed = {keyed}
local n = 0
request = function()
  if keyed then
    n = n + 1
    wrk.headers["X-Assay-Key"] = "user-" .. n
  end
  return wrk.format()
end
"""
_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.M)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.M)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(r"Socket errors:.*")


@dataclass(frozen=True)
class WrkResult:
    p50_ms: float
    p99_ms: float
    rps: float


def wrk(
    url: str,
    body: Path,
    work: Path,
    *,
    name: str,
    connections: int,
    threads: int,
    seconds: int,
    keyed: bool = False,
) -> WrkResult:
    """POST the JSON in `body` to `url` for `seconds` with `wrk --latency`.

    Raises:
        BenchFailed: wrk failed, saw socket errors or non-2xx answers, or printed
            nothing to read.
    """
    script = work / f"wrk-{'keyed' if keyed else 'plain'}.lua"
    script.write_text(_WRK_SCRIPT.format(body=body, keyed="true" if keyed else "false"))
    args = [
        *("wrk", "--latency", "--timeout", "30s", "-s", str(script)),
        *(f"-t{threads}", f"-c{connections}", f"-d{seconds}s", url),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60, check=False)
    text = proc.stdout + proc.stderr
    problems = []
    if proc.returncode != 0:
        problems.append(f"it exited {proc.returncode}")
    if m := _NON_2XX.search(text):
        problems.append(f"{m.group(1)} answers were not 2xx")
    if m := _SOCKET_ERRORS.search(text):
        problems.append(m.group(0).strip())
    percentiles = {p: float(v) * _UNIT_MS[u] for p, v, u in _PERCENTILE.findall(text)}
    rps = _RPS.search(text)
    if rps is None or set(percentiles) != {"50", "99"}:
        problems.append("its output has no latency distribution or rate")
    if problems:
        raise BenchFailed(
            f"wrk against {name} ({connections} connections): "
            f"{'; '.join(problems)}.\n`{' '.join(args)}` printed:\n{text}"
        )
    assert rps is not None
    return WrkResult(percentiles["50"], percentiles["99"], float(rps.group(1)))


def wrk_version() -> str:
    """wrk's version as it prints it (`wrk -v` exits 1)."""
    if shutil.which("wrk") is None:
        return "?"
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    m = re.search(r"wrk (\S+)", proc.stdout + proc.stderr)
    return m.group(1) if m else "?"


def wrk_missing() -> str | None:
    return "wrk (the load generator) is missing" if shutil.which("wrk") is None else None


@contextmanager
def no_feature_name_warning() -> Iterator[None]:
    """Fitted on a DataFrame, given numpy: scikit-learn warns on every call otherwise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="X does not have valid feature names")
        yield


# ---- servers the benchmarks start (Assay's and the peers') ----------------------------------

SERVER_READY_S = 180.0
SERVER_STOP_S = 15.0


def peer_env(**extra: str) -> dict[str, str]:
    """The environment a peer's server runs in: `.venv/bin` on PATH (`mlflow server` and
    `mlflow models serve` start `uvicorn` by name), telemetry off (loopback only), and
    MLflow's job runner off (its 7 worker processes would only compete for the CPUs)."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **extra,
    }


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def server_process(
    tool: str,
    args: Sequence[str],
    ready_url: str,
    logfile: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Run a server in its own process group until the block ends (also on failure);
    yield once `ready_url` answers 200.

    Raises:
        BenchFailed: it exited, or was not ready within SERVER_READY_S.
    """
    import httpx

    with logfile.open("wb") as sink:
        proc = subprocess.Popen(
            list(args),
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else peer_env(),
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVER_READY_S
        while True:
            if proc.poll() is not None:
                raise BenchFailed(
                    f"{tool} (`{' '.join(args)}`) exited {proc.returncode} before it was "
                    f"ready; its log ends:\n{log_tail(logfile)}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(ready_url, timeout=2.0).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchFailed(
                    f"{tool} was not ready within {SERVER_READY_S:g} s at {ready_url}; its "
                    f"log ends:\n{log_tail(logfile)}"
                )
            time.sleep(0.2)
        yield
    finally:
        stop_group(proc)


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's whole process group (its workers too), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(SERVER_STOP_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Workers of a server that exited first may still be in its group.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def warm_server(cwd: Path, env: Mapping[str, str]) -> None:
    """Start the warm server that serves `assay` in `env` (`assay.cli.warm`), and wait
    until it answers: timed commands then cost what a user's every command but the
    first costs. Untimed."""
    timed_run([ASSAY, "--help"], cwd, env)  # no server yet: this one starts it
    runtime = Path(os.environ["XDG_RUNTIME_DIR"]) / "assay"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for sock in runtime.glob("*.sock"):
            with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
                probe.connect(str(sock))
                return
        time.sleep(0.05)
    raise BenchFailed("no warm server answered within 60 s of `assay --help`")


def stop_warm_servers() -> None:
    """Stop the warm servers this benchmark started (their sockets are in its folder)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "").encode()
    if not runtime:
        return
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if runtime in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGTERM)


def timed_run(
    args: Sequence[str], cwd: Path, env: Mapping[str, str], timeout_s: float = 1800
) -> tuple[float, str]:
    """Run one command; return its wall-clock seconds and stdout.

    Raises:
        BenchFailed: the command exited non-zero.
    """
    os.sync()  # untimed: no write-back left over from setup or the command before
    # Every tool runs as a user's shell runs it: compiled bytecode written and reused.
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    proc = subprocess.run(
        list(args),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchFailed(
            f"`{' '.join(args)}` in {cwd} exited {proc.returncode}.\n"
            f"--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
        )
    return elapsed, proc.stdout
