"""Optional dependencies: an import that fails names the extra that installs it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ("needs",)


@contextmanager
def needs(module: str, extra: str, *, by: str) -> Iterator[None]:
    """Imports of ``module`` inside fail with ``pip install 'aioconfig[extra]'`` in the message.

    ```python
    with needs("starlette", "starlette", by=__name__):
        from starlette.requests import HTTPConnection
    ```

    Only a missing ``module`` (or a submodule of it) is translated: an error inside an installed
    one is its own, and passes as it is.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing != module and not missing.startswith(module + "."):
            raise
        raise ModuleNotFoundError(
            f"{by} needs {module}, which is not installed: pip install 'aioconfig[{extra}]'",
            name=exc.name,
        ) from exc
