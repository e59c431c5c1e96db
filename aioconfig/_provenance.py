"""Provenance: which version brought each value, and every layer that sets a key.

The applier notes the version each changed key got its value in, at the swap; ``history``
is worked out when asked from what the engine keeps anyway (each source's prepared layer), so
it costs nothing until then.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._history import HistoryEntry
from ._layers import MISSING, find, section_of
from ._merge import thaw
from ._pipeline import Pipeline
from ._secrets import mask_urls, masked
from ._snapshot import Snapshot

__all__ = ("Provenance",)

_UNSET: Any = object()


class Provenance:
    """The version each key's value came in, and the history of a key on demand."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        # key -> the version its value came in, for keys that changed after the first snapshot:
        # a key of the snapshot missing here has had its value since version 1.
        self._introduced: dict[str, int] = {}

    def note(self, keys: frozenset[str], snapshot: Snapshot) -> None:
        """``keys`` changed in ``snapshot``: their values came in its version."""
        if snapshot.version == 1:  # the first snapshot: every key came in it (the default),
            return  # and a big one costs nothing to note
        introduced = self._introduced
        present = keys & snapshot._flat.keys()  # set operations: C speed, on every swap
        introduced.update(dict.fromkeys(present, snapshot.version))
        for key in keys - present:
            introduced.pop(key, None)

    def history(self, snapshot: Snapshot, key: str, *, reveal: bool) -> list[HistoryEntry]:
        """Every layer that sets ``key``, highest precedence first (see ``Config.history``)."""
        pipeline = self._pipeline
        if pipeline.fold_case:
            key = key.lower()
        path = tuple(key.split("."))
        secret = not reveal and snapshot.is_secret(key)
        entries: list[HistoryEntry] = []
        current = snapshot._flat.get(key, _UNSET)
        here = current is not _UNSET or snapshot.from_cache
        version = self._introduced.get(key, 1 if here else None)

        def shown(value: Any) -> Any:
            # Secrets inside the value are masked too: a section's password, the password in
            # servers = [{password = ...}], a URL's credentials.
            return thaw(value) if reveal else masked(value, snapshot.is_secret, key)

        how = snapshot._derived.get(key)
        if how is not None and current is not _UNSET:
            origin = mask_urls(how) if not how.startswith("@format") or not secret else "@format"
            kind = "validators" if how == "validators" else "@format"
            entries.append(HistoryEntry(key, shown(current), kind, kind, origin, version, True))
        for state in reversed(pipeline.states):
            layer = state.layer
            if layer is None:
                continue
            value = find(layer.data, key)
            if value is MISSING:
                continue
            source = state.source
            origin = source.describe(path) or source.name
            if pipeline.uses_sections(source) and isinstance(state.data, Mapping):
                origin += f" [{section_of(state.data, pipeline.environment, path) or '?'}]"
            serving = not entries
            kind = type(source).__name__.lower()  # file, env, http, etcd, static, ...
            since = version if serving else None
            entries.append(
                HistoryEntry(key, shown(value), kind, source.name, origin, since, serving)
            )
        if not entries and current is not _UNSET:  # from the cache, with no source answering yet
            entries.append(
                HistoryEntry(key, shown(current), "cache", "cache", "cache", version, True)
            )
        return entries
