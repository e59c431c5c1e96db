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
        # plurals (issue 10): every secret word's plural, and "keys" after a kind of key
        "api_keys",
        "private_keys",
        "signing_keys",
        "access_keys",
        "secret_keys",
        "apiKeys",
        "APIKeys",
        "APIKEYS",
        "privatekeys",
        "jwt_keys_b64",
        "clientSecrets",
        "passwords",
        "db.passwds",
        "passphrases",
        "tokens",
        "credentials",
        "pwds",
        "AccountKey",  # Azure storage
        "shared_key",
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
        # plurals stay as narrow as the singulars: "keys" alone names a collection
        "index.keys",
        "monkeys",
        "hotkeys",
        "primary_keys",
        "public_keys",
        "cache_keys",
        "key_counts",
        "token_ttls",
        "signature",  # a signature is secret in a URL's query, not as a key (email.signature)
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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # query parameters named like secrets, in any URL
        ("https://x/?token=abc", f"https://x/?token={MASK}"),
        ("https://x/a?access_token=abc&b=1", f"https://x/a?access_token={MASK}&b=1"),
        (
            "https://a.blob.core.windows.net/c/b?sv=2020-08-04&sr=b&sig=abc%2Bd%3D",
            f"https://a.blob.core.windows.net/c/b?sv=2020-08-04&sr=b&sig={MASK}",
        ),
        ("https://x/?api_key=abc#top", f"https://x/?api_key={MASK}#top"),
        ("https://x/?password=abc", f"https://x/?password={MASK}"),
        ("https://x/?secret=abc", f"https://x/?secret={MASK}"),
        ("https://x/?a=1&client_secret=abc", f"https://x/?a=1&client_secret={MASK}"),
        ("https://maps/?key=abc&q=token", f"https://maps/?key={MASK}&q=token"),
        (
            "https://s3/o?X-Amz-Credential=c&X-Amz-Security-Token=t&X-Amz-Signature=s",
            f"https://s3/o?X-Amz-Credential={MASK}&X-Amz-Security-Token={MASK}"
            f"&X-Amz-Signature={MASK}",
        ),
        ("see https://x/?token=abc now", f"see https://x/?token={MASK} now"),
        ("/relative?apiKeys=abc", f"/relative?apiKeys={MASK}"),
        (
            "postgres://u:pw@h/db?sslmode=require&password=x",
            f"postgres://u:{MASK}@h/db?sslmode=require&password={MASK}",
        ),
        # connection strings: Name=value; fields named like secrets
        ("Server=x;User Id=u;Password=p;", f"Server=x;User Id=u;Password={MASK};"),
        ("Server=x;Uid=u;Pwd=p", f"Server=x;Uid=u;Pwd={MASK}"),
        (
            "Data Source=h; Password = p w ; Pooling=true",
            f"Data Source=h; Password = {MASK}; Pooling=true",
        ),
        (
            "Endpoint=https://x.azconfig.io;Id=abc;Secret=c2VjcmV0==",
            f"Endpoint=https://x.azconfig.io;Id=abc;Secret={MASK}",
        ),
        (
            "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k/y==;EndpointSuffix=core",
            f"DefaultEndpointsProtocol=https;AccountName=a;AccountKey={MASK};EndpointSuffix=core",
        ),
        (
            "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=k=",
            f"Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;"
            f"SharedAccessKey={MASK}",
        ),
        (
            "BlobEndpoint=b;SharedAccessSignature=sv=1&sig=s",
            f"BlobEndpoint=b;SharedAccessSignature={MASK}",
        ),
        ("Driver={x};PWD={a;b};UID=u", f"Driver={{x}};PWD={MASK};UID=u"),
        ('Password="a;b";Host=h', f"Password={MASK};Host=h"),
        ("Password='a;b';Host=h", f"Password={MASK};Host=h"),
        ("line1 token=abc\nline2", f"line1 token={MASK}\nline2"),
        ("mysql --password=hunter2", f"mysql --password={MASK}"),
        ("note=see token=abc", f"note=see token={MASK}"),  # a plain field's value is read too
        ("db.password=x", f"db.password={MASK}"),
        # left alone: names that are not secret, empty values, no field at all
        ("sort_key=name;keys=a,b;primary_keys=id", "sort_key=name;keys=a,b;primary_keys=id"),
        ("https://x/?page=2&q=password", "https://x/?page=2&q=password"),
        ("Password=;Host=h", "Password=;Host=h"),
        ("https://x/?token=", "https://x/?token="),
        ("a == b", "a == b"),
        ("=token", "=token"),
    ],
)
def test_secrets_in_query_strings_and_connection_strings_are_masked(
    text: str, expected: str
) -> None:
    assert mask_urls(text) == expected
    assert has_credentials(text) is (text != expected)
    assert has_credentials({"a": [text]}) is (text != expected)


def test_values_holding_credentials_are_masked_whatever_their_key() -> None:
    data = {
        "hooks": ["https://hooks.example/x?token=t1"],
        "storage": {"connection": "AccountName=a;AccountKey=k1;"},
        "sas": "https://a.blob.core.windows.net/c?sv=1&sig=s1",
    }
    assert masked(data) == {
        "hooks": [f"https://hooks.example/x?token={MASK}"],
        "storage": {"connection": f"AccountName=a;AccountKey={MASK};"},
        "sas": f"https://a.blob.core.windows.net/c?sv=1&sig={MASK}",
    }
    text = shown("x", data)
    assert "t1" not in text and "k1" not in text
    assert shown("storage.connection", "Server=h;Pwd=p1") == repr(f"Server=h;Pwd={MASK}")
    assert masked(data, urls=False) == data  # reveal


_HOSTILE = [
    "a" * 1_000_000 + "://x",  # a long scheme-like run: quadratic in the old URL pattern
    "x://" + "a" * 1_000_000,
    "x://" + ":" * 1_000_000,
    "x://a:b" * 150_000,
    "a=" * 500_000,
    "ab " * 333_333 + "=",
    "A" * 1_000_000 + "=x",
    "a" + " " * 1_000_000,
    "?token=&" * 125_000,
    "token=" * 166_666,
    'Password="' + "x" * 1_000_000,
    "Pwd={" + ";" * 1_000_000,
    "https://h/?" + "sig=s&" * 166_666,
]


@pytest.mark.parametrize("text", _HOSTILE, ids=range(len(_HOSTILE)))
def test_masking_a_hostile_megabyte_finishes(text: str) -> None:
    # No clock here: before the scan was linear, the first of these ran for many minutes.
    result = mask_urls(text)
    assert has_credentials(text) is (result != text)
    assert len(result) <= len(text) + len(MASK) * text.count("=")
