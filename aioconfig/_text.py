"""Bytes to text, the one way every parser here does it (files, HTTP bodies, flag documents)."""

from __future__ import annotations

import codecs

from ._exceptions import ParseError

__all__ = ("decode_utf8",)


def decode_utf8(data: bytes, source: str) -> str:
    """``data`` as UTF-8 (a leading BOM dropped); ``ParseError`` at the first bad byte."""
    if data.startswith(codecs.BOM_UTF8):  # editors on Windows like to add one
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8")) + 1
        raise ParseError(source, "not valid UTF-8", line=line, column=column) from None
