"""Bounds on what one caller may store, so that nothing stored breaks a read for another.

Every listing reads back what callers stored (a run's params, a sweep's space, an A/B
test's feedback), and serializes it again: a document nested a few hundred levels deep
cannot be (pydantic stops at 255 levels, the standard library's `json` near 1,000), so
one such run would make `GET /runs` fail for every user. The concepts check what they
are given with `check_document` before they store it, whatever the transport; reads pass
stored documents through `bounded`, which cuts what was stored before these limits held.

No I/O and no imports beyond the errors: the inference apps use it too.
"""

from __future__ import annotations

from typing import Any

from assay.errors import InvalidArgumentError

MAX_DEPTH = 32  # levels of objects and arrays in a stored document
MAX_DOCUMENT_BYTES = 256 * 1024  # params, a sweep's space, one feedback's label, as JSON
MAX_NAME_LENGTH = 255  # a metric's or a param's name: a database column's width
# An A/B test's feedback: a request id, and a reward or a label (one per predicted row).
FEEDBACK_BODY_BYTES = MAX_DOCUMENT_BYTES + 4096
CUT = "…"  # what `bounded` leaves where a stored document went deeper than MAX_DEPTH


def check_document(
    value: Any, what: str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_DOCUMENT_BYTES
) -> None:
    """Refuse a JSON-like document (dicts, lists, scalars) nested or sized beyond the bounds.

    Walks without recursion and stops at the first bound crossed, so a document of any
    depth, or a YAML alias bomb that expands to billions of nodes, costs at most a bound's
    worth of work. Sizes are counted as compact JSON would spell them (about: strings are
    counted in UTF-8 without their escapes).

    Raises:
        InvalidArgumentError: deeper than `max_depth` or larger than `max_bytes`; the
            message names `what` and the limit, `details` hold `limit` and `what`.
    """
    size = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list | tuple):
            if depth >= max_depth:
                raise too_deep(what, max_depth)
            size += 2 + max(len(node) - 1, 0)  # brackets and commas
            if isinstance(node, dict):
                for key, item in node.items():
                    size += _scalar_size(str(key)) + 1
                    stack.append((item, depth + 1))
            else:
                stack.extend((item, depth + 1) for item in node)
        else:
            size += _scalar_size(node)
        if size > max_bytes:
            raise InvalidArgumentError(
                f"{what}: more than {max_bytes:,} bytes as JSON; Assay stores at most that. "
                "Store large values as data (`assay data commit`) and name the version.",
                what=what,
                limit=max_bytes,
            )


def too_deep(what: str, max_depth: int = MAX_DEPTH) -> InvalidArgumentError:
    """The error for a document nested beyond `max_depth` (also for one a parser gave up
    on: `json.loads` and YAML raise RecursionError near a thousand levels)."""
    return InvalidArgumentError(
        f"{what}: more than {max_depth} levels of nested objects and arrays; "
        f"Assay stores at most {max_depth}. Flatten the structure.",
        what=what,
        limit=max_depth,
    )


def bounded(value: Any, max_depth: int = MAX_DEPTH) -> Any:
    """A stored document as it may be read back: `value` itself when it is within
    `max_depth`, else a copy whose objects and arrays below that depth are replaced by
    `CUT`, so that listing it cannot fail (documents stored before the bounds held)."""
    if not isinstance(value, dict | list) or _within(value, max_depth):
        return value
    return _cut(value, max_depth)


def _within(value: Any, max_depth: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth >= max_depth:
                return False
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))
    return True


def _cut(node: Any, room: int) -> Any:
    # Recursion is bounded by `room` (MAX_DEPTH), not by how deep the document goes.
    if not isinstance(node, dict | list):
        return node
    if room == 0:
        return CUT
    if isinstance(node, dict):
        return {key: _cut(item, room - 1) for key, item in node.items()}
    return [_cut(item, room - 1) for item in node]


def _scalar_size(node: Any) -> int:
    if isinstance(node, str):
        return len(node.encode("utf-8", "surrogatepass")) + 2
    if node is None or isinstance(node, bool):
        return 5
    return len(repr(node))
