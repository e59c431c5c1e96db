from __future__ import annotations

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
