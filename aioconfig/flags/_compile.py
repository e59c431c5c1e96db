"""The quiet path: a setting compiled once per parsed document into closures that decide for a
user without a word to say.

``evaluate`` takes this path when nothing is to be logged (``aioconfig.flags`` below INFO) and
the user is a ``User``. A compiled setting takes the user's attribute dict and returns the very
``EvaluationDetails`` the general path would return. Wherever the general path would warn or
fail (an attribute missing, converted or invalid, an unusable value, a circular prerequisite),
it raises instead, and ``evaluate`` starts again on the general path, which says what happened.
So the quiet path only ever has to be right about the ordinary case; ``tests/flags/
test_compile.py`` holds it to the general path, results and log records, on generated documents.

Worked out here once, not per evaluation: each condition's test (``_compare.build_test``), a
rule as a (test, served value) pair, percentage options as a table of 100 outcomes by bucket,
a prerequisite on a flag that serves one value to everyone as a constant. A user's bucket for a
rollout on the identifier is hashed once per (user, setting key) and kept in the user's own
attribute dict, under a key that is not a string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._compare import GiveUp, Test, build_test, stringify
from ._details import EvaluationDetails
from ._model import (
    _FIRST_32_BITS,
    Condition,
    Percentages,
    PrerequisiteCondition,
    Quick,
    Rule,
    SegmentCondition,
    Setting,
    UserCondition,
    bucket,
)

__all__ = ("quick",)

_Outcome = EvaluationDetails[Any]
# Percentage options: the attribute dict -> the option picked, or None (none takes the bucket).
_Pick = Callable[[dict[Any, object]], "_Outcome | None"]


def quick(setting: Setting) -> Quick:
    """``setting.quick``, compiled now if it is not yet (the first evaluation of the setting)."""
    decide = setting.quick
    if decide is None:
        try:
            decide = _compile(setting, [])
        except Exception:  # prerequisites chained deeper than the stack allows, say
            decide = _give_up
        setting.quick = decide
    return decide


def _give_up(attrs: dict[Any, object]) -> Any:
    raise GiveUp


def _true(attrs: dict[Any, object]) -> bool:
    return True


def _false(attrs: dict[Any, object]) -> bool:
    return False


def _compile(setting: Setting, stack: list[Setting]) -> Quick:
    fixed = setting.fixed
    if fixed is not None:
        return lambda attrs: fixed
    stack.append(setting)
    try:
        rules = [c for rule in setting.rules if (c := _rule(rule, stack)) is not None]
    finally:
        stack.pop()
    tail = _tail(setting)
    if all(pick is None and served is not None for _, served, pick in rules):
        return _straight([(test, served) for test, served, _ in rules], tail)  # type: ignore[misc]

    finish: Quick = (lambda attrs: tail) if isinstance(tail, EvaluationDetails) else tail

    def decide(attrs: dict[Any, object]) -> _Outcome:
        for test, served, pick in rules:
            if test is None or test(attrs):
                if served is not None:
                    return served
                if pick is not None:
                    picked = pick(attrs)
                    if picked is not None:
                        return picked
        return finish(attrs)

    return decide


def _straight(rules: list[tuple[Test, _Outcome]], tail: _Outcome | Quick) -> Quick:
    """The usual shape, rules that each serve a value, written out as one function:

        def decide(attrs):
            if test0(attrs): return served0
            if test1(attrs): return served1
            return tail             # or tail(attrs): the setting's percentage options

    without a loop's bookkeeping per rule (about a fifth of a rule that misses, on CPython
    3.11). Only these generated names go into the source; everything else is bound to them.
    """
    names: dict[str, Any] = {"tail": tail}
    lines = ["def decide(attrs):"]
    for index, (test, served) in enumerate(rules):
        names[f"test{index}"] = test
        names[f"served{index}"] = served
        lines.append(f"    if test{index}(attrs): return served{index}")
    lines.append(
        "    return tail" if isinstance(tail, EvaluationDetails) else "    return tail(attrs)"
    )
    exec("\n".join(lines), names)
    decide: Quick = names["decide"]
    return decide


def _tail(setting: Setting) -> _Outcome | Quick:
    """What decides when no rule does: the setting's percentage options, then its value."""
    outcome = setting.outcome
    if setting.percentages is None:
        return _give_up if isinstance(outcome, str) else outcome
    # Every bucket gives something: an option, or the setting's value.
    return _options(setting.percentages, setting, outcome)  # type: ignore[return-value]


def _rule(
    rule: Rule, stack: list[Setting]
) -> tuple[Test | None, _Outcome | None, _Pick | None] | None:
    """(test, served value, percentage options), or None for a rule that can be left out."""
    served = rule.served
    pick = _options(rule.percentages, stack[-1], None) if rule.percentages is not None else None
    if not rule.conditional:
        # Straight to the options (the parser dropped the value); without any, nothing to do.
        return (None, None, pick) if pick is not None else None
    if isinstance(served, str):
        return (_give_up, None, None)  # the general path fails on reaching the rule
    test = _all([_condition(condition, stack) for condition in rule.conditions])
    if test is _false or (test is _true and served is None and pick is None):
        return None  # never decides, never says a word
    return (test, served, pick)


def _all(tests: list[Test]) -> Test:
    """The AND of ``tests`` in order. A test that always holds is left out; one that never
    does ends the list (the general path stops there, so nothing after it can speak)."""
    kept: list[Test] = []
    for test in tests:
        if test is _true:
            continue
        kept.append(test)
        if test is _false:
            break
    if not kept:
        return _true
    if len(kept) == 1:
        return kept[0]
    if kept[0] is _false:
        return _false

    def test_all(attrs: dict[Any, object]) -> bool:
        for test in kept:
            if not test(attrs):
                return False
        return True

    return test_all


def _condition(condition: Condition, stack: list[Setting]) -> Test:
    if type(condition) is UserCondition:
        return _user_condition(condition)
    if type(condition) is SegmentCondition:
        return _segment_condition(condition)
    assert isinstance(condition, PrerequisiteCondition)
    return _prerequisite_condition(condition, stack)


def _user_condition(condition: UserCondition) -> Test:
    if condition.early_error is not None or condition.late_error is not None:
        return _give_up
    return build_test(
        condition.attribute,
        condition.comparator,
        condition.comparison,
        condition.hash_suffix,
        condition.check,
    )


def _segment_condition(condition: SegmentCondition) -> Test:
    if condition.comparator not in (0, 1):
        return _give_up
    inside = condition.comparator == 0
    member = _all([_user_condition(c) for c in condition.segment.conditions])
    if inside or member is _give_up:
        return member
    if member is _true:
        return _false
    if member is _false:
        return _true

    def test_outside(attrs: dict[Any, object]) -> bool:
        return not member(attrs)

    return test_outside


def _prerequisite_condition(condition: PrerequisiteCondition, stack: list[Setting]) -> Test:
    target = condition.target
    if condition.error is not None or target is None or condition.comparator not in (0, 1):
        return _give_up
    if target in stack:
        return _give_up  # a cycle: an error if the evaluation gets here
    comparison = condition.comparison
    equals = condition.comparator == 0
    fixed = target.fixed
    if fixed is not None:
        return _true if (fixed.value == comparison) == equals else _false
    decide = target.quick
    if decide is None:
        decide = target.quick = _compile(target, stack)
    if equals:

        def test_equals(attrs: dict[Any, object]) -> bool:
            return bool(decide(attrs).value == comparison)

        return test_equals

    def test_differs(attrs: dict[Any, object]) -> bool:
        return bool(decide(attrs).value != comparison)

    return test_differs


def _options(
    percentages: Percentages, setting: Setting, unassigned: _Outcome | str | None
) -> _Pick:
    """Percentage options as one lookup by bucket. ``unassigned``: what the buckets no option
    takes give (None: nothing, the evaluation goes on)."""
    by_bucket: list[_Outcome | None] = []
    unusable = False
    for index in percentages.table:
        picked = percentages.outcomes[index] if index >= 0 else unassigned
        if isinstance(picked, str):
            unusable = True  # the general path fails when this bucket comes up
            picked = None
        by_bucket.append(picked)
    if unusable:
        return _give_up
    table = tuple(by_bucket)
    attribute = setting.percentage_attribute
    if attribute is not None:

        def pick_by_attribute(attrs: dict[Any, object]) -> _Outcome | None:
            value = attrs.get(attribute)
            if value is None:
                raise GiveUp  # warned about
            return table[bucket(setting, value if value.__class__ is str else stringify(value))]

        return pick_by_attribute

    token = _token(setting.key)
    hasher = setting.key_hasher

    def pick(attrs: dict[Any, object]) -> _Outcome | None:
        found = attrs.get(token)
        if found is None:
            identifier = attrs["Identifier"]
            if identifier.__class__ is not str:
                if identifier is not None:
                    raise GiveUp
                identifier = ""  # as ConfigCat hashes a missing identifier
            copy = hasher.copy()
            copy.update(identifier.encode())
            hashed: int = (_FIRST_32_BITS(copy.digest())[0] >> 4) % 100
            attrs[token] = hashed
            return table[hashed]
        return table[found]  # type: ignore[call-overload, no-any-return]

    return pick


class _BucketOf:
    """The key a user's bucket for one setting key is kept under, in the user's attribute dict:
    never equal to an attribute name, and one per setting key (the bucket depends on the key and
    the identifier alone), so a long-lived user keeps one entry per key however many documents
    come and go."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key

    def __repr__(self) -> str:
        return f"<bucket of {self.key!r}>"


_TOKENS: dict[str, _BucketOf] = {}


def _token(key: str) -> _BucketOf:
    token = _TOKENS.get(key)
    if token is None:
        token = _TOKENS.setdefault(key, _BucketOf(key))
    return token
