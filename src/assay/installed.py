"""What is installed in this interpreter: Python, the platform, every distribution's
version, and which distributions a top-level module comes from.

Each is a scan of every installed distribution's metadata: a third of a second apiece
with ~200 of them, paid by every run (its environment is recorded) and every model
saved (its classes' packages are pinned). What is installed changes only when a folder
on `sys.path` does, so each scan is kept in `cache_dir` under a key made of those
folders' modification times, and in memory for the life of the process.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@functools.cache
def environment() -> dict[str, Any]:
    """Python, platform and every installed package with its version."""
    import platform
    from importlib import metadata

    packages = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            packages[str(name)] = dist.version
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "packages": dict(sorted(packages.items(), key=lambda kv: kv[0].lower())),
    }


@functools.cache
def module_owners() -> dict[str, list[str]]:
    """{top-level module: [distributions that install it]}."""
    from importlib import metadata

    return dict(metadata.packages_distributions())


def cached_environment(cache_dir: Path | None) -> dict[str, Any]:
    """`environment()`, from `cache_dir` while nothing was installed or removed."""
    return _cached(cache_dir, "environment", environment)


def cached_module_owners(cache_dir: Path | None) -> dict[str, list[str]]:
    """`module_owners()`, from `cache_dir` while nothing was installed or removed."""
    return _cached(cache_dir, "modules", module_owners)


_memo: dict[Path, Any] = {}


def _cached(cache_dir: Path | None, name: str, scan: Callable[[], T]) -> T:
    if cache_dir is None:
        return scan()
    path = cache_dir / f"{name}-{_stamp()}.json"
    if path in _memo:
        return _memo[path]  # type: ignore[no-any-return]
    try:
        found: T = json.loads(path.read_text())
    except (OSError, ValueError):
        found = scan()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(found))
            os.replace(tmp, path)
        except OSError:
            pass  # a cache only
    _memo[path] = found
    return found


def _stamp() -> str:
    """A key that changes when a package is installed, upgraded or removed: the
    interpreter, and the modification time of every folder on `sys.path`."""
    from hashlib import blake2b

    folders = [p for p in sys.path if p and os.path.isdir(p)]
    stamp = [sys.executable, sys.version, [(p, os.stat(p).st_mtime_ns) for p in folders]]
    return blake2b(json.dumps(stamp).encode(), digest_size=8).hexdigest()
