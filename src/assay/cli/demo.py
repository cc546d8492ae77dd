"""`assay demo`: the whole workflow on bundled data, as a new user would type it."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from assay.cli.output import console
from assay.errors import AssayError


def _assay() -> list[str]:
    script = Path(sys.executable).with_name("assay")
    return [str(script)] if script.exists() else [sys.executable, "-m", "assay"]


def _run(args: list[str], cwd: Path, check: bool = True) -> None:
    console.print(f"\n[bold cyan]$ assay {shlex.join(args)}[/bold cyan]")
    # The demo makes a workspace of its own, here: never a server's (ASSAY_REMOTE).
    env = {k: v for k, v in os.environ.items() if k not in ("ASSAY_REMOTE", "ASSAY_TOKEN")}
    env["COLUMNS"] = os.environ.get("COLUMNS", "120")
    proc = subprocess.run([*_assay(), *args], cwd=cwd, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssayError(f"The demo step `assay {shlex.join(args)}` failed; see above.")


def _write_data(folder: Path) -> tuple[Path, Path]:
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError:
        raise AssayError(
            "The demo uses scikit-learn's bundled data sets: `pip install assay[examples]`."
        ) from None
    frame = load_breast_cancer(as_frame=True).frame
    frame["diagnosis"] = frame.pop("target").map({0: "malignant", 1: "benign"})
    cols = [
        "mean radius",
        "mean texture",
        "mean perimeter",
        "mean area",
        "mean smoothness",
        "worst radius",
        "worst concavity",
        "diagnosis",
    ]
    v1 = frame[cols].rename(columns=lambda c: c.replace(" ", "_"))
    v1_path = folder / "v1" / "cancer.csv"
    v1_path.parent.mkdir(parents=True, exist_ok=True)
    v1.to_csv(v1_path, index=False)
    # Version 2: a cleaning pass drops 19 outliers, a feature is added, and a
    # few measurements went missing in transit.
    v2 = v1[v1["mean_area"] < 1500].copy()
    v2["radius_ratio"] = (v2["worst_radius"] / v2["mean_radius"]).round(4)
    v2.loc[v2.index[::50], "mean_texture"] = None
    v2_path = folder / "v2" / "cancer.csv"
    v2_path.parent.mkdir(parents=True, exist_ok=True)
    v2.to_csv(v2_path, index=False)
    return v1_path, v2_path


CHECKS = """\
row_count: {min: 100}
columns:
  diagnosis: {type: string, not_null: true, allowed: [benign, malignant]}
  mean_radius: {type: float, min: 0}
  mean_texture: {type: float, max_missing_share: 0.05}
"""


SPACE = """\
# Algorithm selection is a choice whose options carry their own parameters.
model:
  choice:
    logreg: {C: {log-float: [0.01, 100]}}
    random_forest:
      n_estimators: {int: [20, 200], step: 20}
      max_depth: {int: [2, 10]}
"""


def demo(
    folder: Annotated[Path, typer.Argument(help="Scratch folder for the demo workspace.")] = Path(
        "assay-demo"
    ),
) -> None:
    """Run Assay's workflow end to end on bundled data in FOLDER (replaced if it exists)."""
    folder = folder.resolve()
    if folder.exists():
        if not (folder / ".assay").is_dir():
            raise AssayError(f"{folder} exists and is not an Assay demo folder; pick another.")
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    console.print(f"[bold]Assay demo[/bold] in {folder}")
    _run(["init"], folder)
    v1, v2 = _write_data(folder / "raw")
    (folder / "checks.yaml").write_text(CHECKS)
    _run(
        [
            "data",
            "commit",
            "cancer",
            str(v1.relative_to(folder)),
            "-m",
            "Breast cancer measurements, as received",
            "--checks",
            "checks.yaml",
        ],
        folder,
    )
    _run(
        [
            "data",
            "commit",
            "cancer",
            str(v2.relative_to(folder)),
            "-m",
            "Drop outliers, add radius_ratio",
        ],
        folder,
    )
    _run(["data", "tag", "cancer@2", "clean"], folder)
    _run(["data", "log", "cancer"], folder)
    _run(["data", "diff", "cancer@1", "cancer@clean"], folder)
    _run(["data", "profile", "cancer@clean"], folder)
    _run(["data", "validate", "cancer@clean", "--checks", "checks.yaml"], folder, check=False)
    _run(["data", "verify"], folder)

    # Experiments: the bundled pipeline, run on the clean data with three settings.
    example = Path(__file__).resolve().parents[1] / "examples" / "cancer"
    (folder / "pipeline").mkdir()
    for name in ("pipeline.py", "params.json"):
        shutil.copyfile(example / name, folder / "pipeline" / name)
    _run(["pipelines", "register", "pipeline/pipeline.py"], folder)
    params = ["--data", "cancer@clean", "--params", "pipeline/params.json"]
    _run(["run", "cancer", *params], folder)
    _run(["run", "cancer", *params, "-p", "C=0.05"], folder)
    _run(["run", "cancer", *params, "-p", "model=random_forest", "-p", "n_estimators=200"], folder)
    _run(["runs", "list"], folder)
    _run(["runs", "compare", "--experiment", "cancer", "--last", "3"], folder)
    _run(["runs", "leaderboard", "--experiment", "cancer", "--metric", "val_f1"], folder)
    # A sweep: logistic regression against a random forest, each with its own params.
    (folder / "pipeline" / "space.yaml").write_text(SPACE)
    _run(
        [
            "sweep", "cancer", *params, "--space", "pipeline/space.yaml", "--trials", "12",
            "--parallel", "2", "--objective", "val_f1:max", "--prune-on", "curve_val_f1",
            "--name", "cancer-tuning",
        ],
        folder,
    )  # fmt: skip
    _run(["sweeps", "show", "cancer-tuning", "--limit", "5"], folder)
    # A notebook is a pipeline too: executed headless, its params injected, its fits
    # recorded by assay.autolog(), the executed notebook kept with the run.
    for name in ("explore.ipynb", "explore.json"):
        shutil.copyfile(example / name, folder / "pipeline" / name)
    _run(
        ["run", "pipeline/explore.ipynb", "--data", "cancer@clean",
         "--params", "pipeline/explore.json"],
        folder,
    )  # fmt: skip
    _run(["runs", "list", "--experiment", "explore"], folder)
    _serve(folder)
    console.print(f"\n[bold green]Done.[/bold green] The demo workspace is in {folder}.")
    console.print("Look at it in the browser (the token it prints signs you in):")
    # On one line whatever the terminal's width: it is meant to be pasted as it is.
    console.print(
        f"  [bold]cd {shlex.quote(str(folder))} && {shlex.join(_assay())} tokens create me "
        f"--scope admin && {shlex.join(_assay())} server[/bold]",
        soft_wrap=True,
    )
    console.print("then open http://127.0.0.1:8000.")


def _json(args: list[str], cwd: Path) -> Any:
    proc = subprocess.run([*_assay(), *args, "--json"], cwd=cwd, capture_output=True, check=False)
    if proc.returncode != 0:
        raise AssayError(f"The demo step `assay {shlex.join(args)}` failed: {proc.stderr.decode()}")
    return json.loads(proc.stdout)


def _serve(folder: Path) -> None:
    """Models: every run registered one; the best becomes champion, serves, answers, stops."""
    _run(["models", "list"], folder)
    versions = _json(["models", "show", "cancer"], folder)
    best = max(versions, key=lambda v: v["metrics"].get("val_f1", 0.0))
    ref = f"cancer@{best['version']}"
    _run(["models", "show", ref], folder)
    _run(["models", "lineage", ref], folder)
    _run(["models", "alias", ref, "champion"], folder)
    _run(["services", "deploy", "cancer-api", "--model", "cancer@champion"], folder)
    try:
        svc = _json(["services", "status", "cancer-api"], folder)
        from assay import httpclient

        sample = pd_rows(folder)
        calls = [
            ("/v1/models/cancer:predict", {"instances": sample[:2]}),
            (
                "/v2/models/cancer/infer",
                {
                    "inputs": [
                        {"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
                        for k, v in sample[2].items()
                    ]
                },
            ),
            # A bad request: a number sent as text is refused before the model sees it.
            ("/v1/models/cancer:predict", {"instances": [{**sample[0], "mean_radius": "big"}]}),
        ]
        for path, body in calls:
            console.print(
                f"\n[bold cyan]$ curl -s -X POST {svc['url']}{path} "
                f"-H 'Content-Type: application/json' -d '{json.dumps(body)[:90]}…'[/bold cyan]"
            )
            resp = httpclient.post(svc["url"] + path, json=body, timeout=10)
            console.print(
                f"HTTP {resp.status_code}  X-Assay-Model: "
                f"{resp.headers.get('x-assay-model', '-')}@"
                f"{resp.headers.get('x-assay-model-version', '-')}"
            )
            console.print_json(resp.text)
        _run(["services", "status", "cancer-api"], folder)
        _abtest(folder, versions, best["version"])
    finally:
        _run(["services", "stop", "cancer-api"], folder, check=False)


def _abtest(folder: Path, versions: list[dict[str, Any]], champion: int) -> None:
    """The champion against the runner-up on live traffic, with feedback from labels."""
    import random

    from assay import httpclient

    challenger = max(
        (v for v in versions if v["version"] != champion),
        key=lambda v: v["metrics"].get("val_f1", 0.0),
    )["version"]
    _run(["services", "deploy", "cancer-challenger", "--model", f"cancer@{challenger}"], folder)
    try:
        _run(
            [
                "abtests", "create", "cancer-ab",
                "--variant", "champion=cancer-api",
                "--variant", "challenger=cancer-challenger",
                "--strategy", "weighted:50,50",
            ],
            folder,
        )  # fmt: skip
        test = _json(["abtests", "list"], folder)[0]
        rows, labels = labelled_rows(folder)
        rng = random.Random(7)
        n = 1500
        console.print(
            f"\n[bold cyan]# {n:,} requests to {test['url']}/predict, each followed by the "
            "true diagnosis to /feedback[/bold cyan]"
        )
        shares: dict[str, int] = {}
        with httpclient.client(timeout=10) as client:
            for _ in range(n):
                j = rng.randrange(len(rows))
                answer = client.post(f"{test['url']}/predict", json={"instances": [rows[j]]})
                body = answer.json()
                shares[body["variant"]] = shares.get(body["variant"], 0) + 1
                client.post(
                    f"{test['url']}/feedback",
                    json={"request_id": body["request_id"], "label": labels[j]},
                )
        console.print("  " + ", ".join(f"{k}: {v:,}" for k, v in sorted(shares.items())))
        _run(["abtests", "report", "cancer-ab"], folder)
        # The router logged every request's inputs and answer: the monitor compares them
        # with the champion's training data (the traffic came from it: nothing drifts).
        _run(["monitor", "cancer-ab", "--last", str(n)], folder)
    finally:
        _run(["abtests", "stop", "cancer-ab"], folder, check=False)
        _run(["services", "stop", "cancer-challenger"], folder, check=False)


def labelled_rows(folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """Every complete row of the clean data as a client sends it, and its diagnosis."""
    import csv

    with open(folder / "raw" / "v2" / "cancer.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r.values())]
    out, labels = [], []
    for r in rows:
        row = {k: float(v) for k, v in r.items() if k != "diagnosis"}
        row["area_per_radius"] = row["mean_area"] / row["mean_radius"]
        out.append(row)
        labels.append(r["diagnosis"])
    return out, labels


def pd_rows(folder: Path) -> list[dict[str, Any]]:
    """Three rows of the clean data as a client sends them: the features the model was
    trained on (the pipeline's `features` step adds `area_per_radius`), no label."""
    import csv

    with open(folder / "raw" / "v2" / "cancer.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(r.values())][:3]
    out = []
    for r in rows:
        row = {k: float(v) for k, v in r.items() if k != "diagnosis"}
        row["area_per_radius"] = row["mean_area"] / row["mean_radius"]
        out.append(row)
    return out
