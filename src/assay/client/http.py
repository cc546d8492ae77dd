"""`Client`: one httpx connection pool, one method per service verb."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from assay import errors

if TYPE_CHECKING:
    from assay.abtests.entities import ABReport
    from assay.data.checks import Checks
    from assay.monitoring.entities import MonitorReport
    from assay.registry.entities import LineageTree
    from assay.runs.code import CodeCapture
    from assay.runs.entities import Candidate
    from assay.serving.entities import ServiceStatus

T = TypeVar("T")

PART = 8 * 1024 * 1024  # upload parts: a failed part is resent, not the whole file
# Files smaller than this travel in batches of up to PART bytes or BATCH_FILES files
# (the size under which the store packs files, `assay.store.packs.PACKABLE`).
SMALL = 256 * 1024
BATCH_FILES = 4096


@cache
def _adapter(kind: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def parse(kind: Any, data: Any) -> Any:
    """JSON from the server back into the entity class it was made from."""
    return _adapter(kind).validate_python(data)


def _checks(checks: Checks | Path | str) -> Checks:
    """Parsed checks as they are, or a checks file (its path) parsed."""
    from assay.data.checks import Checks, load_checks

    if isinstance(checks, Checks):
        return checks
    from assay.store.paths import read_user_text

    return load_checks(read_user_text(Path(checks), "checks file"), str(checks))


class Client:
    """Talk to an Assay server.

    >>> client = Client("http://assay.internal:8000", token=os.environ["ASSAY_TOKEN"])
    >>> client.runs(filter="metrics.val_f1 > 0.9")
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        headers = {"User-Agent": "assay-client"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- plumbing ------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise errors.UnreachableError(
                f"Cannot reach the Assay server at {self.url}: {exc or type(exc).__name__}. "
                "Check that it is up and that ASSAY_REMOTE names it."
            ) from None
        if response.status_code >= 400:
            raise _error(response)
        if response.status_code == 204 or not response.content:
            return None
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def _get(self, kind: Any, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return parse(kind, self._call("GET", path, params=clean))

    def _list(self, kind: Any, path: str, page_size: int = 1000, **query: Any) -> list[Any]:
        """Every item of a listing route, following its pages."""
        items: list[Any] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size, **query}
            if token:
                params["page_token"] = token
            doc = self._call("GET", path, params=params)
            items.extend(parse(list[kind], doc["items"]))
            token = doc.get("next_page_token")
            if not token:
                return items

    # ---- data ----------------------------------------------------------------------------

    def datasets(self, *, include_params: bool = False) -> list[Any]:
        """Every dataset; the runs' `params/*` datasets only with `include_params`."""
        from assay.data.entities import Dataset

        return self._list(Dataset, "/datasets", all=include_params)

    def log(self, name: str) -> list[Any]:
        from assay.data.entities import DataVersion

        return self._list(DataVersion, f"/datasets/{name}/versions")

    def version(self, ref: str) -> Any:
        """A data version and its files: (DataVersion, [FileEntry])."""
        from assay.data.entities import DataVersion, FileEntry

        doc = self._call("GET", f"/versions/{ref}")
        return parse(DataVersion, doc["version"]), parse(list[FileEntry], doc["files"])

    def commit(
        self,
        name: str,
        path: Path | str,
        message: str = "",
        *,
        checks: Checks | Path | str | None = None,
        allow_invalid: bool = False,
    ) -> Any:
        """Upload a file or folder and commit it as the dataset's next version.

        Files go up in parts of 8 MB; each file's BLAKE3 hash goes with the commit, and
        the server refuses the commit if what arrived differs. With `checks` (parsed
        `Checks`, or a checks file's path) the server validates first and, unless
        `allow_invalid`, raises ValidationFailedError (the report in `.details`) and
        makes no version. Returns a CommitResult (`.version`, `.created` False when the
        content was already the latest, `.validation` the report when checked).
        """
        from dataclasses import replace

        from assay.data.entities import CommitResult
        from assay.data.validation import ValidationReport

        body: dict[str, Any] = {"dataset": name, "message": message}
        if checks is not None:
            from assay.data.checks import dump_checks

            parsed = _checks(checks)
            body.update(checks=dump_checks(parsed), checks_source=parsed.source,
                        allow_invalid=allow_invalid)  # fmt: skip
        upload, body["files"] = self._upload(Path(path))
        doc = self._call("POST", f"/uploads/{upload}/commit", json=body)
        found = parse(CommitResult, doc)
        if doc.get("validation") is None:
            return found
        return replace(found, validation=ValidationReport.from_dict(doc["validation"]))

    def diff(self, old: str, new: str, *, key: str | None = None) -> Any:
        """How data version `new` differs from `old`: a DataDiff whose `tables` hold a
        TableDiff per changed table (rows paired by `key`, or an id-like column)."""
        from dataclasses import replace

        from assay.data.entities import DataDiff
        from assay.data.tablediff import TableDiff

        params = {"old": old, "new": new, **({"key": key} if key is not None else {})}
        doc = self._call("GET", "/diffs", params=params)
        found = parse(DataDiff, doc)
        return replace(found, tables=parse(dict[str, TableDiff], doc.get("tables") or {}))

    def validate(self, ref: str, checks: Checks | Path | str) -> tuple[Any, Any]:
        """Check a version's tables on the server: (DataVersion, ValidationReport); the
        result is stored with the version."""
        from assay.data.checks import dump_checks
        from assay.data.entities import DataVersion
        from assay.data.validation import ValidationReport

        parsed = _checks(checks)
        doc = self._call(
            "POST",
            f"/validations/{ref}",
            json={"checks": dump_checks(parsed), "source": parsed.source},
        )
        return parse(DataVersion, doc["version"]), ValidationReport.from_dict(doc["report"])

    def _upload(self, root: Path) -> tuple[str, dict[str, str]]:
        """Send a file, or a folder's files, as a new upload: (its id, {path: BLAKE3}).

        Small files go many to a request (a batch, as the store packs them); larger
        ones in parts of PART bytes, so that a failed part is resent alone.
        """
        from assay.store.objects import hash_bytes, hash_file

        if not root.exists():
            raise errors.NotFoundError(f"{root} does not exist.")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        upload = self._call("POST", "/uploads")["id"]
        hashes: dict[str, str] = {}
        batch: list[tuple[str, str, bytes]] = []
        batch_bytes = 0
        for file in files:
            rel = file.name if root.is_file() else file.relative_to(root).as_posix()
            if file.stat().st_size < SMALL:
                data = file.read_bytes()  # what is hashed is what is sent
                hashes[rel] = hash_bytes(data)
                batch.append((rel, hashes[rel], data))
                batch_bytes += len(data)
                if batch_bytes >= PART or len(batch) >= BATCH_FILES:
                    self._send_batch(upload, batch)
                    batch, batch_bytes = [], 0
                continue
            hashes[rel] = hash_file(file)
            with file.open("rb") as src:
                offset = 0
                while True:
                    part = src.read(PART)
                    if not part and offset:
                        break
                    self._call(
                        "PUT",
                        f"/uploads/{upload}",
                        params={"path": rel, "offset": offset},
                        content=part,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    offset += len(part)
                    if not part:
                        break
        if batch:
            self._send_batch(upload, batch)
        return upload, hashes

    def _send_batch(self, upload: str, batch: list[tuple[str, str, bytes]]) -> None:
        """One request carrying many small files: a JSON line naming them, then their bytes."""
        import json

        index = json.dumps([[rel, digest, len(data)] for rel, digest, data in batch])
        self._call(
            "POST",
            f"/uploads/{upload}/batch",
            content=b"".join([index.encode(), b"\n", *(data for _, _, data in batch)]),
            headers={"Content-Type": "application/octet-stream"},
        )

    def download(self, ref: str, path: str, dest: Path | str) -> Path:
        """One file of a data version, streamed to `dest` and checked against its hash."""
        from blake3 import blake3

        target = Path(dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        hasher = blake3()
        with self._http.stream("GET", "/files", params={"ref": ref, "path": path}) as response:
            if response.status_code >= 400:
                response.read()
                raise _error(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes():
                    hasher.update(chunk)
                    out.write(chunk)
            expected = response.headers.get("x-assay-hash")
        if expected and hasher.hexdigest() != expected:
            target.unlink(missing_ok=True)
            raise errors.CorruptObjectError(f"{path} from {ref} arrived damaged; download again.")
        return target

    # ---- pipelines -----------------------------------------------------------------------

    def register_pipeline(
        self, path: Path | str, name: str | None = None, message: str = ""
    ) -> tuple[Any, bool]:
        """Send a pipeline's source (its folder's `*.py` and requirements files) to register.

        Returns the PipelineVersion and whether it is new (unchanged source makes none).
        """
        from assay.pipelines.entities import PipelineVersion

        entry = Path(path)
        if entry.is_dir():
            entry = entry / "pipeline.py"
        if not entry.is_file():
            raise errors.NotFoundError(f"Pipeline file {str(entry)!r} does not exist.")
        folder = entry.parent
        files = {
            p.relative_to(folder).as_posix(): p.read_text(encoding="utf-8")
            for p in sorted(folder.rglob("*"))
            if p.is_file()
            and (p.suffix == ".py" or p.name.startswith("requirements") or p == entry)
            and not any(part.startswith(".") or part in ("__pycache__", "venv", ".venv")
                        for part in p.relative_to(folder).parts)
        }  # fmt: skip
        doc = self._call(
            "POST",
            "/pipelines",
            json={"files": files, "entry": entry.name, "name": name, "message": message},
        )
        return parse(PipelineVersion, doc["version"]), bool(doc["created"])

    def pipelines(self) -> list[Any]:
        from assay.pipelines.entities import PipelineInfo

        return self._list(PipelineInfo, "/pipelines")

    def pipeline(self, ref: str) -> Any:
        from assay.pipelines.entities import PipelineVersion

        name, _, selector = ref.partition("@")
        return self._get(PipelineVersion, f"/pipelines/{name}/versions/{selector or 'latest'}")

    def pipeline_log(self, name: str) -> list[Any]:
        """Every version of pipeline `name`, newest first."""
        from assay.pipelines.entities import PipelineVersion

        return self._list(PipelineVersion, f"/pipelines/{name}/versions")

    def pipeline_files(self, ref: str) -> list[Any]:
        """A version's files: path, content hash and size."""
        from assay.data.entities import FileEntry

        name, _, selector = ref.partition("@")
        return list(
            self._get(list[FileEntry], f"/pipelines/{name}/versions/{selector or 'latest'}/files")
        )

    def pipeline_source(self, ref: str, path: str | None = None) -> str:
        """The text of one file of a version (its entry file by default)."""
        name, _, selector = ref.partition("@")
        query = {"path": path} if path else {}
        url = f"/pipelines/{name}/versions/{selector or 'latest'}/source"
        return str(self._call("GET", url, params=query) or "")  # an empty file: no body

    def pipeline_diff(self, old: str, new: str) -> str:
        """A unified diff of two versions' source; empty when they hold the same."""
        return str(self._call("GET", "/pipelines/diff", params={"old": old, "new": new}) or "")

    # ---- runs ----------------------------------------------------------------------------

    def run(
        self,
        pipeline: str,
        *,
        data: str,
        params: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        name: str | None = None,
        force: bool = False,
        wait: bool = True,
        poll_s: float = 0.5,
    ) -> Any:
        """Run a registered pipeline on the server; with `wait`, return the finished run."""
        from assay.runs.entities import Run

        doc = self._call(
            "POST",
            "/runs",
            json={
                "pipeline": pipeline,
                "data": data,
                "params": dict(params or {}),
                "experiment": experiment,
                "name": name,
                "force": force,
            },
        )
        run = parse(Run, doc)
        while wait and run.status in ("queued", "running"):
            time.sleep(poll_s)
            run = self.get_run(run.id)
        return run

    def get_run(self, ref: str) -> Any:
        from assay.runs.entities import Run

        return self._get(Run, f"/runs/{ref}")

    def runs(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = 100,
        page_size: int = 500,
        archived: bool = False,
    ) -> list[Any]:
        """Runs matching a filter (the CLI's expression language), following pages."""
        return list(self.iter_runs(experiment=experiment, filter=filter, sort=sort, limit=limit,
                                   page_size=page_size, archived=archived))  # fmt: skip

    def iter_runs(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        page_size: int = 500,
        archived: bool = False,
    ) -> Iterator[Any]:
        from assay.runs.entities import Run

        token: str | None = None
        seen = 0
        while True:
            size = page_size if limit is None else min(page_size, limit - seen)
            if size <= 0:
                return
            doc = self._call(
                "GET",
                "/runs",
                params={
                    k: v
                    for k, v in {
                        "experiment": experiment,
                        "filter": filter,
                        "sort": sort,
                        "limit": size,
                        "page_token": token,
                        "archived": "true" if archived else None,
                    }.items()
                    if v is not None
                },
            )
            for item in doc["items"]:
                yield parse(Run, item)
                seen += 1
            token = doc.get("next_page_token")
            if not token:
                return

    def metrics(self, run: str, key: str | None = None) -> list[dict[str, Any]]:
        """A run's metric points: [{key, value, step, ts}], oldest first."""
        found: list[dict[str, Any]] = self._call(
            "GET", f"/runs/{run}/metrics", params={"key": key} if key else None
        )
        return found

    def logs(self, run: str) -> str:
        return str(self._call("GET", f"/runs/{run}/logs") or "")

    def start_run(
        self,
        experiment: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: str | None = None,
        name: str | None = None,
        parent: str | None = None,
    ) -> Any:
        """Open a run that this process fills in (`log_metrics`, then `end_run`)."""
        from assay.runs.entities import Run

        doc = self._call(
            "POST",
            f"/experiments/{experiment}/runs",
            json={"params": dict(params or {}), "data": data, "name": name, "parent": parent},
        )
        return parse(Run, doc)

    def log_metrics(
        self, run: str, points: Sequence[tuple[str, float, int | None]] | Mapping[str, float]
    ) -> None:
        """Log metric points in one batch: a {key: value} mapping, or (key, value, step) rows."""
        rows = [(k, v, None) for k, v in points.items()] if isinstance(points, Mapping) else points
        now = time.time()
        self.log_points(run, [(k, v, s, now) for k, v, s in rows])

    def log_points(
        self, run: str, points: Sequence[tuple[str, float | None, int | None, float | None]]
    ) -> None:
        """Log metric points, each with its own time: (key, value, step, unix time)."""
        self._call(
            "POST",
            f"/runs/{run}/metrics",
            json={"metrics": [{"key": k, "value": v, "step": s, "ts": t} for k, v, s, t in points]},
        )

    def log_params(self, run: str, params: Mapping[str, Any]) -> None:
        """Add params to a running run (names it already has keep their values)."""
        self._call("POST", f"/runs/{run}/params", json={"params": dict(params)})

    def log_artifact(self, run: str, path: Path | str, name: str | None = None) -> None:
        """Store a file, or every file under a folder, with a running run."""
        src = Path(path)
        upload, hashes = self._upload(src)
        self._call(
            "POST",
            f"/runs/{run}/artifacts",
            json={"upload": upload, "files": hashes, "name": name or src.name,
                  "folder": src.is_dir()},
        )  # fmt: skip

    def record_code(self, run: str, capture: CodeCapture) -> None:
        """Store the code that produced a run (what `assay.start_run` captured)."""
        files = {
            name: data.decode("utf-8", errors="replace") for name, data in capture.files.items()
        }
        git = None
        if capture.git is not None:
            g = capture.git
            git = {"commit": g.commit, "branch": g.branch, "path": g.path, "dirty": g.dirty,
                   "diff": g.diff}  # fmt: skip
        self._call(
            "PUT",
            f"/runs/{run}/code",
            json={"kind": capture.kind, "entry": capture.entry, "files": files, "git": git},
        )

    def code(self, run: str) -> tuple[Any, dict[str, bytes]]:
        """The code version a run executed and its files: (CodeVersion, {name: bytes})."""
        from assay.runs.code import CodeVersion

        doc = self._call("GET", f"/runs/{run}/code")
        files = {k: str(v).encode() for k, v in doc["files"].items()}
        return parse(CodeVersion, doc["version"]), files

    def link_data(self, run: str, ref: str) -> Any:
        """Name a data version the run used."""
        from assay.runs.entities import Run

        return parse(Run, self._call("POST", f"/runs/{run}/data", json={"ref": ref}))

    def annotate(self, run: str, extra: Mapping[str, Any]) -> None:
        """Merge values into a run's `extra`."""
        self._call("PATCH", f"/runs/{run}/extra", json={"extra": dict(extra)})

    def add_children(self, parent: str, children: Sequence[Candidate]) -> list[str]:
        """Record a search's candidates as finished runs under `parent`; their ids."""
        body = [{"params": c.params, "metrics": c.metrics, "name": c.name, "status": c.status}
                for c in children]  # fmt: skip
        found: list[str] = self._call("POST", f"/runs/{parent}/children", json={"children": body})[
            "ids"
        ]
        return found

    def children(self, run: str) -> list[Any]:
        from assay.runs.entities import Run

        return list(self._get(list[Run], f"/runs/{run}/children"))

    def end_run(
        self,
        run: str,
        status: str = "succeeded",
        error: str | None = None,
        *,
        resources: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> Any:
        """Close a run; `resources` and `environment` are what this machine measured."""
        from assay.runs.entities import Run

        body = {"status": status, "error": error, "resources": dict(resources or {}),
                "environment": dict(environment or {})}  # fmt: skip
        return parse(Run, self._call("POST", f"/runs/{run}/end", json=body))

    # ---- deleting, archiving, collecting ---------------------------------------------------

    def delete_runs(self, runs: Sequence[str], *, force: bool = False) -> Any:
        """Delete runs (admin token): refused while a model came from one, unless `force`."""
        from assay.lifecycle.entities import Deleted

        doc = self._call("POST", "/runs/delete", params={"force": force},
                         json={"runs": list(runs)})  # fmt: skip
        return parse(Deleted, doc)

    def delete_model(self, ref: str, *, force: bool = False) -> Any:
        """Delete a model version (admin token)."""
        from assay.lifecycle.entities import Deleted

        mv = self.model(ref)
        doc = self._call("DELETE", f"/models/{mv.name}/versions/{mv.version}",
                         params={"force": force})  # fmt: skip
        return parse(Deleted, doc)

    def delete_data(self, ref: str, *, force: bool = False) -> Any:
        """Delete a data version (admin token)."""
        from assay.lifecycle.entities import Deleted

        dv = self.version(ref)[0]
        doc = self._call("DELETE", f"/datasets/{dv.dataset}/versions/{dv.number}",
                         params={"force": force})  # fmt: skip
        return parse(Deleted, doc)

    def archive_runs(self, runs: Sequence[str], *, restore: bool = False) -> list[str]:
        """Archive runs (out of listings, kept whole), or restore them; their full ids."""
        doc = self._call("POST", f"/runs/{'restore' if restore else 'archive'}",
                         json={"runs": list(runs)})  # fmt: skip
        return list(doc["runs"])

    def archive_experiment(self, name: str, *, restore: bool = False) -> int:
        """Archive (or restore) an experiment; how many runs it holds."""
        doc = self._call("POST", f"/experiments/{name}/{'restore' if restore else 'archive'}")
        return int(doc["runs"])

    def collect(self, *, dry_run: bool = False, grace_s: float = 3600) -> Any:
        """`assay gc` on the server's workspace (admin token)."""
        from assay.lifecycle.entities import Collection

        doc = self._call("POST", "/gc", json={"dry_run": dry_run, "grace_s": grace_s})
        return parse(Collection, doc)

    # ---- models, services, A/B tests, sweeps ---------------------------------------------

    def models(self) -> list[Any]:
        from assay.registry.entities import Model

        return self._list(Model, "/models")

    def model(self, ref: str) -> Any:
        from assay.registry.entities import ModelVersion

        name, _, selector = ref.partition("@")
        return self._get(ModelVersion, f"/models/{name}/versions/{selector or 'latest'}")

    def model_versions(self, name: str) -> list[Any]:
        from assay.registry.entities import ModelVersion

        return self._list(ModelVersion, f"/models/{name}/versions")

    def lineage(self, ref: str) -> LineageTree:
        """Model version `ref` traced back to its run, data, pipeline and params."""
        name, _, selector = ref.partition("@")
        found: LineageTree = self._call(
            "GET", f"/models/{name}/versions/{selector or 'latest'}/lineage"
        )
        return found

    def alias(self, ref: str, alias: str) -> Any:
        from assay.registry.entities import ModelVersion

        name, _, version = ref.partition("@")
        if not version.isdigit():
            version = str(self.model(ref).version)
        doc = self._call("PUT", f"/models/{name}/aliases/{alias}", json={"version": int(version)})
        return parse(ModelVersion, doc)

    def register_run(self, run: str, name: str | None = None) -> Any:
        """Register a succeeded run's model as the next version of `name` (default: its
        pipeline); a run registered before returns the version it made then."""
        from assay.registry.entities import ModelVersion

        return parse(ModelVersion, self._call("POST", "/models", json={"run": run, "name": name}))

    def register_model_file(
        self, path: Path | str, name: str, *, trust: bool = False, description: str = ""
    ) -> Any:
        """Upload a model file trained elsewhere (.skops, XGBoost, LightGBM; a pickle only
        with `trust`, as it is loaded on the server) as the next version of `name`."""
        from assay.registry.entities import ModelVersion

        file = Path(path)
        if not file.is_file():
            raise errors.NotFoundError(f"No model file at {file}.", path=str(file))
        upload, hashes = self._upload(file)
        body = {
            "upload": upload,
            "filename": file.name,
            "hash": hashes[file.name],
            "trust": trust,
            "description": description,
            "source": str(file.resolve()),
        }
        return parse(ModelVersion, self._call("POST", f"/models/{name}/versions", json=body))

    def register_bundle(
        self, folder: Path, name: str, *, run: str | None = None, allow_pickle: bool = False
    ) -> Any:
        """Upload a model bundle written here (`assay.log_model`) as the next version of
        `name`, linked to `run`; the server checks every file's hash first."""
        from assay.registry.entities import ModelVersion

        upload, hashes = self._upload(folder)
        body = {"upload": upload, "files": hashes, "run": run, "allow_pickle": allow_pickle}
        return parse(ModelVersion, self._call("POST", f"/models/{name}/bundles", json=body))

    def download_bundle(self, ref: str, dest: Path) -> Path:
        """A model version's stored bundle, as it is in the store, into the new folder
        `dest`; every file is checked against the manifest, and the manifest against
        the version's bundle hash."""
        import tempfile

        from assay.store.objects import hash_file

        mv = self.model(ref)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".assay-bundle-", dir=dest.parent) as tmp:
            folder = self._download_tar(
                f"/models/{mv.name}/versions/{mv.version}/bundle", Path(tmp), mv.ref
            )
            if hash_file(folder / "assay.json") != mv.bundle:
                raise errors.CorruptObjectError(f"The bundle of {mv.ref} arrived damaged; retry.")
            folder.rename(dest)
        return dest

    def _download_tar(self, path: str, tmp: Path, what: str) -> Path:
        archive = tmp / "model.tar"
        try:
            with self._http.stream("GET", path) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                with archive.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise errors.UnreachableError(
                f"The download of {what} from {self.url} broke off ({exc}); try again."
            ) from None
        return _unpack_bundle(archive, tmp / "bundle", what)

    def export_model(self, ref: str, dest: Path | str) -> tuple[Any, Path]:
        """Write what `assay models export` writes into the new folder `dest`: the server's
        export, streamed down and checked against its manifest's hashes."""
        import shutil
        import tempfile

        target = Path(dest)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise errors.ConflictError(f"{target} exists and is not empty; pick a new folder.")
        mv = self.model(ref)  # one version, even if an alias moves meanwhile
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".assay-export-", dir=target.parent) as tmp:
            folder = self._download_tar(
                f"/models/{mv.name}/versions/{mv.version}/export", Path(tmp), mv.ref
            )
            if target.exists():
                target.rmdir()
            shutil.move(str(folder), str(target))
        return mv, target

    def deploy(
        self,
        name: str,
        model: str,
        *,
        port: int | None = None,
        workers: int = 1,
        host: str = "127.0.0.1",
        timeout_s: float = 30.0,
        max_body_bytes: int = 10 * 1024 * 1024,
        log_sample: float = 1.0,
    ) -> Any:
        """Start `model` as service `name` on the server's machine, bound to `host` there;
        returns once it answers. `log_sample` is the share of requests logged for
        monitoring (0: none)."""
        from assay.serving.entities import Service

        doc = self._call(
            "POST", "/services", json={"name": name, "model": model, "port": port, "host": host,
                                       "workers": workers, "timeout_s": timeout_s,
                                       "max_body_bytes": max_body_bytes, "log_sample": log_sample}
        )  # fmt: skip
        return parse(Service, doc)

    def services(self) -> list[Any]:
        from assay.serving.entities import Service

        return self._list(Service, "/services")

    def service_status(self, name: str) -> ServiceStatus:
        """The service with its uptime, its workers and its traffic (`by_version` is keyed
        by the version number as a string, as JSON has it)."""
        found: ServiceStatus = self._call("GET", f"/services/{name}/status")
        return found

    def stop_service(self, name: str, *, timeout_s: float = 60.0) -> Any:
        from assay.serving.entities import Service

        doc = self._call("POST", f"/services/{name}/stop", json={"timeout_s": timeout_s})
        return parse(Service, doc)

    def predict(self, service: str, instances: Sequence[Any]) -> dict[str, Any]:
        """KServe V1 through the server to service `service`. The answer's `request_id`
        is the one its prediction was logged under: send it back with `feedback`."""
        import uuid

        request_id = uuid.uuid4().hex
        found: dict[str, Any] = self._call(
            "POST",
            f"/services/{service}/predict",
            json={"instances": list(instances)},
            headers={"X-Request-Id": request_id},
        )
        return {**found, "request_id": request_id}

    def feedback(
        self,
        service: str,
        request_id: str,
        *,
        label: Any = None,
        reward: float | None = None,
    ) -> dict[str, Any]:
        """The true `label` (or a `reward`) of a prediction service `service` made."""
        body: dict[str, Any] = {"request_id": request_id}
        body.update({"reward": reward} if reward is not None else {"label": label})
        found: dict[str, Any] = self._call("POST", f"/services/{service}/feedback", json=body)
        return found

    # ---- monitoring ------------------------------------------------------------------------

    def monitor(
        self,
        name: str,
        *,
        last: str | int | None = None,
        start: str | None = None,
        end: str | None = None,
        reference: str | None = None,
        record: bool = True,
    ) -> MonitorReport:
        """Check service or A/B test `name` for drift against its model's training data:
        the last N requests or a duration (`last`), or from `start` to `end` (ISO 8601).
        With `record` the state is stored (and the webhook called if it changed)."""
        window = {"last": None if last is None else str(last), "start": start, "end": end}
        if record:
            doc = self._call(
                "POST", f"/monitors/{name}/checks", json={**window, "reference": reference}
            )
        else:
            clean = {k: v for k, v in {**window, "reference": reference}.items() if v}
            doc = self._call("GET", f"/monitors/{name}/report", params=clean)
        report: MonitorReport = doc
        return report

    def monitors(self) -> list[Any]:
        from assay.monitoring.entities import Monitor

        return self._list(Monitor, "/monitors")

    def get_monitor(self, name: str) -> Any:
        from assay.monitoring.entities import Monitor

        return self._get(Monitor, f"/monitors/{name}")

    def configure_monitor(self, name: str, config: str | Path) -> Any:
        """Set a monitor's config: YAML text, or a path to a file of it."""
        from assay.monitoring.entities import Monitor

        text = config.read_text(encoding="utf-8") if isinstance(config, Path) else config
        return parse(Monitor, self._call("PUT", f"/monitors/{name}/config", json={"config": text}))

    def monitor_history(self, name: str, limit: int = 200) -> list[Any]:
        from assay.monitoring.entities import MonitorCheck

        return self._get(list[MonitorCheck], f"/monitors/{name}/checks", limit=limit)  # type: ignore[no-any-return]

    def snapshot(
        self,
        name: str,
        dataset: str,
        *,
        last: str | int | None = None,
        start: str | None = None,
        end: str | None = None,
        labeled_only: bool = False,
        message: str | None = None,
    ) -> Any:
        """Commit a window of `name`'s logged traffic, labels joined, as the next version
        of `dataset`."""
        from assay.monitoring.entities import Snapshot

        doc = self._call(
            "POST", f"/monitors/{name}/snapshots",
            json={"dataset": dataset, "last": None if last is None else str(last),
                  "start": start, "end": end, "labeled_only": labeled_only, "message": message},
        )  # fmt: skip
        return parse(Snapshot, doc)

    def snapshots(self, monitor: str | None = None) -> list[Any]:
        from assay.monitoring.entities import Snapshot

        return self._get(list[Snapshot], "/snapshots", monitor=monitor)  # type: ignore[no-any-return]

    def retrain(
        self,
        model: str,
        data: str,
        *,
        alone: bool = False,
        challenge: str | None = None,
        label: str | None = None,
        wait: bool = True,
    ) -> Any:
        """Rerun `model`'s own pipeline and params on its training data plus `data` (or
        `data` alone) on the server; with `wait`, return once the new version is
        registered (and its A/B test started, with `challenge`, a strategy)."""
        from assay.monitoring.entities import Retrain

        retrain = parse(Retrain, self._call(
            "POST", "/retrains", json={"model": model, "data": data, "alone": alone,
                                       "challenge": challenge, "label": label},
        ))  # fmt: skip
        while wait and retrain.status == "running":
            time.sleep(0.5)
            retrain = self.get_retrain(retrain.run_id)
        return retrain

    def get_retrain(self, run: str) -> Any:
        from assay.monitoring.entities import Retrain

        return self._get(Retrain, f"/retrains/{run}")

    def retrains(self) -> list[Any]:
        from assay.monitoring.entities import Retrain

        return self._get(list[Retrain], "/retrains")  # type: ignore[no-any-return]

    def create_abtest(
        self,
        name: str,
        variants: Sequence[str],
        strategy: str,
        *,
        key: str | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        workers: int = 1,
        baseline: float | None = None,
        mde: float | None = None,
        auto_promote: bool = False,
        alias: str = "champion",
        timeout_s: float = 30.0,
        log_sample: float = 1.0,
    ) -> Any:
        from assay.abtests.entities import ABTest

        doc = self._call(
            "POST",
            "/abtests",
            json={"name": name, "variants": list(variants), "strategy": strategy, "key": key,
                  "port": port, "host": host, "workers": workers, "baseline": baseline,
                  "mde": mde, "auto_promote": auto_promote, "alias": alias,
                  "timeout_s": timeout_s, "log_sample": log_sample},
        )  # fmt: skip
        return parse(ABTest, doc)

    def abtests(self) -> list[Any]:
        from assay.abtests.entities import ABTest

        return self._list(ABTest, "/abtests")

    def abtest_report(self, name: str) -> ABReport:
        found: ABReport = self._call("GET", f"/abtests/{name}/report")
        return found

    def conclude(self, name: str, winner: str, *, promote: bool = True) -> Any:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/conclude",
                                        json={"winner": winner, "promote": promote}))  # fmt: skip

    def stop_abtest(self, name: str) -> Any:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/stop"))

    def sweeps(self) -> list[Any]:
        from assay.sweeps.entities import Sweep

        return self._list(Sweep, "/sweeps")

    def sweep(self, name: str) -> Any:
        from assay.sweeps.entities import Sweep

        return self._get(Sweep, f"/sweeps/{name}")

    def create_sweep(
        self,
        pipeline: str,
        *,
        data: str,
        space: Path | str | Mapping[str, Any],
        trials: int,
        objectives: Sequence[str],
        params: Mapping[str, Any] | None = None,
        space_file: str | None = None,
        direction: str | None = None,
        parallel: int = 1,
        sampler: str = "tpe",
        pruner: str = "median",
        prune_on: str | None = None,
        seed: int = 0,
        timeout_s: float | None = None,
        budget: float | None = None,
        register: str = "best",
        executor: str = "local",
        name: str | None = None,
    ) -> Any:
        """Start a sweep of a registered pipeline; the server checks it, records it and
        drives its trials. Returns the Sweep as recorded; follow it with `sweep(name)`.

        `space` is a space file (a Path), its text (a str, YAML unless `space_file`
        ends in `.json`), or the space itself (a mapping).
        """
        import json

        from assay.sweeps.entities import Sweep

        if isinstance(space, Path):
            text, file = space.read_text(encoding="utf-8"), space_file or space.name
        elif isinstance(space, str):
            text, file = space, space_file or "space.yaml"
        else:
            text, file = json.dumps(dict(space)), space_file or "space.json"
        body = {
            "pipeline": pipeline, "data": data, "params": dict(params or {}), "space": text,
            "space_file": file, "objectives": list(objectives), "direction": direction,
            "trials": trials, "parallel": parallel, "sampler": sampler, "pruner": pruner,
            "prune_on": prune_on, "seed": seed, "timeout_s": timeout_s, "budget": budget,
            "register": register, "executor": executor, "name": name,
        }  # fmt: skip
        return parse(Sweep, self._call("POST", "/sweeps", json=body))

    def resume_sweep(self, name: str) -> Any:
        """Continue an interrupted sweep on the server (finished trials are kept)."""
        from assay.sweeps.entities import Sweep

        return parse(Sweep, self._call("POST", f"/sweeps/{name}/resume"))

    def stop_sweep(self, name: str) -> Any:
        """Stop a running sweep as Ctrl-C would; returns it once its driver has stopped."""
        from assay.sweeps.entities import Sweep

        return parse(Sweep, self._call("POST", f"/sweeps/{name}/stop"))


def _unpack_bundle(archive: Path, folder: Path, what: str) -> Path:
    """An export's tar into the new `folder`: plain files only, inside it, and exactly the
    files its manifest (`assay.json`) lists, each with the hash listed there."""
    import json
    import shutil
    import tarfile
    from pathlib import PurePosixPath

    from assay.store.objects import hash_file

    damaged = errors.CorruptObjectError(f"{what} arrived damaged from the server; try again.")
    folder.mkdir()
    try:
        with tarfile.open(archive) as tar:
            for member in tar:
                rel = PurePosixPath(member.name)
                src = tar.extractfile(member) if member.isfile() else None
                if src is None or rel.is_absolute() or ".." in rel.parts:
                    raise damaged
                target = folder.joinpath(*rel.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with src, target.open("xb") as out:
                    shutil.copyfileobj(src, out, PART)
        listed: dict[str, str] = json.loads((folder / "assay.json").read_bytes())["files"]
    except (tarfile.TarError, OSError, ValueError, KeyError, TypeError) as exc:
        raise damaged from exc
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    if found != {*listed, "assay.json"} or any(
        hash_file(folder / rel) != digest for rel, digest in listed.items()
    ):
        raise damaged
    return folder


def _error(response: httpx.Response) -> errors.AssayError:
    """The server's JSON error as the exception class it names."""
    try:
        body = response.json()["error"]
        kind, message, details = body["type"], body["message"], body.get("details") or {}
    except (ValueError, KeyError, TypeError):
        kind, message, details = "AssayError", response.text[:500], {}
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.AssayError)):
        cls = _BY_STATUS.get(response.status_code, errors.AssayError)
    exc = cls(message, **(details if isinstance(details, dict) else {}))
    return exc


_BY_STATUS: dict[int, type[errors.AssayError]] = {
    400: errors.InvalidArgumentError,
    401: errors.UnauthorizedError,
    403: errors.ForbiddenError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    415: errors.UnsupportedMediaTypeError,
    422: errors.InvalidArgumentError,
}
