"""From a source's payload to a layer ready to merge: environments, case, casts, tokens.

Pure code, no I/O. Each payload is prepared once, when it arrives, never per read:

* **environments**: a file with sections ``[default]``, ``[development]``, ``[production]``,
  ... and ``[global]`` becomes ``default``, deep-merged with the active environment's section,
  deep-merged with ``global`` (section names compare case-insensitively; other sections are
  left out);
* **case**: with ``case_sensitive=False`` every key is lower-cased;
* **casts**: a string ``"@int 42"`` becomes ``42``; the converters are ``@int``, ``@float``,
  ``@bool``, ``@json``, ``@none``, ``@str`` and any registered with ``add_converter``; a cast
  that fails is a ``ParseError`` naming the source, the key and the problem;
* **merge tokens**: ``"@merge [4, 5]"`` (or a list whose first item is ``"@merge"``) appends
  to the list the earlier sources give that key, ``"@merge {...}"`` merges into their mapping
  (JSON or a TOML inline table, ``"@merge {retries=10}"``),
  and ``"@del"`` removes the key the earlier sources set;
* **interpolation**: ``"@format {db.host}:{db.port}"`` is filled in from the finished
  configuration (see ``interpolate``), optionally cast: ``"@int @format {base}0"``;
* **secrets**: a ``Secret(...)`` value is unwrapped and its key remembered as secret; what
  ``@format`` builds from a secret is a secret too (``Snapshot.is_secret``), and a failed cast
  shows a converter's message only for the built-in converters, whose text is fixed.

A string that starts with ``@`` but no known token (``"@handle"``) is left alone. A source
whose values are data, never tokens (``Source.tokens = False``: Azure App Configuration, whose
provider serves ``"@del"`` as the string it is), is prepared with ``tokens=False``: case and
secrets as above, and every string kept as it is. Nothing here
ever runs code from configuration: JSON is parsed with orjson, and ``@json``'s fallback for
Python literals (``{'a': None}``, as Dynaconf takes) with ``ast.literal_eval``, never ``eval``.
"""

from __future__ import annotations

import functools
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from ._exceptions import ParseError
from ._frozen import FrozenList
from ._json import loads as json_loads
from ._limits import check_shape
from ._literals import python_literal, toml_literal
from ._secrets import DEFAULT_SECRET_MATCHER, MASK, Secret, shown

__all__ = (
    "Converter",
    "Layer",
    "add_converter",
    "converters",
    "find",
    "interpolate",
    "key_matches",
    "prepare",
    "resolve_tokens",
)

Converter = Callable[[str], Any]
Describe = Callable[[tuple[str, ...]], "str | None"]

_TRUE = frozenset({"t", "true", "enabled", "1", "on", "yes", "y"})
_FALSE = frozenset({"f", "false", "disabled", "0", "off", "no", "n", ""})


def _bool(text: str) -> bool:
    folded = text.strip().lower()
    if folded in _TRUE:
        return True
    if folded in _FALSE:
        return False
    raise ValueError("not a boolean (true/false, yes/no, on/off, 1/0)")


def _json(text: str) -> Any:
    """JSON, else a Python literal as Dynaconf's ``@json`` takes it (``{'a': 1, 'b': None}``),
    read by ``ast.literal_eval``: constants and containers only, never code."""
    try:
        value = json_loads(text)
    except orjson.JSONDecodeError as exc:
        try:
            value = python_literal(text)
        except ValueError:
            raise ValueError(f"not JSON ({exc.args[0]}) or a Python literal") from None
    try:
        check_shape(value, "@json", len(text))
    except ParseError as exc:
        raise ValueError(exc.problem) from None
    return value


def _merge_operand(text: str) -> Any:
    """What follows ``@merge``: JSON, else a TOML value (``{retries=10}``, ``[1, 2]``, ``3``)."""
    try:
        return _json(text)
    except ValueError:
        pass
    try:
        return toml_literal(text.strip())
    except ValueError:
        raise ValueError("not JSON or a TOML value") from None


def _int(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError("not an integer") from None


def _float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError("not a number") from None


_BUILTIN: dict[str, Converter] = {
    "@int": _int,
    "@float": _float,
    "@bool": _bool,
    "@json": _json,
    "@none": lambda text: None,
    "@str": str,
}
_REGISTRY: dict[str, Converter] = dict(_BUILTIN)
_TOKENS = frozenset({"@format", "@merge", "@del"})


def add_converter(name: str, converter: Converter) -> None:
    """Register ``converter`` as ``@name`` for every Config made afterwards.

    >>> add_converter("@upper", str.upper)   # "@upper hello" -> "HELLO"

    For one Config only, pass ``load(..., converters={"@upper": str.upper})``. The built-in
    names and the tokens ``@format``, ``@merge`` and ``@del`` cannot be replaced.
    """
    _REGISTRY[_checked_name(name, converter)] = converter


def converters(extra: Mapping[str, Converter] | None = None) -> dict[str, Converter]:
    """The global registry, plus ``extra`` (a Config's own): what ``prepare`` is given."""
    result = dict(_REGISTRY)
    for name, converter in (extra or {}).items():
        result[_checked_name(name, converter)] = converter
    return result


def _checked_name(name: str, converter: object) -> str:
    if not isinstance(name, str) or not name.startswith("@") or " " in name or len(name) < 2:
        raise ValueError(f"a converter name is '@' and a word, like '@upper'; got {name!r}")
    if name in _BUILTIN or name in _TOKENS:
        raise ValueError(f"{name} is built in and cannot be replaced")
    if not callable(converter):
        raise TypeError(f"the converter for {name} must be callable")
    return name


@dataclass(frozen=True, slots=True)
class Format:
    """A value to fill in once the configuration is merged: ``template`` and a cast."""

    template: str
    cast: str | None
    source: str


@dataclass(frozen=True, slots=True)
class Layer:
    """A prepared payload: plain data to merge, and what must happen around the merge."""

    data: Mapping[str, Any]
    #: ``(path, "merge" | "del")`` for each merge token, in document order.
    tokens: tuple[tuple[tuple[str, ...], str], ...] = ()
    #: Dotted path -> the template to fill in after the merge.
    formats: Mapping[str, Format] = field(default_factory=dict)
    #: Dotted paths of values given as ``Secret(...)``.
    secrets: frozenset[str] = frozenset()


def prepare(
    data: Mapping[str, Any],
    source: str,
    *,
    environment: str | None = None,
    fold_case: bool = False,
    table: Mapping[str, Converter] | None = None,
    describe: Describe | None = None,
    secret: Callable[[str], bool] = DEFAULT_SECRET_MATCHER,
    tokens: bool = True,
) -> Layer:
    """Prepare ``data`` from ``source`` (see the module docstring).

    ``environment``: the active environment's name when the source holds environment
    sections, else None. ``table``: the converters (``converters()`` by default).
    ``describe(path)``: where in the source a key comes from (a variable name), for errors.
    ``tokens``: False to keep every string as it is (no casts, merges, deletions, formats).
    """
    table = converters() if table is None else table
    walk = functools.partial(_prepare_one, source=source, fold_case=fold_case, table=table,
                             describe=describe, secret=secret, tokens=tokens)  # fmt: skip
    if environment is None:
        return walk(data)
    # Sections are layers of their own, so "@merge" and "@del" in [production] work against
    # [default]; what is left of the tokens then applies against the earlier sources.
    sections = [walk(section) for _, section in _sections(data, environment, source)]
    resolved = resolve_tokens(sections)
    merged: dict[str, Any] = {}
    pending: list[tuple[tuple[str, ...], str]] = []
    for index, (section, section_data) in enumerate(zip(sections, resolved, strict=True)):
        _deep_update(merged, section_data)
        for path, kind in section.tokens:
            below = [layer.data for layer in sections[:index]]
            if kind == "del" or all(lookup(d, path) is MISSING for d in below):
                pending.append((path, kind))
    formats = {key: spec for section in sections for key, spec in section.formats.items()}
    secrets = frozenset().union(*(section.secrets for section in sections))
    return Layer(merged, tuple(pending), formats, secrets)


def _prepare_one(
    data: Mapping[str, Any],
    *,
    source: str,
    fold_case: bool,
    table: Mapping[str, Converter],
    describe: Describe | None,
    secret: Callable[[str], bool],
    tokens: bool = True,
) -> Layer:
    if not fold_case and not _may_hold_tokens(data):
        return Layer(data)
    walk = _Walk(source, table if tokens else {}, fold_case, describe, secret, tokens)
    prepared = walk.mapping(data, ())
    return Layer(prepared, tuple(walk.tokens), walk.formats, frozenset(walk.secrets))


def _may_hold_tokens(data: Mapping[str, Any]) -> bool:
    """False when ``data`` surely has no ``@`` string and no Secret: one C-level pass."""
    try:
        blob = orjson.dumps(data)
    except TypeError:  # a TOML date, a set, a Secret...: look properly
        return True
    return b'"@' in blob or b'["@' in blob


def _sections(
    data: Mapping[str, Any], environment: str, source: str
) -> list[tuple[str, Mapping[str, Any]]]:
    """The sections that count, lowest first: ``default``, the environment's, ``global``;
    each with its name as the file spells it."""
    wanted = ("default", environment.lower(), "global")
    found: dict[str, list[tuple[str, Mapping[str, Any]]]] = {name: [] for name in wanted}
    for key, value in data.items():
        name = str(key).lower()
        if name in found:
            if not isinstance(value, Mapping):
                raise ParseError(
                    source, f"environment section [{key}] must be a table, not a value"
                )
            found[name].append((str(key), value))
    return [section for name in dict.fromkeys(wanted) for section in found[name]]


def section_of(data: Mapping[str, Any], environment: str, path: tuple[str, ...]) -> str | None:
    """The section of a file's ``data`` that gives ``path`` its value (for history)."""
    for name, section in reversed(_sections(data, environment, "")):
        if lookup(section, path) is not MISSING:
            return str(name)
    return None


def _deep_update(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        current = target.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _deep_update(current, value)
        elif isinstance(value, Mapping):
            target[key] = _deep_update_copy(value)
        else:
            target[key] = value


def _deep_update_copy(value: Mapping[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = {}
    _deep_update(copied, value)
    return copied


class _Walk:
    def __init__(
        self,
        source: str,
        table: Mapping[str, Converter],
        fold_case: bool,
        describe: Describe | None,
        secret: Callable[[str], bool],
        tokens: bool = True,
    ) -> None:
        self.source = source
        self.tokens_on = tokens
        self.describe = describe
        self.secret = secret
        self.table = table
        self.fold_case = fold_case
        self.tokens: list[tuple[tuple[str, ...], str]] = []
        self.formats: dict[str, Format] = {}
        self.secrets: set[str] = set()

    def fail(self, path: tuple[str, ...], problem: str) -> ParseError:
        return ParseError(self.source, f"{'.'.join(path)}: {problem}")

    def mapping(self, node: Mapping[Any, Any], path: tuple[str, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            name = key if type(key) is str else str(key)
            if self.fold_case:
                name = name.lower()
            here = (*path, name)
            if (
                isinstance(value, str)
                and value.startswith("@del")
                and self.tokens_on
                and value.strip() == "@del"
            ):
                self.tokens.append((here, "del"))
                out.pop(name, None)
                continue
            converted = self.value(value, here)
            if self.fold_case and name in out:
                earlier = out[name]
                if isinstance(earlier, dict) and isinstance(converted, dict):
                    _deep_update(earlier, converted)
                    continue
            out[name] = converted
        return out

    def value(self, value: Any, path: tuple[str, ...]) -> Any:
        if isinstance(value, str):
            return self.text(value, path) if value.startswith("@") and self.tokens_on else value
        if isinstance(value, Mapping):
            return self.mapping(value, path)
        if isinstance(value, Secret):
            self.secrets.add(".".join(path))
            return self.value(value.reveal(), path)
        if type(value) is FrozenList:
            return value  # read-only on purpose, and taken as it is (aioconfig._frozen)
        if isinstance(value, list | tuple):
            if value and value[0] == "@merge" and self.tokens_on:
                self.tokens.append((path, "merge"))
                value = value[1:]
            return [self.item(item, path) for item in value]
        return value

    def item(self, value: Any, path: tuple[str, ...]) -> Any:
        """A list item: casts apply; merge tokens and formats do not."""
        if isinstance(value, Secret):
            self.secrets.add(".".join(path))
            return self.item(value.reveal(), path)
        if isinstance(value, str) and value.startswith("@"):
            name, _, rest = value.partition(" ")
            if name in self.table:
                return self.cast(name, rest, path)
            return value
        if isinstance(value, Mapping):
            return {str(k): self.item(v, path) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.item(v, path) for v in value]
        return value

    def text(self, value: str, path: tuple[str, ...]) -> Any:
        name, _, rest = value.partition(" ")
        if name == "@format":
            self.formats[".".join(path)] = Format(rest, None, self.source)
            return value
        if name == "@merge":
            self.tokens.append((path, "merge"))
            operand = self.cast("@merge", rest, path) if rest.strip() else []
            if isinstance(operand, Mapping):
                return self.mapping(operand, path)
            return operand if isinstance(operand, list) else [operand]
        if name not in self.table:
            return value
        inner, _, template = rest.partition(" ")
        if inner == "@format":  # "@int @format {port}": fill in, then cast
            self.formats[".".join(path)] = Format(template, name, self.source)
            return value
        return self.cast(name, rest, path)

    def cast(self, name: str, text: str, path: tuple[str, ...]) -> Any:
        converter = _merge_operand if name == "@merge" else self.table[name]
        try:
            return converter(text)
        except Exception as exc:
            key = ".".join(path)
            secret = key in self.secrets or self.secret(key)  # Secret("@int ...") too
            # Only a built-in converter's message is shown (it never quotes the value); a user's
            # may quote anything, so it is shown by type.
            problem = _problem(exc, converter) if not secret else type(exc).__name__
            where = self.describe(path) if self.describe is not None else None
            place = f"{key} ({where})" if where else key
            value = MASK if secret else shown(key, text.strip(), self.secret)
            raise ParseError(self.source, f"{place}: {name} {value} failed: {problem}") from None


def _problem(exc: Exception, converter: Converter) -> str:
    """What a failed cast says: a built-in converter's message (fixed text), else the type."""
    builtin = converter is _merge_operand or any(converter is k for k in _BUILTIN.values())
    return str(exc) if builtin and isinstance(exc, ValueError) else type(exc).__name__


def resolve_tokens(layers: Sequence[Layer]) -> list[Mapping[str, Any]]:
    """The layers' data with ``@merge`` and ``@del`` applied against the earlier layers."""
    result: list[Mapping[str, Any]] = [layer.data for layer in layers]
    for index, layer in enumerate(layers):
        for path, kind in layer.tokens:
            if kind == "del":
                for earlier in range(index):
                    result[earlier] = _without(result[earlier], path)
                continue
            below = _effective(result[:index], path)
            mine = lookup(result[index], path)
            if isinstance(below, list | tuple) and isinstance(mine, list):
                result[index] = _with(result[index], path, [*below, *mine])
    return result


def _effective(layers: Sequence[Mapping[str, Any]], path: tuple[str, ...]) -> Any:
    """The value the merged ``layers`` give ``path`` (only lists matter to a merge)."""
    for data in reversed(layers):
        value = lookup(data, path)
        if value is not MISSING:
            return value
    return MISSING


#: What ``lookup`` returns for a path that is not there.
MISSING: Any = object()


def lookup(data: Mapping[str, Any], path: Sequence[str]) -> Any:
    """The value at ``path`` in nested ``data``, or ``MISSING``."""
    node: Any = data
    for part in path:
        if not isinstance(node, Mapping):
            return MISSING
        node = node.get(part, MISSING)
        if node is MISSING:
            return MISSING
    return node


def find(data: Mapping[str, Any], key: str) -> Any:
    """The value at dotted ``key`` in nested ``data`` however it is spelled (``"a.b"`` or
    ``"a"`` > ``"b"``: the pipeline lets one payload spell a path one way only), or ``MISSING``."""
    stack: list[tuple[Mapping[str, Any], str]] = [(data, key)]
    while stack:
        node, rest = stack.pop()
        value = node.get(rest, MISSING)
        if value is not MISSING:
            return value
        end = rest.find(".")
        while end != -1:
            child = node.get(rest[:end], MISSING)
            if isinstance(child, Mapping):
                stack.append((child, rest[end + 1 :]))
            end = rest.find(".", end + 1)
    return MISSING


def _with(data: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``path`` set to ``value`` (copying only the dicts on the way)."""
    copied = dict(data)
    if len(path) == 1:
        copied[path[0]] = value
    else:
        child = copied.get(path[0])
        copied[path[0]] = _with(child if isinstance(child, Mapping) else {}, path[1:], value)
    return copied


def _without(data: Mapping[str, Any], path: tuple[str, ...]) -> Mapping[str, Any]:
    """A copy of ``data`` without ``path`` (``data`` itself when it has no such key)."""
    if path[0] not in data:
        return data
    copied = dict(data)
    if len(path) == 1:
        del copied[path[0]]
    elif isinstance(copied[path[0]], Mapping):
        copied[path[0]] = _without(copied[path[0]], path[1:])
    return copied


def interpolate(
    flat: Mapping[str, Any], formats: Mapping[str, Format], table: Mapping[str, Converter]
) -> dict[str, Any]:
    """The value of every ``@format`` template in ``formats``, from the merged ``flat`` index.

    ``{db.host}`` is the value at that dotted key (itself filled in first if it is a template);
    ``{{`` and ``}}`` are literal braces. A missing key or a cycle is a ``ParseError`` naming
    the source and the key. Only plain references: no attributes, indexes or calls.
    """
    done: dict[str, Any] = {}
    active: list[str] = []
    formatter = string.Formatter()

    def resolve(key: str) -> Any:
        if key in done:
            return done[key]
        spec = formats[key]
        if key in active:
            cycle = " -> ".join([*active[active.index(key) :], key])
            raise ParseError(spec.source, f"{key}: @format refers to itself ({cycle})")
        active.append(key)
        parts: list[str] = []
        try:
            pieces = list(formatter.parse(spec.template))
        except ValueError as exc:
            raise ParseError(spec.source, f"{key}: bad @format template ({exc})") from None
        for literal, field_name, format_spec, conversion in pieces:
            parts.append(literal)
            if field_name is None:
                continue
            if not field_name or conversion or any(c in field_name for c in "[]()"):
                raise ParseError(
                    spec.source, f"{key}: @format takes plain {{dotted.key}} references"
                )
            if field_name in formats and _is_template(flat.get(field_name)):
                value = resolve(field_name)
            elif field_name in flat:
                value = flat[field_name]
            else:
                raise ParseError(
                    spec.source, f"{key}: @format refers to {field_name!r}, which is not set"
                )
            parts.append(format(value, format_spec) if format_spec else str(value))
        active.pop()
        text = "".join(parts)
        if spec.cast is None:
            result: Any = text
        else:
            try:
                result = table[spec.cast](text)
            except Exception as exc:
                # The text was filled in, maybe from a secret: a user's message is not shown.
                problem = _problem(exc, table[spec.cast])
                raise ParseError(spec.source, f"{key}: {spec.cast} failed: {problem}") from None
        done[key] = result
        return result

    for key in formats:
        if _is_template(flat.get(key)):
            resolve(key)
    return done


def _is_template(value: object) -> bool:
    """Whether the merged value is still the raw template (a later source may have won)."""
    return isinstance(value, str) and value.startswith("@") and " @format " in f" {value} "


def key_matches(key: str, prefixes: Iterable[str]) -> bool:
    """Whether ``key`` is, contains or lies under one of the dotted ``prefixes``."""
    for prefix in prefixes:
        if key == prefix or key.startswith(prefix + ".") or prefix.startswith(key + "."):
            return True
    return False
