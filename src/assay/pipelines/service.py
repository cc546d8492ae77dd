"""The pipeline registry's use cases: register, list, log, resolve, show, diff, materialize.

A pipeline version is an immutable snapshot of the source files beside (and below)
the file that defines the pipeline, stored like a data version: every file a
content-addressed blob, the file list a manifest object. Registering loads the
pipeline from exactly the bytes about to be stored, so what is registered is what
will run.
"""

from __future__ import annotations

import os
import stat as stat_mod
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from assay.data import manifest
from assay.data.entities import LATEST, FileEntry, check_name
from assay.errors import InvalidArgumentError, NotFoundError
from assay.pipelines import notebook as notebooks
from assay.pipelines.entities import PipelineInfo, PipelineVersion, StepInfo
from assay.pipelines.repository import PipelineRepository, steps_json, to_version
from assay.store.acting import author_or
from assay.store.db import Database, utcnow
from assay.store.objects import ObjectStore, hash_bytes
from assay.store.packs import PACKABLE, Blobs, PackWriter
from assay.store.retry import retrying

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy import Connection, Row

ENTRY_FILE = "pipeline.py"
_SKIP_DIRS = frozenset({"__pycache__", ".venv", "venv", "node_modules", ".assay", ".git"})
# A snapshot is source code; a folder holding more than this is not what was meant.
MAX_FILES = 2000
MAX_BYTES = 64 * 1024 * 1024


class _Source(NamedTuple):
    path: str  # relative to the snapshot's root, '/'-separated
    data: bytes


class PipelineService:
    """Versioned pipelines over a metadata database and a content-addressed object store."""

    def __init__(self, db: Database, store: ObjectStore, blobs: Blobs, *, author: str) -> None:
        self.db = db
        self.store = store
        self.blobs = blobs
        self._author = author
        self._versions: dict[tuple[str, int], PipelineVersion] = {}

    @property
    def author(self) -> str:
        """Whom what this records names: the caller a server acts for, else the default."""
        return author_or(self._author)

    # ---- register -----------------------------------------------------------------------

    def register(
        self, path: Path, name: str | None = None, message: str = ""
    ) -> tuple[PipelineVersion, bool]:
        """Snapshot the pipeline at `path` as the next version; returns it and whether it is new.

        `path` is the `.py` file that defines the pipeline, or a folder holding a
        `pipeline.py`. The snapshot is every `*.py` and `requirements*.txt` file in that
        file's folder and below (hidden folders, `__pycache__` and virtual environments
        left out). Registering unchanged source makes no new version. `name` defaults
        to the pipeline's own name; with several pipelines in the file it picks one,
        with one it registers that one under `name`.

        Raises:
            NotFoundError: `path` does not exist.
            InvalidArgumentError: no entry file, a bad name, too many files, or a module
                that fails to import or defines no valid pipeline.
        """
        from assay.pipelines.dsl import load_pipeline, step_code_hashes

        entry_file = self._entry(Path(path))
        entry = entry_file.name
        sources = _collect(entry_file.parent, entry)
        if not any(s.path == entry for s in sources):
            raise InvalidArgumentError(
                f"{entry_file} is not a file a snapshot can hold (hidden, or not a regular "
                "file); rename it or pass another file.",
                path=str(entry_file),
            )
        if name is not None:
            check_name(name, "Pipeline")
        files = [FileEntry(s.path, hash_bytes(s.data), len(s.data)) for s in sources]
        data = manifest.encode(files)
        digest = hash_bytes(data)
        # The same source as a pipeline's newest version: nothing to register, and no
        # need to import the code (a sweep re-registering its pipeline.py saves seconds).
        with self.db.read() as s:
            repo = PipelineRepository(s)
            candidates = [name] if name else repo.names_with_manifest(digest, entry)
            heads = [h for h in (_head_if(repo, c, digest) for c in candidates) if h is not None]
        if len(heads) == 1 and heads[0].entry == entry:
            return heads[0], False

        if notebooks.is_notebook(entry):
            source = next(s.data for s in sources if s.path == entry)
            steps = [StepInfo(notebooks.STEP, (), notebooks.code_hash(source))]
            pipeline_name = name or _name_of(entry_file)
            existing = self._unchanged(pipeline_name, digest)
            if existing is not None:
                return existing, False
            packer = self._store(sources, files)
            self.store.put_bytes(data, digest)
            return self._insert_version(
                pipeline_name, digest, entry, steps_json(steps, None, None), message, packer
            )

        with tempfile.TemporaryDirectory(prefix="assay-pipeline-") as tmp:
            root = Path(tmp)
            for src in sources:
                target = root.joinpath(*src.path.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(src.data)
            pipeline = load_pipeline(root / entry, name)
            texts = {str(root.joinpath(*s.path.split("/"))): _text(s.data) for s in sources}
            entry_path = str(root / entry)
            hashes = step_code_hashes(
                texts.pop(entry_path),
                pipeline,
                entry_path,
                others=texts,
            )
        pipeline_name = name or pipeline.name
        steps = [StepInfo(s.name, s.inputs, hashes[s.name]) for s in pipeline.steps]

        existing = self._unchanged(pipeline_name, digest)
        if existing is not None:
            return existing, False
        packer = self._store(sources, files)
        self.store.put_bytes(data, digest)
        return self._insert_version(
            pipeline_name,
            digest,
            entry,
            steps_json(steps, pipeline.model, pipeline.metrics),
            message,
            packer,
        )

    def _entry(self, path: Path) -> Path:
        if not path.exists():
            raise NotFoundError(f"Path {str(path)!r} does not exist. Check the path and retry.")
        if path.is_dir():
            entry = path / ENTRY_FILE
            if not entry.is_file():
                raise InvalidArgumentError(
                    f"Folder {str(path)!r} has no {ENTRY_FILE}; pass the .py file that "
                    "defines the pipeline instead.",
                    path=str(path),
                )
            return entry.absolute()
        if path.suffix != ".py" and not notebooks.is_notebook(path.name):
            raise InvalidArgumentError(
                f"{str(path)!r} is not a Python file or a notebook; pass the .py file that "
                f"defines the pipeline, a .ipynb notebook, or a folder holding a {ENTRY_FILE}.",
                path=str(path),
            )
        return path.absolute()

    def _unchanged(self, name: str, digest: str) -> PipelineVersion | None:
        with self.db.read() as s:
            return _head_if(PipelineRepository(s), name, digest)

    def _store(self, sources: list[_Source], files: list[FileEntry]) -> PackWriter:
        """Store every file the store lacks: small ones packed, large ones loose."""
        packer = PackWriter(self.store)
        known = self.blobs.locate(f.hash for f in files)
        seen: set[str] = set()
        for src, f in zip(sources, files, strict=True):
            if f.hash in known or f.hash in seen:
                continue
            seen.add(f.hash)
            if f.size >= PACKABLE:
                self.store.put_bytes(src.data, f.hash)
            else:
                packer.add(f.hash, src.data)
        packer.flush()
        return packer

    def _insert_version(
        self,
        name: str,
        digest: str,
        entry: str,
        steps: dict[str, object],
        message: str,
        packer: PackWriter,
    ) -> tuple[PipelineVersion, bool]:
        # Two writers may race for the same number; the unique constraint picks one
        # and the other takes the next number (or finds its source already registered).
        def attempt() -> tuple[PipelineVersion, bool]:
            with self.db.session() as s:
                repo = PipelineRepository(s)
                same = _head_if(repo, name, digest)
                if same is not None:
                    return same, False
                row = repo.get_or_create_pipeline(name)
                latest = repo.latest_number(row.id)
                version = repo.insert_version(
                    pipeline_id=row.id,
                    number=(latest or 0) + 1,
                    manifest=digest,
                    entry=entry,
                    steps=steps,
                    message=message,
                    author=self.author,
                    created_at=utcnow(),
                )
                Blobs.index(s, packer.written)
                return to_version(name, version), True

        return retrying(attempt, f"Too many concurrent registrations of {name!r}; retry.")

    # ---- reading ------------------------------------------------------------------------

    def pipelines(self) -> list[PipelineInfo]:
        """Every registered pipeline, by name."""
        with self.db.read() as s:
            return PipelineRepository(s).pipelines()

    def log(self, name: str) -> list[PipelineVersion]:
        """Every version of pipeline `name`, newest first.

        Raises:
            NotFoundError: no such pipeline.
        """
        with self.db.read() as s:
            repo = PipelineRepository(s)
            row = self._pipeline(repo, name)
            return [to_version(name, r) for r in repo.version_rows(row.id)]

    def resolve(self, ref: str) -> PipelineVersion:
        """`name@3`, `name@latest` or just `name` to a version.

        Raises:
            InvalidArgumentError: a malformed reference.
            NotFoundError: no such pipeline or version.
        """
        name, selector = parse_ref(ref)
        if selector != LATEST and (name, int(selector)) in self._versions:
            return self._versions[(name, int(selector))]  # a numbered version never changes
        with self.db.read() as s:
            repo = PipelineRepository(s)
            row = self._pipeline(repo, name)
            number = repo.latest_number(row.id) if selector == LATEST else int(selector)
            found = repo.version_row(row.id, number) if number is not None else None
            if found is None:
                raise NotFoundError(
                    f"Pipeline {name!r} has no version {selector}. "
                    f"See its versions with `assay pipelines log {name}`.",
                    pipeline=name,
                    version=selector,
                )
            version = to_version(name, found)
        self._versions[(name, version.number)] = version
        return version

    def files(self, version: PipelineVersion) -> tuple[FileEntry, ...]:
        """The snapshot's files: path, content hash and size."""
        return manifest.decode(self.store.get_bytes(version.manifest))

    def source(self, version: PipelineVersion, path: str | None = None) -> str:
        """The text of one file of the snapshot (the entry file by default).

        Raises:
            NotFoundError: the snapshot has no such file.
        """
        wanted = path or version.entry
        for f in self.files(version):
            if f.path == wanted:
                return _text(self.blobs.read(f.hash))
        raise NotFoundError(
            f"{version.ref} has no file {wanted!r}. List its files with "
            f"`assay pipelines show {version.ref} --json`.",
            pipeline=version.pipeline,
            version=version.number,
            path=wanted,
        )

    def live_objects(self, conn: Connection, read: Callable[[str], bytes]) -> Iterator[str]:
        """Every object a pipeline version refers to: its manifest and its source files."""
        for digest in PipelineRepository(conn).manifests():
            yield digest
            for entry in manifest.decode(read(digest)):
                yield entry.hash

    def readable(self, version: PipelineVersion, path: str | None = None) -> str:
        """`source`, as a person reads it: a notebook as its cells in jupytext's percent
        format (code as it is, markdown as comments), any other file as it is."""
        wanted = path or version.entry
        text = self.source(version, wanted)
        return notebooks.as_script(text) if notebooks.is_notebook(wanted) else text

    def diff(self, a_ref: str, b_ref: str) -> str:
        """A unified diff of every file of two versions; empty when they hold the same source."""
        import difflib

        a, b = self.resolve(a_ref), self.resolve(b_ref)
        a_files = {f.path: f for f in self.files(a)}
        b_files = {f.path: f for f in self.files(b)}
        out: list[str] = []
        for path in sorted(a_files.keys() | b_files.keys()):
            fa, fb = a_files.get(path), b_files.get(path)
            if fa is not None and fb is not None and fa.hash == fb.hash:
                continue
            old = _text(self.blobs.read(fa.hash)) if fa else ""
            new = _text(self.blobs.read(fb.hash)) if fb else ""
            if notebooks.is_notebook(path):  # the cells, not their JSON
                old = notebooks.as_script(old) if old else ""
                new = notebooks.as_script(new) if new else ""
            lines = difflib.unified_diff(
                old.splitlines(keepends=True),
                new.splitlines(keepends=True),
                fromfile=f"a/{a.ref}/{path}" if fa else "/dev/null",
                tofile=f"b/{b.ref}/{path}" if fb else "/dev/null",
            )
            for line in lines:
                out.append(
                    line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                )
        return "".join(out)

    def materialize(self, version: PipelineVersion, dest: Path) -> Path:
        """Write the snapshot's files under folder `dest`, byte for byte; returns the entry file.

        Every file is checked against its content hash on the way out.
        """
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        targets = [(f.hash, dest.joinpath(*f.path.split("/"))) for f in self.files(version)]
        for _ in self.blobs.copy_many(targets):
            pass
        return dest / version.entry

    # ---- helpers ------------------------------------------------------------------------

    def _pipeline(self, repo: PipelineRepository, name: str) -> Row[object]:
        row = repo.pipeline_row(check_name(name, "Pipeline"))
        if row is None:
            raise NotFoundError(
                f"No pipeline named {name!r}. List pipelines with `assay pipelines list`, "
                "or register one with `assay pipelines register PATH`.",
                pipeline=name,
            )
        return row


def parse_ref(ref: str) -> tuple[str, str]:
    """`name@3`, `name@latest` or `name` to (name, "3" | "latest").

    Raises:
        InvalidArgumentError: a bad name, or a selector that is neither a number nor `latest`.
    """
    name, sep, selector = ref.partition("@")
    check_name(name, "Pipeline")
    if sep and not (selector.isdigit() or selector == LATEST):
        raise InvalidArgumentError(
            f"Pipeline reference {ref!r} is not valid: write NAME@VERSION (a number), "
            "NAME@latest or NAME.",
            ref=ref,
        )
    return name, selector or LATEST


def _head_if(repo: PipelineRepository, name: str, digest: str) -> PipelineVersion | None:
    """The newest version of `name`, if it holds exactly the snapshot `digest`."""
    row = repo.pipeline_row(name)
    latest = repo.latest_number(row.id) if row is not None else None
    if row is None or latest is None:
        return None
    head = repo.version_row(row.id, latest)
    if head is None or head.manifest != digest:
        return None
    return to_version(name, head)


def _name_of(entry: Path) -> str:
    """A notebook's pipeline name: its file name without `.ipynb`, as a valid name."""
    import re

    name = re.sub(r"[^A-Za-z0-9._-]+", "-", entry.stem).strip("-._")
    return check_name(name or "notebook", "Pipeline")


def _collect(root: Path, entry_name: str = ENTRY_FILE) -> list[_Source]:
    """The snapshot's files under `root`, sorted by path: the entry file (a notebook is
    kept without its outputs), and every `.py` and requirements file beside and below."""
    out: list[_Source] = []
    total = 0
    stack = [(root, "")]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except PermissionError as exc:
            raise InvalidArgumentError(f"Cannot read folder {folder}: permission denied.") from exc
        for entry in entries:
            if entry.name.startswith("."):
                continue  # hidden folders, and editors' lock and swap files
            sub = f"{rel}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                if entry.name not in _SKIP_DIRS and not _is_venv(entry.path):
                    stack.append((Path(entry.path), sub + "/"))
                continue
            is_entry = sub == entry_name
            if not (is_entry or _wanted(entry.name)):
                continue
            try:
                if not stat_mod.S_ISREG(entry.stat().st_mode):
                    continue
                data = Path(entry.path).read_bytes()
            except FileNotFoundError:
                continue  # a dangling link
            except PermissionError as exc:
                raise InvalidArgumentError(f"Cannot read {entry.path}: permission denied.") from exc
            if is_entry and notebooks.is_notebook(sub):
                data = notebooks.strip_outputs(data)
            out.append(_Source(sub, data))
            total += len(data)
            if len(out) > MAX_FILES or total > MAX_BYTES:
                raise InvalidArgumentError(
                    f"{root} holds more than {MAX_FILES:,} source files or "
                    f"{MAX_BYTES // 2**20} MB: a pipeline's snapshot is every .py file beside "
                    "the pipeline file and below. Move the pipeline into a folder of its own.",
                    path=str(root),
                )
    out.sort(key=lambda s: s.path)
    return out


def _wanted(filename: str) -> bool:
    return filename.endswith(".py") or (
        filename.startswith("requirements") and filename.endswith(".txt")
    )


def _is_venv(folder: str) -> bool:
    return os.path.exists(os.path.join(folder, "pyvenv.cfg"))


def _text(data: bytes) -> str:
    """Source bytes as text, honouring a `# -*- coding: … -*-` line as Python does."""
    from importlib.util import decode_source

    try:
        return decode_source(data)
    except (SyntaxError, LookupError, UnicodeDecodeError):
        return data.decode("utf-8", errors="replace")
