from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioconfig._secrets import (
    DEFAULT_SECRET_MATCHER,
    DEFAULT_SECRET_PATTERNS,
    MASK,
    Secret,
    SecretMatcher,
    mask,
    shown,
)


@pytest.mark.parametrize(
    "key",
    [
        "db.password",
        "api_key",
        "AWS_SECRET_ACCESS_KEY",
        "auth.Token",
        "x.y.MY_PASSWORD_FILE",
        "client_secret",
        "monkey",  # "*key" matches it: accepted, masking too much is the safe mistake
    ],
)
def test_default_patterns_match_secret_keys(key: str) -> None:
    assert DEFAULT_SECRET_MATCHER(key)
    assert SecretMatcher(DEFAULT_SECRET_PATTERNS)(key)


@pytest.mark.parametrize(
    "key", ["keyboard", "monkey_business", "keys", "db.host", "password.hint", "", "db."]
)
def test_default_patterns_leave_other_keys_alone(key: str) -> None:
    assert not DEFAULT_SECRET_MATCHER(key)


def test_only_the_last_segment_counts() -> None:
    matcher = SecretMatcher(["*password*"])
    assert matcher("a.password")
    assert not matcher("password.length")


def test_custom_and_empty_patterns() -> None:
    matcher = SecretMatcher(["dsn", "cred?"])
    assert matcher("db.DSN")
    assert matcher("creds")
    assert not matcher("db.password")
    assert not SecretMatcher([])("password")
    assert repr(matcher) == "SecretMatcher(('dsn', 'cred?'))"


def test_patterns_must_be_strings() -> None:
    with pytest.raises(TypeError, match="strings"):
        SecretMatcher([b"key"])  # type: ignore[list-item]


def test_cache_is_bounded_and_stays_right() -> None:
    matcher = SecretMatcher()
    for i in range(10_000):
        assert matcher(f"svc{i}.token") is True
        assert matcher(f"svc{i}.host") is False
    assert len(matcher._cache) <= 4096


def test_secret_wrapper_hides_its_value() -> None:
    secret = Secret("hunter2")
    assert secret.reveal() == "hunter2"
    assert repr(secret) == "Secret('**********')"
    assert str(secret) == repr(secret)
    assert f"{secret}" == repr(secret)
    assert "hunter2" not in repr([secret, {"x": secret}])


def test_secret_equality_and_hashing() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    assert Secret("a") != "a"
    assert len({Secret("a"), Secret("a"), Secret(1)}) == 2
    with pytest.raises(TypeError):
        hash(Secret(["unhashable"]))


def test_mask_never_reveals_length() -> None:
    assert mask("") == mask("x" * 1000) == MASK == "**********"


def test_shown_masks_secret_keys_and_secret_values() -> None:
    assert shown("db.password", "hunter2") == MASK
    assert shown("db.host", Secret("db.internal")) == MASK
    assert shown("db.host", "localhost") == "'localhost'"
    assert shown("db.port", 5432) == "5432"
    assert shown("db.password", "x", lambda key: False) == "'x'"


def test_shown_masks_secrets_nested_in_what_it_shows() -> None:
    section = MappingProxyType(
        {"host": "h", "password": "hunter2", "replicas": ({"api_key": "k3y"}, Secret("s"))}
    )
    text = shown("db", section)
    assert "hunter2" not in text
    assert "k3y" not in text
    assert text.startswith("{'host': 'h', 'password': **********, 'replicas': ({'api_key': ***")


def test_shown_forms_of_containers() -> None:
    assert shown("a", [1, "x"]) == "[1, 'x']"
    assert shown("a", (1,)) == "(1,)"
    assert shown("a", ()) == "()"
    assert shown("a", {1}) == "{1}"
    assert shown("a", set()) == "set()"
    assert shown("a", frozenset({2})) == "frozenset({2})"
    assert shown("a", frozenset()) == "frozenset()"


def test_shown_is_short_even_for_huge_values() -> None:
    huge = {f"k{i}": i for i in range(20_000)}
    text = shown("section", huge)
    assert len(text) == 80
    assert text.endswith("...")
    assert len(shown("s", "x" * 81)) == 80
    assert shown("s", "x" * 78) == repr("x" * 78)


_SECRET_TEXT = st.text(alphabet="ABCDEFGHJKMNPQRSTUVWXYZ23456789", min_size=8, max_size=40).map(
    lambda s: "S3CR3T" + s
)


@given(value=_SECRET_TEXT, other=st.text(max_size=20))
def test_a_secret_never_shows(value: str, other: str) -> None:
    assert shown("svc.password", value) == MASK
    assert value not in shown("svc", {"other": other, "token": value})
    assert value not in shown("svc", [other, Secret(value)])
