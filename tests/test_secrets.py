from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aioconfig._secrets import (
    DEFAULT_SECRET_MATCHER,
    MASK,
    Secret,
    SecretMatcher,
    has_credentials,
    is_secret_name,
    mask,
    mask_urls,
    masked,
    shown,
    tainted,
)


@pytest.mark.parametrize(
    "key",
    [
        "db.password",
        "token",
        "api_token",
        "auth_token",
        "db_password",
        "client_secret",
        "private_key",
        "api_key",
        "apikey",
        "APIKEY",
        "apiKey",
        "APIKey",
        "credentials",
        "passwd",
        "db_pwd",
        "AWS_SECRET_ACCESS_KEY",
        "auth.Token",
        "dbPassword",
        "password2",
        "api_key_b64",
        "refresh-token",
        "stripe.key",
        "sdk_key",
        "access_tokens",
    ],
)
def test_the_word_rule_finds_secrets(key: str) -> None:
    assert DEFAULT_SECRET_MATCHER(key)
    assert SecretMatcher()(key)


@pytest.mark.parametrize(
    "key",
    [
        "token_ttl",
        "tokenTtl",
        "keyboard_layout",
        "keyboard",
        "monkey",
        "monkey_business",
        "key_count",
        "keys",
        "public_key",
        "cache_key",
        "partition_key",
        "x.y.MY_PASSWORD_FILE",  # a path to the password, not the password
        "password_min_length",
        "db.host",
        "password.hint",
        "",
        "db.",
        "value",
    ],
)
def test_the_word_rule_leaves_other_keys_alone(key: str) -> None:
    assert not DEFAULT_SECRET_MATCHER(key)


def test_is_secret_name_splits_words() -> None:
    assert is_secret_name("userPassword")
    assert is_secret_name("user.password")  # a dot splits too, when given a whole name
    assert not is_secret_name("")
    assert not is_secret_name("_")
    assert not is_secret_name("2")


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
    assert repr(SecretMatcher()) == "SecretMatcher()"
    assert not matcher("token")  # patterns replace the word rule


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://u:hunter2@h/db", f"postgres://u:{MASK}@h/db"),
        ("see redis://:pw@cache:6379/0 now", f"see redis://:{MASK}@cache:6379/0 now"),
        ("https://ghp_tok@github.com/a/b", f"https://{MASK}@github.com/a/b"),
        ("postgres://u:p@ss@h/db", f"postgres://u:{MASK}@h/db"),
        ("http://h/path@x", "http://h/path@x"),
        ("http://h:80/x?u=a@b", "http://h:80/x?u=a@b"),
        ("mailto:a@b", "mailto:a@b"),
        ("a://x:1@h b://y:2@i", f"a://x:{MASK}@h b://y:{MASK}@i"),
    ],
)
def test_url_credentials_are_masked(text: str, expected: str) -> None:
    assert mask_urls(text) == expected
    assert has_credentials(text) is (text != expected)


def test_masked_reaches_lists_of_mappings_and_urls() -> None:
    data = {
        "servers": [{"host": "a", "password": "p1"}, [{"token": "t1"}]],
        "url": "amqp://u:pw@h",
        "token_ttl": 60,
    }
    assert masked(data) == {
        "servers": [{"host": "a", "password": MASK}, [{"token": MASK}]],
        "url": f"amqp://u:{MASK}@h",
        "token_ttl": 60,
    }
    assert masked(data, urls=False)["url"] == "amqp://u:pw@h"
    assert "pw" not in shown("x", data)


def test_values_built_from_secrets_are_tainted() -> None:
    flat = {"db": {"password": "p", "host": "h"}, "db.password": "p", "db.host": "h"}
    derived = {
        "dsn": "@format x:{db.password}@{db.host}",
        "again": "@format {dsn}!",
        "whole": "@format {db}",
        "plain": "@format {db.host}",
        "checked": "validators",
        "broken": "@format {",
    }
    found = tainted(derived, flat, DEFAULT_SECRET_MATCHER)
    assert found == {"dsn", "again", "whole"}
