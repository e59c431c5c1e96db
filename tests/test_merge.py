from __future__ import annotations

from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioconfig._merge import build, diff, is_branch, thaw


def test_later_layers_override_and_mappings_deep_merge() -> None:
    root, flat = build(
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
    _, flat = build([{"a": {"x": 1}}, {"a": 5}])
    assert flat == {"a": 5}
    _, flat = build([{"a": {"x": 1}}, {"a": 5}, {"a": {"y": 2}}])
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
    root, flat = build([{"a": {"list": [1, {"x": [2]}], "set": {1, 2}}}])
    nested = flat["a"]
    assert isinstance(nested, MappingProxyType)
    with pytest.raises(TypeError):
        nested["new"] = 1  # type: ignore[index]
    assert flat["a.list"] == (1, MappingProxyType({"x": (2,)}))
    assert flat["a.set"] == frozenset({1, 2})
    assert isinstance(root, MappingProxyType)


def test_non_string_keys_become_strings() -> None:
    data: dict[Any, Any] = {1: {True: "x"}}
    _, flat = build([data])
    assert flat["1.True"] == "x"


def test_diff_reports_added_removed_and_modified_leaves() -> None:
    old, _ = build([{"a": {"b": 1, "c": 2}, "d": 1, "gone": {"x": 1}}])
    new, _ = build([{"a": {"b": 1, "c": 3}, "d": True, "e": 0}])
    assert diff(old, new) == {"a.c", "d", "e", "gone.x"}
    assert diff(new, new) == frozenset()


def test_diff_sees_type_changes_inside_equal_sections() -> None:
    old, _ = build([{"a": {"b": {"c": 1, "d": [1]}, "e": 1}}])
    new, _ = build([{"a": {"b": {"c": True, "d": [1]}, "e": 1}}])
    assert old == new  # Python's == alone would call these the same
    assert diff(old, new) == {"a.b.c"}
    reordered, _ = build([{"a": {"e": 1, "b": {"d": [1], "c": 1.0}}}])
    assert diff(old, reordered) == {"a.b.c"}


def test_diff_sees_empty_mappings_fill_and_empty() -> None:
    old, _ = build([{"a": {}, "b": {"x": 1}}])
    new, _ = build([{"a": {"x": 1}, "b": {}}])
    assert diff(old, new) == {"a", "a.x", "b", "b.x"}


def test_diff_sees_a_leaf_turning_into_a_branch() -> None:
    old, _ = build([{"db": "sqlite://"}])
    new, _ = build([{"db": {"url": "sqlite://"}}])
    assert diff(old, new) == {"db", "db.url"}
    assert diff(new, old) == {"db", "db.url"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text("abc", min_size=1, max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)
json_objects = st.dictionaries(st.text("abcd", min_size=1, max_size=3), json_values, max_size=5)


@given(json_objects)
def test_a_single_layer_round_trips(data: dict[str, Any]) -> None:
    root, _ = build([data])
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

    root, flat = build([a, b])
    expected = reference(a, b)
    assert thaw(root) == expected
    # Every flat key points at the value found by walking the nested tree.
    for path, value in flat.items():
        node: Any = root
        for part in path.split("."):
            node = node[part]
        assert node is value or node == value


@given(json_objects, json_objects)
def test_diff_names_exactly_the_leaves_that_differ(a: dict[str, Any], b: dict[str, Any]) -> None:
    ra, fa = build([a])
    rb, fb = build([b])
    assert diff(ra, ra) == frozenset()
    assert diff(ra, build([a])[0]) == frozenset()
    leaves_a = {k: v for k, v in fa.items() if not is_branch(v)}
    leaves_b = {k: v for k, v in fb.items() if not is_branch(v)}
    expected = {
        k
        for k in leaves_a.keys() | leaves_b.keys()
        if k not in leaves_a
        or k not in leaves_b
        or type(leaves_a[k]) is not type(leaves_b[k])
        or leaves_a[k] != leaves_b[k]
    }
    assert diff(ra, rb) == expected
