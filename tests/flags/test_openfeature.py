"""The OpenFeature provider, end to end: a real Config, the standard OpenFeature API and client."""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason
from oracle import Oracle

from aioconfig import Config, load
from aioconfig.flags import User
from aioconfig.flags.openfeature import AioconfigProvider, _user
from aioconfig.sources import FlagOverrides
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio

# Comparators (config_v6 numbers): IS ONE OF, >, AFTER, EQUALS, NOT EQUALS, ARRAY CONTAINS ANY OF.
ONE_OF, GREATER, AFTER, EQUALS, NOT_EQUALS, ARRAY_CONTAINS = 0, 14, 19, 28, 29, 34


def when(attribute: str, comparator: int, comparison: str | float | list[str]) -> dict[str, Any]:
    field = "l" if isinstance(comparison, list) else "s" if isinstance(comparison, str) else "d"
    return {"u": {"a": attribute, "c": comparator, field: comparison}}


def rule(condition: dict[str, Any], value: dict[str, Any], variation: str) -> dict[str, Any]:
    return {"c": [condition], "s": {"v": value, "i": variation}}


def everyone(value: dict[str, Any], variation: str) -> list[dict[str, Any]]:
    """Percentage options that put every user in one option (deterministic, still a split)."""
    return [{"p": 100, "v": value, "i": variation}]


HU = when("Country", ONE_OF, ["HU"])

DOCUMENT: dict[str, Any] = {
    "p": {"s": "salt"},
    "f": {
        "newCheckout": {
            "t": 0, "v": {"b": False}, "i": "v-off", "r": [rule(HU, {"b": True}, "v-hu")],
        },
        "darkMode": {"t": 0, "v": {"b": True}, "i": "v-dark"},
        "rollout": {"t": 0, "v": {"b": False}, "p": everyone({"b": True}, "v-all")},
        "huRollout": {
            "t": 0, "v": {"b": False}, "r": [{"c": [HU], "p": everyone({"b": True}, "v-hu-all")}],
        },
        "greeting": {
            "t": 1, "v": {"s": "hello"}, "i": "v-hello",
            "r": [rule(when("Email", EQUALS, "ada@example.com"), {"s": "hi Ada"}, "v-ada")],
        },
        "whoami": {
            "t": 1, "v": {"s": "someone"}, "i": "v-someone",
            "r": [
                rule(when("Identifier", EQUALS, "42"), {"s": "42"}, "v-42"),
                rule(when("Identifier", NOT_EQUALS, "42"), {"s": "not 42"}, "v-not-42"),
            ],
        },
        "maxItems": {
            "t": 2, "v": {"i": 10}, "i": "v-10",
            "r": [rule(when("logins", GREATER, 5), {"i": 50}, "v-50")],
        },
        "ratio": {"t": 3, "v": {"d": 0.5}},
        "wholeRatio": {"t": 3, "v": {"d": 2}},  # a double written as a JSON integer
        "beta": {
            "t": 0, "v": {"b": False},
            "r": [rule(when("roles", ARRAY_CONTAINS, ["beta"]), {"b": True}, "v-beta")],
        },
        "newcomer": {
            "t": 0, "v": {"b": False},
            "r": [rule(when("signup", AFTER, 1_700_000_000), {"b": True}, "v-new")],
        },
        "layout": {"t": 1, "v": {"s": '{"columns": 2, "theme": "dark"}'}, "i": "v-layout"},
        "steps": {"t": 1, "v": {"s": '["cart", "pay"]'}},
        "answer": {"t": 1, "v": {"s": "42"}},  # JSON, but not of an object or an array
        "broken": {"t": 0, "v": {"s": "not a bool"}},  # a bool flag with a text value
    },
}  # fmt: skip


@pytest.fixture(autouse=True)
def _openfeature() -> Iterator[None]:
    # OpenFeature's providers, hooks and context are process-wide: leave none behind.
    api.shutdown()
    yield
    api.shutdown()


@pytest.fixture(autouse=True)
def _quiet(caplog: pytest.LogCaptureFixture) -> None:
    # "Cannot evaluate" and error logs are part of the normal path here.
    caplog.set_level(logging.CRITICAL + 1, logger="aioconfig.flags")


def serve(config: Config) -> OpenFeatureClient:
    api.set_provider_and_wait(AioconfigProvider(config))
    return api.get_client()


def ctx(targeting_key: str | None = None, **attributes: Any) -> EvaluationContext:
    return EvaluationContext(targeting_key, attributes)


# ---------------------------------------------------------------- reasons


async def test_the_provider_is_named_and_keeps_its_config() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        assert api.get_provider_metadata().name == "aioconfig"
        assert isinstance(client.provider, AioconfigProvider)
        assert client.provider.config is config


async def test_a_matched_targeting_rule_is_targeting_match() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        assert client.get_boolean_value("newCheckout", False, ctx("42", Country="HU")) is True
        details = client.get_boolean_details("newCheckout", False, ctx("42", Country="HU"))
        assert (details.value, details.reason, details.variant) == (
            True,
            Reason.TARGETING_MATCH,
            "v-hu",
        )
        assert details.flag_metadata == {"snapshot_version": 1, "matched_targeting_rule": 0}
        assert details.error_code is None


async def test_rules_that_do_not_match_give_default() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        details = serve(config).get_boolean_details("newCheckout", True, ctx("42", Country="AT"))
        assert (details.value, details.reason, details.variant) == (False, Reason.DEFAULT, "v-off")
        assert details.flag_metadata == {"snapshot_version": 1}


async def test_a_flag_without_rules_or_percentages_is_static() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        details = serve(config).get_boolean_details("darkMode", False, ctx("42"))
        assert (details.value, details.reason, details.variant) == (True, Reason.STATIC, "v-dark")


async def test_a_percentage_option_is_split() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        details = serve(config).get_boolean_details("rollout", False, ctx("42"))
        assert (details.value, details.reason, details.variant) == (True, Reason.SPLIT, "v-all")
        assert details.flag_metadata == {"snapshot_version": 1, "matched_percentage_option": 0}


async def test_a_rules_percentage_option_is_targeting_match_with_both_indexes() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        details = serve(config).get_boolean_details("huRollout", False, ctx("42", Country="HU"))
        assert (details.value, details.reason, details.variant) == (
            True,
            Reason.TARGETING_MATCH,
            "v-hu-all",
        )
        assert details.flag_metadata == {
            "snapshot_version": 1,
            "matched_targeting_rule": 0,
            "matched_percentage_option": 0,
        }


async def test_a_refresh_is_seen_by_the_next_resolution() -> None:
    source = MutableSource(flags=DOCUMENT)
    async with load(source, mode="manual") as config:
        client = serve(config)
        assert client.get_boolean_value("darkMode", False) is True
        changed = copy.deepcopy(DOCUMENT)
        changed["f"]["darkMode"] = {"t": 0, "v": {"b": False}, "i": "v-light"}
        source.set_flags(changed)
        await config.refresh(force=True)
        details = client.get_boolean_details("darkMode", True)
        assert (details.value, details.variant, details.reason) == (False, "v-light", Reason.STATIC)
        assert details.flag_metadata == {"snapshot_version": 2}


# ---------------------------------------------------------------- errors


async def test_an_unknown_key_is_flag_not_found() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        details = serve(config).get_boolean_details("nope", True, ctx("42"))
        assert (details.value, details.reason, details.error_code) == (
            True,
            Reason.ERROR,
            ErrorCode.FLAG_NOT_FOUND,
        )
        assert details.error_message is not None
        assert "'nope'" in details.error_message
        assert "'newCheckout'" in details.error_message


@pytest.mark.parametrize(
    ("flag_type", "key", "default"),
    [
        ("boolean", "greeting", False),
        ("string", "darkMode", "x"),
        ("integer", "darkMode", 7),  # a bool is no int here, though Python says it is one
        ("integer", "ratio", 7),
        ("float", "greeting", 1.5),
        ("float", "darkMode", 1.5),
        ("object", "darkMode", {"a": 1}),
        ("object", "greeting", {"a": 1}),  # text, but not JSON
        ("object", "answer", ["a"]),  # JSON, but of a number
    ],
)
async def test_a_value_of_another_type_is_type_mismatch(
    flag_type: str, key: str, default: Any
) -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        details = getattr(client, f"get_{flag_type}_details")(key, default, ctx("42"))
        assert (details.value, details.reason, details.error_code) == (
            default,
            Reason.ERROR,
            ErrorCode.TYPE_MISMATCH,
        )
        assert f"Flag {key!r} has a " in details.error_message


async def test_a_broken_flag_is_general_with_the_evaluators_message() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        details = serve(config).get_boolean_details("broken", True, ctx("42"))
        assert (details.value, details.reason, details.error_code) == (
            True,
            Reason.ERROR,
            ErrorCode.GENERAL,
        )
        assert details.error_message == config.get_value_details("broken", True).error


async def test_a_config_that_is_not_open_is_provider_not_ready() -> None:
    config = load(MutableSource(flags=DOCUMENT), mode="manual")
    details = serve(config).get_boolean_details("darkMode", False)
    assert (details.value, details.error_code) == (False, ErrorCode.PROVIDER_NOT_READY)
    async with config:
        assert serve(config).get_boolean_value("darkMode", False) is True
    details = api.get_client().get_boolean_details("darkMode", False)
    assert (details.value, details.error_code) == (False, ErrorCode.PROVIDER_NOT_READY)
    assert details.error_message is not None
    assert "closed" in details.error_message


# ---------------------------------------------------------------- types


async def test_every_type_resolves() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        assert client.get_string_value("greeting", "", ctx("42")) == "hello"
        assert client.get_integer_value("maxItems", 0, ctx("42")) == 10
        assert client.get_float_value("ratio", 0.0, ctx("42")) == 0.5
        whole = client.get_float_details("wholeRatio", 0.0, ctx("42"))
        assert (whole.value, type(whole.value), whole.reason) == (2.0, float, Reason.STATIC)
        layout = client.get_object_details("layout", {}, ctx("42"))
        assert (layout.value, layout.reason, layout.variant) == (
            {"columns": 2, "theme": "dark"},
            Reason.STATIC,
            "v-layout",
        )
        assert client.get_object_value("steps", [], ctx("42")) == ["cart", "pay"]


async def test_simple_flag_overrides_resolve_as_static() -> None:
    overrides = FlagOverrides(
        {"enabled": True, "name": "x", "limit": 3, "share": 0.25}, behaviour="local_only"
    )
    async with load(overrides, mode="manual") as config:
        client = serve(config)
        assert client.get_boolean_details("enabled", False).reason == Reason.STATIC
        assert client.get_string_value("name", "") == "x"
        assert client.get_integer_value("limit", 0) == 3
        assert client.get_float_value("share", 0.0) == 0.25


async def test_the_async_client_methods() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        hungarian = ctx("42", Country="HU")
        assert await client.get_boolean_value_async("newCheckout", False, hungarian) is True
        details = await client.get_string_details_async("greeting", "", ctx("42"))
        assert (details.value, details.reason) == ("hello", Reason.DEFAULT)
        assert await client.get_integer_value_async("maxItems", 0, ctx("42", logins=7)) == 50
        assert await client.get_float_value_async("ratio", 0.0) == 0.5
        assert await client.get_object_value_async("steps", []) == ["cart", "pay"]
        missing = await client.get_boolean_details_async("nope", False)
        assert missing.error_code == ErrorCode.FLAG_NOT_FOUND


# ---------------------------------------------------------------- the evaluation context


async def test_the_targeting_key_is_the_identifier() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        assert client.get_string_value("whoami", "", ctx("42")) == "42"
        assert client.get_string_value("whoami", "", ctx("7")) == "not 42"


async def test_email_and_country_in_either_spelling() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        for email in ("Email", "email"):
            context = ctx("1", **{email: "ada@example.com"})
            assert client.get_string_value("greeting", "", context) == "hi Ada"
        for country in ("Country", "country"):
            assert client.get_boolean_value("newCheckout", False, ctx("1", **{country: "HU"}))


async def test_custom_attributes_a_number_a_list_and_a_datetime() -> None:
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        assert client.get_integer_value("maxItems", 0, ctx("1", logins=7)) == 50
        assert client.get_integer_value("maxItems", 0, ctx("1", logins=3)) == 10
        assert client.get_boolean_value("beta", False, ctx("1", roles=["staff", "beta"])) is True
        assert client.get_boolean_value("beta", False, ctx("1", roles=["staff"])) is False
        late = datetime(2024, 1, 1, tzinfo=timezone.utc)
        early = datetime(2020, 1, 1, tzinfo=timezone.utc)
        assert client.get_boolean_value("newcomer", False, ctx("1", signup=late)) is True
        assert client.get_boolean_value("newcomer", False, ctx("1", signup=early)) is False


async def test_the_context_becomes_a_user() -> None:
    context = ctx("42", email="a@b.c", Country="HU", plan="pro", logins=7, roles=["beta"])
    assert _user(context) == User(
        "42", email="a@b.c", country="HU", custom={"plan": "pro", "logins": 7, "roles": ["beta"]}
    )
    # "Email" wins over "email"; a value that is not text is no email at all.
    assert _user(ctx("1", Email="A", email="a")) == User("1", email="A")
    assert _user(ctx("1", Email=7, email="a")) == User("1", email="a")
    assert _user(ctx("1", Country=["HU"])) == User("1")
    assert _user(ctx("", plan="pro")) == User("", custom={"plan": "pro"})
    assert _user(ctx()) is None
    assert _user(ctx("")) is None
    assert _user(None) is None


async def test_an_empty_context_uses_the_default_user() -> None:
    source = MutableSource(flags=DOCUMENT)
    async with load(source, mode="manual", default_user=User("42", country="HU")) as config:
        client = serve(config)
        assert client.get_string_value("whoami", "") == "42"
        assert client.get_boolean_value("newCheckout", False, EvaluationContext()) is True
        # Any context at all replaces the default user, the global one included.
        assert client.get_string_value("whoami", "", ctx("7")) == "not 42"
        api.set_evaluation_context(ctx("7"))
        assert client.get_string_value("whoami", "") == "not 42"


async def test_attributes_without_a_targeting_key_have_no_identifier() -> None:
    # As in ConfigCat's provider: no identifier, so rules on it cannot be evaluated (neither
    # EQUALS nor NOT EQUALS holds), while other attributes still target.
    source = MutableSource(flags=DOCUMENT)
    async with load(source, mode="manual", default_user=User("42")) as config:
        client = serve(config)
        details = client.get_string_details("whoami", "", ctx(Country="HU"))
        assert (details.value, details.reason) == ("someone", Reason.DEFAULT)
        assert client.get_boolean_value("newCheckout", False, ctx(Country="HU")) is True


@dataclass(frozen=True)
class ConfigCatProviderUser:
    """The user ConfigCat's own OpenFeature provider makes of a context (identifier None)."""

    identifier: Any
    email: Any
    country: Any
    custom: Mapping[str, Any] | None


async def test_results_match_configcats_own_provider() -> None:
    contexts = [
        ctx(Country="HU"),
        ctx(Email="ada@example.com", logins=9),
        ctx("42", Country="HU", roles=["beta"]),
        ctx("7", Email="ada@example.com", logins=1, signup=datetime(2024, 1, 1)),
    ]
    # By setting type: the client method to call, and a default of that type.
    calls: dict[int, tuple[str, Any]] = {
        0: ("get_boolean_details", False),
        1: ("get_string_details", ""),
        2: ("get_integer_details", 0),
        3: ("get_float_details", 0.0),
    }
    settings: dict[str, Any] = {k: v for k, v in DOCUMENT["f"].items() if k != "broken"}
    async with load(MutableSource(flags=DOCUMENT), mode="manual") as config:
        client = serve(config)
        with Oracle(copy.deepcopy(DOCUMENT)) as oracle:
            for context in contexts:
                attributes = dict(context.attributes)
                email, country = attributes.get("Email"), attributes.get("Country")
                theirs = ConfigCatProviderUser(context.targeting_key, email, country, attributes)
                for key, setting in settings.items():
                    method, default = calls[setting["t"]]
                    expected = oracle.evaluate(key, default, theirs)
                    details = getattr(client, method)(key, default, context)
                    assert details.error_code is None, (key, context)
                    assert (details.value, details.variant) == (
                        expected.value,
                        expected.variation_id,
                    ), (key, context)
