"""A ConfigMap or Secret volume, updated the way kubelet updates it.

Kubelet's atomic writer (``pkg/volume/util/atomic_writer.go``) keeps the files in a timestamped
directory, ``..2026_12_04_19_00_00.123456789``; ``..data`` is a symlink to it, and each file a
user names is a symlink through it: ``settings.toml -> ..data/settings.toml``. An update writes a
new timestamped directory, points a new ``..data_tmp`` symlink at it, renames ``..data_tmp`` over
``..data`` (the atomic step), adds links for new files, and removes the old directory. The file
the user named never changes: only the link two steps behind it does.
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import pytest
from http_helpers import wait_until

from aioconfig import load
from aioconfig.sources import File

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="POSIX links"),
]

_stamps = itertools.count()


class KubeletVolume:
    """A volume directory written with kubelet's sequence of steps."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()

    def write(self, files: dict[str, str]) -> None:
        stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + f"{next(_stamps):09d}"
        new = self.root / stamp
        new.mkdir()
        for name, text in files.items():  # 1. the payload, in a new timestamped directory
            (new / name).write_text(text)
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        tmp = self.root / "..data_tmp"
        os.symlink(stamp, tmp)  # 2. ..data_tmp -> the new directory
        os.rename(tmp, data)  # 3. the atomic swap
        for name in files:  # 4. the user-visible links, for files that are new
            link = self.root / name
            if not link.is_symlink():
                os.symlink(os.path.join("..data", name), link)
        if old is not None:  # 5. the old directory goes
            for child in (self.root / old).iterdir():
                child.unlink()
            (self.root / old).rmdir()


@pytest.fixture
def volume(tmp_path: Path) -> KubeletVolume:
    volume = KubeletVolume(tmp_path / "config")
    volume.write({"settings.toml": 'colour = "blue"\n', "limits.toml": "rps = 10\n"})
    return volume


def test_the_layout_is_kubelets(volume: KubeletVolume) -> None:
    entries = sorted(p.name for p in volume.root.iterdir())
    assert entries[:2] == ["..2" + entries[0][3:], "..data"]
    assert os.readlink(volume.root / "settings.toml") == "..data/settings.toml"
    assert (volume.root / "..data").is_symlink()


@pytest.mark.parametrize("watch", [False, True], ids=["poll", "watch"])
async def test_a_file_follows_each_kubelet_update(volume: KubeletVolume, watch: bool) -> None:
    settings = File(volume.root / "settings.toml", watch=watch)
    async with load(settings, refresh_interval=0.05 if not watch else 30) as config:
        assert config["colour"] == "blue"
        for i, colour in enumerate(["green", "red", "black"]):  # same size, same second
            volume.write({"settings.toml": f'colour = "{colour}"\n', "limits.toml": "rps = 10\n"})
            await wait_until(lambda colour=colour: config.get("colour") == colour)  # type: ignore[misc]
            assert config.snapshot.version == i + 2


async def test_a_watched_file_follows_an_update_that_only_touches_another_file(
    volume: KubeletVolume,
) -> None:
    """Every file of the volume moves to the new directory; one that did not change loads
    as not modified (its bytes are the same), and the Config does not bump its version."""
    async with load(File(volume.root / "settings.toml", watch=True)) as config:
        volume.write({"settings.toml": 'colour = "blue"\n', "limits.toml": "rps = 20\n"})
        volume.write({"settings.toml": 'colour = "cyan"\n', "limits.toml": "rps = 20\n"})
        await wait_until(lambda: config.get("colour") == "cyan")
        assert config.snapshot.version == 2
