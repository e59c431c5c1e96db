"""The Django app: ``INSTALLED_APPS = [..., "aioconfig.integrations.django"]``."""

from __future__ import annotations

import atexit

from django.apps import AppConfig
from django.conf import settings

from . import SETTING

__all__ = ("AioConfigAppConfig",)


class AioConfigAppConfig(AppConfig):
    """Registers the system check and closes ``settings.AIOCONFIG`` at shutdown."""

    name = "aioconfig.integrations.django"
    label = "aioconfig"
    verbose_name = "aioconfig"
    default = True

    def ready(self) -> None:
        from . import _checks  # noqa: F401 - registers the check

        if getattr(settings, SETTING, None) is not None:
            atexit.register(_close)


def _close() -> None:
    """At exit: close ``settings.AIOCONFIG`` if it is a SyncConfig. Anything else there is not
    ours to close (the system check reports it), and an exit hook must not raise."""
    from ..._sync import SyncConfig

    config = getattr(settings, SETTING, None)
    if isinstance(config, SyncConfig):
        config.close(getattr(settings, "AIOCONFIG_CLOSE_TIMEOUT", 5.0))
