"""The bounds on stored documents: refused past them with the limit named, and stored
documents read back cut to them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from assay.errors import InvalidArgumentError
from assay.limits import CUT, MAX_DEPTH, bounded, check_document


def nested(depth: int, leaf: Any = 1, kind: str = "list") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


@pytest.mark.parametrize("kind", ["list", "dict"])
def test_documents_within_the_depth_pass_and_one_level_more_is_refused(kind: str) -> None:
    check_document(nested(MAX_DEPTH, kind=kind), "Params")
    with pytest.raises(InvalidArgumentError, match=f"more than {MAX_DEPTH} levels") as caught:
        check_document(nested(MAX_DEPTH + 1, kind=kind), "Params")
    assert caught.value.details == {"what": "Params", "limit": MAX_DEPTH}
    assert str(caught.value).startswith("Params:")


def test_a_document_of_any_depth_is_refused_without_recursing() -> None:
    with pytest.raises(InvalidArgumentError, match="levels"):
        check_document(nested(200_000), "The space")


def test_size_is_bounded_and_named() -> None:
    check_document({"x": "y" * 900}, "Params", max_bytes=1000)
    with pytest.raises(InvalidArgumentError, match="more than 1,000 bytes") as caught:
        check_document({"x": "y" * 1000}, "Params", max_bytes=1000)
    assert caught.value.details["limit"] == 1000


def test_an_alias_bomb_stops_at_the_size_bound() -> None:
    """YAML aliases share one object many times over: the walk stops at the bound."""
    layer: Any = ["lol"] * 10
    for _ in range(9):  # 10**10 strings if expanded
        layer = [layer] * 10
    with pytest.raises(InvalidArgumentError, match="bytes"):
        check_document({"a": layer}, "The space")


def test_bounded_returns_shallow_documents_as_they_are() -> None:
    doc = {"model": {"C": 1.0, "layers": [64, 32]}, "seed": 7}
    assert bounded(doc) is doc
    assert bounded("text") == "text"


def test_bounded_cuts_deep_stored_documents_so_they_serialize() -> None:
    deep = nested(900)  # a run stored before the bounds held
    cut = bounded(deep)
    json.dumps(cut)
    assert cut == nested(MAX_DEPTH, leaf=CUT)
    check_document(cut, "Params")
