from __future__ import annotations

import aioconfig
import aioconfig.flags
import aioconfig.sources


def test_all_is_sorted_and_complete() -> None:
    for module in (aioconfig, aioconfig.sources, aioconfig.flags):
        assert list(module.__all__) == sorted(module.__all__), module.__name__
        assert isinstance(module.__all__, tuple)
        public = {
            name
            for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", "").startswith("aioconfig")
        }
        assert public <= set(module.__all__), public - set(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_version_is_a_string() -> None:
    assert isinstance(aioconfig.__version__, str)
    assert aioconfig.__version__.count(".") == 2
