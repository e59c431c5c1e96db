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
    from . import get_config

    get_config().close(getattr(settings, "AIOCONFIG_CLOSE_TIMEOUT", 5.0))
