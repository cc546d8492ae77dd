"""Monitor configs: YAML (or JSON) like the data checks file, and how to read them.

alpha: 0.05                # family-wise, Holm across the features of one check
window: {last: 1h}         # {last: 5000} requests, or {from: ..., to: ...} (ISO 8601)
schedule: 15m              # how often `assay monitor watch` (or the server) checks
min_rows: 100              # fewer live rows: the PSI and range rules stay quiet
reference: churn@3         # default: the data version in the model's lineage
label: churned             # the training data's label column, for snapshots
thresholds:                # for every feature ...
  psi: {warning: 0.1, drift: 0.25}
  missing: 0.05            # rise in the share of missing values
  out_of_range: 0.01       # share of values outside training's range, or new categories
features:                  # ... or for one
  tenure: {psi: {warning: 0.2, drift: 0.5}}
  customer_id: {ignore: true}
performance: {min: 0.9}    # accuracy or reward (for an error: the most allowed)
webhook: {url: "https://hooks.example.com/assay", timeout_s: 5}
on_drift:                  # what a check that finds drift does next
  snapshot: churn-live     # commit the window as the next version of this dataset
  retrain: true            # ... and retrain the model on it
  alone: false             # with the training data (false) or the new rows alone
  challenge: weighted:50,50   # start an A/B test of it (auto-promote); false for none;
                              # shadow: the champion answers, the new model gets copies
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NoReturn

from assay.errors import InvalidArgumentError
from assay.monitoring import api
from assay.monitoring.entities import (
    MonitorConfig,
    OnDrift,
    Thresholds,
    Webhook,
    Window,
    parse_duration,
)

_TOP = (
    "alpha",
    "features",
    "label",
    "min_rows",
    "on_drift",
    "performance",
    "reference",
    "schedule",
    "thresholds",
    "webhook",
    "window",
)
_THRESHOLDS = ("ignore", "missing", "out_of_range", "psi")
_PSI = ("drift", "min", "warning")
_WINDOW = ("from", "last", "to")
_WEBHOOK = ("allow_private", "timeout_s", "url")
_ON_DRIFT = ("alone", "challenge", "retrain", "snapshot")
_PERFORMANCE = ("min",)
_CHALLENGE_HINT = f"Write a strategy such as {api.CHALLENGE}, or `shadow` for {api.SHADOW}."


def load_config(text: str, source: str = "monitor config") -> MonitorConfig:
    """Parse and validate a monitor config; `source` names it in error messages.

    Raises:
        InvalidArgumentError: not YAML, an unknown key (with the closest known one), a
            value of the wrong type or range.
    """
    import yaml  # here: listing monitors needs no YAML parser

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidArgumentError(
            f"Monitor config {source!r} is not valid YAML ({str(exc).splitlines()[0]}). "
            "Fix the syntax; JSON is accepted too.",
            source=source,
        ) from exc
    if doc is None:
        return MonitorConfig()
    p = _Parser(source)
    top = p.mapping(doc, "", _TOP)
    # Each top-level key, in the order its errors are reported, and the field it sets.
    fields: dict[str, tuple[str, Callable[[Any], Any]]] = {
        "alpha": ("alpha", lambda v: p.share(v, "alpha", open_low=True)),
        "min_rows": ("min_rows", lambda v: p.count(v, "min_rows")),
        "window": ("window", p.window),
        "schedule": ("schedule_s", lambda v: p.duration(v, "schedule")),
        "reference": ("reference", lambda v: p.text(v, "reference")),
        "label": ("label", lambda v: p.text(v, "label")),
        "thresholds": ("thresholds", lambda v: p.thresholds(v, "thresholds")),
    }
    config = MonitorConfig(
        **{field: parse(top[key]) for key, (field, parse) in fields.items() if key in top}
    )
    if "features" in top:
        config = replace(config, features=p.features(top["features"], config.thresholds))
    if "performance" in top:
        perf = p.mapping(top["performance"], "performance", _PERFORMANCE)
        if "min" in perf:
            config = replace(config, min_performance=p.number(perf["min"], "performance.min"))
    if "webhook" in top:
        config = replace(config, webhook=p.webhook(top["webhook"]))
    if "on_drift" in top:
        config = replace(config, on_drift=p.on_drift(top["on_drift"]))
    return config


def challenge_strategy(spec: str) -> str:
    """A retrain's challenge as the routing spec of its A/B test, whose variants are
    `api.CHALLENGERS`: `shadow` is short for `api.SHADOW` (the champion answers every
    request, the challenger gets a copy of each), any other spec is taken as it is.

    Raises:
        InvalidArgumentError: a spec that does not parse, or does not fit those variants.
    """
    from assay.abtests.strategies import parse_strategy  # the standard library only

    spec = spec.strip()
    if spec == "shadow":
        spec = api.SHADOW
    parse_strategy(spec, api.CHALLENGERS)
    return spec


def default_text() -> str:
    """The config a monitor has until one is set: every default, as YAML."""
    return "# The defaults; set your own with `assay monitor config NAME FILE`.\n" + (
        "alpha: 0.05\nwindow: {last: 10000}\nmin_rows: 100\n"
        "thresholds:\n  psi: {min: 0.02, warning: 0.1, drift: 0.25}\n"
        "  missing: 0.05\n  out_of_range: 0.01\n"
    )


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str, hint: str) -> NoReturn:
        where = f"{path} " if path else "the top level "
        raise InvalidArgumentError(
            f"Monitor config {self.source!r}: {where}{problem}. {hint}",
            source=self.source,
            key=path,
        )

    def features(self, features: Any, defaults: Thresholds) -> dict[str, Thresholds]:
        if not isinstance(features, dict):
            self.fail("features", "must map feature names to thresholds", "See `thresholds`.")
        return {
            str(name): self.thresholds(spec, f"features.{name}", defaults)
            for name, spec in features.items()
        }

    def mapping(self, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping with keys {', '.join(keys)}", "")
        for key in value:
            if key not in keys:
                name = f"{path}.{key}" if path else str(key)
                close = difflib.get_close_matches(str(key), keys, n=1)
                hint = f"Did you mean {close[0]!r}? " if close else ""
                raise InvalidArgumentError(
                    f"Monitor config {self.source!r}: unknown key {name!r}. "
                    f"{hint}Valid keys here: {', '.join(keys)}.",
                    source=self.source,
                    key=name,
                )
        return value

    def number(self, value: Any, path: str) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(path, f"must be a number, not {value!r}", "")
        return float(value)

    def share(self, value: Any, path: str, *, open_low: bool = False) -> float:
        x = self.number(value, path)
        if not (0 < x < 1 if open_low else 0 <= x <= 1):
            self.fail(path, f"must be between 0 and 1, not {x:g}", "")
        return x

    def count(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            self.fail(path, f"must be a whole number of at least 1, not {value!r}", "")
        return int(value)

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be text, not {value!r}", "")
        return value.strip()

    def flag(self, value: Any, path: str) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, not {value!r}", "")
        return value

    def duration(self, value: Any, path: str) -> float:
        try:
            return parse_duration(str(value), path)
        except InvalidArgumentError as exc:
            self.fail(path, exc.message[0].lower() + exc.message[1:].rstrip("."), "")

    def window(self, value: Any) -> Window:
        spec = self.mapping(value, "window", _WINDOW)
        try:
            return Window.parse(
                spec.get("last"),
                str(spec["from"]) if "from" in spec else None,
                str(spec["to"]) if "to" in spec else None,
            )
        except InvalidArgumentError as exc:
            self.fail("window", exc.message[0].lower() + exc.message[1:].rstrip("."), "")

    def thresholds(self, value: Any, path: str, base: Thresholds | None = None) -> Thresholds:
        spec = self.mapping(value, path, _THRESHOLDS)
        out = base or Thresholds()
        if "psi" in spec:
            psi = self.mapping(spec["psi"], f"{path}.psi", _PSI)
            low = self.number(psi.get("min", out.psi_min), f"{path}.psi.min")
            warning = self.number(psi.get("warning", out.psi_warning), f"{path}.psi.warning")
            drift = self.number(psi.get("drift", out.psi_drift), f"{path}.psi.drift")
            if not 0 <= low <= warning <= drift or warning <= 0:
                self.fail(f"{path}.psi", "needs 0 <= min <= warning <= drift", "")
            out = replace(out, psi_min=low, psi_warning=warning, psi_drift=drift)
        if "missing" in spec:
            out = replace(out, missing=self.share(spec["missing"], f"{path}.missing"))
        if "out_of_range" in spec:
            out = replace(
                out, out_of_range=self.share(spec["out_of_range"], f"{path}.out_of_range")
            )
        if "ignore" in spec:
            out = replace(out, ignore=self.flag(spec["ignore"], f"{path}.ignore"))
        return out

    def webhook(self, value: Any) -> Webhook:
        spec = self.mapping(value, "webhook", _WEBHOOK)
        url = self.text(spec.get("url"), "webhook.url")
        if not url.startswith(("http://", "https://")):
            self.fail("webhook.url", f"must be an http:// or https:// URL, not {url!r}", "")
        hook = Webhook(url)
        if "timeout_s" in spec:
            timeout = self.number(spec["timeout_s"], "webhook.timeout_s")
            if not 0 < timeout <= 60:
                self.fail("webhook.timeout_s", "must be between 0 and 60 seconds", "")
            hook = replace(hook, timeout_s=timeout)
        if "allow_private" in spec:
            hook = replace(
                hook, allow_private=self.flag(spec["allow_private"], "webhook.allow_private")
            )
        return hook

    def on_drift(self, value: Any) -> OnDrift:
        spec = self.mapping(value, "on_drift", _ON_DRIFT)
        if "snapshot" not in spec:
            self.fail("on_drift", "needs `snapshot: DATASET`", "Name the dataset to commit to.")
        out = OnDrift(self.text(spec["snapshot"], "on_drift.snapshot"))
        if "retrain" in spec:
            out = replace(out, retrain=self.flag(spec["retrain"], "on_drift.retrain"))
        if "alone" in spec:
            out = replace(out, alone=self.flag(spec["alone"], "on_drift.alone"))
        if "challenge" in spec:
            challenge = spec["challenge"]
            if challenge is False or challenge is None:
                out = replace(out, challenge=None)
            elif challenge is True:
                out = replace(out, challenge=api.CHALLENGE)
            else:
                strategy = self.text(challenge, "on_drift.challenge")
                try:
                    out = replace(out, challenge=challenge_strategy(strategy))
                except InvalidArgumentError as exc:
                    why = exc.message.rstrip(".")
                    self.fail("on_drift.challenge", f"is not a challenge ({why})", _CHALLENGE_HINT)
        return out
