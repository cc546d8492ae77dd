"""A stat cache, as git's index is one: a re-commit re-hashes only files that changed.

Maps a file's absolute path and `stat` signature (size, mtime, ctime, inode) to
the hash it had when it was stored in a given object store. It is local to one
machine and one store (the file is named after the store), lives in
`.assay/cache/`, and losing it only costs a re-hash.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from blake3 import blake3

Signature = tuple[int, int, int, int]  # size, mtime_ns, ctime_ns, inode

# Timestamps on some filesystems tick coarsely: a file hashed in the same tick as
# its last write could change again without its mtime moving. Such "racily
# clean" entries are not cached (git's index handles the same race).
_RACY_NS = 200_000_000


def signature(st: os.stat_result) -> Signature:
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


class StatCache:
    def __init__(self, cache_dir: Path, store_url: str) -> None:
        key = blake3(store_url.encode()).hexdigest()[:16]
        self.path = cache_dir / f"stat-{key}.sqlite"
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=OFF")  # a lost cache costs a re-hash, nothing more
            conn.execute(
                "CREATE TABLE IF NOT EXISTS stat (path TEXT PRIMARY KEY, size INTEGER, "
                "mtime INTEGER, ctime INTEGER, ino INTEGER, hash TEXT) WITHOUT ROWID"
            )
            self._conn = conn
        return self._conn

    def load(self, root: Path) -> dict[str, tuple[Signature, str]]:
        """Every cached entry under `root` (a file or a folder)."""
        prefix = str(root)
        with self._lock:
            try:
                rows = (
                    self._db()
                    .execute(
                        "SELECT path, size, mtime, ctime, ino, hash FROM stat "
                        "WHERE path = ? OR (path >= ? AND path < ?)",
                        (prefix, prefix + os.sep, prefix + chr(ord(os.sep) + 1)),
                    )
                    .fetchall()
                )
            except sqlite3.DatabaseError:
                self._reset()
                return {}
        return {p: ((s, m, c, i), h) for p, s, m, c, i, h in rows}

    def save(self, entries: list[tuple[str, Signature, str]]) -> None:
        if not entries:
            return
        cutoff = time.time_ns() - _RACY_NS
        rows = [(p, *sig, h) for p, sig, h in entries if sig[1] < cutoff]
        with self._lock, contextlib.suppress(sqlite3.DatabaseError):
            db = self._db()
            db.execute("BEGIN")
            try:
                db.executemany("INSERT OR REPLACE INTO stat VALUES (?, ?, ?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except sqlite3.DatabaseError:
                db.execute("ROLLBACK")
                raise

    def _reset(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.path.unlink(missing_ok=True)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
