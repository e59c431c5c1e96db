"""Where configuration comes from: files (one, or a glob), the environment (and a ``.env``
file), a secrets directory, fixed mappings, HTTP, etcd; and
feature flags (ConfigCat, local overrides).

The network sources (:class:`Http`, :class:`Etcd`, :class:`ConfigCat`) are imported on first use,
so that a configuration of files alone never pays for importing aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._lazy import attribute as _attribute
from ._base import NotModified as NotModified
from ._base import Payload as Payload
from ._base import Source as Source
from ._env import Env as Env
from ._file import File as File
from ._flag_overrides import FlagOverrides as FlagOverrides
from ._glob import Glob as Glob
from ._secrets_dir import SecretsDir as SecretsDir
from ._static import Static as Static

if TYPE_CHECKING:
    from ._azure import AzureAppConfig as AzureAppConfig
    from ._configcat import ConfigCat as ConfigCat
    from ._etcd import Etcd as Etcd
    from ._http import Http as Http

# Name -> module, for the sources whose modules import aiohttp.
_LAZY = {
    "AzureAppConfig": "._azure",
    "ConfigCat": "._configcat",
    "Etcd": "._etcd",
    "Http": "._http",
}

__all__ = (
    "AzureAppConfig",
    "ConfigCat",
    "Env",
    "Etcd",
    "File",
    "FlagOverrides",
    "Glob",
    "Http",
    "NotModified",
    "Payload",
    "SecretsDir",
    "Source",
    "Static",
)


def __getattr__(name: str) -> Any:
    return _attribute(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
