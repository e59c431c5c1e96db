"""A list that refuses to change, for consumers that insist on ``isinstance(x, list)``.

Snapshots freeze lists into tuples. Microsoft's ``featuremanagement`` reads
``feature_management.feature_flags`` only if it is a real ``list`` (a tuple switches every flag
off, silently), and it writes into the flag definitions it reads (it adds ``feature_name`` to
each client filter). So :class:`FrozenList` is a ``list`` whose every mutating method raises,
and whose items are handed out as fresh copies: whoever changes one changes their own.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from typing import Any, NoReturn, SupportsIndex, overload

__all__ = ("FrozenList",)


class FrozenList(list):  # type: ignore[type-arg]
    """A read-only ``list`` of JSON-like items; reading an item gives a deep copy of it."""

    __slots__ = ()

    def __init__(self, items: Iterable[Any] = ()) -> None:
        super().__init__(copy.deepcopy(list(items)))

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("this list is part of a configuration snapshot and cannot change")

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse

    @overload
    def __getitem__(self, index: SupportsIndex) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: SupportsIndex | slice) -> Any:
        return copy.deepcopy(super().__getitem__(index))

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            yield copy.deepcopy(item)

    def __reversed__(self) -> Iterator[Any]:
        for item in super().__reversed__():
            yield copy.deepcopy(item)

    def copy(self) -> list[Any]:
        return list(self)

    def __hash__(self) -> int:  # type: ignore[override]
        raise TypeError("unhashable type: 'FrozenList'")

    def __repr__(self) -> str:
        return f"FrozenList({list.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self),))

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenList:
        return self  # it never changes
