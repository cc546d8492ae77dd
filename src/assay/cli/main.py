"""The root of the `assay` command: global error handling, `init`, and the command groups."""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from assay.cli import context
from assay.cli.output import JsonOpt, console, emit_json, err
from assay.errors import AssayError


class AssayGroup(TyperGroup):
    """Turns an `AssayError` anywhere below into one red line and exit code 1."""

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


app = typer.Typer(
    cls=AssayGroup,
    name="assay",
    help="Assay: version data and pipelines, run experiments, serve and A/B test models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


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


def _register() -> None:
    from assay.cli import (
        abtests,
        code,
        data,
        demo,
        lifecycle,
        models,
        monitor,
        pipelines,
        runs,
        server,
        services,
        sweeps,
    )

    data.app.command(name="delete")(lifecycle.delete_data)
    app.add_typer(data.app, name="data")
    app.add_typer(pipelines.app, name="pipelines")
    app.command(name="run")(runs.run_command)
    runs.app.command(name="code")(code.code_command)
    runs.app.command(name="delete")(lifecycle.delete_runs)
    runs.app.command(name="archive")(lifecycle.archive)
    runs.app.command(name="restore")(lifecycle.restore)
    app.add_typer(runs.app, name="runs")
    app.command(name="sweep")(sweeps.sweep_command)
    app.add_typer(sweeps.app, name="sweeps")
    models.app.command(name="delete")(lifecycle.delete_model)
    app.add_typer(models.app, name="models")
    app.add_typer(services.app, name="services")
    app.add_typer(abtests.app, name="abtests")
    app.add_typer(monitor.app, name="monitor")
    app.command(name="retrain")(monitor.retrain_command)
    app.command(name="gc")(lifecycle.gc_command)
    app.command(name="demo")(demo.demo)
    app.command(name="server")(server.server_command)
    app.add_typer(server.tokens_app, name="tokens")


_register()


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
