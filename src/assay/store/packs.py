"""Small objects travel in packs, as git's do: one stored object holding many.

Writing ten thousand one-kilobyte files as ten thousand objects costs ten
thousand file creations (or PUTs, on S3); a pack costs one. A pack is an ordinary
content-addressed object (its name is the hash of its bytes); each member keeps
its own hash, checked whenever it is read. The index of which pack holds which
member, at which offset, lives in the metadata database (`pack_members`), written
in the same transaction as whatever refers to the members, so a writer killed
before that transaction leaves only an unreferenced pack.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
)

from assay.errors import CorruptObjectError, NotFoundError
from assay.store.db import Database, metadata
from assay.store.objects import ObjectStore, _storage_error, hash_bytes

# Files smaller than this are packed; larger ones are stored as objects of their own.
PACKABLE = 256 * 1024
# A pack is closed once it holds this many bytes.
PACK_BYTES = 64 * 1024 * 1024
_IN_CHUNK = 500
# Hashes looked up per statement when they travel as one JSON or array parameter.
_ONE_QUERY = 50_000

Location = tuple[str, int, int]  # pack, offset, size


pack_members = Table(
    "pack_members",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("pack", String(64), nullable=False),
    Column("offset", BigInteger, nullable=False),
    Column("size", BigInteger, nullable=False),
    Index("ix_pack_members_pack", "pack"),
)


class PackWriter:
    """Collects small blobs and writes them out as packs."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._buf: list[bytes] = []
        self._members: list[tuple[str, int, int]] = []
        self._size = 0
        self.written: list[tuple[str, list[tuple[str, int, int]]]] = []

    def locations(self) -> dict[str, Location]:
        """Where each blob written so far lives: {hash: (pack, offset, size)}."""
        return {h: (pack, off, n) for pack, members in self.written for h, off, n in members}

    def add(self, digest: str, data: bytes) -> None:
        self._members.append((digest, self._size, len(data)))
        self._buf.append(data)
        self._size += len(data)
        if self._size >= PACK_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self._members:
            return
        pack = self.store.put_bytes(b"".join(self._buf))
        self.written.append((pack, self._members))
        self._buf, self._members, self._size = [], [], 0


class Blobs:
    """Content-addressed blobs, loose or packed: the one way concepts read and write bytes."""

    def __init__(self, db: Database, store: ObjectStore) -> None:
        self.db = db
        self.store = store

    # ---- the index ------------------------------------------------------------------------

    def locate(
        self, hashes: Iterable[str], session: Connection | None = None
    ) -> dict[str, Location]:
        """Where each packed blob among `hashes` lives; blobs not in a pack are left out."""
        wanted = list(dict.fromkeys(hashes))
        if session is None:
            with self.db.read() as conn:
                return self.locate(wanted, conn)
        m = pack_members.c
        out: dict[str, Location] = {}
        for i in range(0, len(wanted), _ONE_QUERY):
            listed = _listed(session, wanted[i : i + _ONE_QUERY])
            query = select(m.hash, m.pack, m.offset, m.size).where(
                m.hash.in_(select(listed.c.value))
            )
            out.update({h: (p, o, n) for h, p, o, n in session.execute(query).all()})
        return out

    def holders(self, hashes: Iterable[str]) -> set[str]:
        """The stored objects holding `hashes`: the pack of each packed blob, the blob
        itself for the others. One small answer however many hashes are asked about (a
        version of 10,000 files is held by a few dozen packs)."""
        wanted = list(dict.fromkeys(hashes))
        m = pack_members.c
        out: set[str] = set()
        with self.db.read() as conn:
            for i in range(0, len(wanted), _ONE_QUERY):
                listed = _listed(conn, wanted[i : i + _ONE_QUERY])
                query = (
                    select(func.coalesce(m.pack, listed.c.value))
                    .select_from(listed.outerjoin(pack_members, m.hash == listed.c.value))
                    .distinct()
                )
                out.update(conn.execute(query).scalars())
        return out

    @staticmethod
    def index(conn: Connection, packs: list[tuple[str, list[tuple[str, int, int]]]]) -> None:
        """Record the members of freshly written packs; a member already indexed stays put."""
        rows = [
            {"hash": h, "pack": pack, "offset": off, "size": size}
            for pack, members in packs
            for h, off, size in members
        ]
        # Dialect modules load on first use: the PostgreSQL one alone costs 25 ms to import.
        for i in range(0, len(rows), 5000):
            batch = rows[i : i + 5000]
            if conn.dialect.name == "postgresql":
                from sqlalchemy.dialects import postgresql

                pg = postgresql.insert(pack_members).on_conflict_do_nothing(index_elements=["hash"])
                conn.execute(pg, batch)
            else:
                from sqlalchemy.dialects import sqlite

                lite = sqlite.insert(pack_members).on_conflict_do_nothing(index_elements=["hash"])
                conn.execute(lite, batch)

    def forget(self, objects: Iterable[str]) -> None:
        """Drop the index rows of packs among `objects` that are gone from the store (a
        collection took them): their members are then stored again, not located there."""
        gone = [d for d in objects if not self.store.has(d)]
        with self.db.session() as conn:
            for i in range(0, len(gone), _IN_CHUNK):
                chunk = gone[i : i + _IN_CHUNK]
                conn.execute(delete(pack_members).where(pack_members.c.pack.in_(chunk)))

    def pack_members(self) -> dict[str, list[tuple[str, int, int]]]:
        """Every indexed pack and its members (hash, offset, size)."""
        out: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
        m = pack_members.c
        with self.db.read() as conn:
            for h, pack, off, size in conn.execute(select(m.hash, m.pack, m.offset, m.size)):
                out[pack].append((h, off, size))
        return dict(out)

    # ---- reading --------------------------------------------------------------------------

    def read(self, digest: str, unindexed: Mapping[str, Location] | None = None) -> bytes:
        """A blob's bytes, checked against its hash, wherever it is stored.

        `unindexed` locates members of packs written but not indexed yet (a commit
        reading its own new files before its transaction records them).
        """
        loc = (unindexed or {}).get(digest) or self.locate([digest]).get(digest)
        if loc is None:
            return self.store.get_bytes(digest)
        return self._member(self.store.get_bytes(loc[0]), digest, loc)

    def copy_many(self, targets: list[tuple[str, Path]]) -> Iterator[int]:
        """Write each (hash, destination); yields after every file. Packs are read once each."""
        located = self.locate(h for h, _ in targets)
        by_pack: dict[str, list[tuple[str, Path]]] = defaultdict(list)
        loose: list[tuple[str, Path]] = []
        for digest, dest in targets:
            if digest in located:
                by_pack[located[digest][0]].append((digest, dest))
            else:
                loose.append((digest, dest))
        for pack, members in by_pack.items():
            data = self.store.get_bytes(pack)
            for digest, dest in members:
                _write_atomic(dest, self._member(data, digest, located[digest]))
                yield 1
        for digest, dest in loose:
            self.store.copy_to(digest, dest)
            yield 1

    def _member(self, pack: bytes, digest: str, loc: Location) -> bytes:
        _, off, size = loc
        data = pack[off : off + size]
        if hash_bytes(data) != digest:
            raise CorruptObjectError(
                f"Object {digest[:12]} inside pack {loc[0][:12]} is corrupt. "
                "Run `assay data verify` to list every damaged object.",
                object=digest,
            )
        return data

    def exists(self, digest: str) -> bool:
        return bool(self.locate([digest])) or self.store.has(digest)

    def verify_pack(self, pack: str, members: list[tuple[str, int, int]]) -> list[str]:
        """The members of `pack` whose bytes no longer match their hash (all, if it is gone)."""
        try:
            data = self.store.get_bytes(pack)
        except (NotFoundError, CorruptObjectError):
            return [h for h, _, _ in members]
        return [h for h, off, size in members if hash_bytes(data[off : off + size]) != h]


def _write_atomic(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
        os.replace(tmp, dest)
    except OSError as exc:
        raise _storage_error(exc, f"writing {dest}", storing=False) from exc
    finally:
        tmp.unlink(missing_ok=True)


def _listed(conn: Connection, values: list[str]) -> Any:
    """`values` as a one-column table (`value`) bound as one parameter: a re-commit looks
    up 10,000 hashes, and as 20 statements of 500 expanded parameters, compiling them cost
    more than the database took to answer (SQLite: `json_each`; PostgreSQL: `unnest`)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        listed = func.unnest(bindparam("listed", values, type_=ARRAY(String)))
        return listed.table_valued("value").render_derived()
    return func.json_each(bindparam("listed", json.dumps(values))).table_valued("value")
