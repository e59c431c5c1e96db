"""When to fetch next: jittered intervals and full-jitter backoff. Pure: no I/O, no anyio.

* poll: after a good refresh, wait ``interval * uniform(1 - jitter, 1 + jitter)``, so a fleet
  does not poll in step; the first poll after start-up lands anywhere in the first interval;
* backoff: after the n-th failure in a row, wait ``uniform(0, min(cap, base * 2 ** (n - 1)))``
  ("full jitter"), with ``base = 1 s`` and ``cap = interval``, so a failing source is retried
  sooner than the normal interval and never later; the count resets after a success;
* ``Retry-After``: a server that asks for a pause (a 429 or 503 with ``Retry-After``) gets at
  least that long, even past the interval (the source caps it);
* ``not_before``: a non-forced ``refresh()`` fetches only from then on (the interval after a
  success, the backoff after a failure).
"""

from __future__ import annotations

import random

__all__ = ("BACKOFF_BASE", "Schedule", "backoff_delay", "jittered")

BACKOFF_BASE = 1.0


def jittered(interval: float, jitter: float, rng: random.Random) -> float:
    """``interval`` spread uniformly by ``±jitter`` (a fraction): a fleet must not poll in step."""
    if jitter == 0:
        return interval
    return interval * (1.0 + rng.uniform(-jitter, jitter))


def backoff_delay(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Full-jitter exponential backoff after ``failures`` consecutive failures (1, 2, ...)."""
    ceiling = min(cap, base * 2.0 ** min(failures - 1, 62))
    return rng.uniform(0.0, ceiling)


class Schedule:
    """The due times of one Config's refreshes, moved by each outcome and read by its loops."""

    __slots__ = ("cap", "failures", "interval", "jitter", "not_before", "poll_due", "rng")

    def __init__(self, interval: float, jitter: float, rng: random.Random) -> None:
        self.interval = interval
        self.jitter = jitter
        self.rng = rng
        # Never wait longer than a poll would; with no interval (lazy or manual), 1 s.
        self.cap = interval or BACKOFF_BASE
        self.failures = 0  # consecutive failed refreshes
        self.not_before = -float("inf")
        self.poll_due = -float("inf")

    def succeeded(self, now: float) -> None:
        self.failures = 0
        self.not_before = now + self.interval
        self.poll_due = now + jittered(self.interval, self.jitter, self.rng)

    def failed(self, now: float, at_least: float | None = None) -> None:
        """A failure; ``at_least``: the seconds a server asked for (``Retry-After``), which
        may exceed the interval (capped where it was read)."""
        self.failures += 1
        delay = self.backoff(self.failures)
        if at_least is not None:
            delay = max(delay, at_least)
        self.not_before = self.poll_due = now + delay

    def started(self, now: float) -> None:
        """The first good load: like a success, but a jittered first poll lands anywhere in
        the first interval, so a fleet that restarts together (a deploy) spreads out at once."""
        self.succeeded(now)
        if self.jitter:
            self.poll_due = now + self.rng.uniform(0, self.interval)

    def backoff(self, failures: int) -> float:
        """The wait after ``failures`` failures in a row (a watch's reopening uses it too)."""
        return backoff_delay(failures, BACKOFF_BASE, self.cap, self.rng)

    def due(self, now: float) -> bool:
        """Whether a non-forced ``refresh()`` should fetch now."""
        return now >= self.not_before
