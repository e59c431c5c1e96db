"""aioconfig: asyncio-native configuration with background refresh and immutable snapshots.

The names that bring the engine (the Config, ``load``, events, caches: anyio and asyncio with
them) are imported on first use, so that reading a file once (the command line) or importing
the exceptions costs no event loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._exceptions import ClosedError as ClosedError
from ._exceptions import ConfigError as ConfigError
from ._exceptions import InitialLoadError as InitialLoadError
from ._exceptions import InitialValidationError as InitialValidationError
from ._exceptions import KeyNotFound as KeyNotFound
from ._exceptions import LoadError as LoadError
from ._exceptions import ParseError as ParseError
from ._exceptions import SourceError as SourceError
from ._exceptions import SourceUnavailable as SourceUnavailable
from ._exceptions import ValidationError as ValidationError
from ._exceptions import ValidationFailure as ValidationFailure
from ._layers import add_converter as add_converter
from ._lazy import attribute as _attribute
from ._pipeline import WatchKey as WatchKey
from ._secrets import Secret as Secret
from ._snapshot import Snapshot as Snapshot
from ._validators import Validator as Validator
from ._validators import load_validators as load_validators

if TYPE_CHECKING:
    from ._cache import Cache as Cache
    from ._cache import FileCache as FileCache
    from ._config import Config as Config
    from ._config import ConfigStatistics as ConfigStatistics
    from ._config import ConfigStatus as ConfigStatus
    from ._config import SourceStatus as SourceStatus
    from ._engine import RefreshResult as RefreshResult
    from ._events import ChangeEvent as ChangeEvent
    from ._events import ChangeStream as ChangeStream
    from ._load import load as load

# Name -> module, for the names whose modules import anyio (and asyncio with it).
_LAZY = {
    "Cache": "._cache",
    "ChangeEvent": "._events",
    "ChangeStream": "._events",
    "Config": "._config",
    "ConfigStatistics": "._config",
    "ConfigStatus": "._config",
    "FileCache": "._cache",
    "RefreshResult": "._engine",
    "SourceStatus": "._config",
    "load": "._load",
}

__version__ = "0.1.0"

__all__ = (
    "Cache",
    "ChangeEvent",
    "ChangeStream",
    "ClosedError",
    "Config",
    "ConfigError",
    "ConfigStatistics",
    "ConfigStatus",
    "FileCache",
    "InitialLoadError",
    "InitialValidationError",
    "KeyNotFound",
    "LoadError",
    "ParseError",
    "RefreshResult",
    "Secret",
    "Snapshot",
    "SourceError",
    "SourceStatus",
    "SourceUnavailable",
    "ValidationError",
    "ValidationFailure",
    "Validator",
    "WatchKey",
    "__version__",
    "add_converter",
    "load",
    "load_validators",
)


def __getattr__(name: str) -> Any:
    return _attribute(__name__, _LAZY, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
