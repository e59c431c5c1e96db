"""Names a package imports on first use (PEP 562), so a program pays only for what it touches:
``import aioconfig`` brings no event loop, ``aioconfig.sources`` no aiohttp."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ("attribute",)


def attribute(package: str, lazy: Mapping[str, str], name: str) -> Any:
    """``package``'s ``name``, imported from its module in ``lazy`` (name -> module, relative
    to ``package``); kept on the package, so later look-ups find it directly."""
    module = lazy.get(name)
    if module is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, package), name)
    setattr(sys.modules[package], name, value)
    return value
