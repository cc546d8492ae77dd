"""`Client`: one httpx connection pool, one method per service verb."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import httpx

from assay import errors

T = TypeVar("T")

PART = 8 * 1024 * 1024  # upload parts: a failed part is resent, not the whole file


@cache
def _adapter(kind: Any) -> Any:
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def parse(kind: Any, data: Any) -> Any:
    """JSON from the server back into the entity class it was made from."""
    return _adapter(kind).validate_python(data)


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
            raise errors.AssayError(
                f"Cannot reach the Assay server at {self.url}: {exc}."
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

    def _list(self, kind: Any, path: str, page_size: int = 1000) -> list[Any]:
        """Every item of a listing route, following its pages."""
        items: list[Any] = []
        token: str | None = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if token:
                params["page_token"] = token
            doc = self._call("GET", path, params=params)
            items.extend(parse(list[kind], doc["items"]))
            token = doc.get("next_page_token")
            if not token:
                return items

    # ---- data ----------------------------------------------------------------------------

    def datasets(self) -> list[Any]:
        from assay.data.entities import Dataset

        return self._list(Dataset, "/datasets")

    def log(self, name: str) -> list[Any]:
        from assay.data.entities import DataVersion

        return self._list(DataVersion, f"/datasets/{name}/versions")

    def version(self, ref: str) -> Any:
        """A data version and its files: (DataVersion, [FileEntry])."""
        from assay.data.entities import DataVersion, FileEntry

        doc = self._call("GET", f"/versions/{ref}")
        return parse(DataVersion, doc["version"]), parse(list[FileEntry], doc["files"])

    def commit(self, name: str, path: Path | str, message: str = "") -> Any:
        """Upload a file or folder and commit it as the dataset's next version.

        Files go up in parts of 8 MB; each file's BLAKE3 hash goes with the commit, and
        the server refuses the commit if what arrived differs. Returns a CommitResult
        (`.version`, and `.created` False when the content was already the latest).
        """
        from assay.data.entities import CommitResult
        from assay.store.objects import hash_file

        root = Path(path)
        if not root.exists():
            raise errors.NotFoundError(f"{root} does not exist.")
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        upload = self._call("POST", "/uploads")["id"]
        hashes: dict[str, str] = {}
        for file in files:
            rel = file.name if root.is_file() else file.relative_to(root).as_posix()
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
        doc = self._call(
            "POST",
            f"/uploads/{upload}/commit",
            json={"dataset": name, "message": message, "files": hashes},
        )
        return parse(CommitResult, doc)

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
            and (p.suffix == ".py" or p.name.startswith("requirements"))
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
    ) -> list[Any]:
        """Runs matching a filter (the CLI's expression language), following pages."""
        return list(self.iter_runs(experiment=experiment, filter=filter, sort=sort, limit=limit,
                                   page_size=page_size))  # fmt: skip

    def iter_runs(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        page_size: int = 500,
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
    ) -> Any:
        """Open a run that this process fills in (`log_metrics`, then `end_run`)."""
        from assay.runs.entities import Run

        doc = self._call(
            "POST",
            f"/experiments/{experiment}/runs",
            json={"params": dict(params or {}), "data": data, "name": name},
        )
        return parse(Run, doc)

    def log_metrics(
        self, run: str, points: Sequence[tuple[str, float, int | None]] | Mapping[str, float]
    ) -> None:
        """Log metric points in one batch: a {key: value} mapping, or (key, value, step) rows."""
        rows = [(k, v, None) for k, v in points.items()] if isinstance(points, Mapping) else points
        now = time.time()
        self._call(
            "POST",
            f"/runs/{run}/metrics",
            json={"metrics": [{"key": k, "value": v, "step": s, "ts": now} for k, v, s in rows]},
        )

    def end_run(self, run: str, status: str = "succeeded", error: str | None = None) -> Any:
        from assay.runs.entities import Run

        return parse(Run, self._call("POST", f"/runs/{run}/end",
                                     json={"status": status, "error": error}))  # fmt: skip

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

    def alias(self, ref: str, alias: str) -> Any:
        from assay.registry.entities import ModelVersion

        name, _, version = ref.partition("@")
        if not version.isdigit():
            version = str(self.model(ref).version)
        doc = self._call("PUT", f"/models/{name}/aliases/{alias}", json={"version": int(version)})
        return parse(ModelVersion, doc)

    def deploy(self, name: str, model: str, *, port: int | None = None, workers: int = 1) -> Any:
        from assay.serving.entities import Service

        doc = self._call(
            "POST", "/services", json={"name": name, "model": model, "port": port,
                                       "workers": workers}
        )  # fmt: skip
        return parse(Service, doc)

    def services(self) -> list[Any]:
        from assay.serving.entities import Service

        return self._list(Service, "/services")

    def service_status(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/services/{name}/status")
        return found

    def stop_service(self, name: str) -> Any:
        from assay.serving.entities import Service

        return parse(Service, self._call("POST", f"/services/{name}/stop"))

    def predict(self, service: str, instances: Sequence[Any]) -> dict[str, Any]:
        """KServe V1 through the server to service `service`."""
        found: dict[str, Any] = self._call(
            "POST", f"/services/{service}/predict", json={"instances": list(instances)}
        )
        return found

    def create_abtest(
        self,
        name: str,
        variants: Sequence[str],
        strategy: str,
        *,
        key: str | None = None,
        port: int | None = None,
        auto_promote: bool = False,
        alias: str = "champion",
    ) -> Any:
        from assay.abtests.entities import ABTest

        doc = self._call(
            "POST",
            "/abtests",
            json={"name": name, "variants": list(variants), "strategy": strategy, "key": key,
                  "port": port, "auto_promote": auto_promote, "alias": alias},
        )  # fmt: skip
        return parse(ABTest, doc)

    def abtests(self) -> list[Any]:
        from assay.abtests.entities import ABTest

        return self._list(ABTest, "/abtests")

    def abtest_report(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self._call("GET", f"/abtests/{name}/report")
        return found

    def conclude(self, name: str, winner: str) -> Any:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/conclude",
                                        json={"winner": winner}))  # fmt: skip

    def stop_abtest(self, name: str) -> Any:
        from assay.abtests.entities import ABTest

        return parse(ABTest, self._call("POST", f"/abtests/{name}/stop"))

    def sweeps(self) -> list[Any]:
        from assay.sweeps.entities import Sweep

        return self._list(Sweep, "/sweeps")

    def sweep(self, name: str) -> Any:
        from assay.sweeps.entities import Sweep

        return self._get(Sweep, f"/sweeps/{name}")


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
