"""User: who a flag is evaluated for."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NoReturn

__all__ = ("User",)

_EMPTY: Mapping[str, object] = MappingProxyType({})


class _Custom:
    """The key under which a user's attribute dict keeps its ``custom`` view: never a name."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<custom>"


_CUSTOM = _Custom()


class User:
    """The subject of an evaluation: an identifier plus the attributes targeting rules look at.

    >>> User("42", email="ada@example.com", custom={"plan": "pro", "logins": 7})

    ``Identifier``, ``Email`` and ``Country`` always come from the named arguments, even when
    ``custom`` has keys with those names (ConfigCat does the same). Custom values may be strings,
    numbers, datetimes (for the date comparators) or lists of strings (for the array comparators);
    other values are turned into text the way ConfigCat does.

    A User never changes, and is hashable when its custom values are.
    """

    # One dict holds everything a condition can name, so an evaluation looks each attribute up
    # once, and making a User sets a single slot: users are often made per request. Keys that are
    # not strings (``_CUSTOM``, the evaluator's percentage buckets) can never clash with a name.
    __slots__ = ("_attributes",)

    _attributes: dict[Any, object]

    def __init__(
        self,
        identifier: str,
        email: str | None = None,
        country: str | None = None,
        custom: Mapping[str, object] | None = None,
    ) -> None:
        if custom:
            custom_copy = dict(custom)
            attributes: dict[Any, object] = dict(custom_copy)
            attributes["Identifier"] = identifier
            attributes["Email"] = email
            attributes["Country"] = country
            attributes[_CUSTOM] = MappingProxyType(custom_copy)
        else:
            attributes = {"Identifier": identifier, "Email": email, "Country": country}
        _set_attributes(self, attributes)

    @property
    def identifier(self) -> str:
        return self._attributes["Identifier"]  # type: ignore[return-value]

    @property
    def email(self) -> str | None:
        return self._attributes["Email"]  # type: ignore[return-value]

    @property
    def country(self) -> str | None:
        return self._attributes["Country"]  # type: ignore[return-value]

    @property
    def custom(self) -> Mapping[str, object]:
        return self._attributes.get(_CUSTOM, _EMPTY)  # type: ignore[return-value]

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(f"User is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"User is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, User):
            return NotImplemented
        return (self.identifier, self.email, self.country, dict(self.custom)) == (
            other.identifier,
            other.email,
            other.country,
            dict(other.custom),
        )

    def __hash__(self) -> int:
        # TypeError for unhashable custom values (a list), like a tuple holding a list.
        return hash((self.identifier, self.email, self.country, frozenset(self.custom.items())))

    def __repr__(self) -> str:
        parts = [f"{self.identifier!r}"]
        if self.email is not None:
            parts.append(f"email={self.email!r}")
        if self.country is not None:
            parts.append(f"country={self.country!r}")
        if self.custom:
            parts.append(f"custom={dict(self.custom)!r}")
        return f"User({', '.join(parts)})"

    def to_json(self) -> str:
        """The attributes as compact JSON, as the evaluation log shows them (None left out)."""
        dump: dict[str, Any] = {
            "Identifier": percentage_identifier(self),
            "Email": self.email,
            "Country": self.country,
        }
        dump.update(self.custom)
        present = {name: value for name, value in dump.items() if value is not None}
        return json.dumps(present, ensure_ascii=False, separators=(",", ":"), default=_loggable)


# The slot's own setter: User.__setattr__ refuses every assignment, and this is a third of the
# cost of object.__setattr__.
_set_attributes = User.__dict__["_attributes"].__set__


def percentage_identifier(user: User) -> object:
    """What percentage options hash by default: ConfigCat reads a missing identifier as "" there,
    while a condition on User.Identifier treats it as missing."""
    identifier = user._attributes["Identifier"]
    return "" if identifier is None else identifier


def _loggable(value: object) -> object:
    # The log must never fail an evaluation, whatever a custom attribute holds.
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
