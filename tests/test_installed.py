"""What is installed is scanned once and kept until a package is installed or removed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from assay import installed


def test_the_scans_are_kept_on_disk_until_a_folder_on_sys_path_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.setattr(sys, "path", [*sys.path, str(site)])
    cache = tmp_path / "cache"

    owners = installed.cached_module_owners(cache)
    assert "scikit-learn" in owners["sklearn"]
    env = installed.cached_environment(cache)
    assert env["packages"]["scikit-learn"]
    assert sorted(p.name.split("-")[0] for p in cache.iterdir()) == ["environment", "modules"]

    # Read back from disk, not scanned again: what the file says is what comes back.
    (path,) = cache.glob("modules-*.json")
    path.write_text('{"sklearn": ["from-the-cache"]}')
    installed._memo.clear()
    assert installed.cached_module_owners(cache) == {"sklearn": ["from-the-cache"]}

    # A package installed into a folder on sys.path changes the folder: a new scan.
    (site / "newpkg").mkdir()
    os.utime(site, ns=(site.stat().st_atime_ns, site.stat().st_mtime_ns + 10**9))
    assert installed.cached_module_owners(cache)["sklearn"] != ["from-the-cache"]
    assert len(list(cache.glob("modules-*.json"))) == 2


def test_without_a_cache_folder_it_scans(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def scan() -> dict[str, list[str]]:
        calls.append(1)
        return {"x": ["y"]}

    monkeypatch.setattr(installed, "module_owners", scan)
    assert installed.cached_module_owners(None) == {"x": ["y"]}
    assert calls == [1]
