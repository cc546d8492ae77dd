"""Settings: where the workspace, its metadata database and its object store are.

Built once at the edges (the CLI entry point, later the server's app factory) from
an injectable environment mapping, then passed down. Nothing deeper reads
`os.environ`.

Precedence, highest first: `ASSAY_*` environment variables, `assay.toml` beside
`.assay/`, the defaults inside `.assay/` (SQLite `assay.db`, folder `objects/`).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assay.errors import InvalidArgumentError, WorkspaceNotFoundError

WORKSPACE_DIR = ".assay"
CONFIG_FILE = "assay.toml"
_CONFIG_KEYS = frozenset({"db_url", "store_url"})


@dataclass(frozen=True)
class Settings:
    """Where things live. `root` is the folder holding `.assay/` (None when URLs alone are set)."""

    root: Path | None
    db_url: str
    store_url: str
    author: str
    # What an hour of a run's wall time costs, for the runs' cost estimates.
    cost_per_hour: float = 0.10
    # How often a runner proves it is alive; three missed beats and its run is dead.
    heartbeat_s: float = 2.0
    # The longest the metadata database may keep a command waiting: to connect, for a
    # lock another writer holds, for one statement (ASSAY_DB_TIMEOUT_S).
    db_timeout_s: float = 30.0
    # An upload untouched for this long was abandoned: it is deleted (ASSAY_UPLOAD_MAX_AGE_H).
    upload_max_age_s: float = 24 * 3600.0

    @property
    def workspace_dir(self) -> Path | None:
        return self.root / WORKSPACE_DIR if self.root else None

    @property
    def cache_dir(self) -> Path:
        """Machine-local state (the stat cache); never shared between machines."""
        if self.workspace_dir is not None:
            return self.workspace_dir / "cache"
        return Path.home() / ".cache" / "assay"

    @property
    def services_dir(self) -> Path:
        """Where this machine's inference services keep their model copies, logs and state."""
        if self.workspace_dir is not None:
            return self.workspace_dir / "services"
        return self.cache_dir / "services"

    @classmethod
    def load(cls, cwd: Path, environ: Mapping[str, str]) -> Settings:
        """Find the workspace from `cwd` upwards and read its settings.

        Raises:
            WorkspaceNotFoundError: no `.assay/` here or above, and no URLs in the environment.
            InvalidArgumentError: `assay.toml` is malformed.
        """
        root = find_root(cwd)
        env_db, env_store = environ.get("ASSAY_DB_URL"), environ.get("ASSAY_STORE_URL")
        if root is None and not (env_db and env_store):
            raise WorkspaceNotFoundError(
                f"No Assay workspace in {cwd} or any parent folder. "
                "Run `assay init` to create one here (or set ASSAY_DB_URL and ASSAY_STORE_URL)."
            )
        file_conf = read_config_file(root / CONFIG_FILE) if root else {}
        return cls.at(root, environ, file_conf)

    @classmethod
    def at(
        cls,
        root: Path | None,
        environ: Mapping[str, str],
        file_conf: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings for a workspace rooted at `root` (which need not exist yet)."""
        conf = dict(file_conf or {})
        ws = root / WORKSPACE_DIR if root else None
        default_db = f"sqlite:///{ws / 'assay.db'}" if ws else ""
        default_store = str(ws / "objects") if ws else ""
        author = environ.get("ASSAY_AUTHOR") or _default_author(environ)
        return cls(
            root=root,
            db_url=environ.get("ASSAY_DB_URL") or conf.get("db_url") or default_db,
            store_url=environ.get("ASSAY_STORE_URL") or conf.get("store_url") or default_store,
            author=author,
            cost_per_hour=_number(environ, "ASSAY_COST_PER_HOUR", 0.10),
            heartbeat_s=_number(environ, "ASSAY_HEARTBEAT_S", 2.0),
            db_timeout_s=_positive(environ, "ASSAY_DB_TIMEOUT_S", 30.0),
            upload_max_age_s=3600 * _positive(environ, "ASSAY_UPLOAD_MAX_AGE_H", 24.0),
        )


def find_root(start: Path) -> Path | None:
    """The nearest folder at or above `start` that holds `.assay/`, as git finds `.git/`."""
    here = start.resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_DIR).is_dir():
            return folder
    return None


def read_config_file(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    import tomllib  # only where there is a file to read

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"Cannot parse {path}: {exc}. Fix the file and retry.") from exc
    unknown = set(data) - _CONFIG_KEYS
    if unknown:
        raise InvalidArgumentError(
            f"Unknown key {sorted(unknown)[0]!r} in {path}; valid keys: "
            f"{', '.join(sorted(_CONFIG_KEYS))}."
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise InvalidArgumentError(f"{key} in {path} must be a string, got {value!r}.")
    return dict(data)


def _number(environ: Mapping[str, str], key: str, default: float) -> float:
    raw = environ.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InvalidArgumentError(f"{key} must be a number, got {raw!r}.") from None
    if value < 0:
        raise InvalidArgumentError(f"{key} must not be negative, got {raw!r}.")
    return value


def _positive(environ: Mapping[str, str], key: str, default: float) -> float:
    value = _number(environ, key, default)
    if value == 0:
        raise InvalidArgumentError(f"{key} must be more than 0.")
    return value


def _default_author(environ: Mapping[str, str]) -> str:
    for key in ("GIT_AUTHOR_NAME", "USER", "USERNAME"):
        if environ.get(key):
            return environ[key]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid-{os.getuid()}"
