"""The quiet path (aioconfig.flags._compile) against the general path it stands in for.

Whenever the quiet path answers, the general path, run on its own, must give the very same
``EvaluationDetails`` and log nothing more; whenever it gives up, the general path answers (and
says why). Both are run on the generated documents and users of the differential suite, and on
hand-made ones for each comparator, where the quiet path must actually answer.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, seed, settings
from hypothesis import strategies as st
from strategies import NOT_SEMVERS, SEMVERS, Case, cases

from aioconfig.flags import EvaluationDetails, FlagConfig, User, evaluate, parse_flags
from aioconfig.flags._combine import combine
from aioconfig.flags._compare import GiveUp
from aioconfig.flags._compile import quick
from aioconfig.flags._semver import identity, parse_semver, precedence

SALT = "quiet-salt"


def _general_only(flags: FlagConfig) -> FlagConfig:
    """The same flags, parsed again, with the quiet path of every setting giving up at once."""

    def give_up(attrs: dict[Any, object]) -> Any:
        raise GiveUp

    assert flags.document is not None
    again = parse_flags(flags.document, source=flags.source)
    for key in again:
        again._settings[key].quick = give_up
    return again


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.levelname, record.getMessage()))


@contextmanager
def _recording() -> Iterator[_Records]:
    handler = _Records()
    flags_logger = logging.getLogger("aioconfig.flags")
    flags_logger.addHandler(handler)
    try:
        yield handler
    finally:
        flags_logger.removeHandler(handler)


@pytest.fixture
def records() -> Iterator[_Records]:
    with _recording() as handler:
        yield handler


def _same(a: EvaluationDetails[Any], b: EvaluationDetails[Any]) -> bool:
    # Of the same type too: a flag serving 1.0 must not come back as 1.
    return a == b and type(a.value) is type(b.value)


def _user(spec: Any) -> User | None:
    if spec is None:
        return None
    return User(spec.identifier, email=spec.email, country=spec.country, custom=spec.custom)


def _compare_paths(case: Case, records: _Records) -> None:
    """Evaluate every key for every user both ways (quietly twice: the second time with the
    user's buckets kept), and compare the results and what was logged."""
    flags = parse_flags(case.document, source="config_v6.json")
    reference = _general_only(flags)
    for spec in case.users:
        for key, default in case.defaults:
            user = _user(spec)
            records.seen.clear()
            expected = evaluate(reference, key, default, user)
            expected_records = list(records.seen)
            for _ in range(2):
                records.seen.clear()
                actual = evaluate(flags, key, default, user)
                assert _same(actual, expected), (key, spec, actual, expected)
                assert records.seen == expected_records, (key, spec)


@settings(max_examples=300, deadline=None)
@seed(20261205)
@given(case=cases())
def test_the_quiet_path_answers_as_the_general_path(case: Case) -> None:
    with _recording() as records:
        _compare_paths(case, records)


@settings(max_examples=100, deadline=None)
@given(case=cases(circular=True, max_users=6))
def test_the_quiet_path_with_prerequisites_anywhere(case: Case) -> None:
    with _recording() as records:
        _compare_paths(case, records)


# -- where the quiet path must answer -----------------------------------------------------------


def _hash(value: str, key: str) -> str:
    return hashlib.sha256((value + SALT + key).encode()).hexdigest()


_SIGNED_UP = datetime(2023, 5, 17, 12, 0, tzinfo=timezone.utc)
_CUSTOM = {
    "plan": "pro",
    "logins": 7,
    "ratio": "0,5",
    "appVersion": "2.3.1",
    "preVersion": "2.3.1-beta.2",
    "signedUp": _SIGNED_UP,
    "signedUpText": "1684324800",
    "roles": ["editor", "viewer"],
}
# (attribute, comparator, comparison value): each should hold for the user below, and its
# negation not; both are evaluated.
_HOLDING: list[tuple[str, int, Any]] = [
    ("Email", 0, ["ada@example.com", "x"]),
    ("Email", 2, ["example", "nope"]),
    ("appVersion", 4, ["1.0.0", " 2.3.1 "]),
    ("appVersion", 6, "2.3.2"),
    ("appVersion", 7, "2.3.1"),
    ("appVersion", 8, "2.3.1-rc.1"),
    ("preVersion", 9, "2.3.1-beta.2"),
    ("preVersion", 6, "2.3.1"),
    ("logins", 10, 7),
    ("logins", 12, 7.5),
    ("logins", 13, 7),
    ("logins", 14, 6),
    ("logins", 15, 7),
    ("ratio", 14, 0.25),
    ("Identifier", 16, [_hash("42", "f")]),
    ("signedUp", 18, 1_700_000_000),
    ("signedUp", 19, 1_600_000_000),
    ("signedUpText", 19, 1_600_000_000),
    ("logins", 19, 5),
    ("Email", 20, _hash("ada@example.com", "f")),
    ("Email", 22, [f"3_{_hash('ada', 'f')}"]),
    ("Email", 24, ["4_nothex", f"11_{_hash('example.com', 'f')}"]),
    ("roles", 26, [_hash("viewer", "f")]),
    ("plan", 28, "pro"),
    ("Email", 30, ["bob", "ada"]),
    ("Email", 32, ["@example.com"]),
    ("roles", 34, ["admin", "viewer"]),
]
_FIELDS = {0: "l", 2: "l", 4: "l", 16: "l", 22: "l", 24: "l", 26: "l", 30: "l", 32: "l", 34: "l"}
_NEGATION = {4: 5, 6: 9, 7: 8, 8: 7, 9: 6, 10: 11, 12: 15, 13: 14, 14: 13, 15: 12, 18: 19, 19: 18}


def _field(comparator: int) -> str:
    if comparator in _FIELDS:
        return "l"
    return "s" if comparator in (6, 7, 8, 9, 20, 28) else "d"


def _negation(comparator: int) -> int:
    return _NEGATION.get(comparator, comparator + 1)


@pytest.mark.parametrize(("attribute", "comparator", "comparison"), _HOLDING)
def test_the_quiet_path_answers_for_usual_values(
    attribute: str, comparator: int, comparison: Any, records: _Records
) -> None:
    user = User("42", email="ada@example.com", country="HU", custom=_CUSTOM)
    for used, holds in ((comparator, True), (_negation(comparator), False)):
        # The key is "f" both times: hashed comparison values are salted with it.
        condition = {"a": attribute, "c": used, _field(comparator): comparison}
        rule = {"c": [{"u": condition}], "s": {"v": {"b": True}, "i": "hit"}}
        flags = parse_flags(
            {"p": {"s": SALT}, "f": {"f": {"t": 0, "v": {"b": False}, "r": [rule]}}}
        )
        answer = quick(flags._settings["f"])(user._attributes)  # raises if it gives up
        assert answer.value is holds, used
        assert _same(answer, evaluate(_general_only(flags), "f", False, user))
    assert records.seen == []


def test_rollouts_segments_and_prerequisites_answer_quietly(records: _Records) -> None:
    options = [{"p": 30, "v": {"s": "a"}, "i": "pa"}, {"p": 30, "v": {"s": "b"}, "i": "pb"}]
    document = {
        "p": {"s": SALT},
        "s": [{"n": "Staff", "r": [{"a": "Email", "c": 32, "l": ["@example.com"]}]}],
        "f": {
            "on": {"t": 0, "v": {"b": True}},
            "rollout": {"t": 1, "v": {"s": "rest"}, "p": options},
            "byPlan": {"t": 1, "v": {"s": "rest"}, "a": "plan", "p": options},
            "ruleRollout": {
                "t": 1,
                "v": {"s": "rest"},
                "r": [
                    {"c": [{"u": {"a": "Country", "c": 0, "l": ["HU"]}}], "p": options},
                    {"c": [{"u": {"a": "Country", "c": 0, "l": ["AT"]}}], "s": {"v": {"s": "at"}}},
                ],
            },
            "staff": {
                "t": 0,
                "v": {"b": False},
                "r": [
                    {
                        "c": [
                            {"s": {"s": 0, "c": 0}},
                            {"p": {"f": "on", "c": 0, "v": {"b": True}}},
                            {"p": {"f": "rollout", "c": 1, "v": {"s": "nobody"}}},
                        ],
                        "s": {"v": {"b": True}},
                    }
                ],
            },
            "notStaff": {
                "t": 0,
                "v": {"b": False},
                "r": [{"c": [{"s": {"s": 0, "c": 1}}], "s": {"v": {"b": True}}}],
            },
        },
    }
    flags = parse_flags(document)
    general = _general_only(flags)
    for index in range(200):
        user = User(f"u{index}", email="ada@example.com", country="HU", custom={"plan": "pro"})
        for key in flags:
            if key == "on":
                continue
            answer = quick(flags._settings[key])(user._attributes)
            assert _same(answer, evaluate(general, key, None, user)), (key, index)
    assert records.seen == []


def test_a_users_bucket_is_kept_by_setting_key_and_changes_nothing_else() -> None:
    document = {"f": {"r": {"t": 0, "v": {"b": False}, "p": [{"p": 50, "v": {"b": True}}]}}}
    user = User("42", email="a@b.c")
    before = (hash(user), repr(user), user.to_json())
    first = evaluate(parse_flags(document), "r", False, user)
    assert len(user._attributes) == 4  # Identifier, Email, Country and one bucket
    # A new document with the same key (a refresh) finds the bucket already there.
    again = evaluate(parse_flags(document), "r", False, user)
    assert len(user._attributes) == 4
    assert again.value == first.value
    bucket = int(hashlib.sha1(b"r42").hexdigest()[:7], 16) % 100
    assert first.value is (bucket < 50)
    assert (hash(user), repr(user), user.to_json()) == before
    assert user == User("42", email="a@b.c")


def test_a_combination_compiles_its_own_prerequisites() -> None:
    remote = parse_flags(
        {
            "f": {
                "x": {
                    "t": 1,
                    "v": {"s": "off"},
                    "r": [
                        {
                            "c": [{"p": {"f": "y", "c": 0, "v": {"b": True}}}],
                            "s": {"v": {"s": "on"}},
                        },
                        {
                            "c": [{"u": {"a": "Email", "c": 28, "s": "a@b.c"}}],
                            "s": {"v": {"s": "e"}},
                        },
                    ],
                },
                "y": {"t": 0, "v": {"b": True}},
            }
        }
    )
    local = parse_flags({"f": {"y": {"t": 0, "v": {"b": False}}}})
    user = User("1", email="a@b.c")
    assert evaluate(remote, "x", "", user).value == "on"  # compiles x against remote y
    combined = combine([(remote, None), (local, "local_over_remote")])
    assert evaluate(combined, "x", "", user).value == "e"
    assert evaluate(remote, "x", "", user).value == "on"


# -- versions --------------------------------------------------------------------------------


_VERSIONS = st.one_of(
    st.sampled_from(SEMVERS + NOT_SEMVERS),
    st.builds(
        lambda a, b, c, pre: f"{a}.{b}.{c}{pre}",
        st.integers(0, 12),
        st.integers(0, 12),
        st.integers(0, 12),
        st.sampled_from(("", "-0", "-1", "-10", "-2", "-a", "-a.1", "-a.b", "-A", "-1a", "+b.1")),
    ),
    st.text(alphabet="0123456789.-+ab", max_size=12),
)


@settings(max_examples=500)
@given(a=_VERSIONS, b=_VERSIONS)
def test_precedence_keys_order_as_parsed_versions_compare(a: str, b: str) -> None:
    parsed_a, parsed_b = parse_semver(a), parse_semver(b)
    key_a, key_b = precedence(a), precedence(b)
    assert (key_a is None) == (parsed_a is None)
    assert (key_b is None) == (parsed_b is None)
    if parsed_a is not None and parsed_b is not None:
        assert key_a is not None and key_b is not None
        order = parsed_a.compare(parsed_b)
        assert (key_a < key_b, key_a == key_b, key_a > key_b) == (
            order < 0,
            order == 0,
            order > 0,
        )
        assert (identity(a) == identity(b)) == (order == 0)
    else:
        assert (identity(a) is None) == (parsed_a is None)


def test_a_version_too_long_for_the_shortcut_is_left_to_the_parser() -> None:
    long = "1." + "1" * 700 + ".0"
    assert parse_semver(long) is not None
    assert precedence(long) is None
    assert identity(long) is None
