"""What the data repository stores, as plain values (no I/O, no ORM)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from assay.errors import InvalidArgumentError
from assay.serialize import json_shape

_NAME_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}"
NAME_RE = re.compile(rf"^{_NAME_PART}(/{_NAME_PART}){{0,3}}$")
TAG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9._-]{0,63}$")
LATEST = "latest"
# Each run's params file is committed as a version of `params/<pipeline>`: bookkeeping
# that listings leave out unless asked.
PARAMS_PREFIX = "params/"


def check_name(name: str, what: str = "Dataset") -> str:
    """Letters, digits and `._-`, optionally in `/`-separated parts (`params/churn`)."""
    if not NAME_RE.match(name) or any(part in {".", ".."} for part in name.split("/")):
        raise InvalidArgumentError(
            f"{what} name {name!r} is not valid: use letters, digits, '.', '_' and '-' "
            "(and '/' between parts), starting with a letter or digit.",
            name=name,
        )
    if ".." in name:
        raise InvalidArgumentError(f"{what} name {name!r} must not contain '..'.", name=name)
    return name


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag) or tag == LATEST:
        raise InvalidArgumentError(
            f"Tag {tag!r} is not valid: start with a letter, then letters, digits, '.', '_' "
            f"or '-' (and not {LATEST!r}, which always means the newest version).",
            tag=tag,
        )
    return tag


@dataclass(frozen=True)
class Ref:
    """`NAME@SELECTOR` where the selector is a number, a tag or `latest`."""

    name: str
    selector: str = LATEST

    @classmethod
    def parse(cls, text: str) -> Ref:
        name, sep, selector = text.partition("@")
        if sep and not selector:
            raise InvalidArgumentError(
                f"Reference {text!r} has nothing after '@': write NAME@VERSION, NAME@TAG "
                "or NAME@latest."
            )
        check_name(name)
        if selector and not selector.isdigit() and selector != LATEST:
            check_tag(selector)
        return cls(name, selector or LATEST)

    @property
    def number(self) -> int | None:
        return int(self.selector) if self.selector.isdigit() else None

    def __str__(self) -> str:
        return f"{self.name}@{self.selector}"


@dataclass(frozen=True)
class FileEntry:
    """One file in a version: its path inside the dataset, content hash and size."""

    path: str
    hash: str
    size: int


@dataclass(frozen=True)
class Dataset:
    name: str
    created_at: datetime
    versions: int
    latest: int | None
    updated_at: datetime | None


@dataclass(frozen=True)
class DataVersion:
    """An immutable snapshot of a file or folder: `name@number`."""

    dataset: str
    number: int
    manifest: str
    message: str
    author: str
    created_at: datetime
    parent: int | None
    file_count: int
    total_bytes: int
    validation: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"

    __get_pydantic_core_schema__ = json_shape(computed=("ref",))


@dataclass(frozen=True)
class CommitResult:
    """What `commit` did: a new version, or nothing because the tree was unchanged."""

    version: DataVersion
    created: bool
    files_hashed: int
    files_cached: int
    bytes_stored: int
    validation: Any = None  # ValidationReport when checks were given


@dataclass(frozen=True)
class FileChange:
    path: str
    old_hash: str
    new_hash: str
    old_size: int
    new_size: int


@dataclass(frozen=True)
class DataDiff:
    """How version `new` differs from version `old`."""

    old: str
    new: str
    added: tuple[FileEntry, ...]
    removed: tuple[FileEntry, ...]
    changed: tuple[FileChange, ...]
    tables: dict[str, Any] = field(default_factory=dict)  # path -> TableDiff
    # A changed table that either version holds as unreadable: path -> why.
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def unchanged(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True)
class VerifyReport:
    """The result of re-hashing every object the store holds."""

    checked: int
    corrupt: tuple[str, ...]
    missing: tuple[tuple[str, str], ...]  # (hash, "dataset@v:path" that needs it)

    @property
    def ok(self) -> bool:
        return not (self.corrupt or self.missing)


TABULAR_SUFFIXES = frozenset({".csv", ".tsv", ".parquet", ".pq"})


def is_tabular_path(path: str) -> bool:
    """CSV and Parquet files get a profile and can be validated and diffed row by row."""
    dot = path.rfind(".")
    return dot >= 0 and path[dot:].lower() in TABULAR_SUFFIXES
