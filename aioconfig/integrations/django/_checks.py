"""``manage.py check``: is the live configuration's source readable and its data valid now?"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

from ..._exceptions import (
    ClosedError,
    LoadError,
    SourceError,
    ValidationError,
)
from ..._sync import SyncConfig
from . import SETTING

HINT_SERVING = "The last good configuration keeps serving until this is fixed."


@checks.register("aioconfig")
def check_configuration(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[checks.CheckMessage]:
    """Refresh once (forced) and report what would stop a new configuration being used."""
    config = getattr(settings, SETTING, None)
    if config is None:
        return [
            checks.Warning(
                f"settings.{SETTING} is not set",
                hint=f"Add {SETTING} = aioconfig.sync.load(...) to your settings module.",
                id="aioconfig.W001",
            )
        ]
    if not isinstance(config, SyncConfig):
        return [
            checks.Error(
                f"settings.{SETTING} is a {type(config).__name__}, "
                "not an aioconfig.sync.load(...) configuration",
                id="aioconfig.E001",
            )
        ]
    timeout = getattr(settings, "AIOCONFIG_CHECK_TIMEOUT", 10.0)
    try:
        result = config.refresh(force=True, timeout=timeout)
    except ClosedError:
        return [checks.Error(f"settings.{SETTING} is closed", id="aioconfig.E002")]
    except TimeoutError:
        return [
            checks.Error(
                f"settings.{SETTING}: the sources gave no answer within {timeout}s",
                hint="Raise AIOCONFIG_CHECK_TIMEOUT, or check that the sources are reachable.",
                id="aioconfig.E003",
            )
        ]
    return [] if result.error is None else list(_messages([result.error]))


def _messages(errors: Iterable[Exception]) -> Iterable[checks.CheckMessage]:
    for error in errors:
        if isinstance(error, LoadError):
            yield from _messages(error.errors)
        elif isinstance(error, ValidationError) and error.details:
            for failure in error.details:
                yield checks.Error(
                    failure.message, hint=HINT_SERVING, obj=failure.key, id="aioconfig.E005"
                )
        elif isinstance(error, ValidationError):
            yield checks.Error(str(error), hint=HINT_SERVING, id="aioconfig.E005")
        elif isinstance(error, SourceError):
            yield checks.Error(
                f"cannot read source: {error}",
                hint=HINT_SERVING,
                obj=error.source,
                id="aioconfig.E004",
            )
        else:
            yield checks.Error(
                f"refreshing failed: {type(error).__name__}: {error}",
                hint=HINT_SERVING,
                id="aioconfig.E006",
            )
