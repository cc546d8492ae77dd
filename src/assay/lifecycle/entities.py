"""What a deletion or a collection did, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Deleted:
    """What `delete` removed (`what`), and what it broke on the way (with --force):
    the runs, models, aliases, tags, services and A/B tests that named it."""

    what: tuple[str, ...]
    broke: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Collection:
    """What `assay gc` found and removed (or, with `dry_run`, would remove)."""

    dry_run: bool
    objects: int
    live: int
    young: int
    removed: int
    removed_bytes: int
    packs: int
    temporaries: int
    uploads: int
    largest: tuple[str, ...] = field(default_factory=tuple)
