"""Read path: the value at "a.b.c" in a nested config of ~100 keys, against dicts and peers.

Every row is the best of 7 rounds of N reads compiled into timeit's loop (no wrapper call), in
ns per read. Run: ``python benchmarks/bench_read.py``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping
from typing import Any

from _common import best_ns, machine, nested_config, table
from dynaconf import Dynaconf
from pydantic import BaseModel, create_model
from pydantic_settings import BaseSettings

from aioconfig import load
from aioconfig._cli import to_toml as toml_document
from aioconfig.sources import Static

NUMBER = 500_000
PEER_NUMBER = 20_000  # Dynaconf's get is ~1000x slower: fewer reads keep the run short


def make_data() -> dict[str, Any]:
    """10 sections x 10 keys, plus the path under test: 103 dotted paths with a value."""
    data = nested_config(10, 10)
    data["a"] = {"b": {"c": 42, "d": "x"}, "e": 1}
    return data


def flatten(node: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = prefix + key
        out[path] = value
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
    return out


def to_toml(data: Mapping[str, Any]) -> str:
    """The TOML the command line writes (``aioconfig dump --format toml``)."""
    text, nulls = toml_document(data)
    assert not nulls
    return text


def pydantic_model(name: str, node: dict[str, Any], base: type[BaseModel]) -> type[BaseModel]:
    """A model whose fields mirror ``node``: nested dicts become nested models."""
    fields: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(value, dict):
            fields[key] = (pydantic_model(f"{name}_{key}", value, BaseModel), ...)
        else:
            fields[key] = (type(value), ...)
    model: type[BaseModel] = create_model(name, __base__=base, **fields)
    return model


async def measure(data: dict[str, Any], path: str) -> list[tuple[str, float]]:
    """``path``: the same data as a TOML file, for Dynaconf."""
    nested = data
    flat = flatten(data)
    dyna = Dynaconf(settings_files=[path], envvar_prefix="AIOCONFIG_BENCH")
    settings_model = pydantic_model("Settings", data, BaseSettings)
    pyd: Any = settings_model(**data)

    async with load(Static(data), mode="manual") as config:
        snapshot = config.snapshot
        ns: dict[str, Any] = {
            "d": nested,
            "flat": flat,
            "config": config,
            "snapshot": snapshot,
            "dyna": dyna,
            "pyd": pyd,
        }
        # Every contender must really read the nested value.
        checks = {
            'd["a"]["b"]["c"]': nested["a"]["b"]["c"],
            'flat.get("a.b.c")': flat.get("a.b.c"),
            'config.get("a.b.c")': config.get("a.b.c"),
            'config["a.b.c"]': config["a.b.c"],
            'snapshot.get("a.b.c")': snapshot.get("a.b.c"),
            'snapshot["a.b.c"]': snapshot["a.b.c"],
            'dyna.get("a.b.c")': dyna.get("a.b.c"),
            "dyna.a.b.c": dyna.a.b.c,
            "pyd.a.b.c": pyd.a.b.c,
        }
        wrong = {stmt: got for stmt, got in checks.items() if got != 42}
        if wrong:
            raise SystemExit(f"a contender does not read 42: {wrong}")

        results = [("pass (timeit loop step alone)", best_ns("pass", ns, number=NUMBER))]
        for stmt in checks:
            number = PEER_NUMBER if stmt.startswith("dyna") else NUMBER
            results.append((stmt, best_ns(stmt, ns, number=number)))
    return results


def main() -> None:
    data = make_data()
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "settings.toml")
        with open(path, "w") as file:
            file.write(to_toml(data))
        results = asyncio.run(measure(data, path))
    by_name = dict(results)
    base = by_name['d["a"]["b"]["c"]']
    rows = [(name, f"{ns_op:,.1f}", f"{ns_op / base:,.2f}x") for name, ns_op in results]
    print("### Read `a.b.c` from a ~100-key config (best of 7, ns per read)\n")
    print(table(["read", "ns/op", "vs nested dict"], rows))
    aio = max(by_name[k] for k in by_name if k.startswith(("config", "snapshot")))
    dyna_get = by_name['dyna.get("a.b.c")']
    aio_get = by_name['config.get("a.b.c")']
    print(
        f"\nTargets: slowest aioconfig read {aio / base:.2f}x the nested dict (target <= 3x: "
        f"{'met' if aio <= 3 * base else 'MISSED'}); Dynaconf get / config.get = "
        f"{dyna_get / aio_get:,.0f}x (target > 100x: "
        f"{'met' if dyna_get > 100 * aio_get else 'MISSED'})"
    )
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
