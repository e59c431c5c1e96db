"""The Source contract: how a backend hands data to the refresh engine.

A source knows nothing of snapshots. It produces plain data (a mapping of str to JSON-like values)
and an opaque version *token* (an ETag, a revision, a content hash). The engine passes the last
token back on the next load, so a source can answer "not modified" cheaply.

Sources that can push implement :meth:`Source.watch`; the engine then watches instead of polling.

Order: loads and pushes of one source can race (a poll's answer may arrive after a push that
is newer, or older). The engine alone decides which is newer, in one place, by each answer's
**order key** (``Payload.order``, ``NotModified.order``): an integer that grows with the
version of the data, such as etcd's revision or a sequence number taken when a file read or an
HTTP request began. The engine drops an answer whose order key is lower than the one it last
applied from that source. So a source never needs rules of its own about stepping back: it
hands out what it read, with its order key, and the engine keeps the newest.

A source gives order keys on all its answers or on none. One that gives none (None) is ordered
by the engine's own sequence: when its fetch began, or when its push arrived, which is right
as long as the source itself sees its data no later than that.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from .._exceptions import SourceError
    from ..flags._combine import Behaviour
    from ..flags._model import FlagConfig

__all__ = ("Emit", "LoadResult", "NotModified", "Payload", "Source", "check_flag")


def check_flag(name: str, value: object) -> bool:
    """``value`` if it is a bool; a ``TypeError`` naming the option otherwise (``"yes"``, 1)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Payload:
    """New data from a source, with the token that identifies this version of it.

    The source gives up ownership of ``data``: it must not keep or change it afterwards.
    ``flags``: the feature flags this version provides, parsed (``aioconfig.flags.parse_flags``);
    None for a source of plain settings. ``order``: the order key (see the module docstring).
    ``changed_at``: when this version was made at its origin, in seconds since the epoch (a
    file's mtime, an HTTP ``Last-Modified``), where the source knows it; the engine measures
    from it how long a change took to reach the service (the ``aioconfig.propagation`` metric).
    """

    data: Mapping[str, Any]
    token: Hashable
    flags: FlagConfig | None = None
    order: int | None = None
    changed_at: float | None = None


@dataclass(frozen=True, slots=True)
class NotModified:
    """The data has not changed since ``token`` was handed out (a new token may be given).

    ``order``: the order key of this answer, as on :class:`Payload`.
    """

    token: Hashable
    order: int | None = None


LoadResult: TypeAlias = "Payload | NotModified"
Emit: TypeAlias = "Callable[[Payload | SourceError], Awaitable[None]]"


class Source(abc.ABC):
    """Base class of every configuration source.

    Subclasses implement :attr:`name` and :meth:`load`; push-capable ones also
    :attr:`can_watch` and :meth:`watch`; ones holding connections or handles :meth:`aclose`.

    ``optional``: when true, a source that raises
    :class:`~aioconfig.SourceUnavailable` counts as empty instead of failing the load.

    A source may provide feature flags besides (or instead of) settings, in ``Payload.flags``.
    """

    optional: bool = False
    #: The polling interval this source suggests, used when ``load()`` is given none
    #: (``ConfigCat``: 60 s, as ConfigCat's SDK polls); None: no opinion (30 s).
    refresh_interval: float | None = None
    #: Whether the data is split into environment sections (``[default]``, ``[production]``,
    #: ... ``[global]``): True, False, or None to follow ``load(environments=...)``.
    environments: bool | None = False
    #: How this source's flags combine with the others' (see ``aioconfig.sources.FlagOverrides``):
    #: None for a source of flags in its own right, layered in source order.
    flag_behaviour: Behaviour | None = None
    #: Whether strings starting with ``@`` are tokens (``"@int 42"``, ``"@del"``, ``"@format
    #: {a}"``: see ``aioconfig._layers``). False for a source whose values are data only, served
    #: exactly as its own client serves them (``AzureAppConfig``).
    tokens: bool = True

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Who this source is, in errors and provenance: a file path, a URL, an etcd prefix."""

    @abc.abstractmethod
    async def load(self, token: Hashable | None) -> Payload | NotModified:
        """Fetch the data. ``token`` is the last one this source returned (None the first time).

        Raise :class:`~aioconfig.SourceError` (or a subclass) naming the source and the problem.
        """

    def _load_blocking(self, token: Hashable | None) -> Payload | NotModified | None:
        """:meth:`load`, done in the calling thread with no event loop, for one-shot reads (the
        command line); None for a source that needs the event loop (the network sources)."""
        return None

    @property
    def logger(self) -> logging.Logger:
        """Where this source's news is logged: ``aioconfig.sources.<class name, lower case>``
        (``aioconfig.sources.etcd``, ``aioconfig.sources.http``), a child of ``aioconfig``, so
        that one noisy backend can be turned down on its own."""
        return logging.getLogger(f"aioconfig.sources.{type(self).__name__.lower()}")

    @property
    def can_watch(self) -> bool:
        """Whether :meth:`watch` pushes changes (checked once, when the Config opens)."""
        return False

    async def watch(self, token: Hashable | None, emit: Emit) -> None:
        """Push changes: ``await emit(payload)`` for each new version after ``token``.

        ``token`` is that of the version the engine applied last (which may come from a load
        that raced this watch). ``emit`` hands the version to the engine and returns once it
        is queued; it may wait while the engine is behind. Runs until cancelled. A problem
        with one version that leaves the watch itself working (a malformed edit, say) is
        reported with ``await emit(error)`` and the watch goes on.
        Returning or raising ends the watch: the engine reports the error once, polls the
        source meanwhile, and reopens the watch after a backoff.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot watch")

    def describe(self, path: tuple[str, ...]) -> str | None:
        """Where exactly the key at ``path`` comes from, for ``Config.history``: a variable
        name, an etcd key and revision. None when the source's name says it all."""
        return None

    async def aclose(self) -> None:  # noqa: B027 - an optional hook, deliberately empty
        """Release connections or handles. Called once, when the Config closes."""
