"""The parsed form of a ConfigCat ``config_v6.json`` document, and the parser that builds it.

Everything an evaluation can work out without a user is worked out here, once per document:
segments and the salt are attached where they are used, comparison values become frozensets,
versions and numbers are parsed, hash salts are encoded, percentage options become a 100-slot
lookup table, prerequisite keys are resolved to their settings, and every possible outcome is
an ``EvaluationDetails`` made in advance. An evaluation then only looks at the user.

Where the line between "malformed document" and "evaluation error" runs:

* ``ParseError`` (the whole document is refused) when the document is not config_v6-shaped:
  not JSON, not an object, no ``f``, a field of the wrong JSON type, a segment index that
  does not exist. ConfigCat's SDK either fails to load such a document or does something
  accidental with it; neither is worth copying.
* An evaluation error (the default value plus ``error``, only when an evaluation reaches the
  problem, exactly as the SDK reports it) for what the SDK itself checks lazily: an unknown
  setting type, a value that does not fit its setting's type, an unknown comparator, a missing
  attribute name, a date out of range, an unknown or mistyped prerequisite, a circular
  prerequisite. One such setting does not stop the others from being served.
* A comparison value that is missing or of the wrong type (a string for a date comparator, a
  number for a list one) is of the second kind too: the SDK loads the document and serves
  every other flag, so one broken rule must not block start-up or freeze every flag on
  refresh. A date comparator fails as soon as it is reached (the SDK formats the date first);
  any other fails when it compares a user's attribute. The SDK, being Python, sometimes
  manages a comparison with a wrong-typed value anyway (a string where a list belongs is read
  character by character); aioconfig fails that setting's evaluation instead.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime, timezone
from hashlib import sha1
from struct import Struct
from typing import Any

from .._exceptions import ParseError
from .._text import decode_utf8
from ._compare import (
    COMPARATOR_TEXTS,
    COMPARISON_KINDS,
    DATE_COMPARATORS,
    HASHED_COMPARATORS,
    TEXT_COMPARATORS,
    Check,
    Failure,
    build_check,
)
from ._details import EvaluationDetails

__all__ = (
    "FlagConfig",
    "Percentages",
    "PrerequisiteCondition",
    "Rule",
    "Segment",
    "SegmentCondition",
    "Setting",
    "UserCondition",
    "bucket",
    "parse_flags",
)

# Setting type number -> (field of a value object, Python type of the value).
_SETTING_TYPES: dict[int, tuple[str, type]] = {
    0: ("b", bool),
    1: ("s", str),
    2: ("i", int),
    3: ("d", float),
}
_VALUE_FIELDS: tuple[tuple[str, type], ...] = (("b", bool), ("s", str), ("i", int), ("d", float))

UNKNOWN_COMPARATOR = "Comparison operator is missing or invalid."

#: A setting compiled for the quiet path: the user's attribute dict -> the result, or an
#: exception when the general path has to take over (see ``_compile``).
Quick = Callable[[dict[Any, object]], EvaluationDetails[Any]]


class UserCondition:
    """``User.<attribute> <comparator> <comparison value>``."""

    __slots__ = (
        "attribute",
        "check",
        "comparator",
        "comparison",
        "early_error",
        "hash_suffix",
        "late_error",
        "text",
        "textual",
    )

    def __init__(
        self,
        attribute: str,
        comparator: int,
        check: Check,
        text: str,
        early_error: str | None,
        comparison: str | float | tuple[str, ...] = (),
        hash_suffix: bytes = b"",
        late_error: str | None = None,
    ) -> None:
        self.attribute = attribute
        self.comparator = comparator
        self.check = check
        #: What ``check`` was built from, for its quiet form (``_compare.build_test``).
        self.comparison = comparison
        self.hash_suffix = hash_suffix
        #: How the log and the warnings show the condition (hashed values masked).
        self.text = text
        #: The SDK fails the evaluation as soon as it reaches this condition.
        self.early_error = early_error
        #: The SDK fails the evaluation when it compares a user's attribute here (an unusable
        #: comparison value; ``check`` raises it).
        self.late_error = late_error
        #: Reads the attribute as text: a non-string attribute is converted, with a warning.
        self.textual = comparator in TEXT_COMPARATORS


class Segment:
    """A named, reusable AND of user conditions (hashes salted with the name)."""

    __slots__ = ("conditions", "name")

    def __init__(self, name: str, conditions: tuple[UserCondition, ...]) -> None:
        self.name = name
        self.conditions = conditions


class SegmentCondition:
    """``User IS IN SEGMENT`` (comparator 0) or ``IS NOT IN SEGMENT`` (1)."""

    __slots__ = ("comparator", "segment")

    def __init__(self, segment: Segment, comparator: int | None) -> None:
        self.segment = segment
        self.comparator = comparator


class PrerequisiteCondition:
    """``Flag <key> EQUALS <value>`` (comparator 0) or ``DOES NOT EQUAL`` (1)."""

    __slots__ = ("comparator", "comparison", "error", "key", "raw_value", "target")

    def __init__(
        self, key: str | None, comparator: int | None, raw_value: Mapping[str, Any] | None
    ) -> None:
        self.key = key
        self.comparator = comparator
        self.raw_value = raw_value
        self.comparison: object = None
        #: Set by ``_link``: the setting the key names, or an error the SDK would raise.
        self.target: Setting | None = None
        self.error: str | None = None


Condition = UserCondition | SegmentCondition | PrerequisiteCondition


class Percentages:
    """Percentage options, with the option for each hash bucket 0..99 worked out in advance."""

    __slots__ = ("outcomes", "percentages", "table", "values")

    def __init__(
        self,
        percentages: tuple[float, ...],
        values: tuple[object, ...],
        outcomes: tuple[EvaluationDetails[Any] | str, ...],
    ) -> None:
        self.percentages = percentages
        self.values = values
        #: Per option: its result, or the error the SDK raises when it is picked.
        self.outcomes = outcomes
        # Option i takes bucket b when b < p0 + ... + pi and no earlier option does; -1: none
        # does (the percentages add up to less than 100), and the evaluation moves on.
        table = []
        for bucket in range(100):
            total: float = 0
            chosen = -1
            for index, percentage in enumerate(percentages):
                total += percentage
                if bucket < total:
                    chosen = index
                    break
            table.append(chosen)
        self.table = tuple(table)


class Rule:
    """A targeting rule: conditions (AND), then a served value or percentage options."""

    __slots__ = ("conditional", "conditions", "index", "percentages", "served", "served_value")

    def __init__(
        self,
        index: int,
        conditional: bool,
        conditions: tuple[Condition, ...],
        served: EvaluationDetails[Any] | str | None,
        served_value: object,
        percentages: Percentages | None,
    ) -> None:
        self.index = index
        #: The rule lists conditions (perhaps none the SDK knows, which then all hold). A rule
        #: without any goes straight to its percentage options, ignoring its served value.
        self.conditional = conditional
        self.conditions = conditions
        #: The result when the conditions match, an error string when the served value is
        #: unusable (the SDK raises on reaching the rule), or None: use the percentages.
        self.served = served
        self.served_value = served_value
        self.percentages = percentages


class Setting:
    """One feature flag or setting, ready to evaluate."""

    __slots__ = (
        "fixed",
        "key",
        "key_hasher",
        "outcome",
        "percentage_attribute",
        "percentages",
        "quick",
        "raw",
        "rules",
        "setting_type",
    )

    def __init__(
        self,
        key: str,
        setting_type: int | None,
        outcome: EvaluationDetails[Any] | str,
        rules: tuple[Rule, ...],
        percentages: Percentages | None,
        percentage_attribute: str | None,
        raw: object = None,
    ) -> None:
        self.key = key
        #: What the setting was parsed from (its JSON, and the salt and segments it uses):
        #: two settings with equal ``raw`` evaluate alike, which is how changes are found.
        self.raw = raw
        self.setting_type = setting_type
        #: The result when nothing else decides, or the error the SDK raises then.
        self.outcome = outcome
        self.rules = rules
        self.percentages = percentages
        self.percentage_attribute = percentage_attribute
        #: SHA-1 fed with the key: percentage buckets hash key + attribute, so copy and go on.
        self.key_hasher = sha1(key.encode())
        #: The result for every user when nothing can depend on the user: the fast path.
        self.fixed = (
            outcome if not rules and percentages is None and not isinstance(outcome, str) else None
        )
        #: The setting compiled for the quiet path (``_compile.quick``), on first use.
        self.quick: Quick | None = None


# Buckets already worked out, by (setting key, text): a pure function of the two, and SHA-1 is
# the costliest step of an evaluation. Cleared when full: a bound, and no bookkeeping per hit.
_BUCKETS: dict[tuple[str, str], int] = {}
_BUCKETS_MAX = 16384
_FIRST_32_BITS = Struct(">I").unpack_from


def bucket(setting: Setting, text: str) -> int:
    """The user's bucket 0..99: the first 7 hex digits (28 bits) of SHA-1(key + text), mod 100."""
    cache_key = (setting.key, text)
    found = _BUCKETS.get(cache_key)
    if found is None:
        hasher = setting.key_hasher.copy()
        hasher.update(text.encode())
        found = (_FIRST_32_BITS(hasher.digest())[0] >> 4) % 100
        if len(_BUCKETS) >= _BUCKETS_MAX:
            _BUCKETS.clear()
        _BUCKETS[cache_key] = found
    return found


class FlagConfig:
    """A parsed ``config_v6.json``: the settings by key, ready for ``evaluate``. Immutable."""

    __slots__ = ("_fixed", "_index", "_settings", "document", "salt", "source")

    def __init__(
        self,
        settings: dict[str, Setting],
        salt: str,
        source: str,
        document: Mapping[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        #: The config salt (``p.s``) that hashed comparison values were made with.
        self.salt = salt
        #: The name given to ``parse_flags``, for messages.
        self.source = source
        #: The decoded document this was parsed from (None for a combination of several):
        #: what a cache stores, since parsing it again gives the same FlagConfig.
        self.document = document
        self._fixed: dict[str, Any] | None = None
        self._index: dict[str, Any] | None = None

    def fixed_values(self) -> dict[str, Any]:
        """Key -> value of every setting that serves one value to everyone, whatever the user
        (no rules, no percentage options, a usable value): what needs no evaluation at all."""
        fixed = self._fixed
        if fixed is None:
            fixed = self._fixed = {
                key: setting.fixed.value
                for key, setting in self._settings.items()
                if setting.fixed is not None
            }
        return fixed

    def index(self) -> dict[str, Any]:
        """Key -> the value of a setting that serves one value to everyone, else the Setting:
        what ``Config.get_value`` looks a key up in."""
        index = self._index
        if index is None:
            index = self._index = {
                key: setting.fixed.value if setting.fixed is not None else setting
                for key, setting in self._settings.items()
            }
        return index

    def is_static(self, key: str) -> bool:
        """Whether ``key`` serves one value to everyone: no targeting rules, no percentages.

        False for a key that does not exist.
        """
        setting = self._settings.get(key)
        return setting is not None and not setting.rules and setting.percentages is None

    def keys(self) -> list[str]:
        """The setting keys, in document order."""
        return list(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __contains__(self, key: object) -> bool:
        return key in self._settings

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __repr__(self) -> str:
        return f"<FlagConfig {self.source!r}: {len(self._settings)} settings>"


def parse_flags(
    document: Mapping[str, Any] | bytes | str, *, source: str = "<flags>"
) -> FlagConfig:
    """Parse a ConfigCat ``config_v6.json`` document (JSON text or already decoded).

    Raises ``ParseError`` naming ``source`` and the place in the document when the document is
    malformed; the message never quotes a value.
    """
    if isinstance(document, (bytes, str)):
        data: object = _load_json(document, source)
    else:
        data = document
    return _Parser(source).document(data)


def _load_json(document: bytes | str, source: str) -> object:
    """JSON text as the SDK reads it, with the standard library, not orjson.

    The difference is in the values: orjson turns an integer beyond 64 bits into a float, where
    ``json`` (and so ConfigCat's SDK) keeps it exact, and it refuses ``NaN`` and lone surrogate
    escapes, which ``json`` reads. Speed does not matter here: a document is parsed once.
    """
    text = decode_utf8(document, source) if isinstance(document, bytes) else document
    if not text.strip():
        raise ParseError(source, "empty document", line=1, column=1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:  # its messages never quote the document
        raise ParseError(source, exc.msg, line=exc.lineno, column=exc.colno) from None
    except RecursionError:
        raise ParseError(source, "nested too deeply") from None


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.prerequisites: list[PrerequisiteCondition] = []
        self.raw_segments: object = None

    # -- shapes ----------------------------------------------------------------------------

    def fail(self, path: str, problem: str) -> ParseError:
        return ParseError(self.source, f"{path}: {problem}" if path else problem)

    def mapping(self, node: object, path: str) -> Mapping[str, Any]:
        if not isinstance(node, Mapping):
            raise self.fail(path, f"expected an object, got {_kind(node)}")
        return node

    def sequence(self, node: object, path: str) -> Sequence[Any]:
        if not isinstance(node, (list, tuple)):
            raise self.fail(path, f"expected a list, got {_kind(node)}")
        return node

    def optional_sequence(self, parent: Mapping[str, Any], field: str, path: str) -> Sequence[Any]:
        if field not in parent:
            return ()
        return self.sequence(parent[field], _join(path, field))

    def optional_string(self, parent: Mapping[str, Any], field: str, path: str) -> str | None:
        node = parent.get(field)
        if node is not None and not isinstance(node, str):
            raise self.fail(_join(path, field), f"expected a string, got {_kind(node)}")
        return node

    def optional_int(self, parent: Mapping[str, Any], field: str, path: str) -> int | None:
        node = parent.get(field)
        if node is not None and (not isinstance(node, int) or isinstance(node, bool)):
            raise self.fail(_join(path, field), f"expected an integer, got {_kind(node)}")
        return node

    def optional_mapping(
        self, parent: Mapping[str, Any], field: str, path: str
    ) -> Mapping[str, Any] | None:
        node = parent.get(field)
        return None if node is None else self.mapping(node, _join(path, field))

    # -- the document ----------------------------------------------------------------------

    def document(self, data: object) -> FlagConfig:
        if not isinstance(data, Mapping):  # worded as for JSON text (sources._formats)
            kind = "null" if data is None else type(data).__name__
            raise self.fail("", f"top level must be a mapping, got {kind}")
        root = data
        preferences = self.mapping(root.get("p", {}), "p")
        salt = self.optional_string(preferences, "s", "p") or ""
        if "f" not in root:
            raise self.fail("", "no 'f' (settings) object")
        raw_settings = self.mapping(root["f"], "f")
        self.raw_segments = root.get("s")
        segments = tuple(
            self.segment(node, f"s[{index}]", salt)
            for index, node in enumerate(self.optional_sequence(root, "s", ""))
        )
        settings: dict[str, Setting] = {}
        for key, node in raw_settings.items():
            if not isinstance(key, str):
                raise self.fail("f", f"setting keys must be strings, got {_kind(key)}")
            settings[key] = self.setting(key, node, salt, segments)
        for condition in self.prerequisites:
            _link(condition, settings)
        return FlagConfig(settings, salt, self.source, root)

    def segment(self, node: object, path: str, salt: str) -> Segment:
        segment = self.mapping(node, path)
        name = self.optional_string(segment, "n", path) or ""
        suffix = self.encode(salt, "p.s") + self.encode(name, f"{path}.n")
        conditions = tuple(
            self.user_condition(item, f"{path}.r[{index}]", suffix)
            for index, item in enumerate(self.optional_sequence(segment, "r", path))
        )
        return Segment(name, conditions)

    def setting(self, key: str, node: object, salt: str, segments: tuple[Segment, ...]) -> Setting:
        path = f"f[{key!r}]"
        setting = self.mapping(node, path)
        setting_type = self.optional_int(setting, "t", path)
        percentage_attribute = self.optional_string(setting, "a", path)
        suffix = self.encode(salt, "p.s") + self.encode(key, path)
        _, outcome = self.outcome(setting, setting_type, path, key, None, None)
        rules = tuple(
            self.rule(item, f"{path}.r[{index}]", index, key, setting_type, suffix, segments)
            for index, item in enumerate(self.optional_sequence(setting, "r", path))
        )
        percentages = self.percentages(setting, path, key, setting_type, None)
        # What the evaluation depends on besides the setting's own JSON: the salt (rules hash
        # with it) and the segments (only when a rule refers to one).
        uses_segments = any(
            isinstance(condition, SegmentCondition)
            for rule in rules
            for condition in rule.conditions
        )
        raw = (node, salt if rules else None, self.raw_segments if uses_segments else None)
        return Setting(key, setting_type, outcome, rules, percentages, percentage_attribute, raw)

    def outcome(
        self,
        holder: Mapping[str, Any],
        setting_type: int | None,
        path: str,
        key: str,
        rule: int | None,
        option: int | None,
    ) -> tuple[object, EvaluationDetails[Any] | str]:
        """The value ``holder`` serves, as a ready result, or the error the SDK raises for it."""
        raw = self.optional_mapping(holder, "v", path)
        variation_id = self.optional_string(holder, "i", path)
        value, error = _typed_value(raw, setting_type)
        if error is not None:
            return None, error
        return value, EvaluationDetails(key, value, variation_id, False, None, rule, option)

    def rule(
        self,
        node: object,
        path: str,
        index: int,
        key: str,
        setting_type: int | None,
        suffix: bytes,
        segments: tuple[Segment, ...],
    ) -> Rule:
        rule = self.mapping(node, path)
        raw_conditions = self.optional_sequence(rule, "c", path)
        conditions: list[Condition] = []
        for position, item in enumerate(raw_conditions):
            condition = self.condition(item, f"{path}.c[{position}]", suffix, segments)
            if condition is not None:
                conditions.append(condition)
        served: EvaluationDetails[Any] | str | None = None
        served_value: object = None
        holder = self.optional_mapping(rule, "s", path)
        if holder is not None:
            served_value, served = self.outcome(holder, setting_type, f"{path}.s", key, index, None)
        percentages = self.percentages(rule, path, key, setting_type, index)
        conditional = bool(raw_conditions)
        if not conditional:
            served = None
        return Rule(index, conditional, tuple(conditions), served, served_value, percentages)

    def percentages(
        self,
        holder: Mapping[str, Any],
        path: str,
        key: str,
        setting_type: int | None,
        rule: int | None,
    ) -> Percentages | None:
        nodes = self.optional_sequence(holder, "p", path)
        if not nodes:
            return None
        percentages: list[float] = []
        values: list[object] = []
        outcomes: list[EvaluationDetails[Any] | str] = []
        for index, node in enumerate(nodes):
            option_path = f"{path}.p[{index}]"
            option = self.mapping(node, option_path)
            percentage = option.get("p", 0)
            if not isinstance(percentage, (int, float)) or isinstance(percentage, bool):
                raise self.fail(f"{option_path}.p", f"expected a number, got {_kind(percentage)}")
            value, outcome = self.outcome(option, setting_type, option_path, key, rule, index)
            percentages.append(percentage)
            values.append(value)
            outcomes.append(outcome)
        return Percentages(tuple(percentages), tuple(values), tuple(outcomes))

    def condition(
        self, node: object, path: str, suffix: bytes, segments: tuple[Segment, ...]
    ) -> Condition | None:
        condition = self.mapping(node, path)
        if condition.get("u") is not None:
            return self.user_condition(condition["u"], f"{path}.u", suffix)
        if condition.get("s") is not None:
            return self.segment_condition(condition["s"], f"{path}.s", segments)
        if condition.get("p") is not None:
            return self.prerequisite_condition(condition["p"], f"{path}.p")
        # The SDK skips a condition of no kind it knows, so it holds: nothing to check.
        return None

    def user_condition(self, node: object, path: str, suffix: bytes) -> UserCondition:
        condition = self.mapping(node, path)
        attribute = self.optional_string(condition, "a", path)
        comparator = self.optional_int(condition, "c", path)
        if comparator is None or not 0 <= comparator < len(COMPARISON_KINDS):
            # Perhaps a comparator from a newer format: only the rules using it are lost.
            text = f"User.{attribute} <unknown comparator>"
            return UserCondition(attribute or "", -1, _unknown, text, UNKNOWN_COMPARATOR)
        field = COMPARISON_KINDS[comparator]
        comparison = condition.get(field)
        # A comparison value of the wrong type breaks only this condition, as in the SDK: the
        # document still loads, and an evaluation that reaches the comparison fails (the
        # setting returns its default value, "Failed to evaluate setting").
        wrong: str | None = None
        if comparison is None:
            wrong = f"no comparison value '{field}'"
        elif field == "l":
            if not isinstance(comparison, (list, tuple)) or not all(
                isinstance(item, str) for item in comparison
            ):
                wrong = f"expected a list of strings, got {_kind(comparison)}"
            else:
                comparison = tuple(comparison)
        elif field == "s":
            if not isinstance(comparison, str):
                wrong = f"expected a string, got {_kind(comparison)}"
        elif not isinstance(comparison, (int, float)) or isinstance(comparison, bool):
            wrong = f"expected a number, got {_kind(comparison)}"
        text, early_error = _describe(attribute, comparator, comparison)
        if early_error is None and attribute is None:
            early_error = "Comparison attribute name is missing."
        if wrong is not None:
            problem = (
                f"the comparison value of a condition on User.{attribute} is invalid ({wrong})"
            )
            return _broken(attribute, comparator, text, early_error, problem)
        assert comparison is not None  # checked above
        try:
            check = build_check(comparator, comparison, suffix)
        except OverflowError:  # float() of an integer beyond any double
            problem = f"the comparison value of a condition on User.{attribute} is out of range"
            return _broken(attribute, comparator, text, early_error, problem)
        return UserCondition(
            attribute or "", comparator, check, text, early_error, comparison, suffix
        )

    def segment_condition(
        self, node: object, path: str, segments: tuple[Segment, ...]
    ) -> SegmentCondition:
        condition = self.mapping(node, path)
        index = self.optional_int(condition, "s", path)
        if index is None or not 0 <= index < len(segments):
            raise self.fail(f"{path}.s", f"no such segment (the document has {len(segments)})")
        return SegmentCondition(segments[index], self.optional_int(condition, "c", path))

    def prerequisite_condition(self, node: object, path: str) -> PrerequisiteCondition:
        condition = self.mapping(node, path)
        prerequisite = PrerequisiteCondition(
            self.optional_string(condition, "f", path),
            self.optional_int(condition, "c", path),
            self.optional_mapping(condition, "v", path),
        )
        self.prerequisites.append(prerequisite)
        return prerequisite

    def encode(self, text: str, path: str) -> bytes:
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate, from a Mapping built in Python
            raise self.fail(path, "not encodable as UTF-8") from None


def _broken(
    attribute: str | None, comparator: int, text: str, early_error: str | None, problem: str
) -> UserCondition:
    """A condition whose comparison value is unusable: comparing with it fails the evaluation."""

    def check(value: object) -> bool:
        raise Failure(problem)

    return UserCondition(attribute or "", comparator, check, text, early_error, late_error=problem)


def _unknown(value: object) -> bool:
    raise AssertionError("unreachable: the condition's early_error stops the evaluation first")


def _typed_value(
    raw: Mapping[str, Any] | None, setting_type: int | None
) -> tuple[object, str | None]:
    """The value of a ``v`` object for a setting type, or the error message the SDK gives."""
    if raw is None:
        return None, "Value is missing"
    info = _SETTING_TYPES.get(setting_type) if setting_type is not None else None
    if info is None:
        return None, "Unsupported setting type"
    field, expected = info
    value = raw.get(field)
    if value is None or _mismatched(value, expected):
        return None, f"Setting value is not of the expected type {expected}"
    return value, None


def _mismatched(value: object, expected: type) -> bool:
    """The SDK's notion of a type mismatch: exact types, except that int and float mix."""
    actual = type(value)
    if actual is expected:
        return False
    return not ({actual, expected} == {int, float})


def _link(condition: PrerequisiteCondition, settings: dict[str, Setting]) -> None:
    """Resolve a prerequisite's key, and find what the SDK would complain about, in its order."""
    target = settings.get(condition.key) if condition.key is not None else None
    if target is None:
        condition.error = "Prerequisite flag key is missing or invalid."
        return
    value, error = _typed_value(condition.raw_value, target.setting_type)
    if error is not None:
        condition.error = error
        return
    assert condition.raw_value is not None
    declared = next(
        (kind for field, kind in _VALUE_FIELDS if condition.raw_value.get(field) is not None), None
    )
    assert target.setting_type is not None  # _typed_value accepted the type
    if declared is not _SETTING_TYPES[target.setting_type][1]:
        condition.error = (
            f"Type mismatch between comparison value '{value}' "
            f"and prerequisite flag '{condition.key}'"
        )
        return
    condition.target = target
    condition.comparison = value


def _describe(attribute: str | None, comparator: int, comparison: object) -> tuple[str, str | None]:
    """The condition as the log shows it, and the error the SDK meets while formatting it.

    The SDK formats every condition it evaluates, log or no log, and formatting a date turns the
    number into a datetime: a number beyond year 9999 fails the whole evaluation.
    """
    shown: str
    if comparator in HASHED_COMPARATORS:
        if isinstance(comparison, tuple):
            count = len(comparison)
            shown = f"[<{count} hashed value{'s' if count > 1 else ''}>]"
        else:
            shown = "'<hashed value>'"
    elif isinstance(comparison, tuple):
        items = list(comparison)
        if len(items) > 10:
            rest = len(items) - 10
            more = "<1 more value>" if rest == 1 else f"<{rest} more values>"
            shown = f"{str(items[:10])[:-1]}, ... {more}]"
        else:
            shown = str(items)
    elif comparator in DATE_COMPARATORS:
        try:
            moment = datetime.fromtimestamp(comparison, timezone.utc)  # type: ignore[arg-type]
        except (OverflowError, ValueError, OSError, TypeError) as exc:  # TypeError: not a number
            return f"User.{attribute} {COMPARATOR_TEXTS[comparator]} '{comparison}'", str(exc)
        stamp = moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        shown = f"'{comparison}' ({stamp}Z UTC)"
    else:
        shown = f"'{comparison}'"
    return f"User.{attribute} {COMPARATOR_TEXTS[comparator]} {shown}", None


def _join(path: str, field: str) -> str:
    return f"{path}.{field}" if path else field


def _kind(node: object) -> str:
    if node is None:
        return "null"
    if isinstance(node, bool):
        return "a boolean"
    if isinstance(node, (int, float)):
        return "a number"
    if isinstance(node, str):
        return "a string"
    if isinstance(node, Mapping):
        return "an object"
    if isinstance(node, (list, tuple)):
        return "a list"
    return type(node).__name__
