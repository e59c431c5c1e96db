"""Shared helpers for the benchmark scripts: import path, timing, Markdown tables.

Importing this module puts the repository root on ``sys.path``, so every script runs as
``python benchmarks/<script>.py`` from anywhere, without installing the package.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Sequence
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

__all__ = (
    "ROOT",
    "best_ns",
    "machine",
    "nested_config",
    "per_call_ns",
    "table",
)


def nested_config(sections: int, keys: int) -> dict[str, Any]:
    """``sections`` x ``keys`` leaves, alternating ints and strings: ``{"s0": {"k0": 0, ...}}``."""
    return {
        f"s{i}": {f"k{j}": (i * keys + j if j % 2 == 0 else f"value-{i}-{j}") for j in range(keys)}
        for i in range(sections)
    }


def best_ns(
    stmt: str, namespace: dict[str, Any], *, number: int = 200_000, repeat: int = 7
) -> float:
    """Best-of-``repeat`` nanoseconds per execution of ``stmt``, run ``number`` times a round.

    The statement is compiled into timeit's own loop, so no Python call wraps it: a read of
    ``d["a"]`` costs what it costs in real code (plus timeit's loop step, a few ns; see the
    ``pass`` row in the read table).
    """
    timer = timeit.Timer(stmt, globals=namespace)
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e9


def per_call_ns(fn: Callable[[], object], *, rounds: int, warmup: int = 3) -> tuple[float, float]:
    """(median, best) nanoseconds of ``rounds`` calls of ``fn``, each timed on its own."""
    for _ in range(warmup):
        fn()
    samples: list[int] = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - start)
    return statistics.median(samples), float(min(samples))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; numbers right-aligned."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [
        any(_is_number(r[i]) for r in cells)
        and all(_is_number(r[i]) or r[i] in _BLANKS for r in cells)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "| " + " | ".join(parts) + " |"

    rule = (
        "|"
        + "|".join(
            "-" * (w + 1) + ":" if num else "-" * (w + 2)
            for w, num in zip(widths, numeric, strict=True)
        )
        + "|"
    )
    return "\n".join([line(list(headers)), rule, *(line(r) for r in cells)])


_BLANKS = frozenset({"-", "n/a"})


def _is_number(text: str) -> bool:
    try:
        float(text.rstrip("x").replace(",", ""))
    except ValueError:
        return False
    return True


def machine() -> str:
    """One line: CPU count, Python version and implementation, platform."""
    return (
        f"{os.cpu_count()} CPUs, {platform.python_implementation()} {platform.python_version()}, "
        f"{platform.system()} {platform.release()} {platform.machine()}"
    )
