"""The engine's side of the last-known-good cache: start from it, and keep it current.

``restore`` is tried only when the first load fails; ``store`` runs in the notifier after each
swap, in version order, so the cache always ends holding the snapshot that serves. Encoding a
big snapshot, or decoding and rebuilding a big entry, runs in a worker thread (awaited, so the
order stays), as the pipeline builds a big candidate: a 250,000-value snapshot takes about
0.8 s to encode, which would otherwise hold the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from . import _cache
from ._exceptions import ConfigError
from ._offload import off_loop
from ._pipeline import OFF_LOOP_VALUES, Pipeline, SourceState
from ._snapshot import Snapshot

#: A cache entry this big (bytes) is decoded and rebuilt in a worker thread: about 10,000 values.
OFF_LOOP_BYTES = 256 * 1024

__all__ = ("flag_documents", "restore", "store")

logger = logging.getLogger("aioconfig")


async def restore(
    cache: _cache.Cache,
    key: str,
    pipeline: Pipeline,
    rejection: Callable[[Snapshot], Awaitable[ConfigError | None]],
    error: Exception,
) -> Snapshot | None:
    """The cached snapshot, checked like any candidate; None (with a warning) if unusable."""
    where = repr(cache)
    try:
        raw = await cache.get(key)
    except Exception as exc:
        logger.warning("reading the cache %s failed: %s: %s", where, type(exc).__name__, exc)
        return None
    if raw is None:
        return None

    def rebuilt() -> tuple[_cache.CacheEntry, Snapshot] | None:
        entry = _cache.decode(raw, key=key, where=where)
        if entry is None:
            return None
        snapshot = pipeline.from_cache(
            entry.data, entry.flags, entry.created_at, frozenset(entry.secrets)
        )
        return entry, snapshot

    try:
        found = await off_loop(len(raw) >= OFF_LOOP_BYTES, rebuilt)
    except ConfigError as exc:
        logger.warning("ignoring the cache %s: rejected: %s", where, exc)
        return None
    if found is None:
        return None
    entry, snapshot = found
    rejected = await rejection(snapshot)
    if rejected is not None:
        logger.warning("ignoring the cache %s: rejected by validate: %s", where, rejected)
        return None
    logger.warning(
        "starting from the cached configuration of %s (%d keys left out as secrets); "
        "retrying the sources: %s",
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created_at)),
        len(entry.omitted),
        error,
    )
    return snapshot


def flag_documents(states: Sequence[SourceState]) -> tuple[tuple[int, Any], ...]:
    """``(source index, config_v6 document)`` for each source that provides flags now."""
    return tuple(
        (index, state.flags.document)
        for index, state in enumerate(states)
        if state.flags is not None and state.flags.document is not None
    )


async def store(
    cache: _cache.Cache, key: str, snapshot: Snapshot, flags: Sequence[tuple[int, Any]]
) -> None:
    """Write ``snapshot`` and the flag documents it was built from to ``cache``; a failure is
    logged, never raised."""
    store_secrets = bool(getattr(cache, "store_secrets", False))

    def encoded() -> bytes:
        secrets: list[str] = []
        if store_secrets:  # what only this snapshot knows is secret, kept masked once restored
            matcher = snapshot._matcher
            secrets = [k for k in snapshot.keys_flat() if snapshot.is_secret(k) and not matcher(k)]
        return _cache.encode(
            snapshot.to_dict(),
            key=key,
            version=snapshot.version,
            sources=snapshot.sources,
            store_secrets=store_secrets,
            is_secret=snapshot.is_secret,
            flags=flags,
            secrets=secrets,
        )

    try:
        value = await off_loop(len(snapshot._flat) >= OFF_LOOP_VALUES, encoded)
        await cache.set(key, value)
    except Exception as exc:
        logger.warning("writing the cache %r failed: %s: %s", cache, type(exc).__name__, exc)
