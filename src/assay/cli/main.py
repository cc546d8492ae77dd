"""The root of the `assay` command: global error handling, `init`, and the command groups."""

from __future__ import annotations

import functools
import gc
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
import typer.main
from rich.markup import escape
from typer._click.exceptions import UsageError
from typer.core import TyperGroup

from assay.cli import context
from assay.cli.output import JsonOpt, console, emit_json, err
from assay.errors import AssayError


class AssayGroup(TyperGroup):
    """Turns an `AssayError` anywhere below into one red line and exit code 1, and builds
    a command group only when it is used (`_LAZY`)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except AssayError as exc:
            # The message is text, not markup: `pip install 'assay[boosting]'` keeps its
            # brackets.
            err.print(f"[red]error:[/red] {escape(exc.message)}", markup=True, highlight=False)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            err.print("[yellow]interrupted[/yellow]")
            raise typer.Exit(130) from None

    # Importing every command's module and having Typer read every signature took a
    # third of a read-only command's time; a command is built when it is named.

    def list_commands(self, ctx: Any) -> list[str]:
        return [*self.commands, *(name for name in _LAZY if name not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in _LAZY:
            self.add_command(lazy_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        try:
            return super().resolve_command(ctx, args)
        except UsageError:
            for name in _LAZY:  # a typo: every name, for "Did you mean …?"
                self.get_command(ctx, name)
            return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=AssayGroup,
    name="assay",
    help="Assay: version data and pipelines, run experiments, serve and A/B test models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


@app.callback()
def root() -> None:
    """Assay: version data and pipelines, run experiments, serve and A/B test models."""
    # A callback makes the app a group even while `init` is its only eager command.


@app.command()
def init(
    path: Annotated[Path, typer.Argument(help="Folder to hold the workspace.")] = Path("."),
    as_json: JsonOpt = False,
) -> None:
    """Create an Assay workspace (.assay/) here, or bring an existing one up to date."""
    from assay.cli.context import is_remote
    from assay.config import CONFIG_FILE, Settings, read_config_file
    from assay.workspace import init_workspace

    if is_remote():  # every other command would go to the server and never see it
        raise AssayError(
            "With --remote (or ASSAY_REMOTE) the workspace is the server's: there is nothing "
            "to init here. Unset it to make a local workspace."
        )

    root = path.resolve()
    if root.exists() and not root.is_dir():
        raise AssayError(f"{path} is a file; give a folder to hold the workspace.")
    root.mkdir(parents=True, exist_ok=True)
    settings = Settings.at(root, os.environ, read_config_file(root / CONFIG_FILE))
    settings, created = init_workspace(settings)
    if as_json:
        emit_json(
            {
                "root": str(root),
                "created": created,
                "db_url": _safe(settings.db_url),
                "store_url": settings.store_url,
            }
        )
        return
    verb = "Created" if created else "Updated"
    console.print(f"{verb} Assay workspace in {root / '.assay'}")
    console.print(f"  metadata  {_safe(settings.db_url)}")
    console.print(f"  objects   {settings.store_url}")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL SQLAlchemy cannot parse is shown as given
        return url


def _group(name: str, sub: typer.Typer) -> Any:
    group = typer.main.get_group(sub)
    group.name = name
    return group


def _command(name: str, callback: Callable[..., Any]) -> Any:
    from typer.models import CommandInfo

    info = CommandInfo(name=name, callback=callback)
    return typer.main.get_command_from_info(
        info, pretty_exceptions_short=app.pretty_exceptions_short, rich_markup_mode=None
    )


def _data() -> Any:
    from assay.cli import data, lifecycle

    data.app.command(name="delete")(lifecycle.delete_data)
    return _group("data", data.app)


def _pipelines() -> Any:
    from assay.cli import pipelines

    return _group("pipelines", pipelines.app)


def _run() -> Any:
    from assay.cli import runs

    return _command("run", runs.run_command)


def _runs() -> Any:
    from assay.cli import code, lifecycle, runs

    runs.app.command(name="code")(code.code_command)
    runs.app.command(name="delete")(lifecycle.delete_runs)
    runs.app.command(name="archive")(lifecycle.archive)
    runs.app.command(name="restore")(lifecycle.restore)
    return _group("runs", runs.app)


def _sweep() -> Any:
    from assay.cli import sweeps

    return _command("sweep", sweeps.sweep_command)


def _sweeps() -> Any:
    from assay.cli import sweeps

    return _group("sweeps", sweeps.app)


def _models() -> Any:
    from assay.cli import lifecycle, models

    models.app.command(name="delete")(lifecycle.delete_model)
    return _group("models", models.app)


def _services() -> Any:
    from assay.cli import services

    return _group("services", services.app)


def _abtests() -> Any:
    from assay.cli import abtests

    return _group("abtests", abtests.app)


def _monitor() -> Any:
    from assay.cli import monitor

    return _group("monitor", monitor.app)


def _retrain() -> Any:
    from assay.cli import monitor

    return _command("retrain", monitor.retrain_command)


def _gc() -> Any:
    from assay.cli import lifecycle

    return _command("gc", lifecycle.gc_command)


def _demo() -> Any:
    from assay.cli import demo

    return _command("demo", demo.demo)


def _server() -> Any:
    from assay.cli import server

    return _command("server", server.server_command)


def _tokens() -> Any:
    from assay.cli import server

    return _group("tokens", server.tokens_app)


# The command groups and commands below `init`, in the order `assay --help` lists them.
_LAZY: dict[str, Callable[[], Any]] = {
    "data": _data,
    "pipelines": _pipelines,
    "run": _run,
    "runs": _runs,
    "sweep": _sweep,
    "sweeps": _sweeps,
    "models": _models,
    "services": _services,
    "abtests": _abtests,
    "monitor": _monitor,
    "retrain": _retrain,
    "gc": _gc,
    "demo": _demo,
    "server": _server,
    "tokens": _tokens,
}


@functools.cache
def lazy_command(name: str) -> Any:
    """Command (group) `name` of `_LAZY`, built once a process. Typer builds a click
    command from each function's signature, 3 to 5 ms a group; a click command keeps no
    state between invocations, so a process that runs several (the warm server's
    children, which inherit what it built; in-process tests) builds each once."""
    return _LAZY[name]()


def main() -> None:
    """Console-script entry point."""
    gc.freeze()  # what the imports allocated lives until exit: keep it out of collections
    import sys

    from assay.cli.context import strip_remote

    try:
        sys.argv[1:], remote = strip_remote(sys.argv[1:])
    except AssayError as exc:
        err.print(f"[red]error:[/red] {exc.message}")
        raise SystemExit(1) from None
    if remote:
        os.environ["ASSAY_REMOTE"] = remote
    try:
        app()
    finally:
        context.close()


if __name__ == "__main__":  # pragma: no cover
    main()
