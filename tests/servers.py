"""Servers for the tests: an app on a thread of the test process, or `assay server` itself.

`serve_workspace` serves the server's app over a workspace as `assay server` builds it,
on a thread: the same routes, minus a fresh interpreter's start and imports, which were
most of what a server cost a test. `ServerProcess` is `assay server` as a process, for
the tests about the process (its children, its restarts, its Ray deploys).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from assay import httpclient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve_asgi(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve `app` until the block ends, on `port` or a free one; yields the base URL
    (`http://127.0.0.1:PORT`)."""
    port = port or free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="critical", lifespan="off", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def serve_workspace(
    home: Path, environ: Mapping[str, str], port: int | None = None
) -> Iterator[str]:
    """`assay server`'s app over the workspace in `home` (`assay.server.main.build`'s
    app, tokens required), served on a thread until the block ends; yields its URL."""
    from assay.config import Settings
    from assay.server.app import create_app
    from assay.server.main import compile_routes
    from assay.workspace import Workspace

    ws = Workspace(Settings.load(home, environ), environ=environ)
    try:
        app = create_app(ws)
        compile_routes(app)
        with serve_asgi(app, port) as url:
            yield url
    finally:
        ws.close()


class ServerProcess:
    """`assay server` in `home` with exactly `environ`, on a fixed port: started (and
    waited for), stopped, and started again on the same port."""

    def __init__(self, home: Path, environ: Mapping[str, str] | None = None) -> None:
        self.home = home
        self.environ = dict(environ) if environ is not None else None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assay", "server", "--port", str(self.port)],
            cwd=self.home, env=self.environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpclient.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None, self.proc.communicate()[1]
            assert time.monotonic() < deadline, "assay server did not answer"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
