"""Where a value came from: every layer that sets a key, newest first, and a text rendering.

Dynaconf records history as values are set, and its validators then appear as the source of
values they only defaulted or cast. Here history is worked out on demand from what the engine
keeps anyway (each source's prepared layer), so it costs nothing until asked, and what
validators and ``@format`` did is shown *on top of* the sources, never instead of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ._secrets import MASK

__all__ = ("HistoryEntry", "render")


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One layer's say about a key.

    ``kind`` is the kind of source (``file``, ``env``, ``http``, ``etcd``, ``static``, the
    source class's name in lower case) or ``validators`` / ``@format`` / ``cache``. ``source``
    is the source's name (a file path, ``env:MYAPP_*``, a URL, an etcd prefix) or
    ``"validators"`` / ``"@format"`` for what was decided after the merge; ``origin`` is the
    exact place (the environment section, the variable name, the etcd key and revision).
    ``value`` is ``"**********"`` for a secret unless revealed. ``version`` is the snapshot
    version that introduced the value now serving (on the serving entry only; None for
    values other layers override). ``serving`` marks the entry whose value ``get`` returns.
    """

    key: str
    value: Any
    kind: str
    source: str
    origin: str
    version: int | None
    serving: bool


def render(key: str, entries: Sequence[HistoryEntry]) -> str:
    """``entries`` as a table for people, the serving one marked with ``*``."""
    if not entries:
        return f"{key}: not set by any source"
    rows = [
        (
            "*" if entry.serving else " ",
            entry.kind,
            entry.source,
            entry.origin,
            MASK if entry.value == MASK else _shown(entry.value),
            "" if entry.version is None else f"v{entry.version}",
        )
        for entry in entries
    ]
    header = ("", "kind", "source", "origin", "value", "since")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"{key} (newest first; * serving)"]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
