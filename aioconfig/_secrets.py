"""Which keys hold secrets, and how a value is shown in a message without giving one away.

Pure: no I/O. Validation messages show the offending value so a human can fix it; these helpers
make sure that value is masked when its key looks secret (``db.password``, ``api_key``) or when
it was wrapped on purpose in :class:`Secret`, including secrets nested in a shown mapping.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = (
    "DEFAULT_SECRET_MATCHER",
    "DEFAULT_SECRET_PATTERNS",
    "MASK",
    "Secret",
    "SecretMatcher",
    "mask",
    "masked",
    "shown",
)

_T = TypeVar("_T")

#: fnmatch patterns matched, case-insensitively, against the last dotted segment of a key.
DEFAULT_SECRET_PATTERNS: tuple[str, ...] = ("*password*", "*secret*", "*token*", "*key")

#: The shown form of every secret: fixed width, so not even the length leaks.
MASK = "**********"

_SHOWN_LIMIT = 80
_CACHE_LIMIT = 4096


class SecretMatcher:
    """Says whether a dotted key names a secret, by its last segment.

    ``SecretMatcher()("db.password")`` is True; ``SecretMatcher()("keyboard")`` is False.
    The patterns are compiled once into one regex and answers are cached per key, because the
    same few hundred keys are asked about on every refresh.
    """

    __slots__ = ("_cache", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str] = DEFAULT_SECRET_PATTERNS) -> None:
        self.patterns = tuple(patterns)
        for pattern in self.patterns:
            if not isinstance(pattern, str):
                raise TypeError(f"secret patterns must be strings, got {pattern!r}")
        self._regex: re.Pattern[str] | None = None
        if self.patterns:
            alternatives = "|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns)
            self._regex = re.compile(alternatives, re.IGNORECASE)
        self._cache: dict[str, bool] = {}

    def __call__(self, key: str) -> bool:
        try:
            return self._cache[key]
        except KeyError:
            pass
        regex = self._regex
        answer = regex is not None and regex.match(key.rpartition(".")[2]) is not None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # bounded; recomputing an answer costs one short regex match
        self._cache[key] = answer
        return answer

    def __repr__(self) -> str:
        return f"SecretMatcher({self.patterns!r})"


#: The matcher used when none is given.
DEFAULT_SECRET_MATCHER = SecretMatcher()


class Secret(Generic[_T]):
    """A value that is masked wherever it is shown, whatever its key is called.

    >>> token = Secret("hunter2")
    >>> token
    Secret('**********')
    >>> token.reveal()
    'hunter2'

    Validators check the revealed value (``Validator("db.dsn", startswith="postgres://")``
    works on a ``Secret``); only messages and reprs see the mask.
    """

    __slots__ = ("_value",)

    def __init__(self, value: _T) -> None:
        self._value = value

    def reveal(self) -> _T:
        """The wrapped value. Call it at the point of use, not before."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return bool(self._value == other._value)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def mask(value: object) -> str:
    """The shown form of a secret value: always ``MASK``, never a hint of its length."""
    return MASK


def shown(key: str, value: object, matcher: Callable[[str], bool] = DEFAULT_SECRET_MATCHER) -> str:
    """``repr(value)`` fit for a message: masked if ``key`` or the value is secret, and short.

    Inside a shown mapping, entries whose own key looks secret are masked too, so a failing
    ``db`` section never prints ``db.password``. Long forms are cut to about 80 characters.
    """
    if isinstance(value, Secret) or matcher(key):
        return mask(value)
    parts: list[str] = []
    size = 0
    for token in _tokens(value, matcher):
        parts.append(token)
        size += len(token)
        if size > _SHOWN_LIMIT:
            break
    text = "".join(parts)
    if len(text) > _SHOWN_LIMIT:
        text = text[: _SHOWN_LIMIT - 3] + "..."
    return text


def _tokens(value: Any, matcher: Callable[[str], bool]) -> Iterator[str]:
    # A lazy repr: the caller stops reading once it has enough, so a 10,000-key section costs
    # no more to show than a short one.
    if isinstance(value, Secret):
        yield MASK
    elif isinstance(value, Mapping):
        yield "{"
        for i, (name, item) in enumerate(value.items()):
            if i:
                yield ", "
            yield repr(name)
            yield ": "
            if isinstance(name, str) and matcher(name):
                yield MASK
            else:
                yield from _tokens(item, matcher)
        yield "}"
    elif type(value) in (list, tuple, set, frozenset):
        if type(value) is list:
            opening, closing = "[", "]"
        elif type(value) is tuple:
            opening, closing = "(", ",)" if len(value) == 1 else ")"
        elif not value:
            yield f"{type(value).__name__}()"
            return
        elif type(value) is set:
            opening, closing = "{", "}"
        else:
            opening, closing = "frozenset({", "})"
        yield opening
        for i, item in enumerate(value):
            if i:
                yield ", "
            yield from _tokens(item, matcher)
        yield closing
    else:
        yield repr(value)


def masked(
    value: Any, is_secret: Callable[[str], bool] = DEFAULT_SECRET_MATCHER, key: str = ""
) -> Any:
    """``value`` as plain dicts and lists, with every secret in it replaced by ``MASK``.

    ``key`` is the dotted path of ``value`` itself (``""`` for a whole configuration). An entry
    is secret when ``is_secret`` says so of its dotted path (``Snapshot.is_secret`` knows the
    keys given as ``Secret``) or when it is a ``Secret``. Items of a list take the list's path,
    so the password in ``servers = [{password = ...}]`` is masked too.

    >>> masked({"db": {"host": "h", "password": "p"}})
    {'db': {'host': 'h', 'password': '**********'}}
    """
    if isinstance(value, Secret) or (key and is_secret(key)):
        return MASK
    if isinstance(value, Mapping):
        return {
            name: masked(item, is_secret, f"{key}.{name}" if key else str(name))
            for name, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [masked(item, is_secret, key) for item in value]
    return value
