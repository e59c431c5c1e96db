"""Django: one live configuration in ``settings.py``, read live by views, checked by ``check``.

In ``settings.py``::

    import aioconfig.sync

    AIOCONFIG = aioconfig.sync.load("settings.toml", refresh_interval=10)
    SECRET_KEY = AIOCONFIG["django.secret_key"]      # static settings: read once, at start-up
    INSTALLED_APPS = [..., "aioconfig.integrations.django"]
    TEMPLATES = [{..., "OPTIONS": {"context_processors": [
        ..., "aioconfig.integrations.django.context_processor"]}}]

Views read ``settings.AIOCONFIG["feature.enabled"]`` (live, no ``refresh()``), or
``get_snapshot(request)`` for one consistent version per request; templates get that snapshot
as ``aioconfig``. Async views under ASGI use the same object (reads never block; ``await
settings.AIOCONFIG.arefresh()`` refreshes).

The app (``aioconfig.integrations.django``) adds:

* a system check (``manage.py check``, also run by ``runserver`` and ``migrate``) that refreshes
  once and reports a candidate the validators reject (``aioconfig.E005``, one per broken rule)
  and sources that cannot be read (``aioconfig.E004``), the last good configuration serving;
* closing at shutdown: Django has no shutdown signal, so ``AppConfig.ready()`` registers the
  close with ``atexit`` (bounded by ``AIOCONFIG_CLOSE_TIMEOUT``, 5 s), which every server runs
  as its worker processes exit.

The setting's name is ``AIOCONFIG``; ``AIOCONFIG_CHECK_TIMEOUT`` (10 s) bounds the check.
"""

from __future__ import annotations

from typing import Any

from ..._extras import needs

with needs("django", "django", by=__name__):
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.http import HttpRequest

from ..._snapshot import Snapshot
from ..._sync import SyncConfig

__all__ = ("context_processor", "get_config", "get_snapshot")

SETTING = "AIOCONFIG"
_PINNED = "_aioconfig_snapshot"


def get_config() -> SyncConfig:
    """``settings.AIOCONFIG``, checked to be an ``aioconfig.sync.load(...)`` configuration."""
    config = getattr(settings, SETTING, None)
    if not isinstance(config, SyncConfig):
        raise ImproperlyConfigured(
            f"settings.{SETTING} must be an aioconfig.sync.load(...) configuration, "
            f"got {type(config).__name__}"
        )
    return config


def get_snapshot(request: HttpRequest) -> Snapshot:
    """The snapshot pinned to ``request`` on first use: one version for the whole request."""
    attributes = vars(request)
    snapshot: Snapshot | None = attributes.get(_PINNED)
    if snapshot is None:
        snapshot = attributes[_PINNED] = get_config().snapshot
    return snapshot


def context_processor(request: HttpRequest) -> dict[str, Any]:
    """Templates get the request's snapshot as ``aioconfig`` (``{{ aioconfig.db.host }}``)."""
    return {"aioconfig": get_snapshot(request)}
