"""Parsers: bytes in, a plain dict out, or a ParseError naming the place but never the content.

Third-party parsers quote the document in their messages (PyYAML shows a snippet, configparser the
offending line), and a configuration value may be a secret. So every message here is rebuilt from
the parser's problem and position only, and the original exception is not chained.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import orjson

from .. import _json
from .._exceptions import ParseError, SourceError
from .._limits import MAX_DEPTH, check_shape, too_deep, too_many_values, value_limit
from .._text import decode_utf8

if TYPE_CHECKING:
    import yaml

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
    except RecursionError:  # tomli (3.10) builds tables recursively
        raise too_deep(source) from None
    check_shape(document, source, len(data))
    return document


def parse_json(text: str, source: str) -> dict[str, Any]:
    if not text.strip():  # worded by us: orjson's wording for this changed between versions
        raise ParseError(source, "empty document", line=1, column=1)
    try:
        document = _json.loads(text)
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
    except tomllib.TOMLDecodeError as exc:  # a ValueError: before the one below
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
    except ValueError:  # int() past Python's 4,300 digits, which tomllib lets through
        raise ParseError(source, "a number too long") from None


def parse_yaml(text: str, source: str) -> dict[str, Any]:
    """Parse YAML as ``safe_load`` does; an empty document is an empty mapping.

    The document is composed into PyYAML's node graph first, where aliases are shared, and
    measured there (:func:`_measure_yaml`) before anything is built: PyYAML builds merge keys
    (``<<: [*a, *a]``) by copying, so a few hundred bytes can cost it minutes before the
    result, deduplicated, shows anything.
    """
    try:
        import yaml
    except ImportError:
        raise SourceError(source, "install aioconfig[yaml] to read YAML files") from None
    try:
        loader = _yaml_loader()(text)  # which reads the text: a ReaderError already
        try:
            root = loader.get_single_node()
            if root is None:
                return {}
            _measure_yaml(root, source, value_limit(len(text)))
            document = loader.construct_document(root)
        finally:
            loader.dispose()
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


_MERGE = "tag:yaml.org,2002:merge"
_TOO_DEEP = f"nested more than {MAX_DEPTH} levels deep"
# YAML 1.1 base-60 numbers (``1:30:00``): PyYAML multiplies a growing integer for each part,
# quadratic in their number, and a float of more than ~170 parts overflows.
_MAX_BASE60_PARTS = 100


def _measure_yaml(root: yaml.Node, source: str, limit: int) -> None:
    """Refuse a node graph that PyYAML would take long to build, or that would build too much.

    Per distinct collection node, with memoisation (aliases share nodes) and iteratively:

    * the values it expands to, counted as :func:`check_shape` counts them, a merge key adding
      all its mappings expand to: at most ``limit``, and a node that contains itself expands
      without end;
    * the depth it nests to, merged entries sitting at the level they are merged into: at most
      :data:`MAX_DEPTH`;
    * the entries PyYAML's ``flatten_mapping`` copies into it, all nodes' together at most
      ``limit`` (that is the time it takes: a chain of merges copies quadratically), through
      merges chained at most :data:`MAX_DEPTH` deep (``flatten_mapping`` recurses along them).
    """
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    done: dict[int, tuple[int, int, int, int]] = {}  # id: values, depth, copied entries, chain
    # Nodes on the current path, with their own entries and their collection children and
    # merged mappings. Met again below itself, a node contains itself: it expands without end.
    open_: dict[int, tuple[int, list[yaml.Node], list[yaml.Node]]] = {}
    copied = 0  # entries of all mappings once merged, plus items of all sequences
    stack: list[yaml.Node] = [] if type(root) is ScalarNode else [root]
    while stack:
        node = stack[-1]
        key = id(node)
        if key in done:
            stack.pop()
            continue
        opened = open_.pop(key, None)
        if opened is None:
            own = len(node.value)
            merged: list[yaml.Node] = []
            if type(node) is SequenceNode:
                children = [c for c in node.value if type(c) is not ScalarNode]
            else:  # a MappingNode: scalars are never pushed
                children = []
                for k, v in node.value:
                    if k.tag == _MERGE:
                        own -= 1
                        if isinstance(v, MappingNode):
                            merged.append(v)
                        elif isinstance(v, SequenceNode):  # anything else: PyYAML refuses it
                            merged.extend(m for m in v.value if isinstance(m, MappingNode))
                        continue
                    if type(k) is not ScalarNode:
                        children.append(k)
                    if type(v) is not ScalarNode:
                        children.append(v)
            open_[key] = (own, children, merged)
            for child in (*children, *merged):
                if id(child) not in done:
                    if id(child) in open_:
                        raise too_many_values(source, limit)
                    stack.append(child)
            continue
        # Every child is done.
        own, children, merged = opened
        values = entries = own
        depth = 1
        chain = 0
        for child in children:
            c_values, c_depth, _, _ = done[id(child)]
            values += c_values
            depth = max(depth, c_depth + 1)
        for mapping in merged:
            m_values, m_depth, m_entries, m_chain = done[id(mapping)]
            values += m_values
            depth = max(depth, m_depth)
            entries += m_entries
            chain = max(chain, m_chain + 1)
        copied += entries
        if values > limit or copied > limit:
            raise too_many_values(source, limit)
        if depth > MAX_DEPTH or chain > MAX_DEPTH:
            line, column = node.start_mark.line + 1, node.start_mark.column + 1
            if depth > MAX_DEPTH:
                raise too_deep(source, line=line, column=column)
            problem = f"merge keys (<<) chained more than {MAX_DEPTH} deep"
            raise ParseError(source, problem, line=line, column=column)
        done[key] = (values, depth, entries, chain)
        stack.pop()


@functools.cache
def _yaml_loader() -> type[yaml.SafeLoader]:
    """PyYAML's SafeLoader, which also refuses, where it finds them, what would cost it more than
    linear time or its recursion: nesting past :data:`MAX_DEPTH` (the composer recurses, and the
    scanner's work per token grows with the brackets open), base-60 numbers of many parts, and
    numbers Python refuses to build (over 4,300 digits, a 30th of February) with an error of
    its own, which would escape as something else than a ParseError."""
    import yaml
    from yaml.composer import ComposerError
    from yaml.constructor import ConstructorError
    from yaml.scanner import ScannerError

    class Loader(yaml.SafeLoader):
        _depth = 0

        def fetch_flow_collection_start(self, TokenClass: Any) -> None:
            if self.flow_level >= MAX_DEPTH:
                raise ScannerError(None, None, _TOO_DEEP, self.get_mark())
            super().fetch_flow_collection_start(TokenClass)

        def compose_sequence_node(self, anchor: Any) -> yaml.SequenceNode:
            self._enter()
            try:
                return super().compose_sequence_node(anchor)
            finally:
                self._depth -= 1

        def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
            self._enter()
            try:
                return super().compose_mapping_node(anchor)
            finally:
                self._depth -= 1

        def _enter(self) -> None:
            self._depth += 1
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise ComposerError(None, None, _TOO_DEEP, event.start_mark)

    def checked(
        construct: Callable[[yaml.SafeLoader, yaml.ScalarNode], object], problem: str
    ) -> Callable[[Loader, yaml.ScalarNode], object]:
        def construct_checked(loader: Loader, node: yaml.ScalarNode) -> object:
            if node.value.count(":") >= _MAX_BASE60_PARTS and construct is not timestamp:
                too_long = f"a base-60 number of more than {_MAX_BASE60_PARTS} parts"
                raise ConstructorError(None, None, too_long, node.start_mark)
            try:
                return construct(loader, node)
            except (ValueError, OverflowError):  # their messages may quote the value
                raise ConstructorError(None, None, problem, node.start_mark) from None

        return construct_checked

    SafeConstructor = yaml.constructor.SafeConstructor
    timestamp = SafeConstructor.construct_yaml_timestamp
    for tag, construct, problem in (
        ("int", SafeConstructor.construct_yaml_int, "a number too long"),
        ("float", SafeConstructor.construct_yaml_float, "a number too long"),
        ("timestamp", timestamp, "a date or time out of range"),
    ):
        Loader.add_constructor(f"tag:yaml.org,2002:{tag}", checked(construct, problem))
    return Loader


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
