from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aioconfig._exceptions import ParseError, ValidationError, ValidationFailure
from aioconfig._secrets import MASK, Secret, SecretMatcher
from aioconfig._validators import (
    AndValidator,
    OrValidator,
    Outcome,
    Validator,
    error_for,
    load_validators,
    run_validators,
    validators_from_mapping,
)


def flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """The flat index a snapshot has: every path, frozen mappings and tuples, sections too."""
    out: dict[str, Any] = {}

    def freeze(value: Any, path: str) -> Any:
        frozen: Any
        if isinstance(value, Mapping):
            frozen = MappingProxyType({k: freeze(v, f"{path}.{k}") for k, v in value.items()})
        elif isinstance(value, list | tuple):
            frozen = tuple(freeze(v, "") for v in value)
        else:
            frozen = value
        if path:
            out[path] = frozen
        return frozen

    for key, value in data.items():
        freeze(value, key)
    return out


def run(*validators: Validator, env: str | None = None, **data: Any) -> Outcome:
    return run_validators(validators, flat(data), env=env)


def rules(outcome: Outcome) -> list[tuple[str, str]]:
    return [(f.key, f.rule) for f in outcome.failures]


# -- operations --------------------------------------------------------------------------------

OPERATIONS: list[tuple[str, Any, Any, Any]] = [
    # name, argument, a passing value, a failing value
    ("eq", 5, 5, 6),
    ("ne", 5, 6, 5),
    ("gt", 5, 6, 5),
    ("lt", 5, 4, 5),
    ("gte", 5, 5, 4),
    ("lte", 5, 5, 6),
    ("ge", 5, 5, 4),
    ("le", 5, 5, 6),
    ("is_type_of", int, 5, "5"),
    ("is_in", [1, 2], 1, 3),
    ("is_not_in", [1, 2], 3, 1),
    ("identity", None, None, 0),
    ("cont", "b", "abc", "xyz"),
    ("contains", 2, [1, 2], [1]),
    ("not_contains", 2, [1], [1, 2]),
    ("len_eq", 2, "ab", "abc"),
    ("len_ne", 2, "abc", "ab"),
    ("len_min", 2, "ab", "a"),
    ("len_max", 2, "ab", "abc"),
    ("startswith", "ab", "abc", "xbc"),
    ("endswith", "bc", "abc", "abx"),
    ("not_startswith", "ab", "xbc", "abc"),
    ("not_endswith", "bc", "abx", "abc"),
    ("regex", r"\d+$", "123", "12a"),
    ("not_regex", r"\d+$", "12a", "123"),
]


@pytest.mark.parametrize(("name", "argument", "good", "bad"), OPERATIONS)
def test_operation_passes_and_fails(name: str, argument: Any, good: Any, bad: Any) -> None:
    validator = Validator("x", **{name: argument})
    assert run(validator, x=good).ok
    outcome = run(validator, x=bad)
    assert rules(outcome) == [("x", name)]
    assert outcome.failures[0].message.startswith(f"x must {name} ")
    assert outcome.failures[0].message.endswith(" in env DEVELOPMENT")


def test_operation_message_matches_dynaconfs_template() -> None:
    (failure,) = run(Validator("db.port", gte=1024), db={"port": 80}).failures
    assert failure == ValidationFailure(
        "db.port", "80", "gte", "db.port must gte 1024 but it is 80 in env DEVELOPMENT"
    )
    (failure,) = run(Validator("name", is_in=["a", "b"]), name="c").failures
    assert failure.message == "name must is_in ['a', 'b'] but it is 'c' in env DEVELOPMENT"


def test_unknown_operation_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="'greater_than'"):
        Validator("x", greater_than=5)


def test_an_operation_that_raises_is_a_failure() -> None:
    (failure,) = run(Validator("x", gt=5), x="text").failures
    assert failure.rule == "gt"
    assert failure.message.startswith("Invalid Operation 'gt' for type 'str' on 'x': TypeError")


def test_every_failing_operation_is_reported() -> None:
    outcome = run(Validator("x", gte=10, ne=3, len_eq=1), x=3)
    assert rules(outcome) == [("x", "gte"), ("x", "ne"), ("x", "len_eq")]


def test_type_check_runs_first_and_stops_the_other_checks() -> None:
    outcome = run(Validator("x", gte=10, is_type_of=int, condition=lambda v: v > 0), x="3")
    assert rules(outcome) == [("x", "is_type_of")]
    assert outcome.failures[0].message == "x must is_type_of int but it is '3' in env DEVELOPMENT"


@pytest.mark.parametrize(
    ("spec", "good", "bad"),
    [
        (list, ["a"], "a"),  # a snapshot's lists are tuples
        (dict, {"a": 1}, ["a"]),  # and its mappings read-only views
        (list[str], ["a", "b"], ["a", 1]),
        (tuple[int, ...], [1, 2], [1, "2"]),
        (dict[str, int], {"a": 1}, {"a": "1"}),
        (int | None, None, "1"),
        ((int, str), "1", 1.5),
        ("str", "a", 1),
        ("NoneType", None, 0),
        (bool, True, 1),
    ],
)
def test_is_type_of(spec: Any, good: Any, bad: Any) -> None:
    validator = Validator("x", is_type_of=spec)
    assert run(validator, x=good).ok
    assert rules(run(validator, x=bad)) == [("x", "is_type_of")]


@pytest.mark.parametrize("spec", ["Integer", 5, set[int], Callable[[], int]])
def test_is_type_of_rejects_what_it_cannot_check_at_once(spec: Any) -> None:
    with pytest.raises(TypeError, match="is_type_of"):
        Validator("x", is_type_of=spec)


# -- existence -----------------------------------------------------------------------------------


def test_must_exist_true() -> None:
    validator = Validator("db.port", must_exist=True)
    assert run(validator, db={"port": 1}).ok
    assert run(validator, db={"port": None}).ok  # present, even if None, as in Dynaconf
    (failure,) = run(validator, db={}).failures
    assert failure == ValidationFailure(
        "db.port", "<missing>", "must_exist", "db.port is required in env DEVELOPMENT"
    )


def test_required_is_an_alias_of_must_exist() -> None:
    validator = Validator("port", required=True)
    assert validator.must_exist is True
    assert validator.required is True
    assert rules(run(validator)) == [("port", "must_exist")]
    assert Validator("port", must_exist=False, required=True).must_exist is False


def test_must_exist_false() -> None:
    validator = Validator("debug", must_exist=False)
    assert run(validator).ok
    (failure,) = run(validator, debug=True).failures
    assert failure == ValidationFailure(
        "debug", "True", "must_exist", "debug cannot exists in env DEVELOPMENT"
    )


def test_a_missing_key_skips_the_checks_unless_it_must_exist() -> None:
    assert run(Validator("port", gte=1024, condition=lambda v: False)).ok
    outcome = run(Validator("port", must_exist=True, gte=1024))
    assert rules(outcome) == [("port", "must_exist")]


def test_must_exist_is_checked_at_construction() -> None:
    with pytest.raises(TypeError, match="must_exist"):
        Validator("x", must_exist="yes")  # type: ignore[arg-type]


# -- condition, when, env, messages ----------------------------------------------------------------


def test_condition() -> None:
    def is_even(value: int) -> bool:
        return value % 2 == 0

    validator = Validator("port", condition=is_even)
    assert run(validator, port=8080).ok
    (failure,) = run(validator, port=8081).failures
    assert failure == ValidationFailure(
        "port", "8081", "condition", "port invalid for is_even(8081) in env DEVELOPMENT"
    )


def test_a_condition_that_raises_is_a_failure() -> None:
    (failure,) = run(Validator("port", condition=lambda v: v.upper()), port=1).failures
    assert failure.rule == "condition"
    assert "AttributeError" in failure.message


def test_condition_must_be_callable() -> None:
    with pytest.raises(TypeError, match="condition"):
        Validator("x", condition=True)  # type: ignore[arg-type]


def test_when_decides_whether_a_validator_runs() -> None:
    validator = Validator("db.password", must_exist=True, when=Validator("db.engine", eq="pg"))
    assert run(validator, db={"engine": "sqlite"}).ok
    assert rules(run(validator, db={"engine": "pg"})) == [("db.password", "must_exist")]
    # a `when` on a missing key passes, as in Dynaconf (must_exist is not set on it)
    assert rules(run(validator, db={})) == [("db.password", "must_exist")]


def test_when_leaves_no_patch_behind() -> None:
    validator = Validator("a", eq=1, when=Validator("b", default=2, eq=2))
    outcome = run(validator, a=1)
    assert outcome.ok
    assert outcome.patch == {}


def test_when_must_be_a_validator() -> None:
    with pytest.raises(TypeError, match="when"):
        Validator("x", when=lambda: True)  # type: ignore[arg-type]


def test_env_picks_which_validators_run() -> None:
    strict = Validator("debug", eq=False, env=["Production", "staging"])
    assert run(strict, debug=True).ok  # no active env
    assert run(strict, debug=True, env="development").ok
    assert rules(run(strict, debug=True, env="PRODUCTION")) == [("debug", "eq")]
    assert rules(run(Validator("debug", eq=False, env="staging"), debug=True, env="staging"))
    (failure,) = run(Validator("debug", eq=False), debug=True, env="qa").failures
    assert failure.message.endswith("in env QA")


def test_env_must_be_names() -> None:
    with pytest.raises(TypeError, match="env"):
        Validator("x", env=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="env"):
        Validator("x", env=[])


def test_messages_override_the_templates() -> None:
    messages = {
        "must_exist_true": "set {name} ({env})",
        "operations": "{name}={value}: want {operation} {op_value}",
        "condition": "{function} said no to {value}",
    }
    outcome = run(
        Validator("a", must_exist=True, messages=messages),
        Validator("b", lt=2, messages=messages),
        Validator("c", condition=lambda v: False, messages=messages),
        b=3,
        c="x",
        env="dev",
    )
    assert [f.message for f in outcome.failures] == [
        "set a (DEV)",
        "b=3: want lt 2",
        "<lambda> said no to 'x'",
    ]


def test_messages_are_checked_at_construction() -> None:
    with pytest.raises(ValueError, match="'must_exist'"):
        Validator("a", messages={"must_exist": "typo"})
    with pytest.raises(ValueError, match=re.escape("{nmae}")):
        Validator("a", messages={"operations": "{nmae} is wrong"})
    with pytest.raises(ValueError, match="operations"):
        Validator("a", messages={"operations": "{name"})


# -- cast and default ----------------------------------------------------------------------------


def test_cast_then_check_and_patch() -> None:
    outcome = run(Validator("db.port", cast=int, gte=1024), db={"port": "5432"})
    assert outcome.ok
    assert outcome.patch == {"db.port": 5432}
    assert rules(run(Validator("db.port", cast=int, gte=1024), db={"port": "80"})) == [
        ("db.port", "gte")
    ]


def test_a_cast_that_changes_nothing_leaves_no_patch() -> None:
    assert run(Validator("port", cast=int), port=5432).patch == {}
    assert run(Validator("ratio", cast=float), ratio=1).patch == {"ratio": 1.0}


def test_a_cast_that_raises_is_a_failure() -> None:
    (failure,) = run(Validator("db.port", cast=int, gte=1), db={"port": "eighty"}).failures
    assert failure.key == "db.port"
    assert failure.rule == "cast"
    assert failure.value == "'eighty'"
    # The value shows (masked when secret); the exception by its type only: its text may
    # quote a value under a name no secret pattern knows.
    assert failure.message == "db.port: cast int('eighty') raised ValueError"


def test_cast_must_be_callable() -> None:
    with pytest.raises(TypeError, match="cast"):
        Validator("x", cast="int")  # type: ignore[arg-type]


def test_default_value() -> None:
    validator = Validator("db.pool", default=5, must_exist=True, gte=1)
    outcome = run(validator, db={})
    assert outcome.ok
    assert outcome.patch == {"db.pool": 5}
    assert run(validator, db={"pool": 9}).patch == {}
    assert rules(run(Validator("pool", default=0, gte=1))) == [("pool", "gte")]


def test_none_is_a_real_default() -> None:
    outcome = run(Validator("x", must_exist=True, default=None))
    assert outcome.ok
    assert outcome.patch == {"x": None}


def test_a_default_is_cast_too() -> None:
    assert run(Validator("port", default="8080", cast=int)).patch == {"port": 8080}


def test_callable_default_sees_the_candidate_and_the_validator() -> None:
    seen: list[Validator] = []

    def default(view: Mapping[str, Any], validator: Validator) -> str:
        seen.append(validator)
        assert "db" in view
        assert len(view) == len(list(view))
        return f"{view['db.host']}:{view['db.port']}"

    validator = Validator("db.url", default=default)
    outcome = run(Validator("db.port", default=5432), validator, db={"host": "h"})
    assert outcome.patch == {"db.port": 5432, "db.url": "h:5432"}
    assert seen == [validator]
    # called only when needed
    assert run(validator, db={"url": "x"}).patch == {}
    assert seen == [validator]


def test_a_callable_default_that_raises_is_a_failure() -> None:
    def broken(view: Mapping[str, Any], validator: Validator) -> Any:
        return view["nope"]

    (failure,) = run(Validator("x", default=broken)).failures
    assert (failure.key, failure.value, failure.rule) == ("x", "<missing>", "default")
    assert failure.message == "x: default broken() raised KeyError"


def test_apply_default_on_none() -> None:
    assert run(Validator("x", default=1), x=None).patch == {}
    assert run(Validator("x", default=1, apply_default_on_none=True), x=None).patch == {"x": 1}
    assert run(Validator("x", default=1, apply_default_on_none=True), x=0).patch == {}


def test_later_validators_see_earlier_patches() -> None:
    outcome = run(
        Validator("db", default={"host": "h", "port": "1"}),
        Validator("db.port", must_exist=True, cast=int),
        Validator("db.port", eq=1, is_type_of=int),
        Validator("db.host", eq="h"),
        Validator("db.user", must_exist=False),
    )
    assert outcome.ok
    assert outcome.patch == {"db": {"host": "h", "port": "1"}, "db.port": 1}


def test_a_patched_section_hides_the_old_entries_below_it() -> None:
    outcome = run(
        Validator("db", cast=lambda section: {"port": section["port"] + 1}),
        Validator("db.port", eq=2),
        Validator("db.host", must_exist=False),
        db={"port": 1, "host": "h"},
    )
    assert outcome.ok


# -- names and globs -----------------------------------------------------------------------------


def test_several_names() -> None:
    outcome = run(Validator("a", "b", "c", must_exist=True, gte=1), a=0, c=1)
    assert rules(outcome) == [("a", "gte"), ("b", "must_exist")]


def test_a_glob_checks_every_key_it_matches() -> None:
    data: dict[str, Any] = {"db": {"host": "h", "port": 1, "user": 2}, "dbx": {"port": 3}}
    outcome = run(Validator("db.*", is_type_of=str), **data)
    assert rules(outcome) == [("db.port", "is_type_of"), ("db.user", "is_type_of")]


def test_star_stays_in_a_segment_and_double_star_crosses() -> None:
    data: dict[str, Any] = {
        "servers": {"a": {"host": "x", "tls": {"host": 1}}, "b": {"host": 2}},
        "host": 3,
    }
    assert rules(run(Validator("servers.*.host", is_type_of=str), **data)) == [
        ("servers.b.host", "is_type_of")
    ]
    assert rules(run(Validator("servers.**.host", is_type_of=str), **data)) == [
        ("servers.a.tls.host", "is_type_of"),
        ("servers.b.host", "is_type_of"),
    ]
    assert rules(run(Validator("*.?.host", is_type_of=str), **data)) == [
        ("servers.b.host", "is_type_of")
    ]
    assert rules(run(Validator("servers.[!a].host", is_type_of=str), **data)) == [
        ("servers.b.host", "is_type_of")
    ]


def test_a_glob_that_matches_nothing() -> None:
    assert run(Validator("db.*", gte=1), db={}).ok
    (failure,) = run(Validator("db.*", must_exist=True), db={}).failures
    assert failure == ValidationFailure(
        "db.*", "<missing>", "must_exist", "db.* is required in env DEVELOPMENT (no key matched)"
    )


def test_a_glob_with_must_exist_false_forbids_every_match() -> None:
    outcome = run(Validator("legacy.*", must_exist=False), legacy={"a": 1, "b": 2})
    assert rules(outcome) == [("legacy.a", "must_exist"), ("legacy.b", "must_exist")]


def test_a_glob_sees_keys_set_by_defaults() -> None:
    outcome = run(Validator("db.pool", default="five"), Validator("db.*", is_type_of=int), db={})
    assert rules(outcome) == [("db.pool", "is_type_of")]


def test_names_must_be_strings() -> None:
    with pytest.raises(TypeError, match="names"):
        Validator("")
    with pytest.raises(TypeError, match="names"):
        Validator(1)  # type: ignore[arg-type]


def _segment_match(pattern: str, key: str) -> bool:
    parts, segments = pattern.split("."), key.split(".")
    return len(parts) == len(segments) and all(map(fnmatchcase, segments, parts))


@settings(max_examples=150, deadline=None)
@given(
    pattern=st.lists(
        st.sampled_from(["a", "b", "ab", "*", "?", "a*", "*b", "[ab]", "[!a]"]),
        min_size=1,
        max_size=3,
    ),
    key=st.lists(st.sampled_from(["a", "b", "ab", "ba", "abc", "x"]), min_size=1, max_size=3),
)
def test_glob_is_fnmatch_segment_by_segment(pattern: list[str], key: list[str]) -> None:
    glob, dotted = ".".join(pattern), ".".join(key)
    outcome = run_validators([Validator(glob, must_exist=False)], {dotted: 1})
    assert (not outcome.ok) is _segment_match(glob, dotted)


def test_plain_names_never_scan_the_candidate() -> None:
    class NoScan(dict[str, Any]):
        def __iter__(self) -> Iterator[str]:
            raise AssertionError("scanned")

    data = NoScan(flat({"db": {"port": "1", "host": "h"}}))
    validators = [
        Validator("db.port", must_exist=True, cast=int, gte=1),
        Validator("db.pool", default=5) | Validator("db.pool", eq=1),
        Validator("db.host", when=Validator("db.port", eq=1), len_min=1),
    ]
    assert run_validators(validators, data).ok


def test_many_keys_and_validators_run_fast_enough() -> None:
    # 10,000 keys and 50 validators, globs included, must be well under a refresh interval.
    data = flat({f"svc{i}": {f"k{j}": j for j in range(99)} for i in range(100)})
    assert len(data) == 10_000
    validators = [Validator(f"svc{i}.k1", must_exist=True, is_type_of=int) for i in range(40)]
    validators += [Validator(f"svc{i}.*", gte=0) for i in range(9)]
    validators.append(Validator("*.k5", lte=5))
    assert run_validators(validators, data).ok


# -- combining -----------------------------------------------------------------------------------


def test_or() -> None:
    either = Validator("port", gte=1024) | Validator("port", eq=80)
    assert isinstance(either, OrValidator)
    assert run(either, port=8080).ok
    assert run(either, port=80).ok
    (failure,) = run(either, port=81).failures
    assert failure.rule == "combined"
    assert failure.key == "port"
    assert failure.message == (
        "combined validators failed port must gte 1024 but it is 81 in env DEVELOPMENT or "
        "port must eq 80 but it is 81 in env DEVELOPMENT"
    )


def test_and() -> None:
    both = Validator("port", gte=1024) & Validator("port", lte=2048)
    assert isinstance(both, AndValidator)
    assert run(both, port=1500).ok
    (failure,) = run(both, port=4000).failures
    assert failure.message == (
        "combined validators failed port must lte 2048 but it is 4000 in env DEVELOPMENT"
    )
    (failure,) = run(Validator("a", eq=1) & Validator("b", eq=1), a=2, b=2).failures
    assert failure.key == "a, b"
    assert failure.value == "2, 2"
    assert " and " in failure.message


def test_chains_read_as_one_list() -> None:
    chain = Validator("a", eq=1) | Validator("a", eq=2) | Validator("a", eq=3)
    assert isinstance(chain, OrValidator)
    assert len(chain.validators) == 3
    (failure,) = run(chain, a=4).failures
    assert failure.message.count(" or ") == 2
    assert failure.message.count("combined validators failed") == 1
    mixed = (Validator("a", eq=1) | Validator("a", eq=2)) & Validator("b", eq=3)
    (failure,) = run(mixed, a=4, b=4).failures
    assert failure.message.count("combined validators failed") == 1


def test_or_keeps_only_the_passing_branchs_patch() -> None:
    either = Validator("x", default=1, eq=2) | Validator("x", default=2, eq=2)
    assert run(either).patch == {"x": 2}
    assert run(either, x=3).patch == {}


def test_combined_messages_and_misuse() -> None:
    either = OrValidator(
        Validator("a", eq=1), Validator("b", eq=1), messages={"combined": "neither: {errors}"}
    )
    (failure,) = run(either, a=0, b=0).failures
    assert failure.message.startswith("neither: a must eq 1")
    with pytest.raises(TypeError, match="two or more"):
        OrValidator(Validator("a"))


def test_combined_validators_respect_env_and_when() -> None:
    both = AndValidator(Validator("a", eq=1), Validator("b", eq=1), env="prod")
    assert run(both, a=0, b=0, env="dev").ok
    assert not run(both, a=0, b=0, env="prod").ok
    gated = OrValidator(Validator("a", eq=1), Validator("b", eq=1), when=Validator("on", eq=True))
    assert run(gated, a=0, b=0, on=False).ok
    assert not run(gated, a=0, b=0, on=True).ok


def test_repr() -> None:
    validator = Validator(
        "a", "b.*", required=True, is_type_of=int, condition=len, env="prod", default=3
    )
    assert repr(validator) == (
        "Validator('a', 'b.*', must_exist=True, is_type_of=int, condition=len, "
        "env=['prod'], default=...)"
    )
    assert repr(Validator("a") | Validator("b")) == "OrValidator(Validator('a'), Validator('b'))"


# -- secrets -------------------------------------------------------------------------------------

HIDDEN = "hunter2-S3CR3T"


@pytest.mark.parametrize(
    "validator",
    [
        Validator("db.password", eq="other-value"),
        Validator("db.password", eq=HIDDEN + "x"),
        Validator("db.password", len_min=100),
        Validator("db.password", is_in=[HIDDEN + "!"]),
        Validator("db.password", is_type_of=int),
        Validator("db.password", cast=int),
        Validator("db.password", cast=lambda v: v / 2),
        Validator("db.password", gt=5),
        Validator("db.password", condition=lambda v: int(v) > 0),
        Validator("db.password", condition=lambda v: False),
        Validator("db.password", must_exist=False),
        Validator("db", is_type_of=str),
        Validator("db.*", len_max=3),
        Validator("db.password", eq=1) | Validator("db.password", eq=2),
        Validator("db.password", regex="^x", messages={"operations": "{value} {op_value} {name}"}),
    ],
    ids=repr,
)
def test_a_secret_never_shows_in_errors(validator: Validator) -> None:
    outcome = run(validator, db={"password": HIDDEN, "host": "h"})
    error = error_for(outcome)
    assert error is not None
    for text in (str(error), repr(error), repr(error.details), repr(outcome)):
        assert "hunter2" not in text


def test_expected_values_of_secrets_are_masked_too() -> None:
    (failure,) = run(Validator("api_key", eq="letmein"), api_key="wrong").failures
    assert failure.message == f"api_key must eq {MASK} but it is {MASK} in env DEVELOPMENT"


def test_secret_values_are_checked_revealed_and_shown_masked() -> None:
    assert run(Validator("dsn", startswith="pg://", len_min=5), dsn=Secret("pg://x")).ok
    (failure,) = run(Validator("dsn", startswith="my://"), dsn=Secret("pg://x")).failures
    assert failure.value == MASK
    assert "pg://" not in failure.message
    assert "my://" not in failure.message
    assert run(Validator("n", cast=int), n=Secret("5")).patch == {"n": Secret(5)}


def test_the_secret_matcher_can_be_replaced() -> None:
    outcome = run_validators(
        [Validator("dsn", eq="x"), Validator("password", eq="x")],
        {"dsn": "pg://u:p@h", "password": "p"},
        secret=SecretMatcher(["dsn"]),
    )
    assert [f.value for f in outcome.failures] == [MASK, "'p'"]


# -- collecting and reporting ----------------------------------------------------------------------


def test_every_failure_is_collected_and_reported() -> None:
    outcome = run(
        Validator("db.port", gte=1024),
        Validator("db.host", must_exist=True),
        Validator("name", condition=str.isupper, messages={"condition": "shout it"}),
        Validator("ok", eq=1),
        db={"port": 80},
        name="quiet",
        ok=1,
    )
    assert not outcome.ok
    error = error_for(outcome)
    assert isinstance(error, ValidationError)
    assert error.details == outcome.failures
    assert (
        str(error)
        == error.message
        == (
            "3 validation failures:\n"
            "  - db.port must gte 1024 but it is 80 in env DEVELOPMENT\n"
            "  - db.host is required in env DEVELOPMENT\n"
            "  - name: shout it"
        )
    )


def test_error_for_one_and_none() -> None:
    assert error_for(run(Validator("a", eq=1), a=1)) is None
    error = error_for(run(Validator("a", eq=1), a=2))
    assert error is not None
    assert str(error).startswith("1 validation failure:\n  - a must eq 1")


def test_validation_error_without_details_is_unchanged() -> None:
    error = ValidationError("mode 'bad' is not allowed")
    assert str(error) == error.message == "mode 'bad' is not allowed"
    assert error.details == ()


# -- from a file ---------------------------------------------------------------------------------

TOML = """
[default]
name = { must_exist = true, is_type_of = "str" }
"db.port" = { gte = 1024, messages = { operations = "{name} too low" } }

[default.db.pool]
default = 5
lte = 100

[default.servers.web]
host = { required = true }

[Production]
debug = { eq = false }
"log.level" = { is_in = ["warning", "error"], env = ["production", "staging"] }
"""


def test_load_validators_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "dynaconf_validators.toml"
    path.write_text(TOML)
    validators = load_validators(path)
    assert [(v.names, v.envs) for v in validators] == [
        (("name",), None),
        (("db.port",), None),
        (("db.pool",), None),
        (("servers.web.host",), None),
        (("debug",), ("production",)),
        (("log.level",), ("production", "staging")),
    ]
    data: dict[str, Any] = {"db": {"port": 80}, "debug": True, "log": {"level": "info"}, "name": 1}
    outcome = run(*validators, **data)
    assert rules(outcome) == [
        ("name", "is_type_of"),
        ("db.port", "gte"),
        ("servers.web.host", "must_exist"),
    ]
    assert outcome.failures[1].message == "db.port too low"
    assert outcome.patch == {"db.pool": 5}
    assert len(run(*validators, env="production", **data).failures) == 5
    assert len(run(*validators, env="staging", **data).failures) == 4


def test_an_explicit_default_env_in_a_file_means_every_env() -> None:
    validators = validators_from_mapping(
        {"production": {"a": {"env": "DEFAULT"}, "b": {"env": ["default", "qa"]}, "c": {}}}
    )
    assert [v.envs for v in validators] == [None, None, ("production",)]


def test_load_validators_from_json(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"default": {"port": {"must_exist": True, "gte": 1}}}))
    (validator,) = load_validators(str(path))
    assert rules(run(validator, port=0)) == [("port", "gte")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[default]\nport = { gtee = 1 }\n", "[default] port: unknown option 'gtee'"),
        ("[default.db]\nport = { gte = 1, lowest = 2 }\n", "[default] db.port: unknown option"),
        (
            '[default]\nport = { condition = "x > 1" }\n',
            "[default] port: option 'condition' needs Python",
        ),
        ('[default]\nport = { is_type_of = "integer" }\n', "[default] port: is_type_of='integer'"),
        ('[default]\nport = { must_exist = "yes" }\n', "[default] port: must_exist must be"),
        ("[default]\nport = 1\n", "[default] port: must be a table of options"),
        ("default = 1\n", "[default] must be a table of names"),
    ],
)
def test_a_bad_rule_names_the_file_and_the_key(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(f"{path}: {problem}")):
        load_validators(path)


def test_a_malformed_file_is_a_parse_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text("[default\n")
    with pytest.raises(ParseError) as info:
        load_validators(path)
    assert info.value.source == str(path)
    assert info.value.line == 1


def test_only_known_formats(tmp_path: Path) -> None:
    path = tmp_path / "rules.txt"
    path.write_text("")
    with pytest.raises(ValueError, match=r"rules\.txt: validators are read from"):
        load_validators(path)


def test_validators_from_mapping_checks_the_top_level() -> None:
    with pytest.raises(ValueError, match="<mapping>: expected a table"):
        validators_from_mapping([])  # type: ignore[arg-type]
    assert validators_from_mapping({"default": {"x": {}}})[0].names == ("x",)


# -- against Dynaconf itself ---------------------------------------------------------------------

DATASETS: list[dict[str, Any]] = [
    {
        "name": "aioconfig",
        "port": 8080,
        "debug": False,
        "ratio": 0.5,
        "nothing": None,
        "hosts": ["a", "b"],
        "db": {"host": "localhost", "port": 5432, "user": "admin"},
    },
    {"name": "x", "port": 81, "debug": True, "hosts": [], "db": {"host": "", "port": "5432"}},
    {"port": -1, "db": {"port": 70000}},
    {},
]

Build = Callable[[Any], Any]  # given a Validator class, one validator

CASES: list[Build] = [
    lambda V: V("port", must_exist=True),
    lambda V: V("name", required=True),
    lambda V: V("missing_key", must_exist=True),
    lambda V: V("missing_key", must_exist=False),
    lambda V: V("name", must_exist=False),
    lambda V: V("port", gte=1024),
    lambda V: V("port", gt=0, lt=65536),
    lambda V: V("port", ne=81, le=9000, ge=1),
    lambda V: V("db.port", is_type_of=int),
    lambda V: V("db.port", gte=1024, lte=65535),
    lambda V: V("db.host", len_min=1),
    lambda V: V("db.host", len_max=5),
    lambda V: V("db.host", startswith="local"),
    lambda V: V("db.host", endswith="host"),
    lambda V: V("name", is_in=["aioconfig", "x"]),
    lambda V: V("name", is_not_in=["x"]),
    lambda V: V("name", eq="aioconfig"),
    lambda V: V("name", len_eq=1),
    lambda V: V("name", len_ne=1),
    lambda V: V("name", gt=5),  # str > int raises: a failure on both sides
    lambda V: V("hosts", is_type_of=list),
    lambda V: V("hosts", len_min=1),
    lambda V: V("hosts", cont="a"),
    lambda V: V("debug", is_type_of=bool, eq=False),
    lambda V: V("nothing", identity=None),
    lambda V: V("db", is_type_of=dict),
    lambda V: V("ratio", is_type_of=float, lte=1),
    lambda V: V("port", condition=lambda v: v % 2 == 0),
    lambda V: V("port", "db.port", must_exist=True, is_type_of=int),
    lambda V: V("port", must_exist=True, default=8000, gte=1024),
    lambda V: V("missing_key", default=5, gte=10),
    lambda V: V("missing_key", default=5, must_exist=True, lte=10),
    lambda V: V("missing_key", default=5, must_exist=False),
    lambda V: V("db.port", cast=int, gte=1024),
    lambda V: V("db.port", must_exist=True, cast=int),
    lambda V: V("nothing", default=1, eq=1),
    lambda V: V("nothing", default=1, apply_default_on_none=True, eq=1),
    lambda V: V("db.user", must_exist=True, when=V("debug", eq=False)),
    lambda V: V("db.user", must_exist=True, when=V("name", must_exist=True)),
    lambda V: V("port", gte=1024) | V("db.port", gte=1024),
    lambda V: V("port", gte=1024) & V("db.port", gte=1024),
    lambda V: (V("name", eq="x") | V("name", eq="aioconfig")) & V("port", must_exist=True),
]


def _dynaconf_passes(data: dict[str, Any], build: Build) -> bool:
    from dynaconf import Dynaconf
    from dynaconf import ValidationError as DynaconfError
    from dynaconf import Validator as DynaconfValidator

    settings = Dynaconf()
    settings.update(json.loads(json.dumps(data)))
    settings.validators.register(build(DynaconfValidator))
    try:
        settings.validators.validate_all()
    except DynaconfError:
        return False
    return True


@pytest.mark.parametrize("data", DATASETS, ids=lambda d: f"{len(d)} keys")
@pytest.mark.parametrize("build", CASES, ids=lambda b: f"case{CASES.index(b)}")
def test_same_verdict_as_dynaconf(data: dict[str, Any], build: Build) -> None:
    ours = run_validators([build(Validator)], flat(data)).ok
    assert ours is _dynaconf_passes(data, build)


# -- Dynaconf's habits (issue 13) -----------------------------------------------------------------


def test_an_incompatible_comparison_is_a_failure_not_a_type_error() -> None:
    # the report: a string port against gte=1024
    outcome = run(Validator("db.port", gte=1024), db={"port": "6000"})
    assert rules(outcome) == [("db.port", "gte")]
    assert outcome.failures[0].message.startswith("Invalid Operation 'gte' for type 'str'")
    # dynaconf tests/test_typed.py: "Invalid Operation 'contains' for type <class 'int'> on
    # 'colors'"
    outcome = run(Validator("colors", contains="red"), colors=1)
    assert outcome.failures[0].message.startswith(
        "Invalid Operation 'contains' for type 'int' on 'colors'"
    )


def test_cast_receives_plain_values() -> None:
    # dynaconf tests/test_validators.py::test_cast_on_validate_transforms_value
    outcome = run(
        Validator("name", len_eq=5),
        Validator("name", cast=list),
        Validator("colors", len_eq=3),
        Validator("colors", len_eq=24, cast=str),
        name="Bruno",
        colors=["red", "green", "blue"],
    )
    assert outcome.ok, outcome.failures
    assert outcome.patch == {"name": list("Bruno"), "colors": str(["red", "green", "blue"])}
    assert outcome.patch["colors"] == "['red', 'green', 'blue']"
    seen: list[Any] = []

    def keep(value: Any) -> Any:
        seen.append(value)
        return value

    run(Validator("db", cast=keep), db={"hosts": ["a"]})
    assert seen == [{"hosts": ["a"]}] and type(seen[0]) is dict
    assert type(seen[0]["hosts"]) is list


@pytest.mark.parametrize(
    ("validator", "expected"),
    [
        # dynaconf tests/test_validators.py::
        #   test_toml_should_not_change_validator_type_with_is_type_set
        (Validator("TEST", is_type_of=str, default="+172800"), "+172800"),
        #   test_toml_should_not_change_validator_type_with_is_type_not_set_int
        (Validator("TEST", default="+172800"), +172800),
        #   test_toml_should_not_change_validator_type_using_at_sign
        (Validator("TEST", is_type_of=str, default="@str +172800"), "+172800"),
        # test_validator_can_provide_default: Validator("FOO", default="BAR")
        (Validator("TEST", default="BAR"), "BAR"),
        (Validator("TEST", default="@int 42"), 42),
        (Validator("TEST", default="[1, 2]"), [1, 2]),
        (Validator("TEST", default=5), 5),
    ],
)
def test_string_defaults_are_parsed_like_environment_values(
    validator: Validator, expected: Any
) -> None:
    outcome = run(validator)
    assert outcome.ok, outcome.failures
    assert outcome.patch == {"TEST": expected}
    assert type(outcome.patch["TEST"]) is type(expected)


def test_a_default_whose_cast_fails_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="@int failed"):
        Validator("x", default="@int forty")


def test_messages_name_the_environment_in_upper_case() -> None:
    # dynaconf tests/test_validators.py::test_validator_custom_message
    custom_msg = "You cannot set {name} to {value} in env {env}"
    outcome = run(
        Validator("VERSION", ne=1, messages={"operations": custom_msg}),
        env="development",
        VERSION=1,
    )
    assert outcome.failures[0].message == custom_msg.format(
        name="VERSION", value="1", env="DEVELOPMENT"
    )
    # no environment active: Dynaconf's default, DEVELOPMENT, as well
    outcome = run(Validator("VERSION", ne=1, messages={"operations": custom_msg}), VERSION=1)
    assert outcome.failures[0].message.endswith("in env DEVELOPMENT")


def test_is_type_of_with_a_non_type_is_refused_when_the_validator_is_made() -> None:
    # dynaconf tests/test_validators.py::test_is_type_of__raises__with_type_error gives
    # is_type_of="invalid" and expects a ValidationError from validate(); here the rule itself
    # is refused where it is written, before any configuration is loaded (the README says so).
    with pytest.raises(TypeError, match="is_type_of='invalid' is not a type name"):
        Validator("ENV_FOR_DYNACONF", is_type_of="invalid")
    with pytest.raises(TypeError, match="is_type_of needs a type"):
        Validator("x", is_type_of=42)
