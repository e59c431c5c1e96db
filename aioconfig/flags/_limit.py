"""WarningLimit: the same flag warning at most once (per interval), for busy services."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ("WarningLimit",)


class WarningLimit(logging.Filter):
    """Let each flag's warning (or error) through once, or once per ``interval`` seconds.

    >>> logging.getLogger("aioconfig.flags").addFilter(WarningLimit(interval=300))

    ConfigCat's SDK, and aioconfig like it, logs a WARNING on every evaluation that cannot use a
    condition (a rule on ``Country`` for a user without one): on a web service, one per
    request. With this filter on the ``aioconfig.flags`` logger a record at WARNING or above
    passes only if the same flag has not logged the same reason (the same condition, attribute
    or error) within ``interval`` seconds; ``interval=None`` lets each through once for the
    filter's lifetime. The records of the evaluation log (INFO) are never held back, and
    neither is a record that is not about one flag. ``suppressed`` counts the records held
    back. At most ``max_keys`` (flag, reason) pairs are remembered; past that the memory
    starts again, so a flood of distinct reasons costs bounded memory.
    """

    def __init__(
        self,
        interval: float | None = None,
        *,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if interval is not None and not interval > 0:
            raise ValueError(
                f"interval must be a positive number of seconds or None; got {interval!r}"
            )
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1; got {max_keys!r}")
        self.interval = interval
        self.max_keys = max_keys
        self.suppressed = 0
        self._clock = clock
        self._last: dict[Hashable, float] = {}
        self._lock = threading.Lock()  # logging may be called from several threads

    def filter(self, record: logging.LogRecord) -> bool:
        flag = getattr(record, "flag_key", None)
        if record.levelno < logging.WARNING or flag is None:
            return True
        key = (flag, record.msg, str(getattr(record, "flag_detail", None)))
        now = self._clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and (self.interval is None or now - last < self.interval):
                self.suppressed += 1
                return False
            if last is None and len(self._last) >= self.max_keys:
                self._last.clear()
            self._last[key] = now
        return True
