"""Local feature flags that override, fill in for, or replace the remote ones (ConfigCat's
flag overrides: ``LocalFileFlagOverrides`` and ``LocalDictionaryFlagOverrides``)."""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping
from typing import Any, get_args

from .._exceptions import ParseError, SourceError
from ..flags._combine import Behaviour
from ..flags._model import FlagConfig, parse_flags
from ._base import Emit, NotModified, Payload, Source, check_flag
from ._file import File
from ._formats import Format

__all__ = ("FlagOverrides",)

_BEHAVIOURS: tuple[str, ...] = get_args(Behaviour)
# A simple override's value -> (setting type, value field), as ConfigCat infers them.
_TYPES: tuple[tuple[type, int, str], ...] = (
    (bool, 0, "b"),
    (str, 1, "s"),
    (int, 2, "i"),
    (float, 3, "d"),
)
_FIXED_TOKEN = ("aioconfig:flag-overrides",)


class FlagOverrides(Source):
    """Feature flags from a local file or a dict, combined with the remote flags.

    ``behaviour`` says how:

    * ``"local_only"``: only these flags count; remote flags are ignored (the remote sources
      are still read for their settings: leave a flags-only source such as ``ConfigCat`` out
      of ``load()`` to make no requests at all);
    * ``"local_over_remote"``: these flags replace remote ones with the same key;
    * ``"remote_over_local"``: these flags are used only for keys the remote flags lack.

    The flags are a mapping of key to value (``{"newCheckout": True, "maxItems": 10}``: bool,
    str, int or float), or, in a file, that mapping under ``"flags"``, or a whole ConfigCat
    ``config_v6.json`` document (with ``"f"``) for targeting rules and percentage options.
    Any other value (None, a list) is taken as the SDK takes it: the flag exists, and
    evaluating it returns the default value ("Unsupported setting type").
    A file is read like ``File`` (any format it knows) and watched for changes the same way.
    """

    def __init__(
        self,
        flags: Mapping[str, Any] | str | os.PathLike[str],
        *,
        behaviour: Behaviour,
        format: Format | None = None,
        optional: bool = False,
        watch: bool | None = None,
    ) -> None:
        if behaviour not in _BEHAVIOURS:
            expected = ", ".join(map(repr, _BEHAVIOURS))
            raise ValueError(f"behaviour must be one of {expected}; got {behaviour!r}")
        self.flag_behaviour: Behaviour = behaviour
        self.optional = check_flag("optional", optional)
        self._file: File | None = None
        self._fixed: FlagConfig | None = None
        if isinstance(flags, Mapping):
            self._name = "flag overrides"
            self._fixed = _simple(flags, self._name)  # a bad value fails here, not at load
        elif isinstance(flags, (str, os.PathLike)):
            self._file = File(flags, format=format, optional=optional, watch=watch)
            self._name = self._file.name
        else:
            raise TypeError(f"flags must be a mapping or a file path, got {type(flags).__name__}")

    def __repr__(self) -> str:
        return f"FlagOverrides({self._name!r}, behaviour={self.flag_behaviour!r})"

    @property
    def name(self) -> str:
        return self._name

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        if self._file is None:
            if token == _FIXED_TOKEN:
                return NotModified(token)
            return Payload({}, _FIXED_TOKEN, flags=self._fixed)
        loaded = await self._file.load(token)
        if isinstance(loaded, NotModified):
            return loaded
        flags = _from_file(loaded.data, self._name)
        return Payload({}, loaded.token, flags=flags, order=loaded.order)

    @property
    def can_watch(self) -> bool:
        return self._file is not None and self._file.can_watch

    async def watch(self, token: Hashable | None, emit: Emit) -> None:
        assert self._file is not None

        async def converted(payload: Payload | SourceError) -> None:
            if isinstance(payload, Payload):
                try:
                    flags = _from_file(payload.data, self._name)
                except ParseError as exc:
                    await emit(exc)
                    return
                payload = Payload({}, payload.token, flags=flags, order=payload.order)
            await emit(payload)

        await self._file.watch(token, converted)

    async def aclose(self) -> None:
        if self._file is not None:
            await self._file.aclose()


def _from_file(data: Mapping[str, Any], source: str) -> FlagConfig:
    if "f" in data:
        return parse_flags(data, source=source)
    flags = data.get("flags")
    if not isinstance(flags, Mapping):
        raise ParseError(
            source,
            "expected a 'flags' object of key -> value, or a ConfigCat config_v6 document "
            "(with 'f')",
        )
    return _simple(flags, source)


def _simple(flags: Mapping[str, Any], source: str) -> FlagConfig:
    """A config_v6 document serving each value to everyone, as ConfigCat builds one."""
    settings: dict[str, Any] = {}
    for key, value in flags.items():
        if not isinstance(key, str):
            raise ParseError(source, f"flag keys must be strings, got {type(key).__name__}")
        typed = next(((t, f) for kind, t, f in _TYPES if isinstance(value, kind)), None)
        if typed is None:
            # As the SDK does: the flag is there, and evaluating it returns the default value
            # ("Unsupported setting type"), as does a flag that depends on it.
            settings[key] = {"v": {}}
            continue
        setting_type, field = typed
        settings[key] = {"t": setting_type, "v": {field: value}}
    return parse_flags({"f": settings}, source=source)
