"""`client.runs`: runs over HTTP; the `RunsAPI` contract, plus running a pipeline on the
server and filling in a run this process tracks (what `assay.start_run` sends)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assay.client.http import Part, parse
from assay.errors import InvalidArgumentError, NotFoundError
from assay.runs.api import LEADERBOARD_LIMIT, SEARCH_LIMIT, Series

if TYPE_CHECKING:
    from assay.client.http import Http
    from assay.runs.code import CodeCapture, CodeVersion
    from assay.runs.entities import Candidate, EndStatus, Run

POLL_S = 0.5


class RunsClient(Part):
    """The server's runs: what `RunService` offers, the same verbs and entities."""

    def __init__(self, http: Http) -> None:
        super().__init__(http)
        self._code: dict[str, dict[str, bytes]] = {}  # files of the code versions read

    # ---- reading (the contract) --------------------------------------------------------

    def get(self, ref: str) -> Run:
        from assay.runs.entities import Run

        return self._get(Run, f"/runs/{ref}")

    def search(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = SEARCH_LIMIT,
        offset: int = 0,
        archived: bool = False,
    ) -> list[Run]:
        """Runs matching a filter (the CLI's expression language), following pages; the
        first `offset` of them skipped."""
        found = self.iter_search(experiment=experiment, filter=filter, sort=sort,
                                 limit=None if limit is None else limit + offset,
                                 archived=archived)  # fmt: skip
        return list(found)[offset:]

    def iter_search(
        self,
        *,
        experiment: str | None = None,
        filter: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        page_size: int = 500,
        archived: bool = False,
    ) -> Iterator[Run]:
        """As `search`, one page at a time."""
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

    def children(self, ref: str) -> list[Run]:
        from assay.runs.entities import Run

        return list(self._get(list[Run], f"/runs/{ref}/children"))

    def compare(self, refs: Sequence[str]) -> list[Run]:
        if len(refs) < 2:
            raise InvalidArgumentError("Compare needs at least two runs.")
        return [self.get(r) for r in refs]

    def leaderboard(
        self,
        experiment: str,
        metric: str,
        *,
        minimize: bool | None = None,
        limit: int = LEADERBOARD_LIMIT,
    ) -> list[Run]:
        from assay.runs.service import leaderboard_query

        where, order = leaderboard_query(metric, minimize)
        return self.search(experiment=experiment, filter=where, sort=order, limit=limit)

    def experiments(self) -> list[tuple[str, int]]:
        found = self._call("GET", "/experiments", params={"limit": 1000})["items"]
        return [(e["name"], e["runs"]) for e in found]

    def logs(self, ref: str) -> str:
        return str(self._call("GET", f"/runs/{ref}/logs") or "")

    def metrics(self, ref: str, key: str | None = None) -> list[dict[str, Any]]:
        """A run's metric points: [{key, value, step, ts}], oldest first."""
        found: list[dict[str, Any]] = self._call(
            "GET", f"/runs/{ref}/metrics", params={"key": key} if key else None
        )
        return found

    def series(self, ref: str, key: str | None = None) -> Series:
        return [(p["key"], p["value"], p["step"], p["ts"]) for p in self.metrics(ref, key)]

    def artifacts(self, ref: str) -> list[tuple[str, str, int]]:
        found = self._call("GET", f"/runs/{ref}/artifacts")
        return [(a["path"], a["hash"], a["size"]) for a in found]

    def code(self, ref: str) -> tuple[CodeVersion, dict[str, bytes]]:
        """The code version a run executed and its files: (CodeVersion, {name: bytes})."""
        from assay.runs.code import CodeVersion

        doc = self._call("GET", f"/runs/{ref}/code")
        files = {k: str(v).encode() for k, v in doc["files"].items()}
        version = parse(CodeVersion, doc["version"])
        self._code[version.hash] = files
        return version, files

    def code_of(self, ref: str) -> CodeVersion:
        return self.code(ref)[0]

    def code_files(self, version: CodeVersion) -> dict[str, bytes]:
        """The files of a code version this client read (`code_of` or `code`)."""
        if version.hash not in self._code:
            raise NotFoundError(
                f"Code version {version.short} was not read through this client; "
                "read it with `code_of(RUN)` first.",
                code=version.hash,
            )
        return self._code[version.hash]

    def archive(self, refs: Sequence[str], *, restore: bool = False) -> list[str]:
        """Archive runs (out of listings, kept whole), or restore them; their full ids."""
        doc = self._call("POST", f"/runs/{'restore' if restore else 'archive'}",
                         json={"runs": list(refs)})  # fmt: skip
        return list(doc["runs"])

    def archive_experiment(self, name: str, *, restore: bool = False) -> int:
        """Archive (or restore) an experiment; how many runs it holds."""
        doc = self._call("POST", f"/experiments/{name}/{'restore' if restore else 'archive'}")
        return int(doc["runs"])

    # ---- running on the server ---------------------------------------------------------

    def create(
        self,
        pipeline: str,
        *,
        data: str,
        params: Mapping[str, Any] | None = None,
        experiment: str | None = None,
        name: str | None = None,
        force: bool = False,
        wait: bool = True,
        poll_s: float = POLL_S,
        on_wait: Callable[[Run], None] | None = None,
    ) -> Run:
        """Run a registered pipeline on the server; with `wait`, return the finished run
        (`on_wait` hears of each status it passes through)."""
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
        return self._wait(run, poll_s, on_wait) if wait else run

    def rerun(self, ref: str, *, wait: bool = True, poll_s: float = POLL_S) -> Run:
        """Run again on the server with exactly the inputs of run `ref`, every step
        executed; with `wait`, return the finished run."""
        from assay.runs.entities import Run

        run = parse(Run, self._call("POST", f"/runs/{ref}/rerun"))
        return self._wait(run, poll_s, None) if wait else run

    def _wait(self, run: Run, poll_s: float, on_wait: Callable[[Run], None] | None) -> Run:
        said = None
        while run.status in ("queued", "running"):
            if on_wait is not None and run.status != said:
                on_wait(run)
                said = run.status
            time.sleep(poll_s)
            run = self.get(run.id)
        return run

    # ---- a run this process fills in ---------------------------------------------------

    def begin(
        self,
        experiment: str,
        *,
        params: Mapping[str, Any] | None = None,
        data: str | None = None,
        name: str | None = None,
        parent: str | None = None,
    ) -> Run:
        """Open a run that this process fills in (`log_metrics`, then `finish`)."""
        from assay.runs.entities import Run

        doc = self._call(
            "POST",
            f"/experiments/{experiment}/runs",
            json={"params": dict(params or {}), "data": data, "name": name, "parent": parent},
        )
        return parse(Run, doc)

    def log_metrics(
        self, ref: str, points: Sequence[tuple[str, float, int | None]] | Mapping[str, float]
    ) -> None:
        """Log metric points in one batch: a {key: value} mapping, or (key, value, step) rows."""
        rows = [(k, v, None) for k, v in points.items()] if isinstance(points, Mapping) else points
        now = time.time()
        self.log_points(ref, [(k, v, s, now) for k, v, s in rows])

    def log_points(
        self, ref: str, points: Sequence[tuple[str, float | None, int | None, float | None]]
    ) -> None:
        """Log metric points, each with its own time: (key, value, step, unix time)."""
        self._call(
            "POST",
            f"/runs/{ref}/metrics",
            json={"metrics": [{"key": k, "value": v, "step": s, "ts": t} for k, v, s, t in points]},
        )

    def log_params(self, ref: str, params: Mapping[str, Any]) -> None:
        """Add params to a running run (names it already has keep their values)."""
        self._call("POST", f"/runs/{ref}/params", json={"params": dict(params)})

    def log_artifact(self, ref: str, path: Path | str, name: str | None = None) -> None:
        """Store a file, or every file under a folder, with a running run."""
        src = Path(path)
        upload, hashes = self.http.upload(src)
        self._call(
            "POST",
            f"/runs/{ref}/artifacts",
            json={"upload": upload, "files": hashes, "name": name or src.name,
                  "folder": src.is_dir()},
        )  # fmt: skip

    def record_code(self, ref: str, capture: CodeCapture) -> None:
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
            f"/runs/{ref}/code",
            json={"kind": capture.kind, "entry": capture.entry, "files": files, "git": git},
        )

    def link_data(self, ref: str, data: str) -> Run:
        """Name a data version the run used."""
        from assay.runs.entities import Run

        return parse(Run, self._call("POST", f"/runs/{ref}/data", json={"ref": data}))

    def annotate(self, ref: str, extra: Mapping[str, Any]) -> None:
        """Merge values into a run's `extra`."""
        self._call("PATCH", f"/runs/{ref}/extra", json={"extra": dict(extra)})

    def add_children(self, parent: str, children: Sequence[Candidate]) -> list[str]:
        """Record a search's candidates as finished runs under `parent`; their ids."""
        body = [{"params": c.params, "metrics": c.metrics, "name": c.name, "status": c.status}
                for c in children]  # fmt: skip
        found: list[str] = self._call("POST", f"/runs/{parent}/children", json={"children": body})[
            "ids"
        ]
        return found

    def finish(
        self,
        ref: str,
        status: EndStatus = "succeeded",
        error: str | None = None,
        *,
        resources: Mapping[str, Any] | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> Run:
        """Close a run; `resources` and `environment` are what this machine measured."""
        from assay.runs.entities import Run

        body = {"status": status, "error": error, "resources": dict(resources or {}),
                "environment": dict(environment or {})}  # fmt: skip
        return parse(Run, self._call("POST", f"/runs/{ref}/end", json=body))
