"""Parsers: bytes in, a plain dict out, or a ParseError naming the place but never the content.

Third-party parsers quote the document in their messages (PyYAML shows a snippet, configparser the
offending line), and a configuration value may be a secret. So every message here is rebuilt from
the parser's problem and position only, and the original exception is not chained.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import orjson

from .._exceptions import ParseError, SourceError
from .._limits import MAX_DEPTH, check_shape
from .._text import decode_utf8

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = (
    "FORMATS",
    "Format",
    "format_from_path",
    "parse",
    "parse_env",
    "parse_ini",
    "parse_json",
    "parse_toml",
    "parse_yaml",
)


Format: TypeAlias = Literal["env", "ini", "json", "toml", "yaml"]
FORMATS: tuple[Format, ...] = ("env", "ini", "json", "toml", "yaml")

_SUFFIXES: dict[str, Format] = {
    ".cfg": "ini",
    ".env": "env",
    ".ini": "ini",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
}


def format_from_path(path: str) -> Format | None:
    """The format a file's name implies (``.env`` alone counts), or None."""
    base = os.path.basename(path).lower()
    if base == ".env":
        return "env"
    return _SUFFIXES.get(os.path.splitext(base)[1])


def parse(data: bytes, format: Format, source: str) -> dict[str, Any]:
    """Decode ``data`` as UTF-8 and parse it as ``format``; ``source`` names it in errors.

    The result is checked against :data:`MAX_DEPTH` and :data:`MIN_VALUES`.
    """
    try:
        document = _PARSERS[format](decode_utf8(data, source), source)
    except RecursionError:  # PyYAML composes nodes, tomli (3.10) tables, recursively
        raise ParseError(source, f"nested more than {MAX_DEPTH} levels deep") from None
    check_shape(document, source, len(data))
    return document


def parse_json(text: str, source: str) -> dict[str, Any]:
    if not text.strip():  # worded by us: orjson's wording for this changed between versions
        raise ParseError(source, "empty document", line=1, column=1)
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ParseError(source, exc.msg, line=exc.lineno, column=exc.colno) from None
    return _mapping(document, source)


# tomllib before 3.14 has only the message, which ends with the position.
_TOML_POSITION = re.compile(
    r"(?P<problem>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)",
    re.DOTALL,
)


def parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        problem = getattr(exc, "msg", None)
        line = getattr(exc, "lineno", None)
        column = getattr(exc, "colno", None)
        if not (isinstance(problem, str) and isinstance(line, int) and isinstance(column, int)):
            match = _TOML_POSITION.fullmatch(str(exc))
            if match is None:
                problem, line, column = "malformed TOML", None, None
            elif match["line"] is None:
                problem = match["problem"]
                line, column = _position(text, len(text))
            else:
                problem, line, column = match["problem"], int(match["line"]), int(match["column"])
        raise ParseError(source, problem, line=line, column=column) from None


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML with ``safe_load``; an empty document is an empty mapping."""
    try:
        import yaml
    except ImportError:
        raise SourceError(source, "install aioconfig[yaml] to read YAML files") from None
    try:
        document = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        # Never str(exc): it quotes the document around the mark. Its problem may quote a name
        # from the document too ("found undefined alias 'hunter2'"): quoted parts are elided.
        mark = exc.problem_mark or exc.context_mark
        problem = _YAML_QUOTED.sub(r"\1'…'", exc.problem or exc.context or "malformed YAML")
        if mark is None:
            raise ParseError(source, problem) from None
        raise ParseError(source, problem, line=mark.line + 1, column=mark.column + 1) from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        problem = f"{exc.reason} (#x{exc.character:04x})"
        raise ParseError(source, problem, line=line, column=column) from None
    except yaml.YAMLError:
        raise ParseError(source, "malformed YAML") from None
    if document is None:
        return {}
    check_shape(document, source, len(text))  # before any walk: aliases may expand
    _check_keys(document, source, ())
    return _mapping(document, source)


# What PyYAML quotes from the document in a problem: an alias or anchor name, a tag. (Grammar
# tokens it quotes, "expected ',' or ']'", are its own.)
_YAML_QUOTED = re.compile(r"((?:alias|anchor|tag) )'[^']*'")


def parse_ini(text: str, source: str) -> dict[str, Any]:
    """Sections become nested mappings; ``[DEFAULT]`` keys go to the top level as well.

    Sections inherit the DEFAULT keys, as configparser does. Values stay strings; keys are
    lower-cased (configparser's ``optionxform``); no interpolation.
    """
    import configparser  # with the first INI document: most never read one

    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text, source=source)
    except configparser.MissingSectionHeaderError as exc:
        raise ParseError(source, "expected a [section] header", line=exc.lineno) from None
    except configparser.ParsingError as exc:
        line = exc.errors[0][0] if exc.errors else None
        problem = "expected 'key = value' or a [section] header"
        raise ParseError(source, problem, line=line) from None
    except configparser.DuplicateSectionError as exc:
        problem = f"duplicate section [{exc.section}]"
        raise ParseError(source, problem, line=exc.lineno) from None
    except configparser.DuplicateOptionError as exc:
        problem = f"duplicate key {exc.option!r} in section [{exc.section}]"
        raise ParseError(source, problem, line=exc.lineno) from None
    except configparser.Error:
        raise ParseError(source, "malformed INI") from None
    result: dict[str, Any] = dict(parser.defaults())
    for section in parser.sections():
        if section in result:
            problem = f"section [{section}] clashes with the key {section!r} of [DEFAULT]"
            raise ParseError(source, problem)
        result[section] = dict(parser.items(section))
    return result


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_ENV_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_ENV_COMMENT = re.compile(r"[ \t]#")


def parse_env(text: str, source: str) -> dict[str, Any]:
    """Parse a ``.env`` file: ``[export ]KEY=value`` lines, ``#`` comments. Values are strings.

    ``'single'`` quotes are literal; ``"double"`` quotes know ``\\n \\t \\" \\\\`` (other
    backslashes are kept as written). Quoted values may span lines. Unquoted values end at
    `` #`` and are trimmed. No ``${VAR}`` expansion. A repeated key: the last one wins.
    """
    text = text.replace("\r\n", "\n")
    result: dict[str, Any] = {}
    size = len(text)
    pos = 0

    def fail(at: int, problem: str) -> ParseError:
        line, column = _position(text, at)
        return ParseError(source, problem, line=line, column=column)

    def skip_blanks(at: int) -> int:
        while at < size and text[at] in " \t":
            at += 1
        return at

    def line_end(at: int) -> int:
        end = text.find("\n", at)
        return size if end < 0 else end

    while pos < size:
        eol = line_end(pos)
        start = skip_blanks(pos)
        if start == eol or text[start] == "#":
            pos = eol + 1
            continue
        if text.startswith("export", start) and text[start + 6 : start + 7] in (" ", "\t"):
            start = skip_blanks(start + 6)
        name_end = start
        while name_end < eol and text[name_end] not in "= \t":
            name_end += 1
        name = text[start:name_end]
        if not _ENV_NAME.fullmatch(name):
            raise fail(start, "invalid variable name")
        equals = skip_blanks(name_end)
        if equals >= eol or text[equals] != "=":
            raise fail(equals, "expected '=' after the variable name")
        begin = skip_blanks(equals + 1)
        quote = text[begin] if begin < eol else ""
        if quote == "'":
            close = text.find("'", begin + 1)
            if close < 0:
                raise fail(begin, "unterminated single-quoted value")
            value = text[begin + 1 : close]
        elif quote == '"':
            parts: list[str] = []
            close = begin + 1
            while True:
                if close >= size:
                    raise fail(begin, "unterminated double-quoted value")
                char = text[close]
                if char == '"':
                    break
                if char == "\\" and close + 1 < size:
                    escaped = text[close + 1]
                    parts.append(_ENV_ESCAPES.get(escaped, "\\" + escaped))
                    close += 2
                    continue
                parts.append(char)
                close += 1
            value = "".join(parts)
        else:
            raw = text[begin:eol]
            comment = _ENV_COMMENT.search(raw)
            value = (raw[: comment.start()] if comment else raw).strip(" \t")
            close = -1
        if close >= 0:
            eol = line_end(close)
            after = skip_blanks(close + 1)
            if after < eol and text[after] != "#":
                raise fail(after, "unexpected text after the closing quote")
        result[name] = value
        pos = eol + 1
    return result


_PARSERS: dict[Format, Callable[[str, str], dict[str, Any]]] = {
    "env": parse_env,
    "ini": parse_ini,
    "json": parse_json,
    "toml": parse_toml,
    "yaml": parse_yaml,
}


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of ``offset`` in ``text``."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def _mapping(document: object, source: str) -> dict[str, Any]:
    if isinstance(document, dict):
        return document
    kind = "null" if document is None else type(document).__name__
    raise ParseError(source, f"top level must be a mapping, got {kind}")


def _check_keys(node: object, source: str, path: tuple[str, ...]) -> None:
    """YAML allows any scalar as a key (``1:``, ``yes:``); a configuration needs strings."""
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                where = repr(".".join(path)) if path else "the top level"
                kind = "null" if key is None else type(key).__name__
                raise ParseError(source, f"keys must be strings, got a {kind} key at {where}")
            _check_keys(value, source, (*path, key))
    elif isinstance(node, list):
        for item in node:
            _check_keys(item, source, path)
