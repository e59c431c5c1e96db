"""WarningLimit: a flag's repeated warning is let through once, or once per interval."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from aioconfig.flags import User, WarningLimit, evaluate, parse_flags

LOGGER = logging.getLogger("aioconfig.flags")

DOCUMENT = {
    "f": {
        "byCountry": {
            "t": 0,
            "v": {"b": False},
            "r": [{"c": [{"u": {"a": "Country", "c": 16, "l": ["HU"]}}], "s": {"v": {"b": True}}}],
        },
        "byEmail": {
            "t": 0,
            "v": {"b": False},
            "r": [{"c": [{"u": {"a": "Email", "c": 16, "l": ["a@b"]}}], "s": {"v": {"b": True}}}],
        },
        "both": {
            "t": 0,
            "v": {"b": False},
            "r": [
                {"c": [{"u": {"a": "Country", "c": 16, "l": ["HU"]}}], "s": {"v": {"b": True}}},
                {"c": [{"u": {"a": "Email", "c": 16, "l": ["a@b"]}}], "s": {"v": {"b": True}}},
            ],
        },
    }
}
FLAGS = parse_flags(DOCUMENT)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def limit() -> Iterator[WarningLimit]:
    clock = Clock()
    limit = WarningLimit(interval=60.0, clock=clock)
    LOGGER.addFilter(limit)
    try:
        yield limit
    finally:
        LOGGER.removeFilter(limit)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_repeated_warning_passes_once_per_interval(
    limit: WarningLimit, caplog: pytest.LogCaptureFixture
) -> None:
    user = User("1")
    with caplog.at_level(logging.WARNING, logger="aioconfig.flags"):
        for _ in range(5):
            assert evaluate(FLAGS, "byCountry", None, user).value is False
        assert len(_messages(caplog)) == 1
        assert limit.suppressed == 4
        limit._clock.now = 59.0  # type: ignore[attr-defined]
        evaluate(FLAGS, "byCountry", None, user)
        assert len(_messages(caplog)) == 1
        limit._clock.now = 121.0  # type: ignore[attr-defined]
        evaluate(FLAGS, "byCountry", None, user)
        assert len(_messages(caplog)) == 2


def test_each_flag_and_reason_is_limited_on_its_own(
    limit: WarningLimit, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="aioconfig.flags"):
        for _ in range(3):
            evaluate(FLAGS, "byCountry", None, User("1"))
            evaluate(FLAGS, "byEmail", None, User("1"))
            evaluate(FLAGS, "both", None, User("1"))  # two conditions, two reasons
            evaluate(FLAGS, "byCountry", None)  # no user at all: another reason
            evaluate(FLAGS, "nope", None)  # an error: limited too
            evaluate(FLAGS, "byCountry", "text", User("1", country="HU"))  # default's type
    messages = _messages(caplog)
    assert len(messages) == 7
    assert sum("setting 'both'" in m for m in messages) == 2
    assert sum("User Object is missing" in m for m in messages) == 1
    assert sum("not found" in m for m in messages) == 1
    assert sum("type of a setting" in m for m in messages) == 1


def test_once_for_good_and_the_evaluation_log_is_never_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    limit = WarningLimit()
    LOGGER.addFilter(limit)
    try:
        with caplog.at_level(logging.INFO, logger="aioconfig.flags"):
            for _ in range(3):
                evaluate(FLAGS, "byCountry", None, User("1"))
    finally:
        LOGGER.removeFilter(limit)
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO", "INFO", "INFO"]
    assert limit.suppressed == 2


def test_memory_is_bounded() -> None:
    limit = WarningLimit(max_keys=2)
    records = [
        logging.LogRecord("aioconfig.flags", logging.WARNING, __file__, 1, "m", (), None)
        for _ in range(3)
    ]
    for n, record in enumerate(records):
        record.flag_key = f"flag{n}"
    assert all(limit.filter(r) for r in records)
    assert len(limit._last) == 1  # the third started the memory again
    plain = logging.LogRecord("aioconfig.flags", logging.WARNING, __file__, 1, "m", (), None)
    assert limit.filter(plain) and limit.filter(plain)  # not about a flag: never held back


@pytest.mark.parametrize(("interval", "max_keys"), [(0, 10), (-1.0, 10), (None, 0)])
def test_bad_arguments(interval: float | None, max_keys: int) -> None:
    with pytest.raises(ValueError, match=r"interval|max_keys"):
        WarningLimit(interval, max_keys=max_keys)
