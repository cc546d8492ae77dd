"""Bad arguments never reach a user as a traceback: one error line and a non-zero exit.

Exit 1 for an `AssayError` (a bad reference, a device where a file belongs, a missing
thing), exit 2 for a usage error (a missing argument, an unknown option). Each command
group lists its cases in `GROUPS`; to sweep another group, add a list of `Bad` cases
under its name. Arguments may name the places `site` makes, as `{name}`:

    {folder}    a folder holding a file          {file}      a plain text file
    {empty}     an empty folder                  {missing}   a path that does not exist
    {device}    a character device (a /dev/null  {binary}    random bytes
                of our own when root may mknod)
    {unreadable} a file its owner cannot read    {locked}    a folder its owner cannot enter
    {checks}    a valid checks file

The workspace holds dataset `iris` with two versions (`iris@1`, tag `base`, and `iris@2`).

Cases marked `unreadable` need the kernel to refuse a read. Root reads anything, so
as root they run as a real `assay` process whose capability bounding set lacks
CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (`setpriv`), where mode 000 binds root too.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from assay.workspace import Workspace

CLI = Callable[..., Result]


@dataclass(frozen=True)
class Bad:
    """One bad invocation, the exit code it must give, and words its error line holds."""

    args: tuple[str, ...]
    exit_code: int
    says: str
    unreadable: bool = False


DATA = [
    # commit
    Bad(("data", "commit", "x", "/dev/null"), 1, "/dev/null is a character device"),
    Bad(("data", "commit", "x", "{device}"), 1, "is a character device"),
    Bad(("data", "commit", "x", "{missing}"), 1, "does not exist"),
    Bad(("data", "commit", "x", "{empty}"), 1, "holds no files"),
    Bad(("data", "commit", "x@1", "{folder}"), 1, "is not valid"),
    Bad(("data", "commit", "x", "{folder}", "--checks", "{missing}"), 1, "does not exist"),
    Bad(("data", "commit", "x", "{folder}", "--checks", "{folder}"), 1, "is a folder"),
    Bad(("data", "commit", "x", "{folder}", "--checks", "/dev/null"), 1, "character device"),
    Bad(("data", "commit", "x", "{folder}", "--checks", "{binary}"), 1, "not UTF-8 text"),
    Bad(("data", "commit", "x"), 2, "Missing argument 'path'"),
    Bad(("data", "commit", "x", "{file}", "--frobnicate"), 2, "No such option"),
    # The command line's parser tries a named path for reading: a usage error.
    Bad(("data", "commit", "x", "{unreadable}"), 2, "is not readable", unreadable=True),
    Bad(("data", "commit", "x", "{locked}"), 2, "is not readable", unreadable=True),
    Bad(
        ("data", "commit", "x", "{folder}", "--checks", "{unreadable}"),
        2,
        "is not readable",
        unreadable=True,
    ),
    # What lies inside a folder is ours to read.
    Bad(("data", "commit", "x", "{tmp}"), 1, "permission denied", unreadable=True),
    # list, log, show
    Bad(("data", "list", "extra"), 2, "unexpected extra argument"),
    Bad(("data", "log", "nope"), 1, "No dataset named 'nope'"),
    Bad(("data", "log", "/dev/null"), 1, "is not valid"),
    Bad(("data", "show", "x@"), 1, "nothing after '@'"),
    Bad(("data", "show", "x@-1"), 1, "Tag '-1' is not valid"),
    Bad(("data", "show", "iris@-1"), 1, "Tag '-1' is not valid"),
    Bad(("data", "show", "nope@1"), 1, "No dataset named 'nope'"),
    Bad(("data", "show", "iris@9"), 1, "has no version 9"),
    Bad(("data", "show", "iris@nosuchtag"), 1, "has no tag 'nosuchtag'"),
    Bad(("data", "show", "{device}"), 1, "is not valid"),
    Bad(("data", "show"), 2, "Missing argument"),
    # checkout
    Bad(("data", "checkout", "iris@1", "{device}"), 1, "is a character device"),
    Bad(("data", "checkout", "iris@1", "{device}", "--force"), 1, "is a character device"),
    Bad(("data", "checkout", "iris@1", "{file}"), 1, "is a file, not a folder"),
    Bad(("data", "checkout", "iris@1", "{file}/sub"), 1, "is a file, not a folder"),
    Bad(("data", "checkout", "iris@1", "{folder}"), 1, "not empty"),
    Bad(("data", "checkout", "iris@9", "{missing}"), 1, "has no version 9"),
    Bad(("data", "checkout", "x@", "{missing}"), 1, "nothing after '@'"),
    Bad(("data", "checkout", "iris@1"), 2, "Missing argument 'dest'"),
    Bad(("data", "checkout", "iris@1", "{locked}/out"), 1, "permission denied", unreadable=True),
    # tag
    Bad(("data", "tag", "iris@1", "bad tag"), 1, "is not valid"),
    Bad(("data", "tag", "iris@1", "latest"), 1, "is not valid"),
    Bad(("data", "tag", "x@", "t"), 1, "nothing after '@'"),
    Bad(("data", "tag", "iris@9", "t"), 1, "has no version 9"),
    Bad(("data", "tag", "iris@1"), 2, "Missing argument 'tag'"),
    # diff
    Bad(("data", "diff", "iris@1", "iris@9"), 1, "has no version 9"),
    Bad(("data", "diff", "x@-1", "iris@1"), 1, "Tag '-1' is not valid"),
    Bad(("data", "diff", "nope@1", "iris@1"), 1, "No dataset named 'nope'"),
    Bad(("data", "diff", "iris@1"), 2, "Missing argument 'new'"),
    Bad(("data", "diff", "iris@1", "iris@2", "--key", "nope"), 1, "No changed table has a column"),
    Bad(("data", "diff", "iris@1", "iris@2", "--key", "species"), 1, "appears more than once"),
    Bad(("data", "diff", "iris@1", "iris@2", "--key"), 2, "requires an argument"),
    # profile
    Bad(("data", "profile", "iris@9"), 1, "has no version 9"),
    Bad(("data", "profile", "x@"), 1, "nothing after '@'"),
    Bad(("data", "profile", "{file}"), 1, "is not valid"),
    Bad(("data", "profile"), 2, "Missing argument"),
    # validate
    Bad(("data", "validate", "iris@1", "--checks", "/dev/null"), 1, "character device"),
    Bad(("data", "validate", "iris@1", "--checks", "{folder}"), 1, "is a folder"),
    Bad(("data", "validate", "iris@1", "--checks", "{missing}"), 1, "does not exist"),
    Bad(("data", "validate", "iris@1", "--checks", "{binary}"), 1, "not UTF-8 text"),
    Bad(("data", "validate", "iris@9", "--checks", "{checks}"), 1, "has no version 9"),
    Bad(("data", "validate", "x@-1", "--checks", "{checks}"), 1, "Tag '-1' is not valid"),
    Bad(("data", "validate", "iris@1"), 2, "Missing option '--checks'"),
    Bad(
        ("data", "validate", "iris@1", "--checks", "{unreadable}"),
        2,
        "is not readable",
        unreadable=True,
    ),
    # verify
    Bad(("data", "verify", "extra"), 2, "unexpected extra argument"),
    Bad(("data", "frobnicate"), 2, "No such command"),
]

GROUPS: dict[str, list[Bad]] = {"data": DATA}

CASES = [pytest.param(case, id=" ".join(case.args)) for cases in GROUPS.values() for case in cases]


def site(tmp_path: Path) -> dict[str, str]:
    """Make the places the cases name; returns them by placeholder."""
    places = {
        "tmp": tmp_path,
        "folder": tmp_path / "folder",
        "file": tmp_path / "plain.txt",
        "empty": tmp_path / "empty",
        "missing": tmp_path / "no-such-path",
        "binary": tmp_path / "junk.bin",
        "unreadable": tmp_path / "secret.txt",
        "locked": tmp_path / "locked",
        "checks": tmp_path / "checks.yaml",
        "device": Path("/dev/null"),
    }
    places["folder"].mkdir()
    (places["folder"] / "a.txt").write_text("alpha")
    places["file"].write_text("plain")
    places["empty"].mkdir()
    places["binary"].write_bytes(b"\xff\xfe\x00\x81" + os.urandom(64))
    places["unreadable"].write_text("secret")
    places["unreadable"].chmod(0)
    places["locked"].mkdir()
    (places["locked"] / "inside.txt").write_text("hidden")
    places["locked"].chmod(0)
    places["checks"].write_text("row_count: {min: 1}\n")
    if os.geteuid() == 0:
        # A device of our own, so that no case can touch the machine's /dev/null.
        places["device"] = tmp_path / "null"
        os.mknod(places["device"], stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return {k: str(v) for k, v in places.items()}


@pytest.fixture
def iris(ws: Workspace, tmp_path: Path) -> Workspace:
    data = tmp_path / "iris-data"
    data.mkdir()
    (data / "iris.csv").write_text("id,sepal,species\n1,5.1,setosa\n2,4.9,setosa\n")
    ws.data.commit("iris", data)
    ws.data.tag("iris@1", "base")
    (data / "iris.csv").write_text("id,sepal,species\n1,5.1,setosa\n2,5.0,setosa\n")
    ws.data.commit("iris", data)
    return ws


def _run_without_privilege(args: list[str], cwd: Path) -> tuple[int, str]:
    """`assay ARGS` as a real process that the kernel holds to file modes, even as root."""
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is needed to drop root's file-mode override")
    command = [str(Path(sys.executable).with_name("assay")), *args]
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--", *command]
    done = subprocess.run(
        command, cwd=cwd, env=dict(os.environ), capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.one_backend
@pytest.mark.parametrize("case", CASES)
def test_a_bad_argument_gets_one_error_line_and_a_nonzero_exit(
    case: Bad, iris: Workspace, cli: CLI, tmp_path: Path
) -> None:
    places = site(tmp_path)
    args = [a.format(**places) for a in case.args]
    try:
        if case.unreadable:
            code, output = _run_without_privilege(args, tmp_path)
        else:
            result = cli(*args)  # an unexpected exception fails the test with its traceback
            code, output = result.exit_code, result.output
    finally:
        for name in ("unreadable", "locked"):
            Path(places[name]).chmod(0o700)

    assert "Traceback" not in output, output
    assert code == case.exit_code, output
    marker = "error:" if code == 1 else "Error:"
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(marker)]
    assert len(errors) == 1, output
    assert case.says.lower() in errors[0].lower(), output
    if code == 1:
        assert lines == errors, output  # nothing but the one line


# ---- every command, swept ---------------------------------------------------------------

# Commands a sweep must not start with arguments that happen to be valid: the server and
# the demo would run (they take no required argument, so they get the option case only).
_VALUES = ("nope@7", "x@", "{device}")


def _leaves() -> list[tuple[tuple[str, ...], Any]]:
    """Every command of the CLI with its path (`("data", "commit")`), from the app itself:
    a command added later is swept without touching this test."""
    import typer

    from assay.cli.main import app

    out: list[tuple[tuple[str, ...], Any]] = []
    root = typer.main.get_command(app)
    ctx = root.make_context("assay", [], resilient_parsing=True)

    def walk(command: Any, path: tuple[str, ...]) -> None:
        if hasattr(command, "list_commands"):  # a group (Typer vendors its own click)
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), (*path, name))
        else:
            out.append((path, command))

    walk(root, ())
    return out


def _sweep_cases() -> list[Any]:
    cases = []
    for path, command in _leaves():
        required = [p for p in command.params if getattr(p, "required", False)]
        cases.append(pytest.param(path, ("--frobnicate",), id=" ".join([*path, "--frobnicate"])))
        if not required:
            continue  # valid as it stands: nothing to make bad
        for value in _VALUES:
            args: list[str] = []
            for param in required:
                if param.param_type_name == "option":
                    args += [param.opts[0], value]
                else:
                    args.append(value)
            cases.append(pytest.param(path, tuple(args), id=" ".join([*path, *args])))
    return cases


@pytest.mark.one_backend
@pytest.mark.parametrize(("path", "args"), _sweep_cases())
def test_every_command_refuses_bad_arguments_in_one_line(
    path: tuple[str, ...], args: tuple[str, ...], iris: Workspace, cli: CLI, tmp_path: Path
) -> None:
    places = site(tmp_path)
    try:
        result = cli(*path, *(a.format(**places) for a in args))
    finally:
        for name in ("unreadable", "locked"):
            Path(places[name]).chmod(0o700)
    output = result.output
    assert "Traceback" not in output, output
    assert result.exit_code in (1, 2), output
    marker = "error:" if result.exit_code == 1 else "Error:"
    lines = [line for line in output.splitlines() if line.strip()]
    assert len([line for line in lines if line.startswith(marker)]) == 1, output
    if result.exit_code == 1:
        assert len(lines) == 1, output  # the one line, nothing else
