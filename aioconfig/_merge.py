"""Pure layering: source payloads -> one frozen tree, its flat dotted index, and what changed.

No I/O and no anyio here. ``build`` merges, freezes, indexes and diffs in a single walk, because
a 10,000-key refresh spends most of its time right here.

Merge rule: later layers override earlier ones; where every value for a key (from the last
non-mapping value on) is a mapping, they are merged key by key; any other value replaces.
Freezing: mappings become read-only ``MappingProxyType`` views over private dicts, lists and
tuples become tuples, sets become frozensets; non-string keys are turned into strings.

Given the previous tree, ``build`` shares every section that did not change: an equal section
is recognised by C-level comparisons, its frozen subtree is reused, and its entries in the flat
index come from a copy of the previous index. A refresh that changes one value in a 10,000-key
file therefore re-freezes one section, not the whole file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from ._frozen import FrozenList

__all__ = ("Memo", "build", "patch", "thaw")

_FrozenMap = MappingProxyType
_MISSING: Any = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})
_NUMBERS = frozenset({int, float, bool})  # the types that compare equal across types (1 == 1.0)


class Memo:
    """What ``build`` merged last time, so an unchanged multi-layer section is reused.

    For each section several layers contributed to: the layers' pieces and the frozen result.
    When every piece is the very object it was last time (its source did not change) or equal
    to it, types included (a changed source's untouched sections), and the previous tree still
    holds that result, the section is shared as it is.
    """

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tuple[Mapping[Any, Any], ...], Any]] = {}


def build(
    layers: Sequence[Mapping[str, Any]],
    previous: tuple[Mapping[str, Any], dict[str, Any]] | None = None,
    memo: Memo | None = None,
) -> tuple[Mapping[str, Any], dict[str, Any], frozenset[str]]:
    """Merge ``layers`` (earliest first) into a frozen tree, its flat index and the changed keys.

    The flat index (``{"a.b.c": value}``) holds every path, intermediate mappings included, so
    any dotted read is one dict lookup. ``previous`` is the ``(tree, flat)`` of the snapshot this
    one follows; the changed keys are the dotted leaf keys added, removed or modified since then
    (all leaves when there is no previous). A leaf is any value but a non-empty mapping, and a
    value that changes type (``1`` -> ``1.0`` -> ``True``) has changed. Inputs are never modified.
    ``memo`` (kept by the caller from build to build) lets sections merged from several layers
    be shared too when none of their layers changed.
    """
    changed: set[str] = set()
    if previous is None:
        old: Any = None
        flat: dict[str, Any] = {}
    else:
        old, old_flat = previous
        flat = old_flat.copy()
    present = [layer for layer in layers if layer]
    if not present:
        root: Any = _FrozenMap({})
        if old is not None:
            for key, value in old.items():
                _drop(value, key, flat, changed)
    elif len(present) == 1:
        root = _freeze_map(present[0], "", flat, old, changed)
    else:
        seen: dict[str, tuple[tuple[Mapping[Any, Any], ...], Any]] = {}
        known = memo.entries if memo is not None else None
        root = _merge_maps(present, "", flat, old, changed, known, seen)
        if memo is not None:
            memo.entries = seen
    return root, flat, frozenset(changed)


_Entries = dict[str, tuple[tuple[Mapping[Any, Any], ...], Any]]


def _merge_maps(
    layers: list[Mapping[Any, Any]],
    prefix: str,
    flat: dict[str, Any],
    old: Any,
    changed: set[str],
    known: _Entries | None = None,
    seen: _Entries | None = None,
) -> Any:
    keys: dict[Any, None] = {}
    for layer in layers:
        keys.update(dict.fromkeys(layer))
    if old is not None:  # what went goes first (see _freeze_map)
        for gone in old.keys() - keys.keys():
            _drop(old[gone], prefix + gone, flat, changed)
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
        before = _MISSING if old is None else old.get(name, _MISSING)
        if last is not _MISSING or len(tail) == 1:
            out[name] = _place(tail[0] if last is _MISSING else last, path, flat, before, changed)
            continue
        # Several mappings to merge: never equal to one previous section as they stand, but
        # the same pieces as last time give the same section.
        pieces = tuple(tail)
        if known is not None and seen is not None:
            entry = known.get(path)
            if (
                entry is not None
                and entry[1] is before
                and len(entry[0]) == len(pieces)
                and all(a is b or _same(a, b) for a, b in zip(entry[0], pieces, strict=True))
            ):
                seen[path] = (pieces, before)
                out[name] = before  # shared: its flat entries are already in the copied index
                continue
        merged_old = before if type(before) is _FrozenMap else None
        frozen = _merge_maps(tail, path + ".", flat, merged_old, changed, known, seen)
        _mapping_replaced(frozen, before, path, flat, changed)
        out[name] = flat[path] = frozen
        if seen is not None:
            seen[path] = (pieces, frozen)
    return _FrozenMap(out)


def _freeze_map(
    mapping: Mapping[Any, Any], prefix: str, flat: dict[str, Any], old: Any, changed: set[str]
) -> Any:
    # Scalars, by far the most common values, are handled inline: this loop is the hot path.
    out: dict[str, Any] = {}
    if old is None:
        for key, value in mapping.items():
            name = key if type(key) is str else str(key)
            path = prefix + name
            if type(value) in _SCALARS:
                out[name] = flat[path] = value
                changed.add(path)
            else:
                out[name] = _place(value, path, flat, _MISSING, changed)
        return _FrozenMap(out)
    # What went goes first: a key holding a dot ("a.b") may now stand where nested keys did,
    # and dropping those afterwards would take its index entry with them.
    for gone in old.keys() - mapping.keys():
        _drop(old[gone], prefix + gone, flat, changed)
    for key, value in mapping.items():
        name = key if type(key) is str else str(key)
        before = old.get(name, _MISSING)
        if type(value) in _SCALARS and type(before) is type(value) and before == value:
            out[name] = before  # unchanged, and already in the copied index
            continue
        out[name] = _place(value, prefix + name, flat, before, changed)
    return _FrozenMap(out)


def _place(value: Any, path: str, flat: dict[str, Any], before: Any, changed: set[str]) -> Any:
    """Freeze ``value`` at ``path`` (where ``before`` was), index it, and note what changed."""
    kind = type(value)
    if kind not in _SCALARS:
        if isinstance(value, Mapping):
            if type(before) is _FrozenMap:
                if _same(before, value):
                    return before  # shared: its flat entries are already in the copied index
                frozen = _freeze_map(value, path + ".", flat, before, changed)
            else:
                frozen = _freeze_map(value, path + ".", flat, None, changed)
            _mapping_replaced(frozen, before, path, flat, changed)
            flat[path] = frozen
            return frozen
        value = _freeze_value(value)
        kind = type(value)
    # A leaf.
    if before is _MISSING:
        changed.add(path)
    elif type(before) is _FrozenMap:
        for key, item in before.items():  # a branch (or an empty mapping) became a leaf
            _drop(item, path + "." + key, flat, changed)
        changed.add(path)
    elif kind is not type(before) or not _equal_typed(before, value):
        changed.add(path)
    else:
        value = before  # equal: keep the old object, so later comparisons stop at identity
    flat[path] = value
    return value


def _mapping_replaced(
    frozen: Any, before: Any, path: str, flat: dict[str, Any], changed: set[str]
) -> None:
    """Note the changes at ``path`` itself when a mapping lands where ``before`` was."""
    if type(before) is _FrozenMap:
        if bool(before) != bool(frozen):  # an empty mapping is a leaf
            changed.add(path)
    elif before is not _MISSING:
        changed.add(path)  # a leaf became a mapping; its new leaves were noted on the way
    elif not frozen:
        changed.add(path)  # a new empty mapping is a new leaf


def _same(frozen: Any, raw: Mapping[Any, Any]) -> bool:
    """Whether a fresh ``raw`` section equals a previous frozen one, types included.

    Mostly ``==``, which does the deep work in C; it cannot see ``1`` turn into ``1.0`` or
    ``True``, so numbers get a type check, item by item only where a section mixes number types.
    A list never equals the tuple it was frozen into, so sections holding lists are compared
    item by item.
    """
    raw_types = set(map(type, raw.values()))
    if frozen != raw:
        if raw_types <= _SCALARS or len(frozen) != len(raw):
            return False
        for key, value in raw.items():
            before = frozen.get(key, _MISSING)
            kind = type(value)
            if kind is list or kind is tuple:
                if type(before) is not tuple or not _equal_typed(before, value):
                    return False
            elif isinstance(value, Mapping):
                if type(before) is not _FrozenMap or not _same(before, value):
                    return False
            elif kind is not type(before) or before != value:
                return False
        return True
    numbers = raw_types & _NUMBERS
    if numbers != set(map(type, frozen.values())) & _NUMBERS:
        return False
    if len(numbers) > 1:
        for key, value in raw.items():
            if type(value) in _NUMBERS and type(frozen[key]) is not type(value):
                return False
    if not raw_types <= _SCALARS:
        for key, value in raw.items():
            if type(value) in _SCALARS:
                continue
            if isinstance(value, Mapping):
                if not _same(frozen[key], value):
                    return False
            elif not _equal_typed(frozen[key], value):
                return False
    return True


def _equal_typed(a: Any, b: Any) -> bool:
    """``==`` for frozen against raw values that also tells ``1``, ``1.0`` and ``True`` apart."""
    if isinstance(a, (tuple, list)):
        return isinstance(b, (tuple, list)) and len(a) == len(b) and all(map(_equal_typed, a, b))
    if isinstance(a, Mapping):
        return (
            isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(_equal_typed(a[key], b[key]) for key in a)
        )
    return type(a) is type(b) and (a == b or _both_nan(a, b))


def _drop(value: Any, path: str, flat: dict[str, Any], changed: set[str]) -> None:
    """Remove ``path`` and everything under it from the index, noting the removed leaves."""
    flat.pop(path, None)
    if type(value) is _FrozenMap and value:
        for key, item in value.items():
            _drop(item, path + "." + key, flat, changed)
    else:
        changed.add(path)


def _both_nan(a: Any, b: Any) -> bool:
    return type(a) is float and type(b) is float and math.isnan(a) and math.isnan(b)


def _freeze_value(value: Any) -> Any:
    """Freeze a value that is not indexed by path (list items, set members, scalars)."""
    if type(value) is FrozenList:
        return value  # frozen already, and a list on purpose (see aioconfig._frozen)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze_value(item) for item in value)
    if isinstance(value, Mapping):
        return _FrozenMap(
            {(k if type(k) is str else str(k)): _freeze_value(v) for k, v in value.items()}
        )
    if isinstance(value, (set, frozenset)):
        return frozenset(_freeze_value(item) for item in value)
    return value


def thaw(value: Any) -> Any:
    """A deep, mutable copy of a frozen value: mappings become dicts, tuples lists."""
    if isinstance(value, Mapping):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, (tuple, FrozenList)):
        return [thaw(item) for item in value]
    if isinstance(value, frozenset):
        return {thaw(item) for item in value}
    return value


def patch(
    root: Mapping[str, Any],
    flat: dict[str, Any],
    values: Mapping[str, Any],
    changed: set[str],
    old_flat: Mapping[str, Any] | None,
) -> Mapping[str, Any]:
    """``root`` with each dotted path in ``values`` set, and ``flat`` and ``changed`` to match.

    For what is decided after the merge (filled-in ``@format`` templates, validators' defaults
    and casts): only the mappings on the way to each path are copied; the rest is shared.
    ``changed`` is corrected against ``old_flat`` (the previous snapshot's index), so a value
    that comes out as it was before is not reported as changed.
    """
    for path, value in values.items():
        root = _set_in(root, path.split("."), 0, value, flat, changed)
        for leaf, new in _leaves(flat[path], path):
            before = _MISSING if old_flat is None else old_flat.get(leaf, _MISSING)
            if before is not _MISSING and type(before) is type(new) and _equal_typed(before, new):
                changed.discard(leaf)
            else:
                changed.add(leaf)
    return root


def _leaves(value: Any, path: str) -> list[tuple[str, Any]]:
    if type(value) is _FrozenMap and value:
        return [pair for key, item in value.items() for pair in _leaves(item, f"{path}.{key}")]
    return [(path, value)]


def _set_in(
    node: Any, parts: list[str], depth: int, value: Any, flat: dict[str, Any], changed: set[str]
) -> Any:
    out = dict(node) if isinstance(node, Mapping) else {}
    key = parts[depth]
    path = ".".join(parts[: depth + 1])
    if depth == len(parts) - 1:
        before = out.get(key, _MISSING)
        if type(before) is _FrozenMap:
            for name, item in before.items():  # whatever was under the path is replaced
                _drop(item, path + "." + name, flat, set())
        if isinstance(value, Mapping):
            frozen: Any = _freeze_map(value, path + ".", flat, None, set())
        else:
            frozen = _freeze_value(value)
        out[key] = flat[path] = frozen
    else:
        out[key] = _set_in(out.get(key), parts, depth + 1, value, flat, changed)
    proxy = _FrozenMap(out)
    if depth:
        flat[".".join(parts[:depth])] = proxy
    return proxy
