"""`assay server` and `assay tokens …`: share a workspace over HTTP, with tokens."""

from __future__ import annotations

import os
import threading
import time
from typing import Annotated

import typer

from assay.cli.context import local, workspace
from assay.cli.output import JsonOpt, console, emit_json, err, when
from assay.cli.tables import Table
from assay.errors import AssayError
from assay.serialize import dump

tokens_app = typer.Typer(
    help="API tokens for the server: create, list, revoke.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def server_command(
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, help="Worker processes.")] = 1,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without tokens (trusted machines only).")
    ] = False,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", help="Largest request body any route accepts.")
    ] = 64.0,
    body_timeout: Annotated[
        float,
        typer.Option(
            "--body-timeout", min=0.1, help="Seconds a request body may take to arrive (408)."
        ),
    ] = 60.0,
) -> None:
    """Serve the workspace: the REST API under /api/v1 (OpenAPI at /api/v1/openapi.json)."""
    import uvicorn

    from assay.cli.context import is_remote

    if is_remote():
        raise AssayError(
            "`assay server` serves the workspace of this machine, not a remote one: "
            "run it without --remote (and with ASSAY_REMOTE unset)."
        )

    ws = local()
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if no_auth and not loopback:
        err.print(
            f"[bold red]WARNING: serving {host}:{port} WITHOUT AUTHENTICATION.[/bold red] "
            "Anyone who can reach this address can read and change the whole workspace. "
            "Drop --no-auth and use tokens (`assay tokens create`)."
        )
    if not no_auth and not ws.tokens.tokens():
        err.print(
            "[yellow]No tokens yet:[/yellow] every route but /api/v1/health answers 401. "
            "Create one with `assay tokens create NAME --scope admin`."
        )
    started = ws.services.start_all()
    if started:
        console.print(f"Brought back {len(started)} service(s) stored as running.")
    threading.Thread(target=_watch_abtests, name="assay-abtests", daemon=True).start()
    threading.Thread(target=_watch_monitors, name="assay-monitors", daemon=True).start()
    os.environ["ASSAY_SERVER_AUTH"] = "0" if no_auth else "1"
    os.environ["ASSAY_SERVER_MAX_BODY"] = str(int(max_body_mb * 1024 * 1024))
    os.environ["ASSAY_SERVER_BODY_TIMEOUT"] = str(body_timeout)
    console.print(f"Assay server on http://{host}:{port}/api/v1 ({workers} worker(s))")
    uvicorn.run(
        "assay.server.main:build",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


def _watch_abtests() -> None:
    """Read every A/B test now and then, so an auto-promoted winner is recorded promptly."""
    from pathlib import Path

    from assay.config import Settings
    from assay.workspace import Workspace

    ws = Workspace(Settings.load(Path.cwd(), os.environ))
    while True:
        time.sleep(10)
        try:
            ws.abtests.tests()
        except Exception:  # the server keeps serving; the next look tries again
            continue


def _watch_monitors() -> None:
    """Run the monitors' scheduled checks (their config's `schedule`): one thread in the
    server's parent process, however many workers serve the API."""
    import logging

    from assay.cli.monitor import scheduled_launch

    log = logging.getLogger("assay.server")
    ws = local()
    while True:
        time.sleep(15)
        try:
            for name, outcome in ws.monitoring.run_due(launch=scheduled_launch()):
                if isinstance(outcome, AssayError):
                    log.warning("scheduled check of %s failed: %s", name, outcome.message)
        except Exception:  # the server keeps serving; the next look tries again
            log.exception("scheduled monitor checks failed")


@tokens_app.command("create")
def create(
    name: str,
    scope: Annotated[str, typer.Option("--scope", help="admin, write, read or predict.")] = "read",
    as_json: JsonOpt = False,
) -> None:
    """Create a token; its secret is shown once (only its hash is stored)."""
    token, secret = workspace().tokens.create(name, scope)
    if as_json:
        emit_json({**dump(token), "secret": secret})
        return
    console.print(f"Token [bold]{token.name}[/bold] ({token.scope}):")
    console.print(secret, markup=False, highlight=False)
    console.print("[dim]Shown once: store it now. Send it as `Authorization: Bearer …`.[/dim]")


@tokens_app.command("list")
def list_(as_json: JsonOpt = False) -> None:
    """List tokens: name, scope, prefix, last use; never their secrets."""
    found = workspace().tokens.tokens()
    if as_json:
        emit_json(found)
        return
    if not found:
        console.print("No tokens yet. Create one with `assay tokens create NAME --scope admin`.")
        return
    table = Table("name", "scope", "prefix", "created", "last used", "state", box=None,
                  header_style="bold")  # fmt: skip
    for t in found:
        table.add_row(
            t.name,
            t.scope,
            t.prefix + "…",
            when(t.created_at),
            when(t.last_used_at) if t.last_used_at else "-",
            "active" if t.active else "[red]revoked[/red]",
        )
    console.print(table)


@tokens_app.command("revoke")
def revoke(name: str) -> None:
    """Revoke a token: requests carrying it answer 401 from now on."""
    token = workspace().tokens.revoke(name)
    console.print(f"Revoked {token.name}.")
