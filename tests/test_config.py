"""Settings: how a command finds its workspace and where the stores live."""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from assay.config import Settings, find_root
from assay.errors import InvalidArgumentError, WorkspaceNotFoundError


def test_workspace_is_found_by_walking_up(tmp_path: Path) -> None:
    (tmp_path / ".assay").mkdir()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_root(deep) == tmp_path.resolve()
    settings = Settings.load(deep, {})
    assert settings.db_url == f"sqlite:///{tmp_path.resolve() / '.assay' / 'assay.db'}"
    assert settings.store_url == str(tmp_path.resolve() / ".assay" / "objects")


def test_no_workspace_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFoundError, match="Run `assay init`"):
        Settings.load(tmp_path, {})


def test_urls_in_the_environment_need_no_workspace(tmp_path: Path) -> None:
    env = {"ASSAY_DB_URL": "postgresql+psycopg://h/db", "ASSAY_STORE_URL": "s3://b/p"}
    settings = Settings.load(tmp_path, env)
    assert (settings.root, settings.db_url, settings.store_url) == (None, *env.values())


def test_assay_toml_sets_urls_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".assay").mkdir()
    (tmp_path / "assay.toml").write_text('db_url = "sqlite:///x.db"\nstore_url = "s3://t/o"\n')
    assert Settings.load(tmp_path, {}).store_url == "s3://t/o"
    assert Settings.load(tmp_path, {}).db_url == "sqlite:///x.db"
    assert Settings.load(tmp_path, {"ASSAY_STORE_URL": "s3://e/o"}).store_url == "s3://e/o"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("db_url = ", "Cannot parse"),
        ('dburl = "x"', "Unknown key 'dburl'"),
        ("db_url = 3", "string"),
    ],
)
def test_malformed_assay_toml_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / ".assay").mkdir()
    (tmp_path / "assay.toml").write_text(text)
    with pytest.raises(InvalidArgumentError, match=message):
        Settings.load(tmp_path, {})


def test_author_comes_from_the_environment(tmp_path: Path) -> None:
    assert Settings.at(tmp_path, {"ASSAY_AUTHOR": "ada"}).author == "ada"
    assert Settings.at(tmp_path, {"USER": "grace"}).author == "grace"


def test_the_database_timeout_comes_from_the_environment_and_must_be_positive(
    tmp_path: Path,
) -> None:
    assert Settings.at(tmp_path, {}).db_timeout_s == 30.0
    assert Settings.at(tmp_path, {"ASSAY_DB_TIMEOUT_S": "2.5"}).db_timeout_s == 2.5
    for bad in ("0", "-1", "soon"):
        with pytest.raises(InvalidArgumentError, match="ASSAY_DB_TIMEOUT_S"):
            Settings.at(tmp_path, {"ASSAY_DB_TIMEOUT_S": bad})


def test_sdk_surface_is_sorted_and_importable() -> None:
    assert assay.__all__ == sorted(assay.__all__)
    for name in assay.__all__:
        assert hasattr(assay, name)
