"""Snapshot: one whole configuration at one moment, frozen, with a flat dotted index."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._bind import build
from ._exceptions import KeyNotFound
from ._merge import thaw
from ._secrets import DEFAULT_SECRET_MATCHER, tainted
from .flags._combine import EMPTY
from .flags._evaluate import evaluate

if TYPE_CHECKING:
    from .flags._details import EvaluationDetails
    from .flags._model import FlagConfig
    from .flags._user import User

__all__ = ("FoldedIndex", "Snapshot")

_T = TypeVar("_T")
_M = TypeVar("_M")


class FoldedIndex(dict[str, Any]):
    """A flat index whose keys are lower case and whose lookups fold the key's case.

    Used with ``load(case_sensitive=False)``: only that mode pays for ``str.lower``; the
    default read path stays one plain dict lookup.
    """

    __slots__ = ()

    def get(self, key: str, default: Any = None) -> Any:
        return dict.get(self, key.lower(), default)

    def __getitem__(self, key: str) -> Any:
        return dict.__getitem__(self, key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and dict.__contains__(self, key.lower())


class Snapshot(Mapping[str, Any]):
    """One whole configuration at one moment. Never changes; a refresh makes a new one.

    ``snap["db.port"]`` and ``snap.get("db.port")`` read a dotted path in one dict lookup;
    ``snap["db"]["port"]`` works too. Nested mappings are read-only and lists are tuples, so no
    holder can alter what another sees. Iteration and ``len`` cover the top-level keys; ``in``
    accepts dotted paths.

    Feature flags travel with the settings: ``snap.get_value("newCheckout", False, user)``
    evaluates against the flags of this very snapshot, so a request that holds one snapshot
    sees settings and flags of the same moment.
    """

    __slots__ = (
        "_bound",
        "_data",
        "_derived",
        "_flat",
        "_matcher",
        "_secret_keys",
        "_tainted",
        "created_at",
        "default_user",
        "flags",
        "from_cache",
        "sources",
        "version",
    )

    def __init__(
        self,
        data: Mapping[str, Any],
        flat: dict[str, Any],
        *,
        version: int,
        sources: tuple[str, ...] = (),
        created_at: float | None = None,
        from_cache: bool = False,
        flags: FlagConfig = EMPTY,
        default_user: User | None = None,
        secret_keys: frozenset[str] = frozenset(),
        derived: Mapping[str, str] | None = None,
        secret_matcher: Callable[[str], bool] = DEFAULT_SECRET_MATCHER,
    ) -> None:
        # Built by the engine from ``_merge.build``; not meant to be constructed by users.
        self._data = data
        self._flat = flat
        #: Grows by one with each swap; the first good load is version 1.
        self.version = version
        #: Names of the sources this snapshot was built from, in layering order.
        self.sources = sources
        #: Wall-clock time (``time.time()``) at which the snapshot was made.
        self.created_at = time.time() if created_at is None else created_at
        #: True when the sources could not be reached at start-up and this snapshot is the
        #: last good configuration read back from the cache (``load(..., cache=...)``).
        self.from_cache = from_cache
        #: The feature flags (all sources' flags combined); empty when no source has any.
        self.flags = flags
        #: The user flags are evaluated for when a call names none (``load(default_user=)``).
        self.default_user = default_user
        self._secret_keys = secret_keys  # given as Secret(...), whatever their names
        self._matcher = secret_matcher  # load(secret_patterns=...)
        self._derived: Mapping[str, str] = derived or {}  # set after the merge: how
        self._tainted: frozenset[str] | None = None  # @format keys built from secrets, when asked
        self._bound: dict[type, Any] = {}  # model -> its instance for this snapshot (bind)

    def is_secret(self, key: str) -> bool:
        """Whether ``key``'s value is masked where it is shown.

        It is when the key or a section above it was given as ``Secret`` or is named like a
        secret (``aioconfig._secrets``: ``db.password``, ``api_key``, not ``token_ttl``), or
        when its value was built by ``@format`` from a secret. Decided here, where values are
        shown, so reading a value never pays for it.
        """
        if self._is_named_secret(key):
            return True
        if not self._derived:
            return False
        found = self._tainted
        if found is None:
            found = self._tainted = tainted(self._derived, self._flat, self._is_named_secret)
        return key in found

    def _is_named_secret(self, key: str) -> bool:
        """Given as ``Secret`` or named like a secret: the key, or a section above it."""
        given, matcher = self._secret_keys, self._matcher
        if key in given or matcher(key):
            return True
        end = key.find(".")
        while end != -1:  # "credentials" makes "credentials.user" secret
            above = key[:end]
            if above in given or matcher(above):
                return True
            end = key.find(".", end + 1)
        return False

    def __getitem__(self, key: str) -> Any:
        try:
            return self._flat[key]
        except KeyError:
            raise KeyNotFound(key) from None

    @overload
    def get(self, key: str) -> Any | None: ...
    @overload
    def get(self, key: str, default: _T) -> Any | _T: ...
    def get(self, key: str, default: Any = None) -> Any:
        """The value at dotted path ``key``, or ``default``."""
        return self._flat.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._flat

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def keys_flat(self) -> Iterator[str]:
        """Every dotted path, intermediate mappings included."""
        return iter(self._flat)

    def to_dict(self) -> dict[str, Any]:
        """A deep, mutable copy: plain dicts and lists, free to change."""
        result: dict[str, Any] = thaw(self._data)
        return result

    def bind(self, model: type[_M]) -> _M:
        """This snapshot as an instance of ``model`` (a pydantic model or a dataclass).

        Built once per snapshot and kept, so calling it again costs a dict lookup.
        Raises ``ValidationError`` listing every field that does not fit.
        """
        try:
            instance: _M = self._bound[model]
        except KeyError:
            instance = self._bound[model] = build(self.to_dict(), model, self.is_secret)
        return instance

    # -- feature flags ---------------------------------------------------------------------

    def get_value(self, key: str, default: _T, user: User | None = None) -> _T | Any:
        """The value of flag ``key`` for ``user`` (or the default user). Never raises.

        On any problem (no such flag, a broken rule, a circular prerequisite) the answer is
        ``default`` and the problem is logged at ERROR on ``aioconfig.flags``; use
        :meth:`get_value_details` to see it.
        """
        return evaluate(self.flags, key, default, self.default_user if user is None else user).value

    def get_value_details(
        self, key: str, default: _T, user: User | None = None
    ) -> EvaluationDetails[_T | Any]:
        """Like :meth:`get_value`, with the variation id, the rule or option that decided, and
        the error if the default was returned."""
        return evaluate(self.flags, key, default, self.default_user if user is None else user)

    def get_all_keys(self) -> list[str]:
        """Every flag key, in source order."""
        return self.flags.keys()

    def get_all_values(self, user: User | None = None) -> dict[str, Any]:
        """Every flag evaluated for ``user`` (or the default user); None where one fails."""
        who = self.default_user if user is None else user
        return {key: evaluate(self.flags, key, None, who).value for key in self.flags}

    def __repr__(self) -> str:
        # Values stay out of the repr: they may be secrets.
        sources = list(self.sources)
        cached = " from_cache=True" if self.from_cache else ""
        flags = f" flags={len(self.flags)}" if self.flags else ""
        return (
            f"<Snapshot version={self.version} keys={len(self._flat)}{flags} "
            f"sources={sources!r}{cached}>"
        )

    __hash__ = None  # type: ignore[assignment]  # Mapping equality, no hashing
