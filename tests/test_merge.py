from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioconfig._merge import Memo, build, thaw


def test_later_layers_override_and_mappings_deep_merge() -> None:
    root, flat, _ = build(
        [
            {"db": {"host": "localhost", "port": 5432}, "debug": False, "tags": [1, 2]},
            {"db": {"port": 6543}, "tags": [3]},
            {"debug": True},
        ]
    )
    assert thaw(root) == {
        "db": {"host": "localhost", "port": 6543},
        "debug": True,
        "tags": [3],
    }
    assert flat["db.port"] == 6543
    assert flat["db.host"] == "localhost"
    assert flat["db"] == {"host": "localhost", "port": 6543}


def test_a_scalar_replaces_a_mapping_and_a_mapping_replaces_a_scalar() -> None:
    _, flat, _ = build([{"a": {"x": 1}}, {"a": 5}])
    assert flat == {"a": 5}
    _, flat, _ = build([{"a": {"x": 1}}, {"a": 5}, {"a": {"y": 2}}])
    # Only the mappings after the last scalar are merged.
    assert thaw(flat["a"]) == {"y": 2}
    assert "a.x" not in flat


def test_inputs_are_never_modified() -> None:
    first = {"a": {"b": [1, 2]}}
    second = {"a": {"c": 3}}
    build([first, second])
    assert first == {"a": {"b": [1, 2]}}
    assert second == {"a": {"c": 3}}


def test_freezing_makes_everything_read_only() -> None:
    root, flat, _ = build([{"a": {"list": [1, {"x": [2]}], "set": {1, 2}}}])
    nested = flat["a"]
    assert isinstance(nested, MappingProxyType)
    with pytest.raises(TypeError):
        nested["new"] = 1  # type: ignore[index]
    assert flat["a.list"] == (1, MappingProxyType({"x": (2,)}))
    assert flat["a.set"] == frozenset({1, 2})
    assert isinstance(root, MappingProxyType)


def test_non_string_keys_become_strings() -> None:
    data: dict[Any, Any] = {1: {True: "x"}}
    _, flat, _ = build([data])
    assert flat["1.True"] == "x"


def changes(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> frozenset[str]:
    """The keys ``build`` reports going from the layers ``before`` to the layers ``after``."""
    root, flat, _ = build(before)
    return build(after, (root, flat))[2]


def test_changes_name_added_removed_and_modified_leaves() -> None:
    old = {"a": {"b": 1, "c": 2}, "d": 1, "gone": {"x": 1}}
    new = {"a": {"b": 1, "c": 3}, "d": True, "e": 0}
    assert changes([old], [new]) == {"a.c", "d", "e", "gone.x"}
    assert changes([new], [new]) == frozenset()
    assert changes([old], []) == {"a.b", "a.c", "d", "gone.x"}


def test_changes_see_type_changes_inside_equal_sections() -> None:
    old = {"a": {"b": {"c": 1, "d": [1]}, "e": 1}}
    new = {"a": {"b": {"c": True, "d": [1]}, "e": 1}}
    assert old == new  # Python's == alone would call these the same
    assert changes([old], [new]) == {"a.b.c"}
    assert changes([old], [{"a": {"e": 1, "b": {"d": [1], "c": 1.0}}}]) == {"a.b.c"}
    in_list = {"s": {"ports": [1, {"tls": True}]}}
    assert changes([in_list], [{"s": {"ports": [1, {"tls": 1}]}}]) == {"s.ports"}
    assert changes([in_list], [{"s": {"ports": [True, {"tls": True}]}}]) == {"s.ports"}
    mixed = {"s": {"x": 1, "y": True, "z": 2.0}}
    assert changes([mixed], [{"s": {"x": True, "y": 1, "z": 2.0}}]) == {"s.x", "s.y"}


def test_changes_see_empty_mappings_fill_and_empty() -> None:
    assert changes([{"a": {}, "b": {"x": 1}}], [{"a": {"x": 1}, "b": {}}]) == {
        "a",
        "a.x",
        "b",
        "b.x",
    }


def test_changes_see_a_leaf_turning_into_a_branch() -> None:
    leaf: dict[str, Any] = {"db": "sqlite://"}
    branch: dict[str, Any] = {"db": {"url": "sqlite://"}}
    assert changes([leaf], [branch]) == {"db", "db.url"}
    assert changes([branch], [leaf]) == {"db", "db.url"}


def test_unchanged_sections_are_shared_with_the_previous_tree() -> None:
    data = {f"s{i}": {"k": i, "l": [i]} for i in range(3)}
    root, flat, _ = build([data])
    new_root, new_flat, keys = build([{**data, "s1": {"k": -1, "l": [1]}}], (root, flat))
    assert keys == {"s1.k"}
    assert new_root["s0"] is root["s0"] and new_root["s2"] is root["s2"]
    assert new_root["s1"]["l"] is root["s1"]["l"]  # even an equal leaf is kept
    assert flat["s1.k"] == 1  # the previous index is untouched
    assert new_flat["s1.k"] == -1


def test_nan_is_not_a_change_every_time() -> None:
    assert changes([{"x": float("nan")}], [{"x": float("nan")}]) == frozenset()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text("abc", min_size=1, max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text("abcd", min_size=1, max_size=3), json_values, max_size=5)


@given(json_objects)
def test_a_single_layer_round_trips(data: dict[str, Any]) -> None:
    root, _, _ = build([data])
    assert thaw(root) == data


@given(json_objects, json_objects)
def test_merging_matches_a_reference_implementation(a: dict[str, Any], b: dict[str, Any]) -> None:
    def reference(x: Any, y: Any) -> Any:
        if isinstance(x, dict) and isinstance(y, dict):
            out = dict(x)
            for key, value in y.items():
                out[key] = reference(x[key], value) if key in x else value
            return out
        return y

    root, flat, _ = build([a, b])
    expected = reference(a, b)
    assert thaw(root) == expected
    # Every flat key points at the value found by walking the nested tree.
    for path, value in flat.items():
        node: Any = root
        for part in path.split("."):
            node = node[part]
        assert node is value or node == value


def is_branch(value: Any) -> bool:
    return type(value) is MappingProxyType and len(value) > 0


def leaves(flat: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in flat.items() if not is_branch(v)}


def same(a: Any, b: Any) -> bool:
    """Equal, with the same types all the way down (so 1, 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def oracle(old_flat: dict[str, Any], new_flat: dict[str, Any]) -> set[str]:
    """Changed leaves, the slow obvious way: compare every leaf of two full indexes."""
    a, b = leaves(old_flat), leaves(new_flat)
    return {k for k in a.keys() | b.keys() if k not in a or k not in b or not same(a[k], b[k])}


@given(st.lists(json_objects, max_size=3), st.lists(json_objects, max_size=3))
def test_an_incremental_build_equals_a_full_one(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> None:
    old_root, old_flat, _ = build(before)
    kept = dict(old_flat)
    root, flat, keys = build(after, (old_root, old_flat))
    full_root, full_flat, _ = build(after)
    assert same(root, full_root)  # never a stale value, not even a stale type
    assert flat.keys() == full_flat.keys()
    assert all(same(flat[k], full_flat[k]) for k in flat)
    assert keys == oracle(old_flat, full_flat)
    assert old_flat == kept  # the previous snapshot's index is never touched
    assert build(after, (full_root, full_flat))[2] == frozenset()


@given(
    st.lists(json_objects, min_size=2, max_size=4),
    st.lists(st.one_of(st.sampled_from(["same", "copy"]), json_objects), min_size=4, max_size=4),
)
def test_a_memo_shares_only_sections_whose_layers_did_not_change(
    before: list[dict[str, Any]], replacements: list[dict[str, Any] | str]
) -> None:
    # "same": the very same object, as an unchanged source's; "copy": equal but new, as a
    # re-read source's; else new data.
    after: list[dict[str, Any]] = [
        layer if new == "same" else copy.deepcopy(layer) if isinstance(new, str) else new
        for layer, new in zip(before, replacements[: len(before)], strict=True)
    ]
    memo = Memo()
    old_root, old_flat, _ = build(before, None, memo)
    root, flat, keys = build(after, (old_root, old_flat), memo)
    full_root, full_flat, _ = build(after)
    assert same(root, full_root)
    assert flat.keys() == full_flat.keys()
    assert all(same(flat[k], full_flat[k]) for k in flat)
    assert keys == oracle(old_flat, full_flat)


def test_a_memo_reuses_a_section_merged_from_unchanged_layers() -> None:
    base = {"s": {"a": 1, "b": 2}, "x": {"k": 1}}
    over = {"s": {"b": 3}}
    memo = Memo()
    root, flat, _ = build([base, over, {"x": {"k": 1}}], None, memo)
    again, _, keys = build([base, over, {"x": {"k": 2}}], (root, flat), memo)
    assert again["s"] is root["s"] and keys == {"x.k"}


def test_a_memo_sees_a_type_change_in_an_equal_looking_piece() -> None:
    base = {"s": {"a": 1, "b": [1, 2]}}
    over = {"s": {"c": True}}
    memo = Memo()
    root, flat, _ = build([base, over], None, memo)
    # A re-read source gives new, equal-looking pieces: equal ones are shared, others are not.
    copy = {"s": {"a": 1, "b": [1, 2]}}
    again, flat2, keys = build([copy, {"s": {"c": True}}], (root, flat), memo)
    assert again["s"] is root["s"] and keys == frozenset()
    flipped, flat3, keys = build([{"s": {"a": 1.0, "b": [1, 2]}}, over], (again, flat2), memo)
    assert keys == {"s.a"} and type(flipped["s"]["a"]) is float
    _, _, keys = build([{"s": {"a": 1.0, "b": [1, True]}}, over], (flipped, flat3), memo)
    assert keys == {"s.b"}
