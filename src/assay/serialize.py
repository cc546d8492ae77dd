"""One JSON shape per entity: `dump` an entity to JSON-ready values, `load` it back.

CLI `--json`, REST responses, the SDK and stored documents (profiles, validation
reports, signatures) all go through pydantic's `TypeAdapter` over the entity's own
dataclass, so there is one shape and one place that makes it:

- a dataclass dumps as its fields, by name, plus the properties its `json_shape(computed=...)`
  names (a service's `url`, a version's `ref`);
- tuples become lists, dict keys strings, datetimes ISO 8601 with their offset (`Z` for
  UTC: every stored time is aware);
- `load(T, data)` reverses `dump`, ignoring computed fields and unknown keys, and runs the
  type's `json_shape(upgrade=...)` first, so documents stored in an older shape still load.

pydantic is imported on first use, and each adapter is built the first time its type is
dumped or loaded, so a command that prints no JSON pays for neither.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema

T = TypeVar("T")


@cache
def adapter(kind: Any) -> TypeAdapter[Any]:
    """The (cached) adapter for `kind`: an entity class, or a type such as `list[Run]`."""
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def dump(obj: Any, kind: Any = None) -> Any:
    """`obj` as JSON-ready values: dicts, lists, strings, numbers, booleans and None.

    Entities dump through their own class's adapter wherever they sit (in a list, or a
    dict a command or route assembles around them); `kind` names the type to dump as
    when it is not the object's own (a TypedDict report, `list[Run]`).
    """
    if kind is not None:
        return adapter(kind).dump_python(obj, mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return adapter(type(obj)).dump_python(obj, mode="json")
    if isinstance(obj, Mapping):
        return {str(k) if not isinstance(k, str) else k: dump(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [dump(v) for v in obj]
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    return adapter(Any).dump_python(obj, mode="json")


def load(kind: type[T], data: Any) -> T:
    """`data` (as `dump` made it, or an older stored shape) back into a `kind`.

    Raises:
        pydantic.ValidationError: `data` is not a `kind`.
    """
    any_kind: Any = kind  # a class is hashable, whatever the stubs say of type[T]
    return typing.cast(T, adapter(any_kind).validate_python(data))


def json_shape(
    *,
    computed: tuple[str, ...] = (),
    upgrade: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Any:
    """An entity's `__get_pydantic_core_schema__`: its fields, plus the properties named
    in `computed` (dumped, documented in the OpenAPI document, ignored when loaded), and
    `upgrade`, which turns a stored document of an older shape into the current one
    before it is loaded.

        @dataclass(frozen=True)
        class Service:
            host: str
            port: int

            @property
            def url(self) -> str: ...

            __get_pydantic_core_schema__ = json_shape(computed=("url",))

    Entities stay free of pydantic: this is called only when pydantic builds a schema.
    """

    def hook(cls: type[Any], source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema

        schema = handler(source)
        if computed:
            target = handler.resolve_ref_schema(schema)
            assert target["type"] == "dataclass", f"{cls.__name__} is not a dataclass"
            fields = target["schema"]
            assert fields["type"] == "dataclass-args"
            have = {c["property_name"] for c in fields.get("computed_fields", [])}
            extra = [
                core_schema.computed_field(name, handler.generate_schema(_returns(cls, name)))
                for name in computed
                if name not in have
            ]
            fields["computed_fields"] = [*fields.get("computed_fields", []), *extra]
        if upgrade is not None:
            return core_schema.no_info_before_validator_function(_upgrading(upgrade), schema)
        return schema

    return classmethod(hook)


def _returns(cls: type[Any], name: str) -> Any:
    prop = getattr(cls, name, None)
    if not isinstance(prop, property) or prop.fget is None:
        raise TypeError(f"{cls.__name__}.{name} is not a property, so it cannot be dumped")
    return typing.get_type_hints(prop.fget)["return"]


def _upgrading(upgrade: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[Any], Any]:
    def before(value: Any) -> Any:
        # An instance (a route's return value, checked against its response model) is
        # already current; only a document may be of an older shape.
        return upgrade(dict(value)) if isinstance(value, Mapping) else value

    return before
