"""The pipeline DSL: steps are plain functions, a pipeline is an ordered list of them.

```python
@step
def load(data): ...            # `data`: the checked-out data version (a Path)

@step
def clean(load): ...           # a parameter named after an earlier step gets its return value

@step(name="evaluate")
def score(clean, params): ...  # `params`: the run's parameters (a read-only Mapping)

pipeline = Pipeline("cancer", [load, clean, score])
```

Wiring is by parameter name, checked when the `Pipeline` is built, so a typo fails
at registration rather than an hour into a run. Nothing here does I/O except
`load_pipeline`, which imports the user's module, and `step_code_hashes`, which may
read a step's source file.
"""

from __future__ import annotations

import inspect
import keyword
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from assay.data.entities import check_name
from assay.errors import InvalidArgumentError

if TYPE_CHECKING:
    import ast

P = ParamSpec("P")
R = TypeVar("R")

RESERVED_INPUTS = ("data", "params")
"""Parameter names every step may take besides earlier steps' names."""

_DEFAULT_MODEL = "train"
_DEFAULT_METRICS = "evaluate"


class _Unset:
    def __repr__(self) -> str:
        return "<default>"


_UNSET: Any = _Unset()


# ---- steps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step(Generic[P, R]):
    """A pipeline step: a function whose parameter names say which values it takes.

    Still callable like the function it wraps, so a step can be unit-tested directly.
    """

    name: str
    func: Callable[P, R] = field(repr=False)
    inputs: tuple[str, ...]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def arguments(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """This step's keyword arguments, taken from `values` by name.

        Raises:
            InvalidArgumentError: `values` lacks one of the step's inputs.
        """
        missing = [name for name in self.inputs if name not in values]
        if missing:
            raise InvalidArgumentError(
                f"Step {self.name!r} needs {', '.join(missing)}, which nothing provided. "
                "Run the steps in the pipeline's order.",
                step=self.name,
                missing=missing,
            )
        return {name: values[name] for name in self.inputs}

    def run(self, values: Mapping[str, Any]) -> R:
        """Call the function with its inputs picked out of `values` by name."""
        return self.func(**self.arguments(values))  # type: ignore[call-arg]


@overload
def step(func: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(*, name: str | None = None) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(
    func: Callable[P, R] | None = None, /, *, name: str | None = None
) -> Step[P, R] | Callable[[Callable[P, R]], Step[P, R]]:
    """Make a function a pipeline step: `@step`, or `@step(name="evaluate")`.

    Every parameter is an input, passed by name (`step.func(**inputs)`).

    Raises:
        InvalidArgumentError: the name is not a Python identifier or is reserved, or
            the function takes *args, **kwargs or positional-only parameters.
    """

    def wrap(f: Callable[P, R]) -> Step[P, R]:
        return _make_step(f, name)

    if func is None:
        return wrap
    return wrap(func)


def _make_step(func: Callable[P, R], name: str | None) -> Step[P, R]:
    if isinstance(func, Step):
        return func if name is None or name == func.name else _make_step(func.func, name)
    if not callable(func):
        raise InvalidArgumentError(
            f"A step must be a function; got {type(func).__name__} {func!r}.",
        )
    step_name = name if name is not None else getattr(func, "__name__", "")
    if not step_name.isidentifier() or keyword.iskeyword(step_name):
        raise InvalidArgumentError(
            f"Step name {step_name!r} is not a Python identifier, so no later step could "
            "take it as a parameter; name it with @step(name=...).",
            step=step_name,
        )
    if step_name in RESERVED_INPUTS:
        raise InvalidArgumentError(
            f"Step name {step_name!r} is reserved for the run's {step_name}; "
            "give the step another name with @step(name=...).",
            step=step_name,
        )
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"Step {step_name!r}: cannot read its parameters ({exc}); use a plain function."
        ) from exc
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise InvalidArgumentError(
                f"Step {step_name!r} takes {param.name!r} as positional-only (before '/'); "
                "a step's inputs are passed by name, so remove the '/'.",
                step=step_name,
                parameter=param.name,
            )
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            star = "*" if param.kind is inspect.Parameter.VAR_POSITIONAL else "**"
            raise InvalidArgumentError(
                f"Step {step_name!r} takes {star}{param.name}; a step takes named parameters "
                f"only ({', '.join(RESERVED_INPUTS)} or earlier steps' names), since each "
                "parameter's name says which value it receives.",
                step=step_name,
                parameter=param.name,
            )
    return Step(step_name, func, tuple(signature.parameters))


# ---- pipelines --------------------------------------------------------------------------


class Pipeline:
    """A named, ordered list of steps, wired by parameter name and checked on creation.

    Plain functions among `steps` are made steps as `@step` would.

    `model` names the step whose return value is the trained model, `metrics` the one
    whose return value (a mapping of names to numbers) holds the final metrics. They
    default to the steps named `train` and `evaluate`, when there are such steps.

    Raises:
        InvalidArgumentError: a bad name, no steps, two steps of one name, a parameter
            that is neither `data`, `params` nor an earlier step, or `model`/`metrics`
            naming no step.
    """

    __slots__ = ("metrics", "model", "name", "steps")

    name: str
    steps: tuple[Step[..., Any], ...]
    model: str | None
    metrics: str | None

    def __init__(
        self,
        name: str,
        steps: Sequence[Step[..., Any] | Callable[..., Any]],
        *,
        model: str | None = _UNSET,
        metrics: str | None = _UNSET,
    ) -> None:
        check_name(name, "Pipeline")
        if isinstance(steps, Step) or not isinstance(steps, list | tuple):
            raise InvalidArgumentError(
                f"Pipeline {name!r}: steps must be a list, as in Pipeline({name!r}, [load, train])."
            )
        made = tuple(_make_step(s, None) for s in steps)
        if not made:
            raise InvalidArgumentError(
                f"Pipeline {name!r} has no steps; pass at least one, "
                f"as in Pipeline({name!r}, [load, train]).",
                pipeline=name,
            )
        seen: list[str] = []
        for s in made:
            if s.name in seen:
                raise InvalidArgumentError(
                    f"Pipeline {name!r} has two steps named {s.name!r}; "
                    "give one of them another name with @step(name=...).",
                    pipeline=name,
                    step=s.name,
                )
            for param in s.inputs:
                if param in RESERVED_INPUTS or param in seen:
                    continue
                available = ", ".join([*RESERVED_INPUTS, *seen])
                later = any(t.name == param for t in made)
                hint = (
                    f"{param!r} is a later step: move it before {s.name!r}."
                    if later
                    else "Rename the parameter, or add a step of that name before it."
                )
                raise InvalidArgumentError(
                    f"Step {s.name!r} of pipeline {name!r} takes parameter {param!r}, which is "
                    f"not one of its inputs (available there: {available}). {hint}",
                    pipeline=name,
                    step=s.name,
                    parameter=param,
                )
            seen.append(s.name)
        names = [s.name for s in made]
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "steps", made)
        object.__setattr__(self, "model", _pick(name, "model", model, _DEFAULT_MODEL, names))
        object.__setattr__(
            self, "metrics", _pick(name, "metrics", metrics, _DEFAULT_METRICS, names)
        )

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError(f"Pipeline is immutable; cannot set {key!r}")

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, [{', '.join(s.name for s in self.steps)}])"

    def __iter__(self) -> Iterator[Step[..., Any]]:
        return iter(self.steps)

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    def step(self, name: str) -> Step[..., Any]:
        """The step called `name`.

        Raises:
            InvalidArgumentError: no such step.
        """
        for s in self.steps:
            if s.name == name:
                return s
        raise InvalidArgumentError(
            f"Pipeline {self.name!r} has no step {name!r}; its steps are "
            f"{', '.join(self.step_names)}.",
            pipeline=self.name,
            step=name,
        )

    def execute(self, data: Path, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run every step here, in order, recording nothing; returns each step's output.

        For trying a pipeline in a test or a notebook; `assay run` is the recorded,
        reproducible way.
        """
        from types import MappingProxyType

        values: dict[str, Any] = {"data": data, "params": MappingProxyType(dict(params or {}))}
        outputs: dict[str, Any] = {}
        for s in self.steps:
            outputs[s.name] = values[s.name] = s.run(values)
        return outputs


def _pick(
    pipeline: str, what: str, given: str | None, default: str, names: list[str]
) -> str | None:
    if given is _UNSET:
        return default if default in names else None
    if given is None or given in names:
        return given
    raise InvalidArgumentError(
        f"Pipeline {pipeline!r}: {what}={given!r} names no step; its steps are {', '.join(names)}.",
        pipeline=pipeline,
        **{what: given},
    )


# ---- loading a pipeline from its file ---------------------------------------------------

# sys.path, sys.modules and sys.dont_write_bytecode are process-wide.
_IMPORT_LOCK = threading.RLock()


def load_pipeline(entry_file: Path, name: str | None = None) -> Pipeline:
    """Import `entry_file` and return the `Pipeline` it defines.

    The module is imported under a name of its own, with its folder first on
    `sys.path`; afterwards `sys.path` is restored and every module imported from
    that folder is dropped again, so two versions of one pipeline (and of its
    helper modules) can be loaded side by side in one process. A module of the
    folder that was already imported from elsewhere (the working copy of a helper)
    is set aside meanwhile, so the file's own sibling is the one imported. No
    bytecode is written into the folder. A step that imports a sibling module only
    when it is called (an `import helpers` inside its body) finds it during a run,
    because the run engine puts the folder back on `sys.path` while steps execute
    (`assay.runs.engine.expose`); outside a run, import siblings at the top of the file.

    With several pipelines in the file, `name` picks one; with exactly one, it is
    returned whatever its name (it may be registered under another).

    Raises:
        NotFoundError: the file does not exist.
        InvalidArgumentError: importing it failed, or it defines no pipeline, or
            several and `name` picks none of them.
    """
    from assay.errors import NotFoundError

    entry_file = Path(entry_file)
    if not entry_file.is_file():
        raise NotFoundError(
            f"Pipeline file {str(entry_file)!r} does not exist. Check the path and retry."
        )
    module = _import_isolated(entry_file)
    found: dict[str, Pipeline] = {}
    for value in vars(module).values():
        if isinstance(value, Pipeline):
            found.setdefault(value.name, value)
    label = entry_file.name
    if not found:
        raise InvalidArgumentError(
            f"{label} defines no assay Pipeline; create one with Pipeline(name, [steps]).",
            file=str(entry_file),
        )
    if name is not None and name in found:
        return found[name]
    if len(found) == 1:
        return next(iter(found.values()))
    names = ", ".join(sorted(found))
    if name is not None:
        raise InvalidArgumentError(
            f"{label} defines no pipeline named {name!r}, but several: {names}; "
            "pick one with --name.",
            file=str(entry_file),
            pipelines=sorted(found),
        )
    raise InvalidArgumentError(
        f"{label} defines several pipelines: {names}; pick one with --name.",
        file=str(entry_file),
        pipelines=sorted(found),
    )


def _import_isolated(entry_file: Path) -> ModuleType:
    import importlib
    import importlib.util
    import traceback

    entry_file = Path(os.path.abspath(entry_file))
    folder = str(entry_file.parent)
    module_name = f"_assay_pipeline_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, entry_file)
    if spec is None or spec.loader is None:
        raise InvalidArgumentError(f"Cannot import {entry_file}: it is not a Python module.")
    module = importlib.util.module_from_spec(spec)
    with _IMPORT_LOCK:
        saved_path = list(sys.path)
        saved_bytecode = sys.dont_write_bytecode
        before = set(sys.modules)
        hidden = _set_aside(_top_level_names(entry_file.parent))
        sys.path.insert(0, folder)
        sys.dont_write_bytecode = True
        # A module registered under its name while it runs: dataclasses and pickle look it up.
        sys.modules[module_name] = module
        importlib.invalidate_caches()
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as exc:
            text = " ".join(str(exc).split()) or "(no message)"
            raise InvalidArgumentError(
                f"Cannot import {entry_file.name}: {type(exc).__name__}: {text}. "
                "Fix the error and retry.",
                file=str(entry_file),
                traceback=traceback.format_exc(),
            ) from exc
        finally:
            for mod_name in set(sys.modules) - before:
                if mod_name == module_name or _is_under(sys.modules.get(mod_name), folder):
                    del sys.modules[mod_name]
            sys.modules.update(hidden)
            sys.path[:] = saved_path
            sys.path_importer_cache.pop(folder, None)
            sys.dont_write_bytecode = saved_bytecode
    return module


def _top_level_names(folder: Path) -> set[str]:
    """The module and package names a folder provides when it is on sys.path."""
    names: set[str] = set()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return names
    for entry in entries:
        if entry.name.endswith(".py"):
            names.add(entry.name[:-3])
        elif entry.name.isidentifier() and os.path.isfile(os.path.join(entry.path, "__init__.py")):
            # Only regular packages: a folder of data named like a library is no module.
            names.add(entry.name)
    # Shadowing the standard library is the user's own doing; setting it aside would
    # break whatever else is mid-import.
    return names - set(sys.stdlib_module_names)


def _set_aside(names: set[str]) -> dict[str, ModuleType]:
    hidden: dict[str, ModuleType] = {}
    for mod_name in list(sys.modules):
        if mod_name.partition(".")[0] in names:
            hidden[mod_name] = sys.modules.pop(mod_name)
    return hidden


def _is_under(module: ModuleType | None, folder: str) -> bool:
    origin = getattr(module, "__file__", None)
    if not origin:
        paths = getattr(module, "__path__", None) or []
        origin = next(iter(paths), None)
    if not origin:
        return False
    origin = os.path.abspath(origin)
    prefix = folder.rstrip(os.sep) + os.sep
    if not origin.startswith(prefix):
        return False
    # A virtual environment inside the folder holds libraries, not the user's modules.
    parts = origin[len(prefix) :].split(os.sep)
    return not {"site-packages", "dist-packages"} & set(parts)


# ---- code hashes ------------------------------------------------------------------------


def step_code_hashes(
    source: str,
    pipeline: Pipeline,
    filename: str,
    *,
    others: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Each step's code hash: its own source, plus the context it runs in.

    The context is the module source (`source`, read from `filename`) with every step
    function's lines removed, so editing one step's body changes only that step's
    hash, while editing a shared helper, an import or a constant changes them all
    (blank lines aside).
    `others` maps further files of the snapshot (path as imported -> text) into the
    context too: a helper module edited is a context edited. A step defined in one
    of them is found there; one defined anywhere else falls back to
    `inspect.getsource`.
    """
    from assay.store.objects import hash_bytes

    files = {os.path.normpath(filename): source}
    for path, text in sorted((others or {}).items()):
        files.setdefault(os.path.normpath(path), text)
    spans: dict[str, list[tuple[int, int]]] = {path: [] for path in files}
    own: dict[str, str] = {}
    parsed = {path: _functions(text) for path, text in files.items() if path.endswith(".py")}
    for s in pipeline.steps:
        code = getattr(s.func, "__code__", None)
        where = os.path.normpath(code.co_filename) if code is not None else ""
        found = _find(parsed.get(where, []), s.func) if where in files else None
        if found is not None:
            first, last = found
            spans[where].append(found)
            own[s.name] = "".join(files[where].splitlines(keepends=True)[first - 1 : last])
        else:
            own[s.name] = _fallback_source(s.func)
    # Paths relative to the entry's folder: the same snapshot hashes the same wherever
    # it was written out.
    root = os.path.dirname(os.path.normpath(filename))
    context_parts = []
    for path, text in files.items():
        lines = text.splitlines(keepends=True)
        drop = {n for first, last in spans[path] for n in range(first, last + 1)}
        # Blank lines carry no meaning: moving a step up or down the file is no edit.
        kept = "".join(
            line for n, line in enumerate(lines, start=1) if n not in drop and line.strip()
        )
        rel = os.path.relpath(path, root).replace(os.sep, "/")
        context_parts.append(f"{rel}:{hash_bytes(kept.encode())}")
    context = hash_bytes("\n".join(context_parts).encode())
    return {
        name: hash_bytes(f"{hash_bytes(text.encode())}\n{context}".encode())
        for name, text in own.items()
    }


def _functions(source: str) -> list[tuple[str, int, int, int]]:
    """(name, first line incl. decorators, def line, last line) of every function."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    out: list[tuple[str, int, int, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            out.append((node.name, _first_line(node), node.lineno, node.end_lineno or node.lineno))
    return out


def _first_line(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    return min([node.lineno, *(d.lineno for d in node.decorator_list)])


def _find(
    functions: list[tuple[str, int, int, int]], func: Callable[..., Any]
) -> tuple[int, int] | None:
    code = func.__code__
    name = getattr(func, "__name__", "")
    # co_firstlineno is the first decorator's line for a decorated function.
    for fname, first, def_line, last in functions:
        if fname == name and code.co_firstlineno in (first, def_line):
            return first, last
    return None


def _fallback_source(func: Callable[..., Any]) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        import marshal

        code = getattr(func, "__code__", None)
        if code is not None:
            return repr(marshal.dumps(code))
        return str(getattr(func, "__qualname__", type(func).__qualname__))


__all__ = [
    "RESERVED_INPUTS",
    "Pipeline",
    "Step",
    "load_pipeline",
    "step",
    "step_code_hashes",
]
