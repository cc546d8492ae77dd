"""Garbage collection: remove the objects nothing refers to, as `dvc gc` and `git gc` do.

What is live is the concepts' to say: each hands the collector a `Roots` function
that, inside the collector's transaction, yields the hashes its rows refer to (a
data version's manifest and files, a model's bundle, a run's logs and outputs…). A
pack is live when any member is. Everything else in the store is garbage, unless it
was written or reused (freshened) within the grace period, an hour by default: a
commit in flight may rely on an old object it found, and its own objects are new.

Safety against a writer racing the collection:
- the live set is read and the garbage deleted while the collector holds the store's
  lock (`Database.store_lock`): SQLite's write lock, PostgreSQL's advisory lock,
  which a data commit takes too (shared) when it makes its version;
- that commit checks, under the lock, that every object its version names exists,
  and stores again whatever was collected meanwhile before retrying.
So a commit either finds its objects or puts them back; a version never names a
missing one. Temporaries of killed writers and abandoned uploads go too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, delete, select

from assay.store.db import Database
from assay.store.objects import LocalObjectStore, ObjectStore, StoredObject
from assay.store.packs import pack_members

GRACE_S = 3600.0

# Inside the collector's transaction, with a reader of stored objects (manifests),
# yield every hash the concept's rows refer to.
Reader = Callable[[str], bytes]
Roots = Callable[[Connection, Reader], Iterable[str]]


@dataclass(frozen=True)
class GCReport:
    """What a collection found and did (or, with `dry_run`, would do)."""

    dry_run: bool
    objects: int
    live: int
    young: int
    removed: int
    removed_bytes: int
    packs: int
    temporaries: int = 0
    uploads: int = 0
    examples: tuple[str, ...] = field(default_factory=tuple)


class Collector:
    """Collects a store's garbage; `roots` say what is live."""

    def __init__(
        self,
        db: Database,
        store: ObjectStore,
        roots: Sequence[Roots],
        *,
        grace_s: float = GRACE_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.store = store
        self.roots = roots
        self.grace_s = grace_s
        self.clock = clock

    def collect(self, *, dry_run: bool = False) -> GCReport:
        """Find (and unless `dry_run`, remove) every object no root refers to and that
        is older than the grace period."""
        listed = list(self.store.iter_objects())  # slow on S3: outside the lock
        cache: dict[str, bytes] = {}

        def read(digest: str) -> bytes:
            if digest not in cache:
                cache[digest] = self.store.get_bytes(digest)
            return cache[digest]

        with self.db.session() as conn:
            self.db.store_lock(conn, exclusive=True)
            live = self._live(conn, read)
            cutoff = self.clock() - self.grace_s
            dead = [o for o in listed if o.digest not in live]
            # The listing's times are from before the lock: a writer may have reused
            # (freshened) an old object since. Look again at each one about to go.
            old = [o for o in dead if o.modified < cutoff and self._still_old(o, cutoff)]
            packs = self._packs_among(conn, [o.digest for o in old])
            if not dry_run and old:
                if packs:
                    # The index first, in this transaction: if the removal below fails,
                    # the rows come back and the next collection tries again.
                    for start in range(0, len(packs), 500):
                        chunk = packs[start : start + 500]
                        conn.execute(delete(pack_members).where(pack_members.c.pack.in_(chunk)))
                self.store.delete(o.digest for o in old)
        return GCReport(
            dry_run=dry_run,
            objects=len(listed),
            live=len(listed) - len(dead),
            young=len(dead) - len(old),
            removed=len(old),
            removed_bytes=sum(o.size for o in old),
            packs=len(packs),
            examples=tuple(o.digest for o in _largest(old, 5)),
        )

    def _live(self, conn: Connection, read: Reader) -> set[str]:
        live: set[str] = set()
        for roots in self.roots:
            live.update(roots(conn, read))
        # A pack is live when any member is: add the packs that hold live members.
        members = list(live)
        for start in range(0, len(members), 500):
            chunk = members[start : start + 500]
            live.update(
                conn.scalars(
                    select(pack_members.c.pack).where(pack_members.c.hash.in_(chunk)).distinct()
                )
            )
        return live

    def _still_old(self, obj: StoredObject, cutoff: float) -> bool:
        when = self.store.modified(obj.digest)
        return when is not None and when < cutoff

    @staticmethod
    def _packs_among(conn: Connection, digests: list[str]) -> list[str]:
        """Which of `digests` are packs (the index names them)."""
        found: list[str] = []
        for start in range(0, len(digests), 500):
            chunk = digests[start : start + 500]
            found.extend(
                conn.scalars(
                    select(pack_members.c.pack).where(pack_members.c.pack.in_(chunk)).distinct()
                )
            )
        return found

    def temporaries(self, *, dry_run: bool = False) -> int:
        """Temporary files of writers killed mid-write, older than the grace period."""
        if not isinstance(self.store, LocalObjectStore):
            return 0  # an object store's writes are single PUTs: nothing half-written
        if dry_run:
            return self.store.count_temporaries(self.grace_s)
        return self.store.clean_temporaries(self.grace_s)


def _largest(objects: Iterable[StoredObject], n: int) -> list[StoredObject]:
    return sorted(objects, key=lambda o: -o.size)[:n]
