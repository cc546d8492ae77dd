"""Run parameters: a JSON params file, and `-p KEY=VALUE` overrides that keep types."""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

from assay.errors import InvalidArgumentError, NotFoundError


def load_params(path: Path) -> dict[str, Any]:
    """A params JSON file: an object at the top.

    Raises:
        NotFoundError: no such file.
        InvalidArgumentError: not JSON, or not an object.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"Params file {str(path)!r} does not exist.") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise InvalidArgumentError(f"Cannot read params file {str(path)!r}: {exc}.") from None
    try:
        params = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(
            f"Params file {str(path)!r} is not valid JSON: {exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}."
        ) from None
    if not isinstance(params, dict):
        raise InvalidArgumentError(
            f"Params file {str(path)!r} must hold a JSON object, got {type(params).__name__}."
        )
    return params


def apply_overrides(params: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply `KEY=VALUE` overrides, keeping each existing key's type.

    Dotted keys reach into nested objects. A new key takes VALUE as JSON if it
    parses, else as a string.

    Raises:
        InvalidArgumentError: a malformed override, or a value of the wrong type.
    """
    out = json.loads(json.dumps(params))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidArgumentError(f"Override {item!r} must look like KEY=VALUE.")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                raise InvalidArgumentError(f"Override {item!r}: {part!r} is not an object.")
            node = nxt
        node[leaf] = _typed(key, raw, node.get(leaf, _MISSING))
    return dict(out)


_MISSING = object()


def _typed(key: str, raw: str, current: Any) -> Any:
    def wrong(kind: str) -> InvalidArgumentError:
        return InvalidArgumentError(
            f"Override {key}={raw!r}: {key} is {kind} in the params file, and {raw!r} is not."
        )

    if current is _MISSING or current is None:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    if isinstance(current, bool):
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise wrong("a boolean")
    if isinstance(current, int):
        try:
            return int(raw)
        except ValueError:
            raise wrong("an integer") from None
    if isinstance(current, float):
        try:
            return float(raw)
        except ValueError:
            raise wrong("a number") from None
    if isinstance(current, str):
        return raw
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise wrong("a list" if isinstance(current, list) else "an object") from None
    if type(value) is not type(current):
        raise wrong("a list" if isinstance(current, list) else "an object")
    return value


_SCALARS = (int, float, str, bool, type(None))
_INFINITY = float("inf")


def json_scalar(value: Any) -> str:
    """A scalar (`str`, `int`, `float`, `bool`, None) as `json.dumps` spells it
    (ensure_ascii, allow_nan), without its Python encoder: `json.dumps` of a number builds
    an encoder per call, and a run spells fifty (its params file, its params rows)."""
    kind = type(value)
    if kind is str:
        return encode_basestring_ascii(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value:
            return "NaN"
        if value == _INFINITY:
            return "Infinity"
        if value == -_INFINITY:
            return "-Infinity"
        return float.__repr__(value)
    if kind is bool:
        return "true" if value else "false"
    return "null"


def params_text(params: dict[str, Any]) -> bytes:
    """The params file a run commits: `json.dumps(params, indent=2, sort_keys=True)` and a
    newline, byte for byte (runs with equal params share a version by its hash).

    Flat params of plain scalars, nearly all of them, are spelled here: with `indent` the
    standard library encodes in Python, a tenth of a millisecond for 50 params, once per
    run. Anything else goes to `json.dumps`.

    Raises:
        TypeError, ValueError: not JSON values (as `json.dumps` raises them).
    """
    if params and all(type(k) is str and type(v) in _SCALARS for k, v in params.items()):
        body = ",\n".join(
            f"  {encode_basestring_ascii(k)}: {json_scalar(v)}" for k, v in sorted(params.items())
        )
        return f"{{\n{body}\n}}\n".encode()
    return (json.dumps(params, indent=2, sort_keys=True) + "\n").encode()
