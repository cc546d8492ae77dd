"""`--remote` for registering, exporting and tracing models, data checks and services:
the CLI on a laptop against a real `assay server`, next to the same command run locally on
the server's workspace; and each new route's refusals (a JSON error, nothing stored).

One server for the module (SQLite): what differs from local is the transport. The CLI runs
in this process (`invoke_assay`: the console script's `main`, output captured), which
saves a fresh interpreter per command; tests/client/test_remote.py runs it as a process.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from assay import httpclient
from assay.client import Client

from .conftest import assay_server, invoke_assay

EXAMPLE = Path(__file__).resolve().parents[2] / "src" / "assay" / "examples" / "cancer"

PEOPLE = "name,age\nann,31\nbob,45\ncid,200\n"
STRICT = "columns:\n  age: {type: integer, max: 120}\n  name: {unique: true}\n"
LOOSE = "columns:\n  age: {max: 1000}\n"


@dataclass
class Site:
    url: str
    secret: str
    home: Path  # the server's workspace
    laptop: Path  # a folder with no workspace
    environ: dict[str, str]

    def remote(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {**self.environ, "ASSAY_TOKEN": self.secret}
        return invoke_assay(*map(str, args), "--remote", self.url, cwd=self.laptop, env=env)

    def local(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return invoke_assay(*map(str, args), cwd=self.home, env=self.environ)

    def api(self) -> httpx.Client:
        return httpclient.client(
            base_url=f"{self.url}/api/v1",
            headers={"Authorization": f"Bearer {self.secret}"},
            timeout=60,
        )


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, (done.args, done.stdout, done.stderr)
    return done


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error"}, body
    assert body["error"]["message"], body
    found: dict[str, Any] = body["error"]
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("remote-more")
    home, laptop = root / "server", root / "laptop"
    home.mkdir()
    laptop.mkdir()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")}
    environ.update(ASSAY_AUTHOR="tester", COLUMNS="200")
    with assay_server(home, environ) as (url, secret):
        yield Site(url, secret, home, laptop, environ)


@pytest.fixture(scope="module")
def run_id(site: Site) -> str:
    """A succeeded run of the cancer example, made through the server."""
    from sklearn.datasets import load_breast_cancer

    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    frame = frame.rename(columns=lambda c: c.replace(" ", "_"))
    project = site.laptop / "cancer"
    (project / "data").mkdir(parents=True)
    frame.to_csv(project / "data" / "cancer.csv", index=False)
    for name in ("pipeline.py", "params.json"):
        shutil.copyfile(EXAMPLE / name, project / name)
    ok(site.remote("data", "commit", "cancer", project / "data"))
    ran = ok(site.remote("run", project / "pipeline.py", "--data", "cancer@1", "--params",
                         project / "params.json", "--json"))  # fmt: skip
    run = json.loads(ran.stdout)
    assert run["status"] == "succeeded"
    return str(run["id"])


@pytest.fixture(scope="module")
def model(site: Site, run_id: str) -> str:
    """The run's model, registered: its reference."""
    with Client(site.url, site.secret) as client:
        return str(client.models.register_run(run_id).ref)


def model_versions(site: Site, name: str) -> int:
    with site.api() as api:
        answer = api.get(f"/models/{name}/versions")
    return 0 if answer.status_code == 404 else len(answer.json()["items"])


# ---- models register ---------------------------------------------------------------------


def test_register_a_run_remotely_answers_as_locally(site: Site, run_id: str) -> None:
    remote = ok(site.remote("models", "register", "--run", run_id[:8]))
    assert remote.stdout.strip() == "Registered cancer@1 (sklearn)"
    # Again, remotely and locally: the version it already made, the same document.
    again = json.loads(ok(site.remote("models", "register", "--run", run_id, "--json")).stdout)
    local = json.loads(ok(site.local("models", "register", "--run", run_id, "--json")).stdout)
    assert again == local
    assert (again["name"], again["version"], again["lineage"]["run_id"]) == ("cancer", 1, run_id)
    with Client(site.url, site.secret) as client:
        assert client.models.register_run(run_id).ref == "cancer@1"


def test_register_run_route_refuses_bad_input(site: Site, run_id: str) -> None:
    before = model_versions(site, "cancer")
    with site.api() as api:
        missing = error_of(api.post("/models", json={"run": "0000dead"}), 404)
        assert missing["type"] == "NotFoundError"
        error_of(api.post("/models", json={"name": "cancer"}), 422)
        error_of(api.post("/models", json={"run": ["x"]}), 422)
    assert model_versions(site, "cancer") == before
    gone = site.remote("models", "register", "--run", "0000dead")
    assert gone.returncode == 1
    assert gone.stderr.startswith("error: ")
    assert len(gone.stderr.strip().splitlines()) == 1


def test_register_a_file_remotely_answers_as_locally(site: Site) -> None:
    import skops.io as sio
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True, as_frame=True)
    fitted = DecisionTreeClassifier(random_state=0).fit(X, y)
    sio.dump(fitted, site.laptop / "iris.skops")
    with open(site.laptop / "iris.pkl", "wb") as f:  # another model: a version of its own
        pickle.dump(DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y), f)

    remote = ok(site.remote("models", "register", "iris.skops", "--name", "iris"))
    assert remote.stdout.strip() == "Registered iris@1 (sklearn)"
    # The same model registered locally is the version that holds it already.
    local = ok(site.local("models", "register", site.laptop / "iris.skops", "--name", "iris"))
    assert local.stdout.strip() == "Registered iris@1 (sklearn)"
    # Under another name: the same version but for its name, number and bundle.
    ok(site.local("models", "register", site.laptop / "iris.skops", "--name", "iris-local"))
    first = json.loads(ok(site.remote("models", "show", "iris@1", "--json")).stdout)
    second = json.loads(ok(site.local("models", "show", "iris-local@1", "--json")).stdout)
    different = {"name", "ref", "version", "bundle", "created_at", "aliases", "author"}
    assert {k: v for k, v in first.items() if k not in different} == {
        k: v for k, v in second.items() if k not in different
    }
    assert first["author"] == "admin"  # the token the laptop used, not the server's user
    assert first["lineage"]["source"].startswith(str((site.laptop / "iris.skops").resolve()))
    assert first["description"] == "Registered from iris.skops."

    # A pickle runs code when loaded: refused without --trust, as locally.
    refused = site.remote("models", "register", "iris.pkl", "--name", "iris")
    assert refused.returncode == 1
    assert "--trust" in refused.stderr
    assert refused.stderr == site.local(
        "models", "register", site.laptop / "iris.pkl", "--name", "iris"
    ).stderr.replace(str(site.laptop / "iris.pkl"), "iris.pkl")
    assert model_versions(site, "iris") == 1
    trusted = ok(site.remote("models", "register", "iris.pkl", "--name", "iris", "--trust",
                             "-m", "a pickle", "--json"))  # fmt: skip
    doc = json.loads(trusted.stdout)
    assert (doc["version"], doc["flavor"], doc["description"]) == (2, "sklearn", "a pickle")


def test_register_file_route_refuses_bad_input(site: Site, tmp_path: Path) -> None:
    (tmp_path / "junk.skops").write_bytes(b"not a model")
    with site.api() as api:
        upload = api.post("/uploads").json()["id"]
        sent = api.put(f"/uploads/{upload}", params={"path": "junk.skops"}, content=b"abc")
        assert sent.status_code == 200
        body = {"upload": upload, "filename": "junk.skops", "hash": "0" * 64}
        damaged = error_of(api.post("/models/junk/versions", json=body), 400)
        assert "damaged" in damaged["message"]
        assert api.get(f"/uploads/{upload}").status_code == 200  # kept: send it again
        bad_name = error_of(api.post("/models/no%20spaces/versions", json=body), 422)
        assert bad_name["type"] == "InvalidArgumentError"
        error_of(api.post("/models/junk/versions", json={**body, "upload": "f" * 32}), 404)
        error_of(api.post("/models/junk/versions", json={"upload": upload}), 422)
    assert model_versions(site, "junk") == 0
    # A file that is no model: the server's reason, in one line, and nothing stored.
    unreadable = site.remote("models", "register", tmp_path / "junk.skops", "--name", "junk")
    assert unreadable.returncode == 1
    assert "junk.skops" in unreadable.stderr
    assert model_versions(site, "junk") == 0


# ---- models lineage ----------------------------------------------------------------------


def test_lineage_remotely_answers_as_locally(site: Site, model: str) -> None:
    remote = ok(site.remote("models", "lineage", model, "--json")).stdout
    assert json.loads(remote) == json.loads(
        ok(site.local("models", "lineage", model, "--json")).stdout
    )
    run = json.loads(remote)["run"]
    assert run["data"]["ref"] == "cancer@1"
    assert run["pipeline"]["steps"]
    assert run["params"]["values"]
    tree = ok(site.remote("models", "lineage", model)).stdout
    assert tree == ok(site.local("models", "lineage", model)).stdout
    assert "pipeline" in tree
    assert "params" in tree


# ---- models export -----------------------------------------------------------------------


def test_export_remotely_writes_what_local_writes(site: Site, model: str) -> None:
    from assay.registry.bundle import load_bundle

    # By alias, in the same words (the files it wrote, listed), and the same files.
    remote = ok(site.remote("models", "export", "cancer@latest", "out")).stdout
    assert remote == ok(site.local("models", "export", "cancer@latest", "out")).stdout
    assert remote.splitlines()[0] == f"Exported {model} to out"
    files = [line.strip() for line in remote.splitlines()[1:]]
    assert {"MLmodel", "assay.json", "requirements.txt", "mlflow/model.pkl"} <= set(files)
    there, here = site.home / "out", site.laptop / "out"
    assert sorted(p.relative_to(here).as_posix() for p in here.rglob("*") if p.is_file()) == files
    for name in ("requirements.txt", "input_example.json"):  # MLmodel has a time and a uuid
        assert (here / name).read_bytes() == (there / name).read_bytes(), name
    loaded = load_bundle(here)  # every file checked against the manifest's hashes
    assert (loaded.name, loaded.version) == ("cancer", 1)
    # A second export into the same folder is refused alike.
    again, again_local = (
        site.remote("models", "export", model, "out"),
        site.local("models", "export", model, "out"),
    )
    assert again.returncode == again_local.returncode == 1
    assert again.stderr == again_local.stderr
    assert "not empty" in again.stderr


def test_export_route_refuses_bad_input(site: Site, model: str) -> None:
    with site.api() as api:
        error_of(api.get("/models/cancer/versions/99/export"), 404)
        error_of(api.get("/models/nobody/versions/1/export"), 404)
        error_of(api.get("/models/cancer/versions/no alias!/export"), 422)
    missing = site.remote("models", "export", "cancer@99", "nothing")
    assert missing.returncode == 1
    assert "no version 99" in missing.stderr
    assert not (site.laptop / "nothing").exists()
    assert not list(site.laptop.glob(".assay-export-*"))


@pytest.mark.parametrize("damage", ["outside", "altered", "extra", "link"])
def test_an_export_that_arrived_damaged_is_refused(tmp_path: Path, damage: str) -> None:
    import io
    import tarfile

    from assay.client.http import _unpack_bundle
    from assay.errors import CorruptObjectError
    from assay.store.objects import hash_bytes

    files = {"model/m.bin": b"weights", "assay.json": b""}
    files["assay.json"] = json.dumps({"files": {"model/m.bin": hash_bytes(b"weights")}}).encode()
    if damage == "outside":
        files["../m.bin"] = files.pop("model/m.bin")
    elif damage == "altered":
        files["model/m.bin"] = b"weightz"
    elif damage == "extra":
        files["model/other.bin"] = b"?"
    archive = tmp_path / "model.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if damage == "link":
            link = tarfile.TarInfo("model/link")
            link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(link)
    with pytest.raises(CorruptObjectError, match="arrived damaged"):
        _unpack_bundle(archive, tmp_path / "out", "m@1")
    assert not (tmp_path / "m.bin").exists()


# ---- data checks -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def people(site: Site) -> str:
    """The same table and checks files on the laptop and the server; `survey@1` holds it."""
    for folder in (site.laptop, site.home):
        (folder / "people").mkdir()
        (folder / "people" / "people.csv").write_text(PEOPLE)
        (folder / "strict.yaml").write_text(STRICT)
        (folder / "loose.yaml").write_text(LOOSE)
    ok(site.remote("data", "commit", "survey", "people"))
    return "survey@1"


def test_commit_with_checks_remotely_behaves_as_locally(site: Site, people: str) -> None:
    args = ("data", "commit", "people", "people", "--checks", "strict.yaml")
    remote, local = site.remote(*args), site.local(*args)
    # Refused alike: the same report, the same one-line error, and no version anywhere.
    assert remote.returncode == local.returncode == 1
    assert (remote.stdout, remote.stderr) == (local.stdout, local.stderr)
    assert "age" in remote.stdout
    assert "nothing was committed" in remote.stderr
    assert "people" not in ok(site.remote("data", "list")).stdout
    as_json = site.remote(*args, "--json")
    assert as_json.returncode == 1
    assert json.loads(as_json.stdout) == json.loads(site.local(*args, "--json").stdout)
    assert json.loads(as_json.stdout)["committed"] is False

    # --allow-invalid: committed, marked failed, its report kept.
    made = json.loads(ok(site.remote(*args, "--allow-invalid", "--json")).stdout)
    assert made["created"]
    assert made["version"]["validation"] == "failed"
    assert not made["validation"]["passed"]
    shown = json.loads(ok(site.local("data", "show", "people@1", "--json")).stdout)
    assert shown["version"]["validation"] == "failed"
    # A version that passes, from the SDK.
    fixed = site.laptop / "fixed"
    fixed.mkdir()
    (fixed / "people.csv").write_text(PEOPLE.replace("200", "20"))
    with Client(site.url, site.secret) as client:
        done = client.data.commit("people", fixed, checks=site.laptop / "strict.yaml")
        assert done.version.ref == "people@2"
        assert done.validation.passed


def test_validate_remotely_answers_as_locally(site: Site, people: str) -> None:
    for checks, code in (("loose.yaml", 0), ("strict.yaml", 1)):
        args = ("data", "validate", people, "--checks", checks)
        remote, local = site.remote(*args), site.local(*args)
        assert remote.returncode == local.returncode == code, remote.stderr
        assert remote.stdout == local.stdout
    as_json = ("data", "validate", people, "--checks", "strict.yaml", "--json")
    assert json.loads(site.remote(*as_json).stdout) == json.loads(site.local(*as_json).stdout)
    shown = json.loads(ok(site.remote("data", "show", people, "--json")).stdout)
    assert shown["version"]["validation"] == "failed"  # the last validation's result, stored
    missing = site.remote("data", "validate", people, "--checks", "nope.yaml")
    assert missing.returncode == 1
    assert "nope.yaml" in missing.stderr


def test_checks_routes_refuse_bad_input(site: Site, people: str) -> None:
    from assay.store.objects import hash_bytes

    with site.api() as api:
        upload = api.post("/uploads").json()["id"]
        api.put(f"/uploads/{upload}", params={"path": "p.csv"}, content=PEOPLE.encode())
        body = {"dataset": "checked", "files": {"p.csv": hash_bytes(PEOPLE.encode())}}
        bad = error_of(
            api.post(f"/uploads/{upload}/commit", json={**body, "checks": "max: [1"}), 400
        )
        assert "not valid YAML" in bad["message"]
        assert api.get(f"/uploads/{upload}").status_code == 200  # kept: fix the checks, retry
        failed = error_of(
            api.post(f"/uploads/{upload}/commit", json={**body, "checks": STRICT}), 422
        )
        assert failed["type"] == "ValidationFailedError"
        assert failed["details"]["report"]["passed"] is False
        assert api.get("/datasets/checked/versions").status_code == 404
        before = api.get(f"/versions/{people}").json()["version"]
        unknown_key = error_of(
            api.post(f"/validations/{people}", json={"checks": "colums: {}", "source": "c.yaml"}),
            400,
        )
        assert "c.yaml" in unknown_key["message"]
        assert "columns" in unknown_key["message"]
        error_of(api.post(f"/validations/{people}", json={}), 422)
        assert api.get(f"/versions/{people}").json()["version"] == before
        error_of(api.post("/validations/nobody@1", json={"checks": LOOSE}), 404)


# ---- data diff, profile and list ------------------------------------------------------------


def test_diff_profile_and_list_remotely_answer_as_locally(site: Site) -> None:
    stock = site.laptop / "stock"
    stock.mkdir()
    (stock / "stock.csv").write_text("sku;price\na;1,5\nb;2\nc;3\n")
    (stock / "junk.csv").write_bytes(b"\x00\x01\x02")
    ok(site.remote("data", "commit", "stock", stock))
    (stock / "stock.csv").write_text("sku;price\na;1,5\nb;5\nd;4\n")
    ok(site.remote("data", "commit", "stock", stock))
    ok(site.remote("data", "commit", "params/stock", stock / "junk.csv"))
    for args in (
        ("data", "diff", "stock@1", "stock@2"),
        ("data", "diff", "stock@1", "stock@2", "--key", "sku", "--json"),
        ("data", "profile", "stock@2"),
        ("data", "list", "--json"),
        ("data", "list", "--all", "--json"),
    ):
        remote, local = ok(site.remote(*args)), ok(site.local(*args))
        assert remote.stdout == local.stdout, args
    keyed = json.loads(site.remote("data", "diff", "stock@1", "stock@2", "--json").stdout)
    assert keyed["tables"]["stock.csv"]["rows_changed"] == 1
    listed = json.loads(site.remote("data", "list", "--json").stdout)
    assert "params/stock" not in [d["name"] for d in listed]
    bad = ("data", "diff", "stock@1", "stock@2", "--key", "nope")
    remote, local = site.remote(*bad), site.local(*bad)
    assert remote.returncode == local.returncode == 1
    assert remote.stderr == local.stderr
    assert "'nope'" in remote.stderr


# ---- services deploy --host ----------------------------------------------------------------


def test_deploy_binds_the_host_given(site: Site, model: str) -> None:
    deployed = site.remote("services", "deploy", "api", "--model", model, "--host", "0.0.0.0",
                           "--timeout", "12", "--json")  # fmt: skip
    try:
        assert deployed.returncode == 0, deployed.stderr
        svc = json.loads(deployed.stdout)
        assert (svc["host"], svc["state"]) == ("0.0.0.0", "running")
        assert svc["settings"]["timeout_s"] == 12
        assert "api listens on 0.0.0.0" in deployed.stderr  # the same warning as locally
        listed = json.loads(ok(site.local("services", "list", "--json")).stdout)
        assert [(s["name"], s["host"]) for s in listed] == [("api", "0.0.0.0")]
        # Its status, the same document either way but for the seconds that passed.
        status = json.loads(ok(site.remote("services", "status", "api", "--json")).stdout)
        local = json.loads(ok(site.local("services", "status", "api", "--json")).stdout)
        assert 0 <= status.pop("uptime_s") <= local.pop("uptime_s")
        assert status == local
        assert status["traffic"]["requests"] == 0
        assert status["workers_now"][0]["ready"]
    finally:
        site.remote("services", "stop", "api")


def test_deploy_route_refuses_bad_hosts(site: Site, model: str) -> None:
    with site.api() as api:
        before = api.get("/services").json()["items"]
        for host in ("not a host", "", "-x"):
            error_of(api.post("/services", json={"name": "h", "model": model, "host": host}), 422)
        # An address of no interface here (TEST-NET-1): refused before anything is stored.
        elsewhere = {"name": "h", "model": model, "host": "192.0.2.1"}
        assert "--host" in error_of(api.post("/services", json=elsewhere), 400)["message"]
        assert api.get("/services").json()["items"] == before
    refused = site.remote("services", "deploy", "h", "--model", model, "--host", "192.0.2.1")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("error: Cannot listen on")


# ---- options that once stopped at the transport ---------------------------------------------


def test_abtest_options_and_no_promote_reach_the_server(site: Site, model: str) -> None:
    from assay.abtests.service import plan

    made = site.remote("abtests", "create", "opts", "--variant", f"A={model}", "--variant",
                       f"B={model}", "--host", "0.0.0.0", "--workers", "2", "--baseline", "0.7",
                       "--mde", "0.2", "--json")  # fmt: skip
    try:
        assert made.returncode == 0, made.stderr
        test = json.loads(made.stdout)
        assert (test["host"], test["workers"]) == ("0.0.0.0", 2)
        assert test["plan"] == plan(0.7, 0.2)
        listed = json.loads(ok(site.local("abtests", "list", "--json")).stdout)
        assert [(t["name"], t["workers"], t["plan"]) for t in listed] == [
            ("opts", 2, plan(0.7, 0.2))
        ]
        done = ok(site.remote("abtests", "conclude", "opts", "--winner", "B", "--no-promote"))
        assert "champion" not in done.stdout
        name = model.partition("@")[0]
        with site.api() as api:
            assert api.get(f"/models/{name}/versions/champion").status_code == 404
            assert api.get("/abtests/opts").json()["status"] == "concluded"
    finally:
        site.remote("abtests", "stop", "opts")


def test_a_plan_needs_both_numbers_over_the_api_too(site: Site, model: str) -> None:
    body = {"name": "half", "variants": [f"A={model}", f"B={model}"], "strategy": "weighted",
            "baseline": 0.7}  # fmt: skip
    with site.api() as api:
        assert "--mde" in error_of(api.post("/abtests", json=body), 400)["message"]
        error_of(api.post("/abtests", json={**body, "mde": 2}), 422)
        assert "half" not in [t["name"] for t in api.get("/abtests").json()["items"]]


def test_stop_timeout_reaches_the_server(site: Site, model: str) -> None:
    ok(site.remote("services", "deploy", "brief", "--model", model))
    try:
        with site.api() as api:
            error_of(api.post("/services/brief/stop", json={"timeout_s": 0}), 422)
        refused = site.remote("services", "stop", "brief", "--timeout", "0")
        assert refused.returncode == 1
        assert "timeout_s" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
        stopped = json.loads(ok(site.remote("services", "stop", "brief", "--timeout", "5",
                                            "--json")).stdout)  # fmt: skip
        assert stopped["state"] == "stopped"
    finally:
        site.remote("services", "stop", "brief")
