"""Load a config file plus environment overrides, print it, then print each change as it happens.

    python examples/quickstart.py                      # settings.toml next to this script
    python examples/quickstart.py my.toml --seconds 5  # another file; stop after 5 seconds
    MYAPP_DB__HOST=db.internal python examples/quickstart.py

Edit the file while it runs: the change is printed within about a second (at once when
``watchfiles`` is installed). Stop with Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from aioconfig import Snapshot, load
from aioconfig.sources import Env

DEFAULT_SETTINGS = Path(__file__).with_name("settings.toml")


def show(value: Any) -> str:
    """A value as it would be written in TOML-ish text: strings quoted, lists bracketed."""
    return json.dumps(value, ensure_ascii=False, default=str)


def leaves(snapshot: Snapshot) -> list[tuple[str, Any]]:
    """Every dotted leaf key and its value, sorted (``db.pool.max_size = 10``)."""
    return sorted(
        (key, snapshot[key])
        for key in snapshot.keys_flat()
        if not isinstance(snapshot[key], Mapping)
    )


async def main(settings: Path, seconds: float) -> None:
    async with (
        load(settings, Env(prefix="MYAPP"), refresh_interval=1) as config,
        config.changes() as events,  # subscribed before the first print: no change is missed
    ):
        snapshot = config.snapshot
        print(f"# version {snapshot.version} from {', '.join(snapshot.sources)}", flush=True)
        for key, value in leaves(snapshot):
            print(f"{key} = {show(value)}", flush=True)
        print("# waiting for changes (Ctrl-C to stop)", flush=True)

        with anyio.move_on_after(seconds):
            async for event in events:
                if event.error is not None:
                    version = event.new.version
                    print(
                        f"# refresh failed, still serving version {version}: {event.error}",
                        flush=True,
                    )
                    continue
                print(f"# version {event.new.version}", flush=True)
                for key in sorted(event.keys):
                    if key in event.new:
                        print(f"{key} = {show(event.new[key])}", flush=True)
                    else:
                        print(f"{key} removed", flush=True)


def cli() -> None:
    parser = argparse.ArgumentParser(description="Print a live configuration and its changes.")
    parser.add_argument(
        "settings",
        nargs="?",
        type=Path,
        default=DEFAULT_SETTINGS,
        help="the config file (default: settings.toml next to this script)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=math.inf,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    args = parser.parse_args()
    try:
        anyio.run(main, args.settings, args.seconds)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    cli()
