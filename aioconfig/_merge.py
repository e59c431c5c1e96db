"""Pure layering: source payloads -> one frozen tree plus a flat dotted index, and diffs of those.

No I/O and no anyio here. ``build`` merges, freezes and indexes in a single walk, because a
10,000-key refresh spends most of its time right here.

Merge rule: later layers override earlier ones; where every value for a key (from the last
non-mapping value on) is a mapping, they are merged key by key; any other value replaces.
Freezing: mappings become read-only ``MappingProxyType`` views over private dicts, lists and
tuples become tuples, sets become frozensets; non-string keys are turned into strings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

__all__ = ("build", "diff", "is_branch", "thaw")

_FrozenMap = MappingProxyType
_MISSING: Any = object()


def build(layers: Sequence[Mapping[str, Any]]) -> tuple[Mapping[str, Any], dict[str, Any]]:
    """Merge ``layers`` (earliest first) into a frozen tree and its flat ``{"a.b.c": value}`` index.

    The index holds every path, intermediate mappings included, so any dotted read is one dict
    lookup. Inputs are never modified.
    """
    flat: dict[str, Any] = {}
    present = [layer for layer in layers if layer]
    if not present:
        return _FrozenMap({}), flat
    if len(present) == 1:
        return _freeze_map(present[0], "", flat), flat
    return _merge_maps(present, "", flat), flat


def _merge_maps(layers: list[Mapping[Any, Any]], prefix: str, flat: dict[str, Any]) -> Any:
    keys: dict[Any, None] = {}
    for layer in layers:
        keys.update(dict.fromkeys(layer))
    out: dict[str, Any] = {}
    for key in keys:
        # The values for this key that survive: the last non-mapping and every mapping after it.
        tail: list[Mapping[Any, Any]] = []
        last: Any = _MISSING
        for layer in layers:
            value = layer.get(key, _MISSING)
            if value is _MISSING:
                continue
            if isinstance(value, Mapping):
                tail.append(value)
                last = _MISSING
            else:
                tail.clear()
                last = value
        name = key if type(key) is str else str(key)
        path = prefix + name
        if last is not _MISSING:
            frozen = _freeze(last, path, flat)
        elif len(tail) == 1:
            frozen = _freeze_map(tail[0], path + ".", flat)
        else:
            frozen = _merge_maps(tail, path + ".", flat)
        out[name] = frozen
        flat[path] = frozen
    return _FrozenMap(out)


def _freeze_map(mapping: Mapping[Any, Any], prefix: str, flat: dict[str, Any]) -> Any:
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = key if type(key) is str else str(key)
        path = prefix + name
        kind = type(value)
        if kind is str or kind is int or kind is float or kind is bool or value is None:
            frozen = value
        elif kind is dict or isinstance(value, Mapping):
            frozen = _freeze_map(value, path + ".", flat)
        else:
            frozen = _freeze_value(value)
        out[name] = frozen
        flat[path] = frozen
    return _FrozenMap(out)


def _freeze(value: Any, path: str, flat: dict[str, Any]) -> Any:
    if isinstance(value, Mapping):
        return _freeze_map(value, path + ".", flat)
    return _freeze_value(value)


def _freeze_value(value: Any) -> Any:
    """Freeze a value that is not indexed by path (list items, set members, scalars)."""
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(item) for item in value)
    if isinstance(value, Mapping):
        return _FrozenMap(
            {(k if type(k) is str else str(k)): _freeze_value(v) for k, v in value.items()}
        )
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze_value(item) for item in value)
    return value


def is_branch(value: Any) -> bool:
    """Whether a flat-index value is an inner node (a non-empty mapping), not a leaf."""
    return type(value) is _FrozenMap and len(value) > 0


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> frozenset[str]:
    """Dotted leaf keys added, removed or modified between two frozen trees (from ``build``).

    A leaf is any value but a non-empty mapping. ``1``, ``1.0`` and ``True`` differ here: a value
    that changes type has changed. Equal sections are recognised by C-level comparisons, so an
    unchanged subtree costs little more than one ``==``.
    """
    changed: set[str] = set()
    _diff(old, new, "", changed)
    return frozenset(changed)


def _diff(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str, out: set[str]) -> None:
    if (
        old == new
        and list(old) == list(new)
        and list(map(type, old.values())) == list(map(type, new.values()))
    ):
        # Equal, in the same order, with the same types at this level: only a type change
        # deeper down (1 -> 1.0 inside a nested section) can be left to find.
        for key, value in new.items():
            if type(value) is _FrozenMap and value:
                before = old[key]
                if before is not value:
                    _diff(before, value, prefix + key + ".", out)
        return
    for key, value in new.items():
        before = old.get(key, _MISSING)
        if before is value:
            continue
        path = prefix + key
        if before is _MISSING:
            _leaves(value, path, out)
            continue
        kind, kind_before = type(value), type(before)
        if kind is _FrozenMap and kind_before is _FrozenMap:
            if bool(value) != bool(before):  # an empty mapping is a leaf
                out.add(path)
            _diff(before, value, path + ".", out)
        elif kind is not kind_before or before != value:
            out.add(path)
            if kind_before is _FrozenMap:
                _leaves(before, path, out)
            if kind is _FrozenMap:
                _leaves(value, path, out)
    for key in old.keys() - new.keys():
        _leaves(old[key], prefix + key, out)


def _leaves(value: Any, path: str, out: set[str]) -> None:
    if type(value) is _FrozenMap and value:
        for key, item in value.items():
            _leaves(item, path + "." + key, out)
    else:
        out.add(path)


def thaw(value: Any) -> Any:
    """A deep, mutable copy of a frozen value: mappings become dicts, tuples lists."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    if isinstance(value, frozenset):
        return {thaw(item) for item in value}
    return value
