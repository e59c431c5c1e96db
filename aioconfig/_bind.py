"""Typed views: a snapshot as an instance of a pydantic model or a dataclass.

``config.bind(Settings)`` builds the instance once per snapshot and keeps it on the snapshot,
so reading ``settings.db.port`` on every request costs a dict lookup plus attribute access.
A pydantic model is recognised by its ``model_validate`` (pydantic 2), so pydantic is only
needed by those who use it. A dataclass is built field by field with the type checks a
configuration needs (``int`` is not ``bool``, ``float`` takes an ``int``, nested dataclasses,
lists, tuples, dicts, ``Optional``/unions, ``Literal``, enums); anything else is checked with
``isinstance``. Prefer frozen dataclasses: the instance is shared by every reader of a snapshot.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from ._exceptions import ValidationError, ValidationFailure
from ._secrets import DEFAULT_SECRET_MATCHER, shown

__all__ = ("build",)

_M = TypeVar("_M")
_MISSING: Any = object()


def build(data: Mapping[str, Any], model: type[_M], is_secret: Any = DEFAULT_SECRET_MATCHER) -> _M:
    """``model`` from plain ``data``; a ``ValidationError`` listing every misfit otherwise."""
    validate = getattr(model, "model_validate", None)
    if validate is not None:
        return _pydantic(validate, data, model, is_secret)
    if not (isinstance(model, type) and dataclasses.is_dataclass(model)):
        name = getattr(model, "__name__", model)
        raise TypeError(f"bind() takes a pydantic model or a dataclass, got {name!r}")
    failures: list[ValidationFailure] = []
    instance = _dataclass(model, data, "", failures, is_secret)
    if failures:
        raise _error(model, failures)
    result: _M = instance
    return result


def _pydantic(validate: Any, data: Mapping[str, Any], model: type[_M], is_secret: Any) -> _M:
    try:
        instance: _M = validate(data)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        errors = getattr(exc, "errors", None)
        if errors is None:
            raise
        failures = []
        for error in errors():
            key = ".".join(str(part) for part in error.get("loc", ()))
            value = error.get("input", _MISSING)
            failures.append(
                ValidationFailure(key, _shown(key, value, is_secret), error.get("type", "model"),
                                  f"{key}: {error.get('msg', 'invalid')}")
            )  # fmt: skip
        raise _error(model, failures) from None
    return instance


def _error(model: type, failures: list[ValidationFailure]) -> ValidationError:
    noun = "problem" if len(failures) == 1 else "problems"
    lines = [f"{model.__name__}: {len(failures)} {noun}:"]
    lines += [f"  - {failure.message}" for failure in failures]
    return ValidationError("\n".join(lines), details=failures)


def _shown(key: str, value: Any, is_secret: Any) -> str:
    return "<missing>" if value is _MISSING else shown(key, value, is_secret)


def _dataclass(
    model: type, data: Any, path: str, failures: list[ValidationFailure], is_secret: Any
) -> Any:
    if not isinstance(data, Mapping):
        failures.append(
            ValidationFailure(path, _shown(path, data, is_secret), "type",
                              f"{path or '<root>'}: expected a mapping for {model.__name__}")
        )  # fmt: skip
        return None
    hints = typing.get_type_hints(model)
    values: dict[str, Any] = {}
    ok = True
    for item in dataclasses.fields(model):
        if not item.init:
            continue
        key = f"{path}.{item.name}" if path else item.name
        raw = data.get(item.name, _MISSING)
        if raw is _MISSING:
            if item.default is dataclasses.MISSING and item.default_factory is dataclasses.MISSING:
                failures.append(
                    ValidationFailure(key, "<missing>", "must_exist", f"{key}: required, not set")
                )
                ok = False
            continue
        before = len(failures)
        values[item.name] = _convert(raw, hints[item.name], key, failures, is_secret)
        ok = ok and len(failures) == before
    return model(**values) if ok else None


def _convert(
    value: Any, hint: Any, key: str, failures: list[ValidationFailure], is_secret: Any
) -> Any:
    def fail(expected: str) -> Any:
        failures.append(
            ValidationFailure(key, _shown(key, value, is_secret), "type",
                              f"{key}: expected {expected}, got {type(value).__name__}")
        )  # fmt: skip
        return None

    if hint is Any or hint is object:
        return value
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or origin is types.UnionType:
        for option in args:
            trial: list[ValidationFailure] = []
            converted = _convert(value, option, key, trial, is_secret)
            if not trial:
                return converted
        return fail(" or ".join(_name(option) for option in args))
    if origin is typing.Literal:
        if any(value == choice and type(value) is type(choice) for choice in args):
            return value
        return fail("one of " + ", ".join(map(repr, args)))
    if origin in (list, tuple, set, frozenset) or origin is Sequence:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
            return fail(_name(hint))
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                return fail(f"{len(args)} items")
            return tuple(
                _convert(v, a, f"{key}[{i}]", failures, is_secret)
                for i, (v, a) in enumerate(zip(args, value, strict=True))
            )
        item_hint = args[0] if args else Any
        items = [
            _convert(v, item_hint, f"{key}[{i}]", failures, is_secret) for i, v in enumerate(value)
        ]
        return (origin if origin is not Sequence else tuple)(items)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, Mapping):
            return fail("a mapping")
        value_hint = args[1] if len(args) == 2 else Any
        return {k: _convert(v, value_hint, f"{key}.{k}", failures, is_secret)
                for k, v in value.items()}  # fmt: skip
    if isinstance(hint, type):
        if dataclasses.is_dataclass(hint):
            return _dataclass(hint, value, key, failures, is_secret)
        if hasattr(hint, "model_validate"):
            try:
                return build(value, hint, is_secret)
            except ValidationError as exc:
                failures.extend(exc.details)
                return None
        if issubclass(hint, enum.Enum):
            try:
                return hint(value)
            except ValueError:
                return fail("one of " + ", ".join(repr(m.value) for m in hint))
        if hint is float and type(value) is int:
            return float(value)
        if hint is int and type(value) is bool:
            return fail("int")
        if hint in (list, tuple) and isinstance(value, (list, tuple)):
            return hint(value)
        if isinstance(value, hint):
            return value
        return fail(hint.__name__)
    return value  # a hint this does not understand (a TypeVar, a protocol): taken as it is


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
