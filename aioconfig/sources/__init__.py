"""Where configuration comes from: files, the environment, fixed mappings, HTTP, etcd; and
feature flags (ConfigCat, local overrides)."""

from __future__ import annotations

from ._base import NotModified as NotModified
from ._base import Payload as Payload
from ._base import Source as Source
from ._configcat import ConfigCat as ConfigCat
from ._env import Env as Env
from ._etcd import Etcd as Etcd
from ._file import File as File
from ._flag_overrides import FlagOverrides as FlagOverrides
from ._http import Http as Http
from ._static import Static as Static

__all__ = (
    "ConfigCat",
    "Env",
    "Etcd",
    "File",
    "FlagOverrides",
    "Http",
    "NotModified",
    "Payload",
    "Source",
    "Static",
)
