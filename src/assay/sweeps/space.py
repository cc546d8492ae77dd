"""Search spaces: the space file's language, checked whole before anything runs.

A space file (JSON or YAML) mirrors the params file. Each entry is one of:

    C:            {float: [0.01, 100], log: true}      # also {log-float: [0.01, 100]}
    n_estimators: {int: [10, 300], step: 10}
    kernel:       {choice: [linear, rbf]}
    model:                                             # algorithm selection: a choice
      choice:                                          # whose options carry their own
        logreg: {C: {log-float: [0.01, 100]}}          # sub-space (conditional params,
        random_forest:                                 # sampled only when chosen)
          n_estimators: {int: [10, 300]}
    optimizer: {lr: {log-float: [1e-4, 0.1]}}          # a nested group of params
    seed: 7                                            # a constant

A choice's sub-space sets its params beside the choice itself (`params["model"]
== "random_forest"`, `params["n_estimators"] == 120`), as a pipeline reads them.
Optuna's name for a param is its dotted path in the params (`optimizer.lr`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from assay.errors import InvalidArgumentError
from assay.limits import check_document, too_deep

_KINDS = ("int", "float", "log-float", "choice")
_MODIFIERS = {"int": {"log", "step"}, "float": {"log", "step"}, "log-float": set(), "choice": set()}
_SCALARS = (str, int, float, bool, type(None))


class Suggester(Protocol):
    """What a space needs of a trial: Optuna's `Trial.suggest_*` methods."""

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = 1, log: bool = False
    ) -> int: ...

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


@dataclass(frozen=True)
class IntParam:
    name: str
    low: int
    high: int
    step: int = 1
    log: bool = False

    def suggest(self, trial: Suggester) -> int:
        return trial.suggest_int(self.name, self.low, self.high, step=self.step, log=self.log)

    def values(self) -> list[Any] | None:
        return list(range(self.low, self.high + 1, self.step))

    def kind(self) -> str:
        return "an int"


@dataclass(frozen=True)
class FloatParam:
    name: str
    low: float
    high: float
    step: float | None = None
    log: bool = False

    def suggest(self, trial: Suggester) -> float:
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def values(self) -> list[Any] | None:
        if self.step is None:
            return None
        n = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [self.low + i * self.step for i in range(n)]

    def kind(self) -> str:
        return "a float"


@dataclass(frozen=True)
class ChoiceParam:
    name: str
    choices: tuple[Any, ...]
    branches: Mapping[str, Space] | None = None  # set when the options carry sub-spaces

    def suggest(self, trial: Suggester) -> Any:
        return trial.suggest_categorical(self.name, list(self.choices))

    def values(self) -> list[Any] | None:
        return list(self.choices)

    def kind(self) -> str:
        return f"a choice of {list(self.choices)}"


Param = IntParam | FloatParam | ChoiceParam


@dataclass(frozen=True)
class Space:
    """One level of params: sampled entries, nested groups and constants."""

    params: Mapping[str, Param]
    groups: Mapping[str, Space]
    constants: Mapping[str, Any]
    path: str = ""

    def sample(self, trial: Suggester) -> dict[str, Any]:
        """Draw one point: a dict to lay over the base params (`merge`)."""
        out: dict[str, Any] = dict(self.constants)
        for key, param in self.params.items():
            value = param.suggest(trial)
            out[key] = value
            if isinstance(param, ChoiceParam) and param.branches is not None:
                out.update(param.branches[str(value)].sample(trial))
        for key, group in self.groups.items():
            out[key] = group.sample(trial)
        return out

    def walk(self) -> Iterator[Param]:
        """Every param that some point may sample, branches included."""
        for param in self.params.values():
            yield param
            if isinstance(param, ChoiceParam) and param.branches:
                for branch in param.branches.values():
                    yield from branch.walk()
        for group in self.groups.values():
            yield from group.walk()

    def top_keys(self) -> set[str]:
        """The params file's top-level keys this space sets (a branch's land beside it)."""
        keys = set(self.params) | set(self.groups) | set(self.constants)
        for param in self.params.values():
            if isinstance(param, ChoiceParam) and param.branches:
                for branch in param.branches.values():
                    keys |= branch.top_keys()
        return keys

    def grid_size(self) -> int:
        """How many distinct points a grid over this space has (every param discrete)."""
        size = 1
        for param in self.params.values():
            if isinstance(param, ChoiceParam) and param.branches is not None:
                size *= sum(b.grid_size() for b in param.branches.values())
            else:
                values = param.values()
                if values is None:
                    raise InvalidArgumentError(
                        f"--sampler grid needs a finite set of values for every parameter; "
                        f"{param.name!r} is a continuous float. Give it a step "
                        "(`{float: [lo, hi], step: S}`) or list its values with `choice`."
                    )
                size *= len(values)
        for group in self.groups.values():
            size *= group.grid_size()
        return size


def merge(base: Mapping[str, Any], point: Mapping[str, Any]) -> dict[str, Any]:
    """`base` with `point` laid over it; nested groups merge key by key."""
    out = dict(base)
    for key, value in point.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


# ---- reading a space file -------------------------------------------------------------------


def load_space(path: Path) -> tuple[dict[str, Any], Space]:
    """Read and check a space file; returns the document as read and the parsed space.

    Raises:
        InvalidArgumentError: the file is missing, does not parse, or declares
            something malformed (the message names the entry and what is wrong).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidArgumentError(f"Space file {str(path)!r} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"Cannot read space file {str(path)!r}: {exc}.") from None
    document = parse_document(text, path.name)
    return document, parse_space(document)


def parse_document(text: str, where: str = "the space file") -> dict[str, Any]:
    if where.endswith(".json"):
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgumentError(
                f"{where} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from None
        except RecursionError:
            raise too_deep(where) from None
    else:
        import yaml

        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InvalidArgumentError(f"{where} is not valid YAML: {problem}{at}.") from None
        except RecursionError:
            raise too_deep(where) from None
    if not isinstance(document, dict) or not document:
        raise InvalidArgumentError(
            f"{where} must map parameter names to ranges or choices, e.g. "
            '{"C": {"log-float": [0.01, 100]}}.'
        )
    check_document(document, where)  # stored with the sweep, and read back by every listing
    return document


def parse_space(document: Mapping[str, Any], path: str = "") -> Space:
    params: dict[str, Param] = {}
    groups: dict[str, Space] = {}
    constants: dict[str, Any] = {}
    for key, entry in document.items():
        if not isinstance(key, str) or not key or "." in key:
            raise InvalidArgumentError(
                f"Parameter name {key!r} in the space is not valid: names are non-empty "
                "strings without dots (nest groups instead)."
            )
        name = f"{path}{key}"
        if isinstance(entry, dict) and any(k in _KINDS for k in entry):
            params[key] = _parse_param(name, entry)
        elif isinstance(entry, dict):
            if not entry:
                raise InvalidArgumentError(f"Space entry {name!r} is an empty group.")
            groups[key] = parse_space(entry, f"{name}.")
        elif isinstance(entry, list):
            raise InvalidArgumentError(
                f"Space entry {name!r} is a bare list; write {{choice: [...]}} to choose "
                "among values."
            )
        else:
            constants[key] = entry
    space = Space(params, groups, constants, path)
    if not path:
        _check_consistent(space)
    return space


def _parse_param(name: str, entry: dict[str, Any]) -> Param:
    kinds = [k for k in entry if k in _KINDS]
    if len(kinds) > 1:
        raise InvalidArgumentError(
            f"Space entry {name!r} declares {' and '.join(kinds)}; give exactly one of "
            f"{', '.join(_KINDS)}."
        )
    kind = kinds[0]
    unknown = sorted(set(entry) - {kind} - _MODIFIERS[kind])
    if unknown:
        allowed = sorted(_MODIFIERS[kind])
        raise InvalidArgumentError(
            f"Space entry {name!r} has unknown key {unknown[0]!r}"
            + (f"; {kind} takes {', '.join(allowed)}." if allowed else f"; {kind} takes none.")
        )
    spec = entry[kind]
    if kind == "choice":
        return _parse_choice(name, spec)
    if not (isinstance(spec, list) and len(spec) == 2):
        raise InvalidArgumentError(
            f"Space entry {name!r}: {kind} takes [low, high], got {json.dumps(spec, default=str)}."
        )
    low, high = spec
    log = kind == "log-float" or bool(entry.get("log", False))
    if not isinstance(entry.get("log", False), bool):
        raise InvalidArgumentError(f"Space entry {name!r}: log must be true or false.")
    if kind == "int":
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)):
            raise InvalidArgumentError(
                f"Space entry {name!r}: int bounds must be whole numbers, got [{low}, {high}]."
            )
        step = entry.get("step", 1)
        if not (isinstance(step, int) and not isinstance(step, bool) and step >= 1):
            raise InvalidArgumentError(f"Space entry {name!r}: step must be a whole number >= 1.")
        _check_bounds(name, low, high, log)
        if log and step != 1:
            raise InvalidArgumentError(f"Space entry {name!r}: log and step cannot be combined.")
        return IntParam(name, low, high, step, log)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise InvalidArgumentError(
            f"Space entry {name!r}: float bounds must be numbers, got [{low}, {high}]."
        )
    step_f = entry.get("step")
    if step_f is not None and not (
        isinstance(step_f, int | float) and not isinstance(step_f, bool) and step_f > 0
    ):
        raise InvalidArgumentError(f"Space entry {name!r}: step must be a number > 0.")
    _check_bounds(name, float(low), float(high), log)
    if log and step_f is not None:
        raise InvalidArgumentError(f"Space entry {name!r}: log and step cannot be combined.")
    return FloatParam(name, float(low), float(high), float(step_f) if step_f else None, log)


def _check_bounds(name: str, low: float, high: float, log: bool) -> None:
    if not (math.isfinite(low) and math.isfinite(high)) or low > high:
        raise InvalidArgumentError(
            f"Space entry {name!r}: low must not exceed high, got [{low}, {high}]."
        )
    if log and low <= 0:
        raise InvalidArgumentError(
            f"Space entry {name!r}: a log scale needs bounds above 0, got [{low}, {high}]."
        )


def _parse_choice(name: str, spec: Any) -> ChoiceParam:
    if isinstance(spec, list):
        if not spec:
            raise InvalidArgumentError(f"Space entry {name!r}: choice needs at least one value.")
        bad = [v for v in spec if not isinstance(v, _SCALARS)]
        if bad:
            raise InvalidArgumentError(
                f"Space entry {name!r}: choices must be strings, numbers, booleans or null; "
                f"got {json.dumps(bad[0], default=str)}."
            )
        if len({json.dumps(v) for v in spec}) != len(spec):
            raise InvalidArgumentError(f"Space entry {name!r}: a choice is listed twice.")
        return ChoiceParam(name, tuple(spec))
    if isinstance(spec, dict) and spec:
        prefix = name.rsplit(".", 1)[0] + "." if "." in name else ""
        branches: dict[str, Space] = {}
        for option, sub in spec.items():
            if sub is None or sub == {}:
                branches[str(option)] = Space({}, {}, {}, prefix)
            elif isinstance(sub, dict):
                branches[str(option)] = parse_space(sub, prefix)
            else:
                raise InvalidArgumentError(
                    f"Space entry {name!r}: option {option!r} must map to its own "
                    "parameters (or to {} when it has none)."
                )
        return ChoiceParam(name, tuple(branches), branches)
    raise InvalidArgumentError(
        f"Space entry {name!r}: choice takes a list of values, or a mapping of options "
        "to their own parameters."
    )


def _check_consistent(space: Space) -> None:
    """One name, one kind of distribution (Optuna refuses to mix them under one name)."""
    seen: dict[str, Param] = {}
    for param in space.walk():
        before = seen.get(param.name)
        if before is None:
            seen[param.name] = param
        elif type(before) is not type(param) or (
            isinstance(param, ChoiceParam)
            and isinstance(before, ChoiceParam)
            and before.choices != param.choices
        ):
            raise InvalidArgumentError(
                f"Parameter {param.name!r} is {before.kind()} in one option and "
                f"{param.kind()} in another; give it one kind, or two names."
            )


# ---- what a pipeline reads ------------------------------------------------------------------


def params_read(sources: Mapping[str, str]) -> set[str] | None:
    """The top-level params keys a pipeline's code reads, or None when it cannot be told.

    Reads are `params["k"]`, `params.get("k")` and `"k" in params` on a name
    `params` (what a step receives). Any other use of `params` (passing it on,
    iterating it, `**params`) makes the answer unknowable, and None says so.
    """
    import ast

    keys: set[str] = set()
    for source in sources.values():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            return None
        parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                parents[child] = node
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Name) and node.id == "params"):
                continue
            if not isinstance(node.ctx, ast.Load):
                continue
            parent = parents.get(node)
            if (
                isinstance(parent, ast.Subscript)
                and parent.value is node
                and isinstance(parent.slice, ast.Constant)
                and isinstance(parent.slice.value, str)
            ):
                keys.add(parent.slice.value)
                continue
            grand = parents.get(parent) if parent is not None else None
            if (
                isinstance(parent, ast.Attribute)
                and parent.attr == "get"
                and isinstance(grand, ast.Call)
                and grand.func is parent
                and grand.args
                and isinstance(grand.args[0], ast.Constant)
                and isinstance(grand.args[0].value, str)
            ):
                keys.add(grand.args[0].value)
                continue
            if (
                isinstance(parent, ast.Compare)
                and len(parent.ops) == 1
                and isinstance(parent.ops[0], ast.In | ast.NotIn)
                and parent.comparators[0] is node
                and isinstance(parent.left, ast.Constant)
                and isinstance(parent.left.value, str)
            ):
                keys.add(parent.left.value)
                continue
            return None
    return keys


def check_names(
    space: Space, base: Mapping[str, Any], read: set[str] | None, pipeline: str
) -> None:
    """Refuse a space that sets a param neither the params file nor the pipeline knows.

    Raises:
        InvalidArgumentError: names the unknown param, and the closest known one.
    """
    if read is None:
        return  # the pipeline hands `params` on whole: any name may be read
    known = set(base) | read
    for key in sorted(space.top_keys() - known):
        import difflib

        near = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise InvalidArgumentError(
            f"The space sets parameter {key!r}, which neither the params file nor pipeline "
            f"{pipeline} reads (known: {', '.join(sorted(known)) or 'none'}).{hint}"
        )
