"""Live configuration for synchronous code (Flask, Django, scripts, worker threads).

```python
import aioconfig.sync

config = aioconfig.sync.load("settings.toml", refresh_interval=10)
print(config["db.port"])           # the async Config's reads: no lock, no I/O
config.refresh(force=True)         # blocks this thread, safe from any thread
with config.changes(keys=["db"], timeout=30) as events:
    for event in events: ...
config.close()                     # also done at interpreter exit
```

A daemon thread runs an event loop that owns an ordinary :class:`~aioconfig.Config`; callbacks
run on that thread. After ``os.fork()`` each child starts a thread of its own. See the README,
"Flask and Django".
"""

from __future__ import annotations

from ._sync import SyncChangeStream as SyncChangeStream
from ._sync import SyncConfig as SyncConfig
from ._sync import load as load

__all__ = ("SyncChangeStream", "SyncConfig", "load")
