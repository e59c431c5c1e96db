"""Flags on a Config: the API, overrides, layering, change events, the cache, failsafe reads."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio
import pytest

from aioconfig import ClosedError, ParseError, load
from aioconfig._cache import FileCache
from aioconfig.flags import User
from aioconfig.sources import FlagOverrides, Static
from aioconfig.testing import MutableSource

pytestmark = pytest.mark.anyio


def bool_flag(value: bool, rules: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"t": 0, "v": {"b": value}, "i": f"v-{value}".lower(), "r": rules or []}


def country_is(country: str, value: Any, kind: str = "b") -> dict[str, Any]:
    return {"c": [{"u": {"a": "Country", "c": 0, "l": [country]}}], "s": {"v": {kind: value}}}


def needs(key: str, value: bool) -> dict[str, Any]:
    """A rule serving True when prerequisite flag ``key`` evaluates to ``value``."""
    return {"c": [{"p": {"f": key, "c": 0, "v": {"b": value}}}], "s": {"v": {"b": True}}}


REMOTE: dict[str, Any] = {
    "p": {"s": "salt"},
    "f": {
        "newCheckout": bool_flag(False, [country_is("HU", True)]),
        "banner": {"t": 1, "v": {"s": "remote"}},
        "beta": bool_flag(False),
        "dependsOnBeta": bool_flag(False, [needs("beta", True)]),
    },
}


# ---------------------------------------------------------------- the API


async def test_get_value_evaluates_the_current_snapshot_for_the_user() -> None:
    async with load(MutableSource(flags=REMOTE), mode="manual") as config:
        assert config.get_value("newCheckout", False, User("1", country="HU")) is True
        assert config.get_value("newCheckout", False, User("1", country="AT")) is False
        assert config.get_value("newCheckout", False) is False
        details = config.get_value_details("newCheckout", False, User("1", country="HU"))
        assert (details.value, details.matched_targeting_rule) == (True, 0)
        assert config.get_all_keys() == ["newCheckout", "banner", "beta", "dependsOnBeta"]
        assert config.get_all_values(User("1", country="HU")) == {
            "newCheckout": True,
            "banner": "remote",
            "beta": False,
            "dependsOnBeta": False,
        }
        # The snapshot answers the same questions, from one moment.
        assert config.snapshot.get_value("banner", "") == "remote"
        assert "flags=4" in repr(config.snapshot)


async def test_default_user_applies_when_a_call_names_none() -> None:
    hungarian = User("7", country="HU")
    async with load(MutableSource(flags=REMOTE), mode="manual", default_user=hungarian) as config:
        assert config.get_value("newCheckout", False) is True
        assert config.get_value("newCheckout", False, User("8", country="AT")) is False
        assert config.snapshot.get_value("newCheckout", False) is True
        assert config.get_all_values()["newCheckout"] is True


def test_default_user_must_be_a_user() -> None:
    with pytest.raises(TypeError, match=r"default_user must be an aioconfig\.flags\.User, got str"):
        load(Static({}), default_user="42")  # type: ignore[arg-type]


async def test_get_value_is_failsafe(caplog: pytest.LogCaptureFixture) -> None:
    broken = {"f": {"mistyped": {"t": 0, "v": {"s": "not a bool"}}}}
    async with load(MutableSource(flags=broken), mode="manual") as config:
        with caplog.at_level(logging.ERROR, logger="aioconfig.flags"):
            assert config.get_value("missing", "fallback") == "fallback"
            assert config.get_value("mistyped", True) is True
        details = config.get_value_details("missing", 1)
        assert details.is_default_value and details.error is not None
        assert "missing" in details.error
        assert config.get_all_values() == {"mistyped": None}
    assert len([r for r in caplog.records if r.name == "aioconfig.flags"]) >= 2


async def test_a_config_without_flag_sources_has_no_flags() -> None:
    async with load(Static({"a": 1}), mode="manual") as config:
        assert config.get_all_keys() == []
        assert config.get_value("anything", 3) == 3
        assert len(config.flags) == 0


async def test_flag_reads_on_a_config_that_is_not_open_raise() -> None:
    config = load(MutableSource(flags=REMOTE), mode="manual")
    with pytest.raises(ClosedError, match="not open"):
        config.get_value("beta", False)
    async with config:
        pass
    with pytest.raises(ClosedError, match="closed"):
        config.get_value("beta", False)
    with pytest.raises(ClosedError, match="closed"):
        config.get_all_keys()


# ---------------------------------------------------------------- overrides


async def test_local_over_remote_replaces_remote_flags_with_the_same_key() -> None:
    local = FlagOverrides({"banner": "local", "extra": 3}, behaviour="local_over_remote")
    async with load(MutableSource(flags=REMOTE), local, mode="manual") as config:
        assert config.get_value("banner", "") == "local"
        assert config.get_value("extra", 0) == 3
        assert config.get_value("newCheckout", False, User("1", country="HU")) is True
        assert config.get_all_keys() == ["newCheckout", "banner", "beta", "dependsOnBeta", "extra"]


async def test_remote_over_local_only_fills_in_missing_keys() -> None:
    local = FlagOverrides({"banner": "local", "extra": 3}, behaviour="remote_over_local")
    async with load(MutableSource(flags=REMOTE), local, mode="manual") as config:
        assert config.get_value("banner", "") == "remote"
        assert config.get_value("extra", 0) == 3


async def test_local_only_ignores_remote_flags_but_keeps_remote_settings() -> None:
    local = FlagOverrides({"banner": "local"}, behaviour="local_only")
    remote = MutableSource({"db": {"port": 5432}}, flags=REMOTE)
    async with load(remote, local, mode="manual") as config:
        assert config.get_all_keys() == ["banner"]
        assert config.get_value("newCheckout", "default") == "default"
        assert config["db.port"] == 5432


async def test_the_order_of_sources_does_not_change_an_overrides_behaviour() -> None:
    local = FlagOverrides({"banner": "local"}, behaviour="local_over_remote")
    async with load(local, MutableSource(flags=REMOTE), mode="manual") as config:
        assert config.get_value("banner", "") == "local"


async def test_an_overridden_prerequisite_is_the_one_remote_flags_depend_on() -> None:
    # ConfigCat looks prerequisites up in the combined flags: "beta" is True locally.
    local = FlagOverrides({"beta": True}, behaviour="local_over_remote")
    remote = MutableSource(flags=REMOTE)
    async with load(remote, local, mode="manual") as config:
        assert config.get_value("dependsOnBeta", False, User("1")) is True
    # The parsed remote document itself was not relinked.
    async with load(MutableSource(flags=REMOTE), mode="manual") as config:
        assert config.get_value("dependsOnBeta", False, User("1")) is False


async def test_a_later_remote_flag_source_overrides_an_earlier_one() -> None:
    first = MutableSource(flags=REMOTE, name="first")
    second = MutableSource(flags={"f": {"beta": bool_flag(True)}}, name="second")
    async with load(first, second, mode="manual") as config:
        assert config.get_value("beta", False) is True
        assert config.get_value("dependsOnBeta", False, User("1")) is True
        assert config.get_value("banner", "") == "remote"


async def test_overrides_from_a_file_in_both_formats(tmp_path: Path) -> None:
    simple = tmp_path / "flags.json"
    simple.write_text(json.dumps({"flags": {"newCheckout": True, "ratio": 0.5}}))
    full = tmp_path / "config_v6.json"
    full.write_text(json.dumps(REMOTE))
    async with load(
        FlagOverrides(full, behaviour="local_only"),
        FlagOverrides(simple, behaviour="local_over_remote", watch=False),
        mode="manual",
    ) as config:
        assert config.get_value("newCheckout", False, User("1", country="AT")) is True
        assert config.get_value("ratio", 0.0) == 0.5
        assert config.get_value("banner", "") == "remote"  # local_only drops remote, not local

        simple.write_text(json.dumps({"flags": {"newCheckout": False}}))
        result = await config.refresh(force=True)
        assert result.changed and result.flags == {"newCheckout", "ratio"}
        # The simple override, layered over the full document, now serves False to everyone.
        assert config.get_value("newCheckout", True, User("1", country="HU")) is False


async def test_a_malformed_override_file_keeps_the_last_good_flags(tmp_path: Path) -> None:
    path = tmp_path / "flags.yaml"
    path.write_text("flags:\n  beta: true\n")
    async with load(FlagOverrides(path, behaviour="local_only", watch=False), mode="manual") as c:
        path.write_text("f:\n  beta: [1, 2]\n")  # a config_v6 document; a setting is an object
        result = await c.refresh(force=True)
        assert isinstance(result.error, ParseError)
        assert str(path) in str(result.error) and "beta" in str(result.error)
        assert c.get_value("beta", False) is True
        path.write_text("nothing: here\n")
        result = await c.refresh(force=True)
        assert result.error is not None and "expected a 'flags' object" in str(result.error)


async def test_an_override_of_an_unsupported_type_returns_the_default_as_in_the_sdk() -> None:
    # configcat-client's LocalDictionaryFlagOverrides does the same (test_differential.py).
    local = FlagOverrides({"x": [1], "y": None, "fine": 1}, behaviour="local_only")
    async with load(local, mode="manual") as config:
        assert config.get_value("fine", 0) == 1
        for key in ("x", "y"):
            details = config.get_value_details(key, "default")
            assert details.value == "default"
            assert details.error is not None and "Unsupported setting type" in details.error


def test_a_bad_override_behaviour_fails_at_once() -> None:
    with pytest.raises(ValueError, match="behaviour must be one of"):
        FlagOverrides({}, behaviour="local")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="flags must be a mapping or a file path"):
        FlagOverrides(42, behaviour="local_only")  # type: ignore[arg-type]


# ---------------------------------------------------------------- flags change with the snapshot


async def test_a_flag_change_is_one_swap_with_the_changed_flag_keys() -> None:
    source = MutableSource({"limit": 1}, flags=REMOTE)
    async with load(source, mode="manual") as config, config.changes() as events:
        before = config.snapshot
        changed = json.loads(json.dumps(REMOTE))
        changed["f"]["beta"] = bool_flag(True)
        source.set({"limit": 2})
        source.set_flags(changed)
        result = await config.refresh(force=True)
        # beta changed; dependsOnBeta depends on it, so its answer may change too.
        assert result.flags == {"beta", "dependsOnBeta"}
        assert result.keys == {"limit"}
        event = await anext(events)
        assert (event.keys, event.flags) == (
            frozenset({"limit"}),
            frozenset({"beta", "dependsOnBeta"}),
        )
        assert "flags=['beta', 'dependsOnBeta']" in repr(event)
        # The old snapshot still answers as before: flags and settings moved together.
        assert before.get_value("beta", None) is False and before["limit"] == 1
        assert config.get_value("dependsOnBeta", False, User("1")) is True


async def test_only_flags_changing_still_swaps_and_unchanged_flags_do_not() -> None:
    source = MutableSource({"limit": 1}, flags=REMOTE)
    async with load(source, mode="manual") as config:
        source.set_flags({"f": {"banner": {"t": 1, "v": {"s": "new"}}}})
        result = await config.refresh(force=True)
        assert result.keys == frozenset()
        assert result.flags == {"newCheckout", "banner", "beta", "dependsOnBeta"}
        assert config.version == 2
        source.set({"limit": 1})  # a new version with the same data and the same flags
        result = await config.refresh(force=True)
        assert not result.changed and config.version == 2


async def test_a_subscription_by_key_gets_flag_changes_under_that_key() -> None:
    source = MutableSource(flags=REMOTE)
    async with load(source, mode="manual") as config, config.changes("banner") as events:
        source.set_flags({**REMOTE, "f": {**REMOTE["f"], "beta": bool_flag(True)}})
        await config.refresh(force=True)
        source.set_flags({**REMOTE, "f": {**REMOTE["f"], "banner": {"t": 1, "v": {"s": "x"}}}})
        await config.refresh(force=True)
        event = await anext(events)
        assert event.flags == {"banner"} and event.new.version == 3


async def test_sentinels_hold_settings_back_but_not_flags() -> None:
    source = MutableSource({"a": 1, "sentinel": 1}, flags=REMOTE)
    async with load(source, mode="manual", refresh_on=["sentinel"]) as config:
        source.set({"a": 2, "sentinel": 1})
        source.set_flags({**REMOTE, "f": {**REMOTE["f"], "beta": bool_flag(True)}})
        result = await config.refresh(force=True)
        assert result.flags == {"beta", "dependsOnBeta"} and result.keys == frozenset()
        assert config["a"] == 1 and config.get_value("beta", False) is True
        source.set({"a": 2, "sentinel": 2})
        result = await config.refresh(force=True)
        assert result.keys == {"a", "sentinel"} and result.flags == frozenset()
        assert config["a"] == 2


async def test_pushed_flags_swap_like_polled_ones() -> None:
    source = MutableSource(flags=REMOTE, push=True)
    async with load(source) as config, config.changes() as events:
        source.set_flags({"f": {"beta": bool_flag(True)}})
        event = await anext(events)
        assert "beta" in event.flags
        assert config.get_value("beta", False) is True


# ---------------------------------------------------------------- the cache


async def test_flags_come_back_from_the_cache(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache.json")
    source = MutableSource({"a": 1}, flags=REMOTE)
    local = FlagOverrides({"banner": "local"}, behaviour="local_over_remote")
    async with load(source, local, mode="manual", cache=cache):
        pass
    source.fail(anyio.BrokenResourceError())
    async with load(source, local, mode="manual", cache=cache, max_init_wait=0.2) as config:
        assert config.snapshot.from_cache
        assert config.get_value("newCheckout", False, User("1", country="HU")) is True
        assert config.get_value("banner", "") == "local"
        assert config.get_value("dependsOnBeta", True, User("1")) is False


# ---------------------------------------------------------------- the interval


def test_the_refresh_interval_is_the_shortest_any_source_asks_for() -> None:
    class Slow(MutableSource):
        refresh_interval = 60.0

    assert load(Slow())._engine.interval == 60.0
    assert load(Slow(), Static({}))._engine.interval == 30.0
    assert load(Slow(), refresh_interval=5)._engine.interval == 5.0


# ---------------------------------------------------------------- the fast path


async def test_flags_without_targeting_still_log_and_warn(caplog: pytest.LogCaptureFixture) -> None:
    source = MutableSource(
        flags={"f": {"plain": bool_flag(True), "text": {"t": 1, "v": {"s": "x"}}}}
    )
    async with load(source, mode="manual") as config:
        for _ in range(3):  # warm: the answer comes without an evaluation
            assert config.get_value("plain", False) is True
        with caplog.at_level(logging.INFO, logger="aioconfig.flags"):
            assert config.get_value("plain", False) is True
        assert any("Evaluating 'plain'" in r.getMessage() for r in caplog.records)
        caplog.clear()
        # A default of another type takes the full path, which warns as ConfigCat does.
        assert config.get_value("text", 0) == "x"
        assert any("does not match the type" in r.getMessage() for r in caplog.records)
        source.set_flags({"f": {"plain": bool_flag(False)}})
        await config.refresh(force=True)
        assert config.get_value("plain", True) is False
    with pytest.raises(ClosedError):
        config.get_value("plain", True)


async def test_flags_with_targeting_answer_as_get_value_details_does(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flags = {
        "p": {"s": "salt"},
        "f": {
            "hu": bool_flag(False, [country_is("HU", True)]),
            "split": {"t": 1, "v": {"s": "rest"}, "p": [{"p": 50, "v": {"s": "half"}}]},
        },
    }
    hungarian = User("7", country="HU")
    async with load(MutableSource(flags=flags), mode="manual", default_user=hungarian) as config:
        users = [None, hungarian, User("8", country="AT"), User("9", country="DE")]
        with caplog.at_level(logging.WARNING, logger="aioconfig.flags"):
            for user in users:
                for key, default in (("hu", False), ("split", ""), ("split", None)):
                    expected = config.get_value_details(key, default, user).value
                    assert config.get_value(key, default, user) == expected
            assert caplog.records == []
            # A default of another type: the answer still comes, with the warning.
            assert config.get_value("hu", "no", hungarian) is True
            assert any("does not match the type" in r.getMessage() for r in caplog.records)
            caplog.clear()
            # A user without the attribute: the warning the general path gives.
            assert config.get_value("hu", False, User("11")) is False
            assert any("attribute is missing" in r.getMessage() for r in caplog.records)
        with caplog.at_level(logging.INFO, logger="aioconfig.flags"):
            assert config.get_value("hu", False, hungarian) is True
        assert any("Evaluating 'hu'" in r.getMessage() for r in caplog.records)
    with pytest.raises(ClosedError):
        config.get_value("hu", False, hungarian)
