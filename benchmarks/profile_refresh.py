"""A profile driver: 200 changed-file refreshes of the 10,000-key JSON file, nothing else.

Run: ``python -m cProfile -s cumtime benchmarks/profile_refresh.py | head -40``. cProfile sees
only the event-loop thread: the read, hash and parse run in a worker thread and do not show.
"""

from __future__ import annotations

import asyncio
import os
import tempfile

import orjson
from _common import nested_config

from aioconfig import load
from aioconfig.sources import File

REFRESHES = 200


def write(path: str, data: dict[str, object]) -> None:
    with open(path, "wb") as file:
        file.write(orjson.dumps(data))


async def main(path: str) -> None:
    data = nested_config(100, 100)
    write(path, data)
    async with load(File(path, watch=False), mode="manual") as config:
        section = data["s42"]
        assert isinstance(section, dict)
        for i in range(REFRESHES):
            section["k7"] = f"changed-{i:06d}"
            write(path, data)
            result = await config.refresh(force=True)
            assert result.changed and result.keys == {"s42.k7"}


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(main(os.path.join(directory, "config.json")))
