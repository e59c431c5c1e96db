"""User: who a flag is evaluated for."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NoReturn

__all__ = ("User",)

_EMPTY: Mapping[str, object] = MappingProxyType({})


class User:
    """The subject of an evaluation: an identifier plus the attributes targeting rules look at.

    >>> User("42", email="ada@example.com", custom={"plan": "pro", "logins": 7})

    ``Identifier``, ``Email`` and ``Country`` always come from the named arguments, even when
    ``custom`` has keys with those names (ConfigCat does the same). Custom values may be strings,
    numbers, datetimes (for the date comparators) or lists of strings (for the array comparators);
    other values are turned into text the way ConfigCat does.

    A User never changes, and is hashable when its custom values are.
    """

    __slots__ = (
        "_attributes",
        "_percentage_identifier",
        "country",
        "custom",
        "email",
        "identifier",
    )

    identifier: str
    email: str | None
    country: str | None
    custom: Mapping[str, object]
    # Everything a condition can name, in one dict: one lookup per condition on the hot path.
    _attributes: dict[str, object]
    _percentage_identifier: object

    def __init__(
        self,
        identifier: str,
        email: str | None = None,
        country: str | None = None,
        custom: Mapping[str, object] | None = None,
    ) -> None:
        custom_copy = dict(custom) if custom else {}
        attributes: dict[str, object] = dict(custom_copy)
        attributes["Identifier"] = identifier
        attributes["Email"] = email
        attributes["Country"] = country
        setter = object.__setattr__
        setter(self, "identifier", identifier)
        setter(self, "email", email)
        setter(self, "country", country)
        setter(self, "custom", MappingProxyType(custom_copy) if custom_copy else _EMPTY)
        setter(self, "_attributes", attributes)
        # Percentage options hash the identifier; ConfigCat reads a missing one as "" there,
        # while a condition on User.Identifier treats it as missing.
        setter(self, "_percentage_identifier", "" if identifier is None else identifier)

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
            "Identifier": self._percentage_identifier,
            "Email": self.email,
            "Country": self.country,
        }
        dump.update(self.custom)
        present = {name: value for name, value in dump.items() if value is not None}
        return json.dumps(present, ensure_ascii=False, separators=(",", ":"), default=_loggable)


def _loggable(value: object) -> object:
    # The log must never fail an evaluation, whatever a custom attribute holds.
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
