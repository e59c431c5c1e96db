"""Metrics through OpenTelemetry's API: what a dashboard needs to show the configuration is fresh.

Like every library instrumented with OpenTelemetry's API (the ``otel`` extra), aioconfig records
into the global meter provider, which does nothing until the application configures an SDK;
``load(meter_provider=)`` takes another provider instead. Without ``meter_provider=``, a Config
records only if the application has imported the API by the time the Config opens (configuring
an SDK does, and so does ``opentelemetry-instrument``): aioconfig never imports it itself, since
that costs about 17 ms of start-up to every process that merely has it installed.

Every instrument is on the meter ``aioconfig``. The attribute ``config`` names a Config by its
sources (``"settings.toml,env:MYAPP_*"``), ``source`` one source by its name (masked, as in
errors).

============================== ========= =====================================================
instrument                     kind      what
============================== ========= =====================================================
``aioconfig.refreshes``        counter   refreshes by ``outcome``: changed, unchanged, failed
``aioconfig.fetches``          counter   source loads by ``source`` and ``outcome``: data,
                                         not_modified, failed
``aioconfig.refresh.duration`` histogram seconds from a refresh's fetch to its result, by
                                         ``outcome``
``aioconfig.version``          gauge     the serving snapshot's version
``aioconfig.staleness``        gauge     seconds since each ``source`` last answered (data or
                                         "not modified"; 0 while its watch is open); none
                                         before its first answer
``aioconfig.propagation``      histogram seconds from a change at its ``source`` (where the
                                         source knows when: a file's mtime, ``Last-Modified``)
                                         to the swap that serves it
``aioconfig.rejected``         counter   candidates refused by ``reason``: build (the data
                                         cannot be layered), validators, validate (``validate=``)
``aioconfig.subscribers``      gauge     open ``changes()`` streams
============================== ========= =====================================================
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, Observation

__all__ = ("Measured", "Metrics", "metrics_for")


class Measured(Protocol):
    """What the observable instruments read from a running Config (its engine)."""

    @property
    def metric_name(self) -> str:
        """The ``config`` attribute: the Config's sources, by name."""
        ...

    def observe(self) -> tuple[int, int, list[tuple[str, float]]]:
        """(serving version, subscribers, [(source name, seconds since it answered), ...])."""
        ...


class Metrics:
    """The instruments on one meter provider, shared by every Config that records into it."""

    def __init__(self, provider: Any) -> None:
        from . import __version__

        meter = provider.get_meter("aioconfig", __version__)
        self._measured: weakref.WeakSet[Measured] = weakref.WeakSet()
        self.refreshes = meter.create_counter(
            "aioconfig.refreshes", unit="{refresh}", description="Refreshes, by outcome"
        )
        self.fetches = meter.create_counter(
            "aioconfig.fetches", unit="{fetch}", description="Source loads, by source and outcome"
        )
        self.duration = meter.create_histogram(
            "aioconfig.refresh.duration",
            unit="s",
            description="Seconds from a refresh's fetch to its result",
        )
        self.propagation = meter.create_histogram(
            "aioconfig.propagation",
            unit="s",
            description="Seconds from a change at its source to the swap that serves it",
        )
        self.rejected = meter.create_counter(
            "aioconfig.rejected", unit="{candidate}", description="Candidates refused, by reason"
        )
        meter.create_observable_gauge(
            "aioconfig.version",
            callbacks=[self._versions],
            description="The serving snapshot's version",
        )
        meter.create_observable_gauge(
            "aioconfig.subscribers",
            callbacks=[self._subscribers],
            unit="{stream}",
            description="Open changes() streams",
        )
        meter.create_observable_gauge(
            "aioconfig.staleness",
            callbacks=[self._staleness],
            unit="s",
            description="Seconds since each source last answered",
        )

    def measure(self, measured: Measured) -> None:
        """Include ``measured`` in the observable instruments until :meth:`forget` (or until
        it is garbage)."""
        self._measured.add(measured)

    def forget(self, measured: Measured) -> None:
        self._measured.discard(measured)

    def _versions(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [Observation(m.observe()[0], {"config": m.metric_name}) for m in self._all()]

    def _subscribers(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [Observation(m.observe()[1], {"config": m.metric_name}) for m in self._all()]

    def _staleness(self, options: CallbackOptions) -> Iterable[Observation]:
        from opentelemetry.metrics import Observation

        return [
            Observation(age, {"config": m.metric_name, "source": name})
            for m in self._all()
            for name, age in m.observe()[2]
        ]

    def _all(self) -> list[Measured]:
        return list(self._measured)


_by_provider: dict[int, tuple[Any, Metrics]] = {}


def metrics_for(provider: Any | None) -> Metrics | None:
    """The instruments on ``provider``, or on the global provider when None; None when the
    OpenTelemetry API is not installed."""
    if provider is None:
        # Only where the application uses OpenTelemetry (it has imported the API, as an SDK's
        # set-up or an auto-instrumentation does): the import costs about 17 ms, which a
        # process that merely has the package installed should not pay at start-up.
        api = sys.modules.get("opentelemetry.metrics")
        if api is None:
            return None
        provider = api.get_meter_provider()
    held = _by_provider.get(id(provider))
    if held is None or held[0] is not provider:
        held = _by_provider[id(provider)] = (provider, Metrics(provider))
    return held[1]
