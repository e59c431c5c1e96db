"""A drop-in for ``azure.appconfiguration.provider.load``: the same keywords, an aioconfig Config.

```python
from aioconfig.azure import SettingSelector, WatchKey, load

config = await load(connection_string=..., refresh_on=[WatchKey("sentinel")], refresh_interval=10)
config["app:settings:color"]  # the provider's keys and values; refreshed in the background
```

Unlike the provider's ``load``, a misspelled keyword is a ``TypeError``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from ._config import Config
from ._load import load as _load
from .sources._azure import AzureAppConfig, SecretResolver, SettingSelector, WatchKey

__all__ = ("AzureAppConfig", "SettingSelector", "WatchKey", "load")

DEFAULT_STARTUP_TIMEOUT = 100.0  # the provider's


def load(
    endpoint: str | None = None,
    credential: Any = None,
    *,
    connection_string: str | None = None,
    selects: Sequence[SettingSelector] | None = None,
    trim_prefixes: Iterable[str] = (),
    refresh_on: Iterable[WatchKey | str | tuple[str, str]] | None = None,
    refresh_interval: float = 30,
    refresh_enabled: bool | None = None,
    on_refresh_success: Callable[[], Any] | None = None,
    on_refresh_error: Callable[[Exception], Any] | None = None,
    feature_flag_enabled: bool = False,
    feature_flag_selectors: Sequence[SettingSelector] | None = None,
    feature_flag_refresh_enabled: bool = False,
    feature_flag_refresh_interval: float | None = None,
    keyvault_credential: Any = None,
    secret_resolver: SecretResolver | None = None,
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
    separator: str | None = None,
    client_options: Mapping[str, Any] | None = None,
    **options: Any,
) -> Config:
    """The provider's ``load()``, as an aioconfig :class:`~aioconfig.Config`.

    ``await`` it (or ``async with`` it). ``refresh_interval`` (at least 1 s, default 30 s) is
    how often the background checks the sentinels (``refresh_on``) or, with
    ``refresh_enabled=True`` and no sentinel, every page of the selection;
    ``feature_flag_refresh_interval`` (default: ``refresh_interval``) how often the flags;
    the background polls at the shorter of the two and checks the other only when it is due.
    ``startup_timeout`` is ``max_init_wait``. ``options`` go to :func:`aioconfig.load`
    (``validators``, ``cache``, ``mode``...); a name it does not know is a ``TypeError``.
    """
    # The intervals are checked by AzureAppConfig, which takes them too.
    if isinstance(startup_timeout, bool) or not isinstance(startup_timeout, (int, float)):
        raise TypeError(
            f"startup_timeout must be a number of seconds, got {type(startup_timeout).__name__}"
        )
    if startup_timeout < 0:
        raise ValueError("startup_timeout must be >= 0")
    unknown = set(options) - set(inspect.signature(_load).parameters)
    if unknown:
        raise TypeError(f"load() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    source = AzureAppConfig(
        endpoint,
        credential,
        connection_string=connection_string,
        selects=selects,
        trim_prefixes=trim_prefixes,
        refresh_on=refresh_on or (),
        refresh_enabled=refresh_enabled,
        refresh_interval=refresh_interval,
        feature_flag_enabled=feature_flag_enabled,
        feature_flag_selectors=feature_flag_selectors,
        feature_flag_refresh_enabled=feature_flag_refresh_enabled,
        feature_flag_refresh_interval=feature_flag_refresh_interval,
        keyvault_credential=keyvault_credential,
        secret_resolver=secret_resolver,
        separator=separator,
        client_options=client_options,
        clock=options.get("clock"),
    )
    return _load(
        source,
        refresh_interval=source.refresh_interval,
        max_init_wait=float(startup_timeout),
        on_refresh_success=None if on_refresh_success is None else _on_change(on_refresh_success),
        on_refresh_error=on_refresh_error,
        **options,
    )


def _on_change(callback: Callable[[], Any]) -> Callable[[Any], Awaitable[None]]:
    """The provider calls ``on_refresh_success()`` when a refresh found a change, only then."""

    async def call(result: Any) -> None:
        if result.changed:
            outcome = callback()
            if inspect.isawaitable(outcome):
                await outcome

    return call
