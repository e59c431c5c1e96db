"""Comparators: each user condition becomes one small function, built once per document.

``build_check`` turns (comparator, comparison value) into ``check(attribute_value) -> bool``
with everything that does not depend on the user worked out in advance: lists become
frozensets, versions and numbers are parsed, hash salts are encoded. On the hot path a check
only converts the user's attribute and compares.

The conversions follow ConfigCat's Python SDK to the letter, because "the same result as the
SDK" is the contract:

* text comparators take strings as they are and turn anything else into text the SDK's way
  (``stringify``): ``5.0`` -> ``"5"``, ``1e+16`` stays, datetimes become Unix seconds, a list of
  strings becomes compact JSON;
* number comparators accept numbers and strings (``","`` as a decimal point, whatever Python's
  ``float()`` reads); a string ``float()`` refuses makes the condition invalid, while a value of
  another type (a list, a datetime) is an evaluation *failure* (the SDK lets float()'s TypeError
  escape, so the whole evaluation falls back to the default value);
* date comparators accept datetimes (naive ones are UTC) and Unix seconds as numbers or strings;
* array comparators accept lists of strings or JSON text holding one;
* semver comparators read ``str(value).strip()`` with the strict grammar of ``_semver``.

A check raises ``Invalid`` when the attribute cannot be compared (the condition is skipped, as
ConfigCat's "cannot evaluate" does) and ``Failure`` when the SDK would fail the evaluation.

``build_test`` makes the same comparison in its quiet form, for ``_compile``: it takes the user's
attribute dict, fetches the attribute itself and compares on the spot for the usual value types
(a non-empty string; numbers; an aware datetime; a list of strings), with hashes as bytes. It
raises ``GiveUp`` wherever the general path would have something to say (a missing attribute,
a converted one, an invalid one) and lets any other error through (a KeyError for an attribute
the user does not have): the caller then hands the whole evaluation to the general path, which
says it.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from hashlib import sha256
from typing import Any

from ._semver import SemVer, identity, parse_semver, precedence

__all__ = (
    "COMPARATOR_TEXTS",
    "COMPARISON_KINDS",
    "DATE_COMPARATORS",
    "HASHED_COMPARATORS",
    "TEXT_COMPARATORS",
    "Check",
    "Failure",
    "GiveUp",
    "Invalid",
    "Test",
    "build_check",
    "build_test",
    "stringify",
)

Check = Callable[[object], bool]


class Invalid(Exception):
    """The attribute is there but cannot be compared: the condition cannot be evaluated."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Failure(Exception):
    """The SDK fails the whole evaluation here: the caller gets its default value back."""


class GiveUp(Exception):
    """The quiet path cannot decide without a word: the general path takes over from the start."""


#: A condition in its quiet form: the user's attribute dict -> holds or not (or raises).
Test = Callable[[dict[Any, object]], bool]


# What the log prints between the attribute and the comparison value, by comparator number.
COMPARATOR_TEXTS: tuple[str, ...] = (
    "IS ONE OF", "IS NOT ONE OF", "CONTAINS ANY OF", "NOT CONTAINS ANY OF",
    "IS ONE OF", "IS NOT ONE OF", "<", "<=", ">", ">=",
    "=", "!=", "<", "<=", ">", ">=",
    "IS ONE OF", "IS NOT ONE OF", "BEFORE", "AFTER", "EQUALS", "NOT EQUALS",
    "STARTS WITH ANY OF", "NOT STARTS WITH ANY OF", "ENDS WITH ANY OF", "NOT ENDS WITH ANY OF",
    "ARRAY CONTAINS ANY OF", "ARRAY NOT CONTAINS ANY OF", "EQUALS", "NOT EQUALS",
    "STARTS WITH ANY OF", "NOT STARTS WITH ANY OF", "ENDS WITH ANY OF", "NOT ENDS WITH ANY OF",
    "ARRAY CONTAINS ANY OF", "ARRAY NOT CONTAINS ANY OF",
)  # fmt: skip

# Which field of a user condition holds the comparison value: "l" a list of strings,
# "s" a string, "d" a number.
COMPARISON_KINDS: tuple[str, ...] = (
    "l", "l", "l", "l", "l", "l", "s", "s", "s", "s",
    "d", "d", "d", "d", "d", "d", "l", "l", "d", "d",
    "s", "s", "l", "l", "l", "l", "l", "l", "s", "s",
    "l", "l", "l", "l", "l", "l",
)  # fmt: skip

HASHED_COMPARATORS = frozenset({16, 17, 20, 21, 22, 23, 24, 25, 26, 27})
DATE_COMPARATORS = frozenset({18, 19})
# Comparators that read the attribute as text; a non-string attribute is converted (and the
# SDK warns that it was).
TEXT_COMPARATORS = frozenset({0, 1, 2, 3, 16, 17, 20, 21, 22, 23, 24, 25, 28, 29, 30, 31, 32, 33})

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def seconds_since_epoch(moment: datetime) -> float:
    """Unix seconds of ``moment``; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH).total_seconds()


def stringify(value: object) -> str:
    """Text for a non-string attribute, exactly as the SDK makes it (the hashes depend on it)."""
    if isinstance(value, datetime):
        value = seconds_since_epoch(value)
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = str(value)
        if "e" not in text and value.is_integer():
            return str(int(value))
        return text
    return str(value)


def _text(value: object) -> str:
    return value if isinstance(value, str) else stringify(value)


def _number(value: object) -> float:
    try:
        if isinstance(value, str):
            return float(value.replace(",", "."))
        return float(value)  # type: ignore[arg-type]  # TypeError escapes, as in the SDK
    except ValueError:
        raise Invalid(f"'{value}' is not a valid decimal number") from None


def _seconds(value: object) -> float:
    if isinstance(value, datetime):
        return seconds_since_epoch(value)
    try:
        if isinstance(value, str):
            return float(value.replace(",", "."))
        return float(value)  # type: ignore[arg-type]
    except ValueError:
        reason = "number of seconds elapsed since Unix epoch"
        raise Invalid(f"'{value}' is not a valid Unix timestamp ({reason})") from None


def _string_list(value: object) -> list[str]:
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        items = None
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise Invalid(f"'{value}' is not a valid string array")
    return items


def _version(value: object) -> SemVer:
    text = str(value).strip()
    version = parse_semver(text)
    if version is None:
        raise Invalid(f"'{text}' is not a valid semantic version")
    return version


def build_check(
    comparator: int, comparison: str | float | Sequence[str], hash_suffix: bytes
) -> Check:
    """The check for one user condition; ``hash_suffix`` is config salt + context salt, UTF-8.

    ``comparison`` has the type ``COMPARISON_KINDS`` names (the parser made sure of it).
    """
    if COMPARISON_KINDS[comparator] == "l":
        assert not isinstance(comparison, (str, float, int))
        return _LIST_BUILDERS[comparator](tuple(comparison), hash_suffix)
    if COMPARISON_KINDS[comparator] == "s":
        assert isinstance(comparison, str)
        return _STRING_BUILDERS[comparator](comparison, hash_suffix)
    assert isinstance(comparison, (int, float))
    return _NUMBER_BUILDERS[comparator](float(comparison))


# -- list comparisons ------------------------------------------------------------------------


def _one_of(items: tuple[str, ...], negate: bool) -> Check:
    wanted = frozenset(items)

    def check(value: object) -> bool:
        return (_text(value) in wanted) != negate

    return check


def _contains_any(items: tuple[str, ...], negate: bool) -> Check:
    if len(items) == 1:
        (item,) = items

        def check_one(value: object) -> bool:
            return (item in _text(value)) != negate

        return check_one

    def check(value: object) -> bool:
        text = _text(value)
        return any(item in text for item in items) != negate

    return check


def _affix_any(items: tuple[str, ...], ends: bool, negate: bool) -> Check:
    # str.startswith takes a tuple: one C call instead of a Python loop.
    def check(value: object) -> bool:
        text = _text(value)
        hit = text.endswith(items) if ends else text.startswith(items)
        return hit != negate

    return check


def _array_contains(items: tuple[str, ...], negate: bool) -> Check:
    wanted = frozenset(items)

    def check(value: object) -> bool:
        return any(item in wanted for item in _string_list(value)) != negate

    return check


def _semver_one_of(items: tuple[str, ...], negate: bool) -> Check:
    texts = [stripped for item in items if (stripped := item.strip())]
    if not texts:
        # The SDK parses the attribute once per listed version: with none, any value "matches
        # none of them", valid version or not.
        return lambda value: negate
    versions = [parse_semver(text) for text in texts]
    # One malformed entry makes the SDK's loop raise for every user: never a match.
    valid = all(version is not None for version in versions)
    wanted = frozenset((v.core, v.pre) for v in versions if v is not None)

    def check(value: object) -> bool:
        version = _version(value)
        if not valid:
            raise Invalid(f"'{str(value).strip()}' is not a valid semantic version")
        return ((version.core, version.pre) in wanted) != negate

    return check


def _hashed_one_of(items: tuple[str, ...], suffix: bytes, negate: bool) -> Check:
    wanted = frozenset(items)

    def check(value: object) -> bool:
        return (sha256(_text(value).encode() + suffix).hexdigest() in wanted) != negate

    return check


def _hashed_affix(items: tuple[str, ...], suffix: bytes, ends: bool, negate: bool) -> Check:
    # Each entry is "<byte length>_<sha256 of that many leading/trailing bytes>". A malformed
    # entry fails the evaluation when the loop reaches it, not before: the SDK parses lazily.
    entries: list[tuple[int, str] | str] = []
    for item in items:
        try:
            cut = item.index("_")
            entries.append((int(item[:cut]), item[cut + 1 :]))
        except ValueError as exc:
            entries.append(str(exc))
    if not entries:
        return lambda value: negate

    def check(value: object) -> bool:
        data: bytes | None = None
        for entry in entries:
            if isinstance(entry, str):
                raise Failure(entry)
            if data is None:
                data = _text(value).encode()
            length, digest = entry
            if len(data) >= length:
                # Python slicing, as the SDK slices: a length of 0 hashes nothing at the
                # start but the whole value at the end (data[-0:] is data).
                part = data[-length:] if ends else data[:length]
                if sha256(part + suffix).hexdigest() == digest:
                    return not negate
        return negate

    return check


def _hashed_array_contains(items: tuple[str, ...], suffix: bytes, negate: bool) -> Check:
    wanted = frozenset(items)

    def check(value: object) -> bool:
        # Hash every element first, as the SDK does (an unencodable one fails even after a hit).
        hashes = [sha256(item.encode() + suffix).hexdigest() for item in _string_list(value)]
        return any(digest in wanted for digest in hashes) != negate

    return check


_LIST_BUILDERS: dict[int, Callable[[tuple[str, ...], bytes], Check]] = {
    0: lambda items, _: _one_of(items, False),
    1: lambda items, _: _one_of(items, True),
    2: lambda items, _: _contains_any(items, False),
    3: lambda items, _: _contains_any(items, True),
    4: lambda items, _: _semver_one_of(items, False),
    5: lambda items, _: _semver_one_of(items, True),
    16: lambda items, suffix: _hashed_one_of(items, suffix, False),
    17: lambda items, suffix: _hashed_one_of(items, suffix, True),
    22: lambda items, suffix: _hashed_affix(items, suffix, False, False),
    23: lambda items, suffix: _hashed_affix(items, suffix, False, True),
    24: lambda items, suffix: _hashed_affix(items, suffix, True, False),
    25: lambda items, suffix: _hashed_affix(items, suffix, True, True),
    26: lambda items, suffix: _hashed_array_contains(items, suffix, False),
    27: lambda items, suffix: _hashed_array_contains(items, suffix, True),
    30: lambda items, _: _affix_any(items, False, False),
    31: lambda items, _: _affix_any(items, False, True),
    32: lambda items, _: _affix_any(items, True, False),
    33: lambda items, _: _affix_any(items, True, True),
    34: lambda items, _: _array_contains(items, False),
    35: lambda items, _: _array_contains(items, True),
}


# -- string comparisons ----------------------------------------------------------------------

# Which comparison results each operator accepts.
_ORDER_RESULTS = {
    "<": frozenset({-1}),
    "<=": frozenset({-1, 0}),
    ">": frozenset({1}),
    ">=": frozenset({0, 1}),
    "==": frozenset({0}),
    "!=": frozenset({-1, 1}),
}


def _semver_order(operator_text: str, comparison: str) -> Check:
    # The SDK glues the operator to the stripped comparison value and lets semver's match()
    # split them again: so "<" with "=1.2.3" means "<= 1.2.3", and anything that does not then
    # parse makes every attribute "invalid".
    expression = operator_text + comparison.strip()
    head = expression[:2]
    if head in _ORDER_RESULTS:
        version_text = expression[2:]
    else:
        head, version_text = expression[0], expression[1:]
    accepted = _ORDER_RESULTS[head]
    target = parse_semver(version_text)

    def check(value: object) -> bool:
        version = _version(value)
        if target is None:
            raise Invalid(f"'{str(value).strip()}' is not a valid semantic version")
        return version.compare(target) in accepted

    return check


def _equals(comparison: str, negate: bool) -> Check:
    def check(value: object) -> bool:
        return (_text(value) == comparison) != negate

    return check


def _hashed_equals(comparison: str, suffix: bytes, negate: bool) -> Check:
    def check(value: object) -> bool:
        return (sha256(_text(value).encode() + suffix).hexdigest() == comparison) != negate

    return check


_STRING_BUILDERS: dict[int, Callable[[str, bytes], Check]] = {
    6: lambda text, _: _semver_order("<", text),
    7: lambda text, _: _semver_order("<=", text),
    8: lambda text, _: _semver_order(">", text),
    9: lambda text, _: _semver_order(">=", text),
    20: lambda text, suffix: _hashed_equals(text, suffix, False),
    21: lambda text, suffix: _hashed_equals(text, suffix, True),
    28: lambda text, _: _equals(text, False),
    29: lambda text, _: _equals(text, True),
}


# -- number comparisons ----------------------------------------------------------------------


def _compare_number(relation: Callable[[float, float], bool], comparison: float) -> Check:
    def check(value: object) -> bool:
        return relation(_number(value), comparison)

    return check


def _compare_date(relation: Callable[[float, float], bool], comparison: float) -> Check:
    def check(value: object) -> bool:
        return relation(_seconds(value), comparison)

    return check


_NUMBER_BUILDERS: dict[int, Callable[[float], Check]] = {
    10: lambda number: _compare_number(operator.eq, number),
    11: lambda number: _compare_number(operator.ne, number),
    12: lambda number: _compare_number(operator.lt, number),
    13: lambda number: _compare_number(operator.le, number),
    14: lambda number: _compare_number(operator.gt, number),
    15: lambda number: _compare_number(operator.ge, number),
    18: lambda seconds: _compare_date(operator.lt, seconds),
    19: lambda seconds: _compare_date(operator.gt, seconds),
}


# -- quiet tests -----------------------------------------------------------------------------

_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_HEX = frozenset("0123456789abcdef")


def _digest(text: str) -> bytes | None:
    """A SHA-256 hex digest as bytes, or None for text no ``hexdigest()`` can ever equal."""
    if len(text) == 64 and _HEX.issuperset(text):
        return bytes.fromhex(text)
    return None


def build_test(
    attribute: str,
    comparator: int,
    comparison: str | float | tuple[str, ...],
    hash_suffix: bytes,
    check: Check,
) -> Test:
    """The quiet form of the condition ``User.<attribute> <comparator> <comparison>``.

    ``check`` is the condition's general check: the test falls back on it (it is pure) for value
    types it has no shortcut for. ``comparator`` is one ``build_check`` accepted.
    """
    if COMPARISON_KINDS[comparator] == "d":
        assert isinstance(comparison, (int, float))
        comparison = float(comparison)  # as build_check compares: float against float
    if comparator in TEXT_COMPARATORS:
        builder = _TEXT_TESTS.get(comparator)
        if builder is None:
            return _text_test(attribute, check)
        return builder(attribute, comparison, hash_suffix)
    other_builder = _OTHER_TESTS.get(comparator)
    if other_builder is None:
        return _other_test(attribute, check)
    return other_builder(attribute, comparison, hash_suffix, check)


def _give_up(attrs: dict[Any, object]) -> bool:
    raise GiveUp


def _text_test(attribute: str, check: Check) -> Test:
    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp  # missing, or converted to text (both warned about)
        return check(value)

    return test


def _other_test(attribute: str, check: Check) -> Test:
    def test(attrs: dict[Any, object]) -> bool:
        return _checked(attrs[attribute], check)

    return test


def _checked(value: object, check: Check) -> bool:
    """The general check, for a value type without a shortcut (it raises ``Invalid`` itself)."""
    if value is None or (isinstance(value, str) and not value):
        raise GiveUp  # missing
    return check(value)


# -- quiet text tests: the attribute is a non-empty str, or the general path takes over

_TextBuilder = Callable[[str, Any, bytes], Test]


def _one_of_test(attribute: str, items: tuple[str, ...], negate: bool) -> Test:
    wanted = frozenset(items)
    if negate:

        def test_not(attrs: dict[Any, object]) -> bool:
            value = attrs[attribute]
            if value.__class__ is not str or not value:
                raise GiveUp
            return value not in wanted

        return test_not

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        return value in wanted

    return test


def _equals_test(attribute: str, comparison: str, negate: bool) -> Test:
    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        return (value == comparison) != negate

    return test


def _contains_test(attribute: str, items: tuple[str, ...], negate: bool) -> Test:
    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        for item in items:
            if item in value:
                return not negate
        return negate

    return test


def _affix_test(attribute: str, items: tuple[str, ...], ends: bool, negate: bool) -> Test:
    if ends:

        def test_ends(attrs: dict[Any, object]) -> bool:
            value = attrs[attribute]
            if value.__class__ is not str or not value:
                raise GiveUp
            return value.endswith(items) != negate

        return test_ends

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        return value.startswith(items) != negate

    return test


def _hashed_one_of_test(
    attribute: str, items: tuple[str, ...], suffix: bytes, negate: bool
) -> Test:
    wanted = frozenset(digest for item in items if (digest := _digest(item)) is not None)

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        return (sha256(value.encode() + suffix).digest() in wanted) != negate

    return test


def _hashed_equals_test(attribute: str, comparison: str, suffix: bytes, negate: bool) -> Test:
    target = _digest(comparison)

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        return (sha256(value.encode() + suffix).digest() == target) != negate

    return test


def _hashed_affix_test(
    attribute: str, items: tuple[str, ...], suffix: bytes, ends: bool, negate: bool
) -> Test:
    entries: list[tuple[int, bytes | None]] = []
    for item in items:
        try:
            cut = item.index("_")
            entries.append((int(item[:cut]), _digest(item[cut + 1 :])))
        except ValueError:
            return _give_up  # the general path fails the evaluation if it gets that far
    if not entries:
        return _constant_text_test(attribute, negate)

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        data = value.encode()
        size = len(data)
        for length, digest in entries:
            if size >= length:
                # The general check's slicing, quirks and all (data[-0:] is all of data).
                part = data[-length:] if ends else data[:length]
                if sha256(part + suffix).digest() == digest:
                    return not negate
        return negate

    return test


def _constant_text_test(attribute: str, result: bool) -> Test:
    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is not str or not value:
            raise GiveUp
        return result

    return test


_TEXT_TESTS: dict[int, _TextBuilder] = {
    0: lambda attribute, items, _: _one_of_test(attribute, items, False),
    1: lambda attribute, items, _: _one_of_test(attribute, items, True),
    2: lambda attribute, items, _: _contains_test(attribute, items, False),
    3: lambda attribute, items, _: _contains_test(attribute, items, True),
    16: lambda attribute, items, suffix: _hashed_one_of_test(attribute, items, suffix, False),
    17: lambda attribute, items, suffix: _hashed_one_of_test(attribute, items, suffix, True),
    20: lambda attribute, text, suffix: _hashed_equals_test(attribute, text, suffix, False),
    21: lambda attribute, text, suffix: _hashed_equals_test(attribute, text, suffix, True),
    22: lambda attribute, items, suffix: _hashed_affix_test(attribute, items, suffix, False, False),
    23: lambda attribute, items, suffix: _hashed_affix_test(attribute, items, suffix, False, True),
    24: lambda attribute, items, suffix: _hashed_affix_test(attribute, items, suffix, True, False),
    25: lambda attribute, items, suffix: _hashed_affix_test(attribute, items, suffix, True, True),
    28: lambda attribute, text, _: _equals_test(attribute, text, False),
    29: lambda attribute, text, _: _equals_test(attribute, text, True),
    30: lambda attribute, items, _: _affix_test(attribute, items, False, False),
    31: lambda attribute, items, _: _affix_test(attribute, items, False, True),
    32: lambda attribute, items, _: _affix_test(attribute, items, True, False),
    33: lambda attribute, items, _: _affix_test(attribute, items, True, True),
}


# -- quiet tests of numbers, dates, versions and arrays: shortcuts for the usual value types,
# the general check for the others

_OtherBuilder = Callable[[str, Any, bytes, Check], Test]


def _number_test(attribute: str, relation: str, comparison: float, check: Check) -> Test:
    holds = _OPERATORS[relation]

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        kind = value.__class__
        if kind is int or kind is float:
            return holds(float(value), comparison)  # type: ignore[arg-type]
        if kind is str and value:
            return holds(float(value.replace(",", ".")), comparison)  # type: ignore[attr-defined]
        return _checked(value, check)

    return test


def _date_test(attribute: str, relation: str, comparison: float, check: Check) -> Test:
    holds = _OPERATORS[relation]

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        kind = value.__class__
        if kind is datetime and value.tzinfo is not None:  # type: ignore[attr-defined]
            # seconds_since_epoch(), the same arithmetic.
            return holds((value - _EPOCH).total_seconds(), comparison)  # type: ignore[operator]
        if kind is int or kind is float:
            return holds(float(value), comparison)  # type: ignore[arg-type]
        if kind is str and value:
            return holds(float(value.replace(",", ".")), comparison)  # type: ignore[attr-defined]
        return _checked(value, check)

    return test


def _semver_one_of_test(attribute: str, items: tuple[str, ...], negate: bool, check: Check) -> Test:
    texts = [stripped for item in items if (stripped := item.strip())]
    keys = [identity(text) for text in texts]
    if not texts or any(key is None for key in keys):
        # No versions: any present value "matches none". A malformed (or very long) entry:
        # never a match, always a warning. The general check knows both.
        return _other_test(attribute, check)
    wanted = frozenset(keys)

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is str and value:
            key = identity(value.strip())
            if key is None:
                raise GiveUp  # invalid (warned about), or too long for the shortcut
            return (key in wanted) != negate
        return _checked(value, check)

    return test


def _semver_order_test(attribute: str, operator_text: str, comparison: str, check: Check) -> Test:
    # Split as _semver_order splits (see there).
    expression = operator_text + comparison.strip()
    head = expression[:2]
    if head in _OPERATORS:
        version_text = expression[2:]
    else:
        head, version_text = expression[0], expression[1:]
    target = precedence(version_text)
    if target is None:
        return _other_test(attribute, check)  # every value invalid: the general check says so
    holds = _OPERATORS[head]

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is str and value:
            key = precedence(value.strip())
            if key is None:
                raise GiveUp  # invalid (warned about), or too long for the shortcut
            return holds(key, target)
        return _checked(value, check)

    return test


def _array_test(attribute: str, items: tuple[str, ...], negate: bool, check: Check) -> Test:
    wanted = frozenset(items)

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is list:
            "".join(value)  # TypeError unless all are strings
            return wanted.isdisjoint(value) == negate
        return _checked(value, check)

    return test


def _hashed_array_test(
    attribute: str, items: tuple[str, ...], suffix: bytes, negate: bool, check: Check
) -> Test:
    wanted = frozenset(digest for item in items if (digest := _digest(item)) is not None)

    def test(attrs: dict[Any, object]) -> bool:
        value = attrs[attribute]
        if value.__class__ is list:
            "".join(value)  # TypeError unless all are strings
            digests = [sha256(item.encode() + suffix).digest() for item in value]
            return wanted.isdisjoint(digests) == negate
        return _checked(value, check)

    return test


_OTHER_TESTS: dict[int, _OtherBuilder] = {
    4: lambda attribute, items, _, check: _semver_one_of_test(attribute, items, False, check),
    5: lambda attribute, items, _, check: _semver_one_of_test(attribute, items, True, check),
    6: lambda attribute, text, _, check: _semver_order_test(attribute, "<", text, check),
    7: lambda attribute, text, _, check: _semver_order_test(attribute, "<=", text, check),
    8: lambda attribute, text, _, check: _semver_order_test(attribute, ">", text, check),
    9: lambda attribute, text, _, check: _semver_order_test(attribute, ">=", text, check),
    10: lambda attribute, number, _, check: _number_test(attribute, "==", number, check),
    11: lambda attribute, number, _, check: _number_test(attribute, "!=", number, check),
    12: lambda attribute, number, _, check: _number_test(attribute, "<", number, check),
    13: lambda attribute, number, _, check: _number_test(attribute, "<=", number, check),
    14: lambda attribute, number, _, check: _number_test(attribute, ">", number, check),
    15: lambda attribute, number, _, check: _number_test(attribute, ">=", number, check),
    18: lambda attribute, seconds, _, check: _date_test(attribute, "<", seconds, check),
    19: lambda attribute, seconds, _, check: _date_test(attribute, ">", seconds, check),
    26: lambda attribute, items, suffix, check: _hashed_array_test(
        attribute, items, suffix, False, check
    ),
    27: lambda attribute, items, suffix, check: _hashed_array_test(
        attribute, items, suffix, True, check
    ),
    34: lambda attribute, items, _, check: _array_test(attribute, items, False, check),
    35: lambda attribute, items, _, check: _array_test(attribute, items, True, check),
}
