"""evaluate(): every comparator, every fall-through rule, percentages, segments, prerequisites.

Expected results are worked out from the rules (ConfigCat's documented semantics and the
behaviour of its Python SDK), not asked of the SDK; a few spot checks at the end do compare with
configcat-client on hand-made documents (tests/flags/test_differential.py does that at scale).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

import pytest

from aioconfig.flags import EvaluationDetails, FlagConfig, User, evaluate, parse_flags

SALT = "test-salt"
SEGMENT = "Testers"
ABSENT = object()  # "the user has no such attribute"


def sha256(data: bytes | str, context: str = SEGMENT) -> str:
    """How ConfigCat hashes: sha256(value + config salt + setting key or segment name)."""
    raw = data.encode() if isinstance(data, str) else data
    return hashlib.sha256(raw + SALT.encode() + context.encode()).hexdigest()


def bucket(key: str, text: str) -> int:
    """ConfigCat's percentage bucket: the first 7 hex digits of sha1(key + text), mod 100."""
    return int(hashlib.sha1((key + text).encode()).hexdigest()[:7], 16) % 100


def _probe_document(condition: dict[str, Any]) -> dict[str, Any]:
    # One segment holding the condition, and two flags: "in" (IS IN) and "out" (IS NOT IN). A
    # condition that cannot be evaluated fails both, which tells it apart from "no match".
    def flag(comparator: int) -> dict[str, Any]:
        rule = {"c": [{"s": {"s": 0, "c": comparator}}], "s": {"v": {"b": True}}}
        return {"t": 0, "v": {"b": False}, "r": [rule]}

    return {
        "p": {"s": SALT},
        "s": [{"n": SEGMENT, "r": [condition]}],
        "f": {"in": flag(0), "out": flag(1)},
    }


def outcome(condition: dict[str, Any], user: User | None) -> str:
    """'match', 'no match', 'cannot evaluate' (the rule is skipped) or 'error' (default value)."""
    flags = parse_flags(_probe_document(condition))
    inside = evaluate(flags, "in", None, user)
    outside = evaluate(flags, "out", None, user)
    if inside.error is not None:
        assert outside.error is not None
        return "error"
    if inside.value:
        assert outside.value is False
        return "match"
    return "no match" if outside.value else "cannot evaluate"


def compare(comparator: int, comparison: Any, value: object) -> str:
    field = "l" if isinstance(comparison, list) else "d" if isinstance(comparison, float) else "s"
    user = User("id") if value is ABSENT else User("id", custom={"A": value})
    return outcome({"a": "A", "c": comparator, field: comparison}, user)


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    # "Cannot evaluate" warnings are part of the normal path here.
    caplog.set_level(logging.ERROR + 1, logger="aioconfig.flags")


# -- text comparators ------------------------------------------------------------------------

MOMENT = datetime(2023, 11, 14, 22, 13, 20)  # 1700000000 seconds after the epoch, naive = UTC
PLUS_2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize(
    ("comparator", "comparison", "value", "expected"),
    [
        # 0 IS ONE OF, 1 IS NOT ONE OF: whole, case-sensitive texts
        (0, ["a", "b"], "a", "match"),
        (0, ["a", "b"], "A", "no match"),
        (0, ["a", "b"], " a", "no match"),
        (1, ["a", "b"], "c", "match"),
        (1, ["a", "b"], "b", "no match"),
        # non-strings become text the SDK's way
        (0, ["5"], 5, "match"),
        (0, ["5"], 5.0, "match"),
        (0, ["1.5"], 1.5, "match"),
        (0, ["1e+16"], 1e16, "match"),
        (0, ["100000000000000"], 1e14, "match"),
        (0, ["NaN"], float("nan"), "match"),
        (0, ["-Infinity"], float("-inf"), "match"),
        (0, ["True"], True, "match"),
        (0, ['["x","ü"]'], ["x", "ü"], "match"),
        (0, ["[1, 2]"], [1, 2], "match"),
        (0, ["1700000000"], MOMENT, "match"),
        (0, ["1700000000.25"], MOMENT + timedelta(milliseconds=250), "match"),
        # 2 CONTAINS ANY OF, 3 NOT CONTAINS ANY OF
        (2, ["@example.com"], "ada@example.com", "match"),
        (2, ["@example.com", "@x.org"], "ada@x.org", "match"),
        (2, ["@example.com"], "ada@example.org", "no match"),
        (2, [""], "anything", "match"),
        (2, [], "anything", "no match"),
        (3, ["@a", "@b"], "x@c", "match"),
        (3, ["@a", "@b"], "x@b", "no match"),
        (3, [], "anything", "match"),
        (2, ["42"], 1042, "match"),
        # 28 EQUALS, 29 NOT EQUALS
        (28, "abc", "abc", "match"),
        (28, "abc", "abcd", "no match"),
        (28, "7", 7, "match"),
        (29, "abc", "abd", "match"),
        (29, "abc", "abc", "no match"),
        # 30 STARTS WITH ANY OF, 31 NOT STARTS WITH, 32 ENDS WITH, 33 NOT ENDS WITH
        (30, ["ab", "x"], "abc", "match"),
        (30, ["ab", "x"], "cab", "no match"),
        (30, [], "abc", "no match"),
        (31, ["ab", "x"], "cab", "match"),
        (31, ["ab", "x"], "xyz", "no match"),
        (31, [], "abc", "match"),
        (32, ["bc", "x"], "abc", "match"),
        (32, ["bc", "x"], "bca", "no match"),
        (33, ["bc"], "bca", "match"),
        (33, ["bc"], "abc", "no match"),
        (30, ["1"], 12, "match"),
    ],
)
def test_text_comparators(comparator: int, comparison: Any, value: object, expected: str) -> None:
    assert compare(comparator, comparison, value) == expected


# -- semantic versions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "comparison", "value", "expected"),
    [
        # 4 IS ONE OF, 5 IS NOT ONE OF
        (4, ["1.0.0", " 2.0.0 "], "2.0.0", "match"),
        (4, ["1.0.0"], " 1.0.0\t", "match"),  # both sides are stripped
        (4, ["1.0.0"], "1.0.0+build.7", "match"),  # build metadata takes no part
        (4, ["1.0.0"], "1.0.1", "no match"),
        (4, ["1.0.0"], "1.0.0-rc.1", "no match"),
        (5, ["1.0.0"], "1.0.1", "match"),
        (5, ["1.0.0"], "1.0.0", "no match"),
        (4, ["1.0.0"], "v1.0.0", "cannot evaluate"),
        (4, ["1.0.0"], "1.0", "cannot evaluate"),
        (4, ["1.0.0"], "01.0.0", "cannot evaluate"),
        (4, ["1.0.0"], "1.0.0-01", "cannot evaluate"),
        (4, ["1.0.0"], "\uff11.0.0", "cannot evaluate"),  # fullwidth digit: ASCII only
        (4, ["1.0.0"], 1, "cannot evaluate"),
        (5, ["1.0.0"], "latest", "cannot evaluate"),
        # one malformed entry in the list: the SDK's loop fails for every user
        (4, ["1.0.0", "nope"], "1.0.0", "cannot evaluate"),
        (5, ["1.0.0", "nope"], "2.0.0", "cannot evaluate"),
        # blank entries are dropped; with none left the attribute is not even read
        (4, ["", " "], "not a version", "no match"),
        (5, ["", " "], "not a version", "match"),
        (4, ["", "1.0.0"], "1.0.0", "match"),
        # 6 <, 7 <=, 8 >, 9 >= : precedence as in semver.org
        (6, "2.0.0", "1.99.99", "match"),
        (6, "2.0.0", "2.0.0-rc.1", "match"),
        (6, "2.0.0", "2.0.0", "no match"),
        (6, " 2.0.0 ", "1.0.0", "match"),
        (7, "2.0.0", "2.0.0+other", "match"),
        (7, "2.0.0", "2.0.1", "no match"),
        (8, "1.0.0-alpha", "1.0.0-alpha.1", "match"),  # more identifiers rank higher
        (8, "1.0.0-alpha.1", "1.0.0-alpha.beta", "match"),  # alphanumeric above numeric
        (8, "1.0.0-beta.2", "1.0.0-beta.11", "match"),  # numeric identifiers by value
        (8, "1.0.0-rc.1", "1.0.0", "match"),  # a release above its prereleases
        (8, "1.0.0-Z", "1.0.0-a", "match"),  # ASCII order
        (8, "1.10.0", "1.9.0", "no match"),
        (9, "1.0.0", "1.0.0", "match"),
        (9, "99999999999999999999.0.0", "100000000000000000000.0.0", "match"),
        # the SDK glues operator and value together and splits them again: "<" "=2.0.0" is "<="
        (6, "=2.0.0", "2.0.0", "match"),
        (8, "=2.0.0", "2.0.0", "match"),
        (7, "=2.0.0", "1.0.0", "cannot evaluate"),
        (6, "", "1.0.0", "cannot evaluate"),
        (6, "2.0", "1.0.0", "cannot evaluate"),
        (6, "2.0.0", "1.0", "cannot evaluate"),
    ],
)
def test_semver_comparators(comparator: int, comparison: Any, value: object, expected: str) -> None:
    assert compare(comparator, comparison, value) == expected


# -- numbers and dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "comparison", "value", "expected"),
    [
        (10, 3.5, 3.5, "match"),
        (10, 3.5, "3.5", "match"),
        (10, 3.5, "3,5", "match"),  # a comma is a decimal point
        (10, 3.5, " 3.5 ", "match"),
        (10, 1000.0, "1_000", "match"),  # whatever Python's float() reads
        (10, 1.0, True, "match"),
        (10, 42.0, 42, "match"),
        (10, 3.5, "3.6", "no match"),
        (11, 3.5, "4", "match"),
        (11, 3.5, "3.5", "no match"),
        (11, 3.5, "NaN", "match"),
        (10, 3.5, "NaN", "no match"),
        (12, 10.0, 9.99, "match"),
        (12, 10.0, 10, "no match"),
        (13, 10.0, 10, "match"),
        (14, 10.0, "1e3", "match"),
        (14, 10.0, "-inf", "no match"),
        (15, 10.0, 10, "match"),
        (15, 10.0, 9, "no match"),
        (10, 3.5, "3.5.0", "cannot evaluate"),
        (10, 3.5, "abc", "cannot evaluate"),
        (10, 3.5, "0x10", "cannot evaluate"),
        # not a string and not a number: the SDK's float() raises TypeError, the evaluation fails
        (10, 3.5, [3.5], "error"),
        (10, 3.5, MOMENT, "error"),
        # 18 BEFORE, 19 AFTER: Unix seconds; naive datetimes are UTC
        (18, 1700000000.0, MOMENT - timedelta(seconds=1), "match"),
        (18, 1700000000.0, MOMENT, "no match"),
        (19, 1700000000.0, MOMENT + timedelta(microseconds=1), "match"),
        (19, 1700000000.0, datetime(2023, 11, 15, 0, 13, 21, tzinfo=PLUS_2), "match"),
        (18, 1700000000.0, datetime(2023, 11, 15, 0, 13, 19, tzinfo=PLUS_2), "match"),
        (18, 1700000000.0, 1699999999.5, "match"),
        (19, 1700000000.0, "1700000000,5", "match"),
        (19, 1700000000.0, "1700000000", "no match"),
        (18, 1700000000.0, "2023-11-14T22:13:20Z", "cannot evaluate"),
        (18, 1700000000.0, "yesterday", "cannot evaluate"),
        (18, 1700000000.0, date(2023, 1, 1), "error"),  # a date is no datetime, nor a number
    ],
)  # fmt: skip
def test_number_and_date_comparators(
    comparator: int, comparison: Any, value: object, expected: str
) -> None:
    assert compare(comparator, comparison, value) == expected


def test_a_comparison_date_beyond_year_9999_fails_every_evaluation_that_reaches_it() -> None:
    condition = {"a": "A", "c": 18, "d": 253402300800.0}
    assert outcome(condition, User("1", custom={"A": 1})) == "error"
    assert outcome(condition, User("1")) == "error"  # the SDK formats it first, attribute or not
    assert outcome(condition, None) == "cannot evaluate"  # a segment first asks for a user
    flags = flags_of({"c": [{"u": condition}], "s": served("never")})
    assert evaluate(flags, "flag", "d", None).error == (
        "Failed to evaluate setting 'flag'. (year 10000 is out of range). Returning the "
        "`default_value` parameter that you specified in your application: 'd'. "
    )
    assert compare(18, 253402300799.0, 1) == "match"


# -- arrays ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "comparison", "value", "expected"),
    [
        (34, ["admin"], ["admin", "beta"], "match"),
        (34, ["admin", "x"], ["beta", "x"], "match"),
        (34, ["admin"], '["admin", "beta"]', "match"),  # JSON text holding a list of strings
        (34, ["admin"], '\n[ "admin" ]\n', "match"),
        (34, ["admin"], ["beta"], "no match"),
        (34, ["admin"], [], "no match"),
        (34, ["admin"], "[]", "no match"),
        (34, [], ["admin"], "no match"),
        (35, ["admin"], ["beta"], "match"),
        (35, ["admin"], [], "match"),
        (35, [], ["admin"], "match"),
        (35, ["admin"], ["admin"], "no match"),
        (34, ["admin"], "admin", "cannot evaluate"),
        (34, ["admin"], '"admin"', "cannot evaluate"),
        (34, ["admin"], "[", "cannot evaluate"),
        (34, ["1"], [1], "cannot evaluate"),
        (34, ["admin"], ("admin",), "cannot evaluate"),  # a list, not any sequence
        (35, ["admin"], {"admin": 1}, "cannot evaluate"),
        (35, [], 7, "cannot evaluate"),  # read even when there is nothing to compare with
    ],
)
def test_array_comparators(comparator: int, comparison: Any, value: object, expected: str) -> None:
    assert compare(comparator, comparison, value) == expected


# -- hashed (confidential) comparators -------------------------------------------------------


@pytest.mark.parametrize(
    ("comparator", "comparison", "value", "expected"),
    [
        (16, [sha256("alice"), sha256("bob")], "bob", "match"),
        (16, [sha256("alice")], "Alice", "no match"),
        (16, [sha256("5")], 5, "match"),
        (17, [sha256("alice")], "bob", "match"),
        (17, [sha256("alice")], "alice", "no match"),
        (20, sha256("alice"), "alice", "match"),
        (20, sha256("alice"), "alice ", "no match"),
        (20, sha256("ünï"), "ünï", "match"),  # UTF-8
        (21, sha256("alice"), "bob", "match"),
        (21, sha256("alice"), "alice", "no match"),
        # 22-25: "<byte length>_<sha256 of that many leading/trailing bytes>"
        (22, ["3_" + sha256("abc")], "abcdef", "match"),
        (22, ["3_" + sha256("abc")], "ab", "no match"),
        (22, ["9_" + sha256("x"), "3_" + sha256("abc")], "abcdef", "match"),
        (22, ["2_" + sha256("ü")], "über", "match"),  # bytes, not characters
        (22, ["1_" + sha256(b"\xc3")], "über", "match"),  # half a character is fine too
        (22, ["0_" + sha256("")], "anything", "match"),
        (23, ["3_" + sha256("abc")], "abcdef", "no match"),
        (23, ["3_" + sha256("abc")], "xyz", "match"),
        (23, [], "xyz", "match"),
        (24, ["3_" + sha256("def")], "abcdef", "match"),
        (24, ["3_" + sha256("def")], "defabc", "no match"),
        (24, ["0_" + sha256("abcdef")], "abcdef", "match"),  # value[-0:] is the whole value
        (25, ["3_" + sha256("def")], "abcdef", "no match"),
        (25, ["3_" + sha256("def")], "abcxyz", "match"),
        (24, ["2_" + sha256("12")], 312, "match"),
        # a malformed entry fails the evaluation when the SDK's loop reaches it
        (22, ["no-underscore"], "abc", "error"),
        (22, ["x_" + sha256("a")], "abc", "error"),
        (22, ["1_" + sha256("a"), "junk"], "abc", "match"),
        (22, ["1_" + sha256("a"), "junk"], "xyz", "error"),
        # 26, 27: hashed array elements
        (26, [sha256("admin")], ["beta", "admin"], "match"),
        (26, [sha256("admin")], '["admin"]', "match"),
        (26, [sha256("admin")], ["beta"], "no match"),
        (27, [sha256("admin")], ["beta"], "match"),
        (27, [sha256("admin")], ["admin"], "no match"),
        (26, [sha256("admin")], "admin", "cannot evaluate"),
    ],
)
def test_hashed_comparators(comparator: int, comparison: Any, value: object, expected: str) -> None:
    assert compare(comparator, comparison, value) == expected


def test_hashes_are_salted_with_the_setting_key_or_the_segment_name() -> None:
    def flag(key: str, hashed: str) -> FlagConfig:
        condition = {"u": {"a": "Email", "c": 20, "s": hashed}}
        rule = {"c": [condition], "s": {"v": {"b": True}}}
        return parse_flags({"p": {"s": SALT}, "f": {key: {"t": 0, "v": {"b": False}, "r": [rule]}}})

    user = User("1", email="ada@example.com")
    assert evaluate(flag("myFlag", sha256("ada@example.com", "myFlag")), "myFlag", None, user).value
    assert not evaluate(
        flag("myFlag", sha256("ada@example.com", "other")), "myFlag", None, user
    ).value
    # in a segment: the segment's name (see the probe documents above)
    assert compare(20, sha256("ada@example.com", SEGMENT), "ada@example.com") == "match"
    assert compare(20, sha256("ada@example.com", "in"), "ada@example.com") == "no match"


# -- what cannot be evaluated ----------------------------------------------------------------

_ANY_VALUE: dict[int, Any] = {comparator: ["x"] for comparator in range(36)}
_ANY_VALUE.update(dict.fromkeys((6, 7, 8, 9, 20, 21, 28, 29), "1.0.0"))
_ANY_VALUE.update(dict.fromkeys((10, 11, 12, 13, 14, 15, 18, 19), 1.0))


@pytest.mark.parametrize("comparator", range(36))
def test_no_user_no_attribute_or_an_empty_one_cannot_be_evaluated(comparator: int) -> None:
    field = {list: "l", str: "s", float: "d"}[type(_ANY_VALUE[comparator])]
    condition = {"a": "A", "c": comparator, field: _ANY_VALUE[comparator]}
    assert outcome(condition, None) == "cannot evaluate"
    assert outcome(condition, User("1")) == "cannot evaluate"
    assert outcome(condition, User("1", custom={"A": ""})) == "cannot evaluate"
    assert outcome(condition, User("1", custom={"A": None})) == "cannot evaluate"


def test_identifier_email_and_country_come_from_the_user_not_from_custom() -> None:
    condition = {"a": "Email", "c": 28, "s": "real@example.com"}
    user = User("1", email="real@example.com", custom={"Email": "fake@example.com"})
    assert outcome(condition, user) == "match"
    shadowed = User("1", custom={"Email": "real@example.com"})
    assert outcome(condition, shadowed) == "cannot evaluate"
    assert outcome({"a": "Identifier", "c": 28, "s": "42"}, User("42")) == "match"
    assert outcome({"a": "Country", "c": 28, "s": "HU"}, User("1", country="HU")) == "match"


def test_an_unknown_comparator_or_attribute_name_fails_the_evaluation_that_reaches_it() -> None:
    assert outcome({"a": "A", "c": 36, "l": ["x"]}, User("1", custom={"A": "x"})) == "error"
    assert outcome({"a": "A", "c": 36}, User("1")) == "error"
    assert outcome({"c": 28, "s": "x"}, User("1", custom={"A": "x"})) == "error"
    # Outside a segment (which asks for a user first), not even a user is needed to fail.
    for condition in ({"a": "A", "c": 36}, {"c": 28, "s": "x"}):
        flags = flags_of({"c": [{"u": condition}], "s": served("never")})
        assert evaluate(flags, "flag", "d", None).is_default_value


# -- rules: order and fall-through -----------------------------------------------------------


def flags_of(
    *rules: dict[str, Any], percentages: list[Any] | None = None, **extra: Any
) -> FlagConfig:
    setting: dict[str, Any] = {"t": 1, "v": {"s": "fallback"}, "i": "v0", "r": list(rules)}
    if percentages is not None:
        setting["p"] = percentages
    setting.update(extra)
    return parse_flags({"p": {"s": SALT}, "f": {"flag": setting}})


def served(value: str, variation: str | None = None) -> dict[str, Any]:
    return {"v": {"s": value}, "i": variation} if variation else {"v": {"s": value}}


def when(attribute: str, text: str) -> dict[str, Any]:
    return {"u": {"a": attribute, "c": 28, "s": text}}


def test_the_first_matching_rule_wins() -> None:
    flags = flags_of(
        {"c": [when("Country", "HU")], "s": served("hu", "v1")},
        {"c": [when("Email", "a@b.c")], "s": served("email", "v2")},
        {"c": [when("Email", "a@b.c"), when("Country", "HU")], "s": served("both", "v3")},
    )
    user = User("1", email="a@b.c", country="HU")
    assert evaluate(flags, "flag", "", user) == EvaluationDetails(
        "flag", "hu", "v1", False, None, 0
    )
    details = evaluate(flags, "flag", "", User("1", email="a@b.c", country="DE"))
    assert (details.value, details.variation_id, details.matched_targeting_rule) == (
        "email",
        "v2",
        1,
    )
    details = evaluate(flags, "flag", "", User("1"))
    assert (details.value, details.variation_id, details.matched_targeting_rule) == (
        "fallback",
        "v0",
        None,
    )


def test_all_conditions_of_a_rule_must_hold() -> None:
    flags = flags_of({"c": [when("Email", "a@b.c"), when("Country", "HU")], "s": served("both")})
    assert evaluate(flags, "flag", "", User("1", email="a@b.c", country="HU")).value == "both"
    assert evaluate(flags, "flag", "", User("1", email="a@b.c", country="DE")).value == "fallback"
    assert evaluate(flags, "flag", "", User("1", email="a@b.c")).value == "fallback"


def test_a_rule_that_cannot_be_evaluated_is_skipped_and_the_next_one_tried() -> None:
    flags = flags_of(
        {"c": [{"u": {"a": "Version", "c": 8, "s": "1.0.0"}}], "s": served("new")},
        {"c": [when("Country", "HU")], "s": served("hu")},
    )
    user = User("1", country="HU", custom={"Version": "not a version"})
    details = evaluate(flags, "flag", "", user)
    assert (details.value, details.error, details.matched_targeting_rule) == ("hu", None, 1)
    assert evaluate(flags, "flag", "", None).value == "fallback"


def test_a_rule_without_conditions_ignores_its_served_value() -> None:
    # The SDK only serves a rule's value when the rule has conditions; without any, it goes
    # straight to the rule's percentage options, and without those, on to the next rule.
    flags = flags_of({"c": [], "s": served("never")}, {"s": served("never either")})
    assert evaluate(flags, "flag", "", User("1")).value == "fallback"
    option = {"p": 100, "v": {"s": "rolled"}, "i": "r"}
    flags = flags_of({"c": [], "s": served("never"), "p": [option]})
    details = evaluate(flags, "flag", "", User("1"))
    assert (details.value, details.matched_targeting_rule, details.matched_percentage_option) == (
        "rolled",
        0,
        0,
    )


def test_a_condition_of_no_known_kind_holds() -> None:
    flags = flags_of({"c": [{}], "s": served("vacuous")})
    assert evaluate(flags, "flag", "", None).value == "vacuous"
    flags = flags_of({"c": [{}, when("Country", "HU")], "s": served("hu")})
    assert evaluate(flags, "flag", "", User("1", country="HU")).value == "hu"
    assert evaluate(flags, "flag", "", User("1", country="DE")).value == "fallback"


def test_a_matching_rule_with_neither_value_nor_options_lets_the_next_rule_decide() -> None:
    flags = flags_of({"c": [when("Country", "HU")]}, {"c": [], "p": [{"p": 100, "v": {"s": "p"}}]})
    assert evaluate(flags, "flag", "", User("1", country="HU")).value == "p"


def test_a_variation_id_may_be_absent() -> None:
    flags = flags_of({"c": [when("Country", "HU")], "s": served("hu")}, i=None)
    assert evaluate(flags, "flag", "", User("1", country="HU")).variation_id is None
    assert evaluate(flags, "flag", "", User("1")).variation_id is None


def test_a_broken_served_value_fails_whenever_its_rule_is_reached() -> None:
    # The SDK reads a rule's served value before it looks at the rule's conditions.
    flags = flags_of(
        {"c": [when("Country", "HU")], "s": served("hu")},
        {"c": [when("Country", "DE")], "s": {"v": {"b": True}}},
    )
    assert evaluate(flags, "flag", "x", User("1", country="HU")).value == "hu"
    for user in (User("1", country="DE"), User("1", country="FR"), None):
        details = evaluate(flags, "flag", "x", user)
        assert (details.value, details.is_default_value) == ("x", True)
        assert details.error == (
            "Failed to evaluate setting 'flag'. (Setting value is not of the expected type "
            "<class 'str'>). Returning the `default_value` parameter that you specified in your "
            "application: 'x'. "
        )


def test_a_broken_setting_value_fails_only_when_nothing_else_decides() -> None:
    flags = flags_of({"c": [when("Country", "HU")], "s": served("hu")}, v={"i": 1})
    assert evaluate(flags, "flag", "x", User("1", country="HU")).value == "hu"
    details = evaluate(flags, "flag", "x", User("1"))
    assert (details.value, details.is_default_value) == ("x", True)
    assert (
        details.error is not None and "Setting value is not of the expected type" in details.error
    )


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ({"v": {"b": True}}, "Unsupported setting type"),
        ({"t": 4, "v": {"b": True}}, "Unsupported setting type"),
        ({"t": 0}, "Value is missing"),
        ({"t": 0, "v": {}}, "Setting value is not of the expected type <class 'bool'>"),
        ({"t": 0, "v": {"b": 1}}, "Setting value is not of the expected type <class 'bool'>"),
        ({"t": 2, "v": {"i": True}}, "Setting value is not of the expected type <class 'int'>"),
        ({"t": 2, "v": {"d": 1}}, "Setting value is not of the expected type <class 'int'>"),
    ],
)
def test_a_setting_the_sdk_cannot_read_gives_the_default_value(
    setting: dict[str, Any], problem: str
) -> None:
    flags = parse_flags({"f": {"flag": setting}})
    details = evaluate(flags, "flag", 7)
    assert details == EvaluationDetails(
        "flag",
        7,
        None,
        True,
        f"Failed to evaluate setting 'flag'. ({problem}). Returning the `default_value` "
        "parameter that you specified in your application: '7'. ",
    )


def test_ints_and_floats_mix_as_in_the_sdk() -> None:
    flags = parse_flags({"f": {"i": {"t": 2, "v": {"i": 1.0}}, "d": {"t": 3, "v": {"d": 2}}}})
    value = evaluate(flags, "i", 0).value
    assert value == 1.0 and type(value) is float
    value = evaluate(flags, "d", 0.0).value
    assert value == 2 and type(value) is int


# -- percentage options ----------------------------------------------------------------------

OPTIONS: list[dict[str, Any]] = [
    {"p": 10, "v": {"s": "ten"}, "i": "o1"},
    {"p": 40, "v": {"s": "forty"}, "i": "o2"},
    {"p": 50, "v": {"s": "fifty"}, "i": "o3"},
]


def expected_option(hash_bucket: int, percentages: tuple[float, ...] = (10, 40, 50)) -> int | None:
    total = 0.0
    for index, percentage in enumerate(percentages):
        total += percentage
        if hash_bucket < total:
            return index
    return None


def test_percentage_options_follow_the_sha1_bucket_of_key_and_identifier() -> None:
    flags = flags_of(percentages=OPTIONS)
    seen = set()
    for number in range(200):
        identifier = f"user-{number}"
        index = expected_option(bucket("flag", identifier))
        assert index is not None
        details = evaluate(flags, "flag", "", User(identifier))
        assert (details.value, details.variation_id) == (
            OPTIONS[index]["v"]["s"],
            OPTIONS[index]["i"],
        )
        assert (details.matched_targeting_rule, details.matched_percentage_option) == (None, index)
        seen.add(index)
    assert seen == {0, 1, 2}


BUCKETS = [24, 32, 59, 29]


def test_known_buckets() -> None:
    # Fixed points, worked out once with hashlib: if the hashing ever changes, these do.
    key = "isAwesomeFeatureEnabled"
    assert [bucket(key, text) for text in ("1234", "", "ünï", "a@b.c")] == BUCKETS
    options = [{"p": 24, "v": {"s": "below"}}, {"p": 1, "v": {"s": "24"}}]
    flags = parse_flags({"f": {key: {"t": 1, "v": {"s": "above"}, "p": options}}})
    assert evaluate(flags, key, "", User("1234")).value == "24"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("abc", "abc"),
        ("", ""),  # an empty attribute is hashed, not skipped
        (5, "5"),
        (5.0, "5"),
        (2.5, "2.5"),
        (1e16, "1e+16"),
        (True, "True"),
        (["a", "ü"], '["a","ü"]'),
        (MOMENT, "1700000000"),
    ],
)
def test_percentage_options_hash_the_chosen_attribute_as_text(value: object, text: str) -> None:
    flags = flags_of(percentages=OPTIONS, a="Plan")
    details = evaluate(flags, "flag", "", User("ignored", custom={"Plan": value}))
    index = expected_option(bucket("flag", text))
    assert index is not None
    assert details.value == OPTIONS[index]["v"]["s"]


def test_percentage_options_are_skipped_without_a_user_or_the_attribute() -> None:
    flags = flags_of(percentages=OPTIONS, a="Plan")
    assert evaluate(flags, "flag", "", User("1")).value == "fallback"
    assert evaluate(flags, "flag", "", None).value == "fallback"
    assert evaluate(flags_of(percentages=OPTIONS), "flag", "", None).value == "fallback"


def test_a_missing_identifier_hashes_as_empty_unless_named_explicitly() -> None:
    nobody = User(cast(str, None))
    index = expected_option(bucket("flag", ""))
    assert index is not None
    assert (
        evaluate(flags_of(percentages=OPTIONS), "flag", "", nobody).value
        == (OPTIONS[index]["v"]["s"])
    )
    named = flags_of(percentages=OPTIONS, a="Identifier")
    assert evaluate(named, "flag", "", nobody).value == "fallback"


def test_percentages_short_of_100_leave_the_last_buckets_to_what_follows() -> None:
    options = [{"p": 30, "v": {"s": "thirty"}}]
    flags = flags_of(percentages=options)
    for number in range(100):
        identifier = str(number)
        expected = "thirty" if bucket("flag", identifier) < 30 else "fallback"
        assert evaluate(flags, "flag", "", User(identifier)).value == expected


def test_a_rules_percentage_options_apply_when_its_conditions_hold() -> None:
    flags = flags_of(
        {"c": [when("Country", "HU")], "p": OPTIONS},
        {"c": [when("Country", "DE")], "s": served("de")},
    )
    details = evaluate(flags, "flag", "", User("user-1", country="HU"))
    index = expected_option(bucket("flag", "user-1"))
    assert (details.matched_targeting_rule, details.matched_percentage_option) == (0, index)
    # A rule whose options cannot be used (no user, or no such attribute) is skipped.
    flags = flags_of(
        {"c": [{}], "p": OPTIONS},
        {"c": [{}], "s": served("next")},
        a="Plan",
    )
    assert evaluate(flags, "flag", "", User("1")).value == "next"


def test_a_broken_option_value_fails_only_when_picked() -> None:
    options = [{"p": 50, "v": {"s": "fine"}}, {"p": 50, "v": {"i": 1}}]
    flags = flags_of(percentages=options)
    for number in range(40):
        details = evaluate(flags, "flag", "d", User(str(number)))
        if bucket("flag", str(number)) < 50:
            assert details.value == "fine"
        else:
            assert (details.value, details.is_default_value) == ("d", True)


# -- segments --------------------------------------------------------------------------------


def segment_flags(*conditions: dict[str, Any], comparator: int = 0) -> FlagConfig:
    rule = {"c": [{"s": {"s": 0, "c": comparator}}], "s": {"v": {"b": True}}}
    return parse_flags(
        {
            "p": {"s": SALT},
            "s": [{"n": SEGMENT, "r": list(conditions)}],
            "f": {"flag": {"t": 0, "v": {"b": False}, "r": [rule]}},
        }
    )


def test_segments_are_an_and_of_conditions() -> None:
    conditions = ({"a": "Country", "c": 0, "l": ["HU"]}, {"a": "Email", "c": 32, "l": ["@x.hu"]})
    inside = segment_flags(*conditions)
    outside = segment_flags(*conditions, comparator=1)
    member = User("1", email="a@x.hu", country="HU")
    stranger = User("1", email="a@x.hu", country="DE")
    assert evaluate(inside, "flag", None, member).value is True
    assert evaluate(outside, "flag", None, member).value is False
    assert evaluate(inside, "flag", None, stranger).value is False
    assert evaluate(outside, "flag", None, stranger).value is True
    # An attribute that is not there makes "not in the segment" unknown as well.
    assert evaluate(outside, "flag", None, User("1", email="a@x.hu")).value is False
    assert evaluate(outside, "flag", None, None).value is False


def test_an_empty_segment_holds_everyone_but_no_one_without_a_user() -> None:
    assert evaluate(segment_flags(), "flag", None, User("1")).value is True
    assert evaluate(segment_flags(comparator=1), "flag", None, User("1")).value is False
    assert evaluate(segment_flags(), "flag", None, None).value is False


def test_an_unknown_segment_comparator_fails_only_once_there_is_a_user() -> None:
    flags = segment_flags(comparator=2)
    assert evaluate(flags, "flag", None, None).error is None  # "no user" is checked first
    details = evaluate(flags, "flag", None, User("1"))
    assert details.error is not None
    assert "Comparison operator is missing or invalid." in details.error


# -- prerequisites ---------------------------------------------------------------------------


def prerequisite(key: str, value: dict[str, Any], comparator: int = 0) -> dict[str, Any]:
    return {"p": {"f": key, "c": comparator, "v": value}}


def rule(condition: dict[str, Any], value: dict[str, Any]) -> dict[str, Any]:
    return {"c": [condition], "s": {"v": value}}


def chain_flags(**settings: dict[str, Any]) -> FlagConfig:
    return parse_flags({"p": {"s": SALT}, "f": settings})


def test_prerequisite_flags_are_evaluated_for_the_same_user() -> None:
    flags = chain_flags(
        main={
            "t": 1,
            "v": {"s": "off"},
            "r": [
                {"c": [prerequisite("beta", {"b": True})], "s": served("beta on")},
                {"c": [prerequisite("tier", {"s": "gold"}, 1)], "s": served("not gold")},
            ],
        },
        beta={"t": 0, "v": {"b": False}, "r": [rule(when("Country", "HU"), {"b": True})]},
        tier={"t": 1, "v": {"s": "gold"}, "r": [rule(when("Plan", "free"), {"s": "free"})]},
    )
    assert evaluate(flags, "main", "", User("1", country="HU")).value == "beta on"
    assert evaluate(flags, "main", "", User("1", custom={"Plan": "free"})).value == "not gold"
    assert evaluate(flags, "main", "", User("1")).value == "off"
    assert evaluate(flags, "main", "", None).value == "off"


def test_prerequisites_chain() -> None:
    flags = chain_flags(
        a={"t": 0, "v": {"b": False}, "r": [rule(prerequisite("b", {"i": 2}), {"b": True})]},
        b={"t": 2, "v": {"i": 1}, "r": [rule(prerequisite("c", {"d": 0.5}), {"i": 2})]},
        c={"t": 3, "v": {"d": 0.5}},
    )
    assert evaluate(flags, "a", False).value is True


@pytest.mark.parametrize(
    ("settings", "chain"),
    [
        ({"a": ["a"]}, "'a' -> 'a'"),
        ({"a": ["b"], "b": ["a"]}, "'a' -> 'b' -> 'a'"),
        ({"a": ["b"], "b": ["c"], "c": ["b"]}, "'a' -> 'b' -> 'c' -> 'b'"),
    ],
)
def test_a_circular_prerequisite_gives_the_default_value(
    settings: dict[str, list[str]], chain: str
) -> None:
    def setting(targets: list[str]) -> dict[str, Any]:
        conditions = [prerequisite(target, {"b": True}) for target in targets]
        return {"t": 0, "v": {"b": True}, "r": [{"c": conditions, "s": {"v": {"b": False}}}]}

    flags = chain_flags(**{key: setting(targets) for key, targets in settings.items()})
    details = evaluate(flags, "a", None, User("1"))
    assert details == EvaluationDetails(
        "a",
        None,
        None,
        True,
        "Failed to evaluate setting 'a'. (Circular dependency detected between the following "
        f"depending flags: {chain}.). Returning the `default_value` parameter that you "
        "specified in your application: 'None'. ",
    )


def test_a_cycle_behind_a_failing_condition_is_harmless() -> None:
    loop = {"c": [when("Country", "HU"), prerequisite("a", {"b": True})], "s": {"v": {"b": False}}}
    flags = chain_flags(a={"t": 0, "v": {"b": True}, "r": [loop]})
    assert evaluate(flags, "a", None, User("1", country="DE")).value is True
    assert evaluate(flags, "a", None, User("1", country="HU")).is_default_value


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        (prerequisite("missing", {"b": True}), "Prerequisite flag key is missing or invalid."),
        (prerequisite("b", {"s": "1"}), "Setting value is not of the expected type <class 'int'>"),
        (
            prerequisite("b", {"b": True, "i": 1}),
            "Type mismatch between comparison value '1' and prerequisite flag 'b'",
        ),
        (prerequisite("b", {"i": 1}, 2), "Comparison operator is missing or invalid."),
        (
            prerequisite("broken", {"b": True}),
            "Setting value is not of the expected type <class 'bool'>",
        ),
    ],
)  # fmt: skip
def test_a_prerequisite_that_cannot_be_evaluated_gives_the_default_value(
    condition: dict[str, Any], problem: str
) -> None:
    flags = chain_flags(
        a={"t": 0, "v": {"b": True}, "r": [{"c": [condition], "s": {"v": {"b": False}}}]},
        b={"t": 2, "v": {"i": 1}},
        broken={"t": 0, "v": {"s": "yes"}},
    )
    details = evaluate(flags, "a", None, User("1"))
    assert details.is_default_value
    assert details.error is not None and f"'a'. ({problem})." in details.error


# -- keys, defaults and types ----------------------------------------------------------------


def test_a_missing_key_gives_the_default_value_and_lists_the_keys(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="aioconfig.flags")
    flags = parse_flags({"f": {"a": {"t": 0, "v": {"b": True}}, "b": {"t": 0, "v": {"b": True}}}})
    details = evaluate(flags, "nope", "dflt", User("1"))
    error = (
        "Failed to evaluate setting 'nope' (the key was not found in config JSON). Returning the "
        "`default_value` parameter that you specified in your application: 'dflt'. "
        "Available keys: ['a', 'b']."
    )
    assert details == EvaluationDetails("nope", "dflt", None, True, error)
    assert [record.getMessage() for record in caplog.records] == [error]
    assert caplog.records[0].levelno == logging.ERROR


def test_a_default_of_another_type_changes_nothing_but_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="aioconfig.flags")
    flags = parse_flags(
        {"f": {"bool": {"t": 0, "v": {"b": True}}, "double": {"t": 3, "v": {"d": 2.5}}}}
    )
    assert evaluate(flags, "bool", "yes").value is True
    assert evaluate(flags, "bool", 0).value is True  # bool is not int here, as in the SDK
    assert len(caplog.records) == 2
    assert caplog.records[0].getMessage() == (
        "The type of a setting does not match the type of the specified default value (yes). "
        "Setting's type was <class 'bool'> but the default value's type was <class 'str'>. "
        "Please make sure that using a default value not matching the setting's type was intended."
    )
    caplog.clear()
    details = evaluate(flags, "double", 0)  # ints and floats mix: no warning
    assert (details.value, details.is_default_value, details.error) == (2.5, False, None)
    assert evaluate(flags, "double", None).value == 2.5  # None: any type goes
    assert evaluate(flags, "bool", False).value is True
    assert caplog.records == []


def test_evaluate_never_raises_for_a_flag_problem() -> None:
    # float() of a list raises TypeError inside the SDK, which turns it into the default value.
    flags = flags_of({"c": [{"u": {"a": "Age", "c": 14, "d": 18}}], "s": served("adult")})
    details = evaluate(flags, "flag", "d", User("1", custom={"Age": [20]}))
    assert (details.value, details.is_default_value) == ("d", True)
    assert details.error is not None and "float() argument must be" in details.error
    # a string that cannot be UTF-8 encoded, hashed: the same
    hashed = flags_of({"c": [{"u": {"a": "A", "c": 20, "s": "0" * 64}}], "s": served("x")})
    assert evaluate(hashed, "flag", "d", User("1", custom={"A": "\ud800"})).is_default_value


def test_something_else_than_a_user_counts_as_no_user(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aioconfig.flags")
    flags = flags_of({"c": [when("Country", "HU")], "s": served("hu")})
    details = evaluate(flags, "flag", "", cast(Any, {"Country": "HU"}))
    assert (details.value, details.error) == ("fallback", None)
    assert "not an aioconfig.flags.User" in caplog.records[0].getMessage()


# -- the evaluation log ----------------------------------------------------------------------

LOG_DOCUMENT: dict[str, Any] = {
    "p": {"s": SALT},
    "s": [{"n": "Beta", "r": [{"a": "Email", "c": 2, "l": ["@example.com"]}]}],
    "f": {
        "flag": {
            "t": 1,
            "v": {"s": "off"},
            "r": [
                {
                    "c": [when("Country", "HU"), {"u": {"a": "Version", "c": 8, "s": "1.2.0"}}],
                    "s": served("new"),
                },
                {"c": [{"s": {"s": 0, "c": 0}}], "s": served("beta")},
                {"c": [prerequisite("on", {"b": True})], "p": [{"p": 100, "v": {"s": "all"}}]},
            ],
        },
        "on": {"t": 0, "v": {"b": True}},
    },
}


def test_the_evaluation_log_explains_each_rule(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="aioconfig.flags")
    flags = parse_flags(LOG_DOCUMENT)
    user = User("u1", country="HU", custom={"Version": "1.0.0"})
    assert evaluate(flags, "flag", "", user).value == "all"
    [record] = [r for r in caplog.records if r.levelno == logging.INFO]
    u1_bucket = bucket("flag", "u1")
    assert record.name == "aioconfig.flags"
    assert record.getMessage() == "\n".join(
        [
            'Evaluating \'flag\' for User \'{"Identifier":"u1","Country":"HU","Version":"1.0.0"}\'',
            "  Evaluating targeting rules and applying the first match if any:",
            "  - IF User.Country EQUALS 'HU' => true",
            "    AND User.Version > '1.2.0' => false, skipping the remaining AND conditions",
            "    THEN 'new' => no match",
            "  - IF User IS IN SEGMENT 'Beta'",
            "    (",
            "      Evaluating segment 'Beta':",
            "      - IF User.Email CONTAINS ANY OF ['@example.com'] => false, skipping the "
            "remaining AND conditions",
            "      Segment evaluation result: cannot evaluate, the User.Email attribute is "
            "missing.",
            "      Condition (User IS IN SEGMENT 'Beta') failed to evaluate.",
            "    )",
            "    THEN 'beta' => cannot evaluate, the User.Email attribute is missing",
            "    The current targeting rule is ignored and the evaluation continues with the next "
            "rule.",
            "  - IF Flag 'on' EQUALS 'True'",
            "    (",
            "      Evaluating prerequisite flag 'on':",
            "      Prerequisite flag evaluation result: 'True'.",
            "      Condition (Flag 'on' EQUALS 'True') evaluates to true.",
            "    )",
            "    THEN % options => MATCH, applying rule",
            "    Evaluating % options based on the User.Identifier attribute:",
            f"    - Computing hash in the [0..99] range from User.Identifier => {u1_bucket} "
            "(this value is sticky and consistent across all SDKs)",
            f"    - Hash value {u1_bucket} selects % option 1 (100%), 'all'.",
            "  Returning 'all'.",
        ]
    )  # fmt: skip


def test_the_log_tells_of_errors_and_of_flags_without_rules(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="aioconfig.flags")
    flags = parse_flags(
        {"f": {"on": {"t": 0, "v": {"b": True}}, "broken": {"t": 0, "v": {"i": 1}}}}
    )
    evaluate(flags, "on", False)
    evaluate(flags, "broken", False)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "Evaluating 'on'\n  Returning 'True'."),
        (
            "ERROR",
            "Failed to evaluate setting 'broken'. (Setting value is not of the expected type "
            "<class 'bool'>). Returning the `default_value` parameter that you specified in your "
            "application: 'False'. ",
        ),
        (
            "INFO",
            "Evaluating 'broken'\n  Returning the default value 'False' (Setting value is not of "
            "the expected type <class 'bool'>).",
        ),
    ]


class Tattletale:
    """A custom attribute that counts how often anything turns it into text."""

    calls = 0

    def __str__(self) -> str:
        Tattletale.calls += 1
        return "tattletale"

    def __repr__(self) -> str:
        Tattletale.calls += 1
        return "Tattletale()"

    def __format__(self, spec: str) -> str:
        Tattletale.calls += 1
        return "tattletale"


@pytest.fixture
def tattletale() -> Iterator[Tattletale]:
    Tattletale.calls = 0
    yield Tattletale()


def test_nothing_is_formatted_when_info_is_off(
    caplog: pytest.LogCaptureFixture, tattletale: Tattletale
) -> None:
    caplog.set_level(logging.WARNING, logger="aioconfig.flags")
    flags = parse_flags(LOG_DOCUMENT)
    user = User(
        "u1", country="HU", email="a@example.com", custom={"Version": "2.0.0", "T": tattletale}
    )
    for key in ("on", "flag"):
        evaluate(flags, key, None, user)
    assert Tattletale.calls == 0
    assert caplog.records == []
    caplog.set_level(logging.INFO, logger="aioconfig.flags")
    evaluate(flags, "on", None, user)
    assert Tattletale.calls > 0  # the log shows the user, so it does format it
    assert len(caplog.records) == 1


# -- User and EvaluationDetails --------------------------------------------------------------


def test_a_user_is_a_frozen_value() -> None:
    custom = {"Plan": "pro", "Roles": ("a", "b")}
    user = User("42", email="a@b.c", country="HU", custom=custom)
    custom["Plan"] = "free"  # copied: the user does not change
    assert user.custom == {"Plan": "pro", "Roles": ("a", "b")}
    assert user == User("42", "a@b.c", "HU", {"Plan": "pro", "Roles": ("a", "b")})
    assert user != User("42", "a@b.c", "HU")
    assert hash(user) == hash(User("42", "a@b.c", "HU", {"Roles": ("a", "b"), "Plan": "pro"}))
    assert len({user, User("42", "a@b.c", "HU", {"Plan": "pro", "Roles": ("a", "b")})}) == 1
    assert (
        repr(user)
        == "User('42', email='a@b.c', country='HU', custom={'Plan': 'pro', 'Roles': ('a', 'b')})"
    )
    assert repr(User("1")) == "User('1')"
    with pytest.raises(AttributeError):
        user.identifier = "43"  # type: ignore[misc]
    with pytest.raises(TypeError):
        cast(Any, user.custom)["Plan"] = "x"
    with pytest.raises(TypeError):
        hash(User("1", custom={"Roles": ["a"]}))  # hashable where its values are


def test_evaluation_details_are_frozen() -> None:
    details = EvaluationDetails("k", 1)
    with pytest.raises(AttributeError):
        details.value = 2  # type: ignore[misc]
    assert (details.variation_id, details.is_default_value, details.error) == (None, False, None)


# -- spot checks against configcat-client ----------------------------------------------------


def _quirks_document() -> dict[str, Any]:
    quirks = [
        {"c": [], "s": served("never")},
        {"c": [{"u": {"a": "V", "c": 6, "s": "=2.0.0"}}], "s": served("lte 2")},
        {"c": [{"u": {"a": "V", "c": 4, "l": ["1.0.0", "bad"]}}], "s": served("bad")},
        {"c": [{"u": {"a": "N", "c": 10, "d": 3.5}}], "s": served("3,5")},
        {"c": [{"u": {"a": "D", "c": 19, "d": 1700000000}}], "s": served("after")},
        {"c": [{"s": {"s": 0, "c": 1}}], "s": served("not in empty")},
        {"c": [{}], "p": [{"p": 30, "v": {"s": "30"}}, {"p": 20, "v": {"s": "20"}}]},
    ]
    # "Ends with" the last 0 bytes: the SDK hashes the whole value (value[-0:]).
    whole = hashlib.sha256(b"a@b.c" + b"spot" + b"hashed").hexdigest()
    hashed = {"u": {"a": "Email", "c": 24, "l": [f"0_{whole}"]}}
    # A cycle that only users from HU run into.
    loop = [when("Country", "HU"), prerequisite("loop2", {"b": True})]
    return {
        "p": {"s": "spot"},
        "s": [{"n": "Empty", "r": []}],
        "f": {
            "quirks": {"t": 1, "v": {"s": "fallback"}, "a": "Plan", "r": quirks},
            "hashed": {"t": 0, "v": {"b": False}, "r": [rule(hashed, {"b": True})]},
            "loop": {"t": 0, "v": {"b": True}, "r": [{"c": loop, "s": {"v": {"b": False}}}]},
            "loop2": {
                "t": 0,
                "v": {"b": True},
                "r": [rule(prerequisite("loop", {"b": True}), {"b": False})],
            },
        },
    }


SPOT_DOCUMENTS = [LOG_DOCUMENT, _quirks_document()]
SPOT_USERS: list[User | None] = [
    None,
    User("u1"),
    User("u2", email="a@b.c", country="HU", custom={"V": "2.0.0", "Plan": 3}),
    User("u3", custom={"V": " 1.9.9 ", "Plan": "pro", "N": "3,5"}),
    User("u4", custom={"V": "x", "N": "3,5"}),
    User("u5", custom={"V": "2.0.1", "N": 3.4, "D": MOMENT + timedelta(seconds=1)}),
    User("u6", email="", custom={"D": "1700000001", "Plan": ["a"], "N": "x"}),
    User("u7", email="x", country="HU", custom={"Version": "1.2.1", "D": MOMENT}),
    *(User("u8", custom={"Plan": plan}) for plan in ("pro", 2.0, 7, ["a", "b"], MOMENT, "")),
]


@pytest.fixture
def configcat(tmp_path: Path) -> Iterator[Any]:
    import configcatclient
    from configcatclient.configcatoptions import ConfigCatOptions
    from configcatclient.localfiledatasource import LocalFileFlagOverrides
    from configcatclient.overridedatasource import OverrideBehaviour
    from configcatclient.pollingmode import PollingMode
    from configcatclient.user import User as ConfigCatUser

    sdk_logger = logging.getLogger("configcat")
    saved = sdk_logger.disabled
    sdk_logger.disabled = True  # its warnings are its normal path here
    clients: dict[str, Any] = {}

    def evaluate_with_sdk(document: dict[str, Any], key: str, user: User | None) -> Any:
        text = json.dumps(document)
        if text not in clients:
            path = tmp_path / f"config_{len(clients)}.json"
            path.write_text(text, encoding="utf-8")
            # LocalOnly: no fetcher, no thread, no network; the file is read as a whole
            # config_v6. A key per file: get() hands out one shared instance per SDK key.
            options = ConfigCatOptions(
                polling_mode=PollingMode.manual_poll(),  # type: ignore[no-untyped-call]
                flag_overrides=LocalFileFlagOverrides(  # type: ignore[no-untyped-call]
                    str(path), OverrideBehaviour.LocalOnly
                ),
            )
            clients[text] = configcatclient.get(path.name, options)  # type: ignore[no-untyped-call]
        client = clients[text]
        sdk_user = None
        if user is not None:
            sdk_user = ConfigCatUser(  # type: ignore[no-untyped-call]
                user.identifier, user.email, user.country, dict(user.custom) or None
            )
        return client.get_value_details(key, None, sdk_user)

    try:
        yield evaluate_with_sdk
    finally:
        configcatclient.close_all()  # type: ignore[no-untyped-call]
        sdk_logger.disabled = saved


@pytest.mark.parametrize("document", SPOT_DOCUMENTS, ids=["log", "quirks"])
def test_spot_checks_against_configcat_client(document: dict[str, Any], configcat: Any) -> None:
    flags = parse_flags(document)
    for key in [*flags.keys(), "missing"]:
        for user in SPOT_USERS:
            expected = configcat(document, key, user)
            actual = evaluate(flags, key, None, user)
            assert (actual.value, actual.variation_id, actual.is_default_value) == (
                expected.value,
                expected.variation_id,
                expected.is_default_value,
            ), (key, user)
            assert actual.error == expected.error, (key, user)


def test_a_plain_rollout_takes_the_fast_path_with_the_same_results() -> None:
    # Options adding up to 60: buckets 60..99 fall through to the setting's own value.
    rollout = {
        "t": 1,
        "v": {"s": "off"},
        "i": "v0",
        "p": [{"p": 10, "v": {"s": "a"}, "i": "va"}, {"p": 50, "v": {"s": "b"}, "i": "vb"}],
    }
    flags = parse_flags({"f": {"r": rollout}})
    attributed = parse_flags({"f": {"r": {**rollout, "a": "Identifier"}}})  # the slow path
    seen = set()
    for i in range(300):
        fast = evaluate(flags, "r", "", User(f"u{i}"))
        slow = evaluate(attributed, "r", "", User(f"u{i}"))
        assert (fast.value, fast.variation_id, fast.matched_percentage_option) == (
            slow.value,
            slow.variation_id,
            slow.matched_percentage_option,
        )
        seen.add(fast.value)
    assert seen == {"a", "b", "off"}
    assert evaluate(flags, "r", "", None).value == "off"
