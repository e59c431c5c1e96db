from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings

# The machine is small and shared with real servers the tests start: time limits would make
# property tests flaky without making them any stronger.
settings.register_profile(
    "aioconfig", deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100
)
settings.load_profile("aioconfig")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """What a test's framework does to logging ends with the test: Litestar's default
    configuration, say, adds a handler on the root logger that writes to the stream pytest was
    capturing then, and a host thread's later record would go to that closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers and "LogCaptureHandler" not in type(handler).__name__:
            root.removeHandler(handler)
    root.setLevel(level)
