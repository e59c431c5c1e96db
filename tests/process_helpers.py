"""Ports and processes on this machine, for the tests and benchmarks that start servers."""

from __future__ import annotations

import socket
from pathlib import Path

__all__ = ("children", "free_port", "gone")


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (Linux ``/proc``; none elsewhere)."""
    listed = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in listed.read_text().split()] if listed.exists() else []


def gone(pid: int) -> bool:
    """Whether process ``pid`` has exited (reaped, or a zombie)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state == "Z"
