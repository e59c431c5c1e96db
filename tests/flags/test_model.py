"""parse_flags: config_v6 documents in, ready-to-evaluate FlagConfig out, or a ParseError."""

from __future__ import annotations

import codecs
import copy
import json
from typing import Any

import pytest

import aioconfig.flags
from aioconfig import ParseError
from aioconfig.flags import EvaluationDetails, FlagConfig, User, evaluate, parse_flags
from aioconfig.flags._model import (
    Percentages,
    PrerequisiteCondition,
    SegmentCondition,
    UserCondition,
)

DOCUMENT: dict[str, Any] = {
    "p": {"u": "https://cdn-global.configcat.com", "r": 0, "s": "the-salt"},
    "s": [{"n": "Beta", "r": [{"a": "Email", "c": 2, "l": ["@example.com"]}]}],
    "f": {
        "plain": {"t": 0, "v": {"b": True}, "i": "p1"},
        "targeted": {
            "t": 1,
            "v": {"s": "off"},
            "i": "t0",
            "r": [
                {"c": [{"s": {"s": 0, "c": 0}}], "s": {"v": {"s": "beta"}, "i": "t1"}},
                {"c": [{"p": {"f": "plain", "c": 0, "v": {"b": True}}}], "p": [
                    {"p": 30, "v": {"s": "a"}, "i": "t2"},
                    {"p": 70, "v": {"s": "b"}, "i": "t3"},
                ]},
            ],
        },
        "segmented": {
            "t": 2,
            "v": {"i": 0},
            "r": [{"c": [{"s": {"s": 0, "c": 1}}], "s": {"v": {"i": 1}}}],
        },
    },
}  # fmt: skip


def test_the_public_surface_is_sorted_and_complete() -> None:
    names = aioconfig.flags.__all__
    assert list(names) == sorted(names)
    assert set(names) == {
        "EvaluationDetails",
        "FlagConfig",
        "User",
        "WarningLimit",
        "evaluate",
        "parse_flags",
    }
    for name in names:
        assert getattr(aioconfig.flags, name).__module__.startswith("aioconfig.flags.")


def test_bytes_text_and_mappings_parse_alike() -> None:
    text = json.dumps(DOCUMENT)
    for document in (DOCUMENT, text, text.encode(), codecs.BOM_UTF8 + text.encode()):
        flags = parse_flags(document, source="config_v6.json")
        assert flags.keys() == ["plain", "targeted", "segmented"]
        assert evaluate(flags, "targeted", "", User("1", email="a@example.com")).value == "beta"


def test_json_text_is_read_as_the_sdk_reads_it() -> None:
    # With the standard library's json, as the SDK does: an integer beyond 64 bits stays exact
    # (orjson would make it a float), and NaN is read.
    text = (
        b'{"f": {"big": {"t": 2, "v": {"i": 18446744073709551616}},'
        b' "nan": {"t": 3, "v": {"d": NaN}}}}'
    )
    flags = parse_flags(text)
    big = evaluate(flags, "big", 0).value
    assert big == 2**64 and type(big) is int
    nan = evaluate(flags, "nan", 0.0).value
    assert nan != nan


def test_a_flag_config_says_what_it_holds_but_no_value() -> None:
    flags = parse_flags(DOCUMENT, source="config_v6.json")
    assert isinstance(flags, FlagConfig)
    assert len(flags) == 3
    assert flags.salt == "the-salt"
    assert flags.source == "config_v6.json"
    assert "plain" in flags and "nope" not in flags
    assert list(flags) == flags.keys()
    assert repr(flags) == "<FlagConfig 'config_v6.json': 3 settings>"


def test_no_preferences_means_no_salt() -> None:
    assert parse_flags({"f": {}}).salt == ""
    assert len(parse_flags({"f": {}})) == 0


def test_the_document_is_neither_changed_nor_needed_afterwards() -> None:
    # ConfigCat's SDK writes its "inline" salt and segments into the document it evaluates; here
    # everything is copied out once, so the caller's mapping stays as it was and can change.
    document = copy.deepcopy(DOCUMENT)
    flags = parse_flags(document)
    assert document == DOCUMENT
    user = User("1", email="a@example.com")
    before = evaluate(flags, "targeted", "", user)
    document["f"]["targeted"]["r"].clear()
    document["s"][0]["r"][0]["l"] = ["@other.org"]
    assert evaluate(flags, "targeted", "", user) is before


# -- malformed documents ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "line", "column"),
    [
        (b'{"f": ', 1, 7),
        (b'{\n  "f": {}\n} x', 3, 3),
        (b"", 1, 1),
        (b'{"f": {"\xff": 1}}', 1, 9),
        ('{"f": {"a": tru}}', 1, 13),
    ],
)
def test_malformed_json_names_the_source_and_the_place(
    document: bytes | str, line: int, column: int
) -> None:
    with pytest.raises(ParseError) as caught:
        parse_flags(document, source="config_v6.json")
    assert caught.value.source == "config_v6.json"
    assert (caught.value.line, caught.value.column) == (line, column)
    assert str(caught.value).startswith(f"config_v6.json:{line}:{column}: ")


def _rule(condition: dict[str, Any]) -> dict[str, Any]:
    return {"f": {"a": {"t": 0, "v": {"b": True}, "r": [{"c": [condition]}]}}}


RULE = "f['a'].r[0]"
CONDITION = f"{RULE}.c[0]"
NO_SEGMENT = "no such segment (the document has 0)"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[1, 2]", "top level must be a mapping, got list"),
        ({"p": {}}, "no 'f' (settings) object"),
        ({"f": []}, "f: expected an object, got a list"),
        ({"f": {"a": None}}, "f['a']: expected an object, got null"),
        ({"f": {1: {}}}, "f: setting keys must be strings, got a number"),
        ({"f": {"\ud800": {"t": 0}}}, "f['\\ud800']: not encodable as UTF-8"),
        ({"p": [], "f": {}}, "p: expected an object, got a list"),
        ({"p": {"s": 1}, "f": {}}, "p.s: expected a string, got a number"),
        ({"s": {}, "f": {}}, "s: expected a list, got an object"),
        ({"s": [1], "f": {}}, "s[0]: expected an object, got a number"),
        ({"s": [{"n": 7}], "f": {}}, "s[0].n: expected a string, got a number"),
        ({"f": {"a": {"t": "1"}}}, "f['a'].t: expected an integer, got a string"),
        ({"f": {"a": {"t": True}}}, "f['a'].t: expected an integer, got a boolean"),
        ({"f": {"a": {"t": 0, "v": [True]}}}, "f['a'].v: expected an object, got a list"),
        ({"f": {"a": {"t": 0, "i": 5}}}, "f['a'].i: expected a string, got a number"),
        ({"f": {"a": {"t": 0, "a": ["Email"]}}}, "f['a'].a: expected a string, got a list"),
        ({"f": {"a": {"t": 0, "r": {}}}}, "f['a'].r: expected a list, got an object"),
        ({"f": {"a": {"t": 0, "r": [[]]}}}, f"{RULE}: expected an object, got a list"),
        ({"f": {"a": {"t": 0, "r": [{"c": "x"}]}}}, f"{RULE}.c: expected a list, got a string"),
        ({"f": {"a": {"t": 0, "r": [{"s": "x"}]}}}, f"{RULE}.s: expected an object, got a string"),
        (
            {"f": {"a": {"t": 0, "r": [{"p": [7]}]}}},
            f"{RULE}.p[0]: expected an object, got a number",
        ),
        (
            {"f": {"a": {"t": 0, "p": [{"p": "5"}]}}},
            "f['a'].p[0].p: expected a number, got a string",
        ),
        (_rule({"u": "Email"}), f"{CONDITION}.u: expected an object, got a string"),
        (
            _rule({"u": {"a": 1, "c": 0, "l": []}}),
            f"{CONDITION}.u.a: expected a string, got a number",
        ),
        (_rule({"u": {"a": "A", "c": 1.5}}), f"{CONDITION}.u.c: expected an integer, got a number"),
        (_rule({"s": {"s": 0, "c": 0}}), f"{CONDITION}.s.s: {NO_SEGMENT}"),
        (_rule({"s": {"s": -1, "c": 0}}), f"{CONDITION}.s.s: {NO_SEGMENT}"),
        (_rule({"s": {"c": 0}}), f"{CONDITION}.s.s: {NO_SEGMENT}"),
        (_rule({"p": {"f": 1, "c": 0}}), f"{CONDITION}.p.f: expected a string, got a number"),
        (
            _rule({"p": {"f": "a", "c": 0, "v": True}}),
            f"{CONDITION}.p.v: expected an object, got a boolean",
        ),
    ],
)
def test_malformed_documents_name_the_source_and_the_place(document: Any, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_flags(document, source="config_v6.json")
    assert str(caught.value) == f"config_v6.json: {message}"
    assert caught.value.source == "config_v6.json"


def test_messages_never_quote_a_value() -> None:
    secret = "hunter2-the-password"
    for condition in (
        {"u": {"a": "A", "c": 28, "s": [secret]}},
        {"u": {"a": "A", "c": 10, "d": secret}},
        {"u": {"a": "A", "c": 0, "l": [secret, 1]}},
    ):
        details = evaluate(parse_flags(_rule(condition)), "a", False, User("1", custom={"A": "x"}))
        assert details.error is not None
        assert secret not in details.error
    with pytest.raises(ParseError) as caught:
        parse_flags(f'{{"f": {{"a": "{secret}" x}}}}', source="flags.json")
    assert secret not in str(caught.value)


@pytest.mark.parametrize(
    "condition",
    [
        {"u": {"a": "A", "c": 2}},
        {"u": {"a": "A", "c": 2, "l": "x"}},
        {"u": {"a": "A", "c": 2, "l": ["x", 1]}},
        {"u": {"a": "A", "c": 28, "s": 1}},
        {"u": {"a": "A", "c": 10, "d": "1"}},
        {"u": {"a": "A", "c": 10, "d": True}},
        {"u": {"a": "A", "c": 10, "d": 10**400}},
        {"s": {"s": 0, "c": 0}},
    ],
)
def test_a_bad_comparison_value_fails_its_setting_not_the_document(
    condition: dict[str, Any],
) -> None:
    # As in the SDK (issue 13): the document loads, the other settings serve, and this one
    # fails (default value + error) once an evaluation compares a user's attribute with it.
    document = _rule(condition)
    document["f"]["fine"] = {"t": 0, "v": {"b": True}}
    if "s" in condition:
        document["s"] = [{"n": "S", "r": [{"a": "A", "c": 0}]}]
    flags = parse_flags(document)
    assert evaluate(flags, "fine", False).value is True
    assert evaluate(flags, "a", False, User("1")).error is None  # no attribute: not compared
    details = evaluate(flags, "a", False, User("1", custom={"A": "1"}))
    assert details.is_default_value and details.error is not None
    assert details.error.startswith("Failed to evaluate setting 'a'")


def test_problems_the_sdk_finds_only_when_evaluating_do_not_refuse_the_document() -> None:
    # One broken setting must not take the others down: each of these parses, and the setting
    # fails (default value + error) when, and only when, an evaluation reaches the problem.
    flags = parse_flags(
        {
            "f": {
                "no type": {"v": {"b": True}},
                "unknown type": {"t": 7, "v": {"b": True}},
                "wrong value": {"t": 0, "v": {"s": "yes"}},
                "no value": {"t": 0},
                "unknown comparator": {
                    "t": 0,
                    "v": {"b": True},
                    "r": [{"c": [{"u": {"a": "A", "c": 99}}], "s": {"v": {"b": False}}}],
                },
                "unknown prerequisite": {
                    "t": 0,
                    "v": {"b": True},
                    "r": [{"c": [{"p": {"f": "nope", "c": 0, "v": {"b": True}}}]}],
                },
                "fine": {"t": 0, "v": {"b": True}},
            }
        }
    )
    assert len(flags) == 7
    assert evaluate(flags, "fine", False).value is True
    for key in flags.keys()[:-1]:
        details = evaluate(flags, key, False, User("1"))
        assert details.is_default_value and details.error, key


# -- work done once per document -------------------------------------------------------------


def test_a_flag_without_rules_is_one_ready_result() -> None:
    flags = parse_flags(DOCUMENT)
    first = evaluate(flags, "plain", False, User("1"))
    assert first == EvaluationDetails("plain", True, "p1", False, None, None, None)
    assert evaluate(flags, "plain", False) is first
    assert evaluate(flags, "plain", None, User("2", custom={"x": 1})) is first


def test_every_outcome_is_made_in_advance() -> None:
    flags = parse_flags(DOCUMENT)
    beta = [evaluate(flags, "targeted", "", User(str(n), email="a@example.com")) for n in (1, 2)]
    assert beta[0] is beta[1]
    assert beta[0] == EvaluationDetails("targeted", "beta", "t1", False, None, 0, None)
    rolled = {evaluate(flags, "targeted", "", User(str(n))) for n in range(50)}
    assert {(d.value, d.variation_id, d.matched_percentage_option) for d in rolled} == {
        ("a", "t2", 0),
        ("b", "t3", 1),
    }


def test_segments_are_parsed_once_and_shared() -> None:
    settings = parse_flags(DOCUMENT)._settings
    first = settings["targeted"].rules[0].conditions[0]
    second = settings["segmented"].rules[0].conditions[0]
    assert isinstance(first, SegmentCondition) and isinstance(second, SegmentCondition)
    assert first.segment is second.segment
    assert (first.comparator, second.comparator) == (0, 1)
    assert first.segment.name == "Beta"


def test_prerequisites_are_resolved_to_their_settings() -> None:
    settings = parse_flags(DOCUMENT)._settings
    condition = settings["targeted"].rules[1].conditions[0]
    assert isinstance(condition, PrerequisiteCondition)
    assert condition.target is settings["plain"]
    assert (condition.comparison, condition.error) == (True, None)


def test_prerequisite_problems_are_found_at_parse_time_and_kept_for_later() -> None:
    def problem(prerequisite: dict[str, Any]) -> str | None:
        document = {
            "f": {
                "a": {"t": 1, "v": {"s": "x"}, "r": [{"c": [{"p": prerequisite}]}]},
                "b": {"t": 2, "v": {"i": 1}},
            }
        }
        condition = parse_flags(document)._settings["a"].rules[0].conditions[0]
        assert isinstance(condition, PrerequisiteCondition)
        return condition.error

    assert problem({"f": "b", "c": 0, "v": {"i": 2}}) is None
    assert (
        problem({"f": "b", "c": 0, "v": {"i": 2.0}}) is None
    )  # ints and floats mix, as in the SDK
    assert problem({"c": 0, "v": {"i": 2}}) == "Prerequisite flag key is missing or invalid."
    assert (
        problem({"f": "c", "c": 0, "v": {"i": 2}}) == "Prerequisite flag key is missing or invalid."
    )
    assert problem({"f": "b", "c": 0}) == "Value is missing"
    assert problem({"f": "b", "c": 0, "v": {"s": "2"}}) == (
        "Setting value is not of the expected type <class 'int'>"
    )
    # The SDK reads the value the target's type asks for, then checks the first one present.
    assert problem({"f": "b", "c": 0, "v": {"b": True, "i": 2}}) == (
        "Type mismatch between comparison value '2' and prerequisite flag 'b'"
    )


def test_percentage_options_become_a_table_of_buckets() -> None:
    def table(*percentages: float) -> tuple[int, ...]:
        none = tuple(None for _ in percentages)
        return Percentages(percentages, none, tuple("x" for _ in percentages)).table

    assert table(10, 40, 50) == (0,) * 10 + (1,) * 40 + (2,) * 50
    assert table(0, 100) == (1,) * 100
    assert table(50, 0, 50) == (0,) * 50 + (2,) * 50
    # Less than 100 in all: the last buckets pick nothing and the evaluation moves on.
    assert table(30, 30) == (0,) * 30 + (1,) * 30 + (-1,) * 40
    assert table(12.5, 87.5) == (0,) * 13 + (1,) * 87


def test_conditions_are_described_once_with_hashed_values_masked() -> None:
    def text(condition: dict[str, Any]) -> str:
        parsed = parse_flags(_rule({"u": condition}))._settings["a"].rules[0].conditions[0]
        assert isinstance(parsed, UserCondition)
        return parsed.text

    assert text({"a": "Email", "c": 16, "l": ["a" * 64, "b" * 64]}) == (
        "User.Email IS ONE OF [<2 hashed values>]"
    )
    assert text({"a": "Email", "c": 20, "s": "a" * 64}) == "User.Email EQUALS '<hashed value>'"
    assert text({"a": "Plan", "c": 0, "l": [str(n) for n in range(12)]}) == (
        "User.Plan IS ONE OF ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', "
        "... <2 more values>]"
    )
    assert text({"a": "Age", "c": 14, "d": 18}) == "User.Age > '18'"
    assert text({"a": "At", "c": 18, "d": 1700000000}) == (
        "User.At BEFORE '1700000000' (2023-11-14T22:13:20.000Z UTC)"
    )


def test_a_date_beyond_year_9999_is_an_error_kept_for_evaluation() -> None:
    condition = parse_flags(_rule({"u": {"a": "At", "c": 19, "d": 253402300800}}))._settings["a"]
    parsed = condition.rules[0].conditions[0]
    assert isinstance(parsed, UserCondition)
    assert parsed.early_error == "year 10000 is out of range"
