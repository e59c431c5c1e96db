"""Layered settings: build, refresh and read a 5-layer, 10,000-key configuration with 50
validators, against Dynaconf doing the same work in the same run.

The layers: two files with environment sections (``settings.toml``: ``[default]``,
``[production]``, ``[global]``; ``services.json``: ``default``, ``production``), two plain files
(``features.toml``, with a few ``@format`` values; ``local.json``) and ~100 environment variables
under ``LAYERBENCH_``, some with ``@int``/``@bool``/``@json`` casts. 10,000 leaf values in all;
the active environment is ``production``. Both libraries load the same data (checked key by
key after the validators ran) and all 50 validators pass for both.

Build, refresh and step rows are timed call by call (``time.perf_counter_ns``), round by round
over all the rows of a table (aioconfig and Dynaconf interleaved), after 2 warm-up rounds; the
tables show the best and the median, in ms. Read rows are the best of 3 passes over all the
rows, each the best of 7 ``timeit`` rounds, in ns per read. Best-of is the statistic to compare
on a shared machine. Run: ``python benchmarks/bench_layers.py``.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import fnmatch
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from _common import best_ns, machine, table
from bench_read import flatten, make_data, pydantic_model, to_toml
from dynaconf import Dynaconf
from dynaconf import Validator as DynaValidator
from pydantic import BaseModel

from aioconfig import Validator, load
from aioconfig._layers import Layer, prepare
from aioconfig._merge import Memo, build
from aioconfig._validators import run_validators
from aioconfig.sources import Env, File, Payload, Static
from aioconfig.sources._formats import parse

PREFIX = "LAYERBENCH"
ENV = "production"
KEYS = 100  # keys per section
BUILD_ROUNDS = 15
REFRESH_ROUNDS = 30
PART_ROUNDS = 30
SECTIONED = frozenset({"settings.toml", "services.json"})  # the files with environment sections
AGED_NS = 10_000_000_000  # older than File's 2 s "racy timestamp" window: unchanged = stat only
NUMBER = 500_000
READ_PASSES = 3
PEER_NUMBER = 20_000  # Dynaconf's get is ~1000x slower: fewer reads keep the run short


# -- the layers ---------------------------------------------------------------------------------


def section(
    i: int, keys: range = range(KEYS), *, base: int = 0, tag: str = "value"
) -> dict[str, Any]:
    """Section ``s{i}``: even keys ints, odd keys strings."""
    return {f"k{j}": (i * KEYS + j + base if j % 2 == 0 else f"{tag}-{i}-{j}") for j in keys}


def file_layers(dyna: bool) -> dict[str, dict[str, Any]]:
    """The four files' data, by file name. ``dyna``: in Dynaconf's dialect.

    The dialects differ in two ways only: a plain file is written under ``default`` for
    Dynaconf (with ``environments=True`` Dynaconf ignores every top-level key of a file that
    is not an environment; aioconfig reads it with ``File(environments=False)``), and
    ``@format`` names the settings ``this`` in Dynaconf (``{this.s50.k0}``).
    """
    default = {f"s{i}": section(i) for i in range(30)}  # 3,000
    for j in (1, 3, 5, 7, 9):
        default["s28"][f"k{j}"] = f"@int {2800 + j}"
    settings = {
        "default": default,
        "production": {f"s{i}": section(i, range(50), base=100_000, tag="prod") for i in range(8)},
        "global": {"s29": section(29, base=400_000, tag="global")},  # 3,000 + 400 + 100
    }
    services_default = {f"s{i}": section(i) for i in range(30, 50)}  # 2,000
    services_default["s48"]["k50"] = [4850, 4851, 4852]
    services_default["s49"]["k50"] = ["alpha", "beta", "gamma"]
    services = {
        "default": services_default,
        "production": {f"s{i}": section(i, base=100_000, tag="prod") for i in range(30, 34)},
    }  # 2,000 + 400
    features = {f"s{i}": section(i) for i in range(50, 70)}  # 2,000
    this = "this." if dyna else ""
    for n, j in enumerate((1, 3, 5, 7, 9)):
        features["s69"][f"k{j}"] = f"@format {{{this}s5{n}.k0}}:{{{this}s5{n}.k2}}"
    local = {f"s{i}": section(i) for i in range(70, 80)}  # 1,000
    for i in range(50):  # + 1,000 overrides
        local[f"s{i}"] = section(i, range(80, 100), base=200_000, tag="local")
    if dyna:
        features, local = {"default": features}, {"default": local}
    return {
        "settings.toml": settings,
        "services.json": services,
        "features.toml": features,
        "local.json": local,
    }


def env_vars() -> dict[str, str]:
    """100 variables: 40 override file values, 60 are new; 25 carry a cast."""
    out: dict[str, str] = {}
    for n in range(40):
        j = 10 + n % 20
        out[f"{PREFIX}_S{n}__K{j}"] = (
            f"@int {n * KEYS + j + 300_000}" if j % 2 == 0 else f"env-{n}-{j}"
        )
    app = {
        "NAME": "bench-service",
        "PORT": "@int 8080",
        "WORKERS": "@int 4",
        "DEBUG": "@bool false",
        "LOG_LEVEL": "info",
        "REGION": "eu-west-1",
        "HOSTS": '@json ["alpha.internal", "beta.internal"]',
        "LIMITS": '@json {"rps": 100, "burst": 20}',
    }
    app.update({f"OPT{n}": f"opt-{n}" for n in range(52)})
    out.update({f"{PREFIX}_APP__{key}": value for key, value in app.items()})
    return out


def leaves(node: Mapping[str, Any]) -> int:
    return sum(leaves(v) if isinstance(v, Mapping) else 1 for v in node.values())


def serialize(name: str, data: Mapping[str, Any]) -> bytes:
    text = to_toml(data) if name.endswith(".toml") else json.dumps(data, indent=1)
    return text.encode()


def write(path: str, content: bytes) -> None:
    with open(path, "wb") as file:
        file.write(content)
    then = time.time_ns() - AGED_NS  # a new mtime at each write, outside the racy window
    os.utime(path, ns=(then, then))


# -- the validators -----------------------------------------------------------------------------

# (names, options): one spec, built as an aioconfig Validator and as a Dynaconf one.
SPECS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    # must_exist, 10
    (("s0.k0",), {"must_exist": True, "is_type_of": int}),
    (("s10.k1",), {"must_exist": True}),
    (("s30.k0", "s31.k0", "s32.k0"), {"must_exist": True, "is_type_of": int}),
    (("s50.k2",), {"must_exist": True, "gte": 0}),
    (("s70.k1",), {"must_exist": True, "startswith": "value-70"}),
    (("app.name",), {"must_exist": True, "eq": "bench-service"}),
    (("app.port",), {"must_exist": True, "is_type_of": int, "gte": 1024, "lte": 65535}),
    (("app.hosts",), {"must_exist": True, "is_type_of": list, "len_min": 2}),
    (("app.limits",), {"must_exist": True, "is_type_of": dict}),
    (("s79.k99",), {"must_exist": True, "is_type_of": str}),
    # ranges, 7
    *(
        ((f"s{i}.k60",), {"gte": i * KEYS, "lte": i * KEYS + 99})
        for i in (1, 9, 21, 35, 42, 55, 77)
    ),
    # types, 8
    (("s2.k61",), {"is_type_of": str}),
    (("s33.k2",), {"is_type_of": int}),
    (("s48.k50",), {"is_type_of": list[int]}),
    (("s49.k50",), {"is_type_of": list}),
    (("app.workers",), {"is_type_of": int}),
    (("app.debug",), {"is_type_of": bool}),
    (("s28.k1",), {"is_type_of": int}),
    (("s69.k1",), {"is_type_of": str}),
    # membership, 5
    (("app.log_level",), {"is_in": ["debug", "info", "warning"]}),
    (("app.region",), {"is_in": ["eu-west-1", "us-east-1"]}),
    (("s29.k1",), {"is_in": ["global-29-1"]}),
    (("s60.k1",), {"is_in": ["value-60-1", "other"]}),
    (("s3.k1",), {"is_in": ["prod-3-1"]}),
    # lengths, 5
    (("s71.k3",), {"len_min": 5}),
    (("app.opt0",), {"len_min": 3}),
    (("s40.k81",), {"len_min": 5}),
    (("s12.k13",), {"len_min": 3}),
    (("s66.k7",), {"len_min": 3}),
    # prefixes, 3
    (("s45.k83",), {"startswith": "local-"}),
    (("s31.k1",), {"startswith": "prod-"}),
    (("s3.k13",), {"startswith": "env-"}),
    # defaults for absent keys, 5
    (("app.timeout",), {"default": 30}),
    (("app.retries",), {"default": 3, "gte": 0}),
    (("cache.ttl",), {"default": 300}),
    (("cache.backend",), {"default": "memory-lru"}),
    (("s79.extra",), {"default": "fallback-value"}),
    # casts, 3
    (("s2.k0",), {"cast": str}),
    (("s3.k0",), {"cast": float}),
    (("s64.k5",), {"cast": str.upper}),
    # globs, 4 (Dynaconf has none: it gets the names each glob matches)
    (("s5.*",), {"must_exist": True}),
    (("s7?.k0",), {"is_type_of": int, "gte": 7000}),
    (("s1.k*",), {"is_type_of": (int, str)}),
    (("app.opt*",), {"len_min": 3}),
]


def aio_validators() -> list[Validator]:
    return [Validator(*names, **options) for names, options in SPECS]


def dyna_validators(keys: list[str]) -> list[DynaValidator]:
    """The same rules for Dynaconf, each glob replaced by the dotted keys it matches."""
    out = []
    for names, options in SPECS:
        expanded = [
            key
            for name in names
            for key in (fnmatch.filter(keys, name) if "*" in name or "?" in name else [name])
        ]
        out.append(DynaValidator(*expanded, **options))
    return out


# -- the layered configuration ----------------------------------------------------------------


class Layers:
    """The files of both dialects in a directory, and how to load them with each library."""

    def __init__(self, directory: str) -> None:
        self.aio_dir = os.path.join(directory, "aioconfig")
        self.dyna_dir = os.path.join(directory, "dynaconf")
        for path in (self.aio_dir, self.dyna_dir):
            os.mkdir(path)
        self.aio_data = file_layers(dyna=False)
        self.dyna_data = file_layers(dyna=True)
        for name, data in self.aio_data.items():
            write(os.path.join(self.aio_dir, name), serialize(name, data))
        for name, data in self.dyna_data.items():
            write(os.path.join(self.dyna_dir, name), serialize(name, data))
        self.env = env_vars()
        os.environ.update(self.env)
        self.aio_validators = aio_validators()
        self.dyna_validators: list[DynaValidator] = []  # set by check(), which expands globs

    def counts(self) -> list[tuple[str, int]]:
        rows = [(name, leaves(data)) for name, data in self.aio_data.items()]
        return [*rows, (f"env {PREFIX}_*", len(self.env))]

    def aio(self, *, validate: bool = True) -> Any:
        files = [
            File(os.path.join(self.aio_dir, name), environments=name in SECTIONED)
            for name in self.aio_data
        ]
        return load(
            *files,
            Env(PREFIX),
            env=ENV,
            environments=True,
            validators=self.aio_validators if validate else (),
            mode="manual",
        )

    def dyna(self, *, validate: bool = True) -> Dynaconf:
        return Dynaconf(
            settings_files=[os.path.join(self.dyna_dir, name) for name in self.dyna_data],
            envvar_prefix=PREFIX,
            environments=True,
            env=ENV,
            merge_enabled=True,  # deep-merge layers and sections, as aioconfig does
            validators=self.dyna_validators if validate else [],
        )

    def change(self, name: str, section: str, key: str, value: Any) -> None:
        """Set one value in file ``name`` (both dialects) and rewrite it, aged."""
        for directory, layers in ((self.aio_dir, self.aio_data), (self.dyna_dir, self.dyna_data)):
            data = layers[name]
            node = data["default"] if "default" in data else data
            node[section][key] = value
            write(os.path.join(directory, name), serialize(name, data))


def lowered(node: Any) -> Any:
    """Dynaconf's data as plain values: keys lower-cased (it keeps variables' case)."""
    if isinstance(node, Mapping):
        return {str(k).lower(): lowered(v) for k, v in node.items()}
    if isinstance(node, list):
        return [lowered(v) for v in node]
    return node


def differences(a: Mapping[str, Any], b: Mapping[str, Any], path: str = "") -> Iterator[str]:
    for key in sorted(a.keys() | b.keys()):
        here = path + key
        if key not in a or key not in b:
            yield f"{here}: only in {'aioconfig' if key in a else 'Dynaconf'}"
        elif isinstance(a[key], Mapping) and isinstance(b[key], Mapping):
            yield from differences(a[key], b[key], here + ".")
        elif a[key] != b[key] or type(a[key]) is not type(b[key]):
            yield f"{here}: {a[key]!r} (aioconfig) != {b[key]!r} (Dynaconf)"


EXPECTED = {  # a few values each layer, cast, section, validator and @format decides
    "s0.k0": 100_000,  # [production] over [default]
    "s0.k80": 200_000 + 80,  # local.json over settings.toml
    "s3.k0": 100_300.0,  # production, then cast=float
    "s2.k0": "100200",  # production, then cast=str
    "s3.k13": "env-3-13",  # a variable over settings.toml
    "s10.k20": 301_020,  # "@int" variable
    "s28.k1": 2801,  # "@int" in a file
    "s29.k0": 400_000 + 2900,  # [global] over [production] and [default]
    "s31.k1": "prod-31-1",  # services.json [production]
    "s64.k5": "VALUE-64-5",  # cast=str.upper
    "s69.k3": "5100:5102",  # @format
    "app.port": 8080,
    "app.debug": False,
    "app.hosts": ["alpha.internal", "beta.internal"],
    "app.limits": {"rps": 100, "burst": 20},
    "app.timeout": 30,  # validator default
    "cache.backend": "memory-lru",
    "s48.k50": [4850, 4851, 4852],
}


async def check(layers: Layers) -> int:
    """Load with both; fail loudly unless they give the same data and the expected values.

    Returns the number of leaf values after the merge.
    """
    async with layers.aio() as config:
        keys = list(config.snapshot.keys_flat())
        aio = config.snapshot.to_dict()
    layers.dyna_validators = dyna_validators(keys)
    dyna = layers.dyna()
    dyna_data = lowered(dyna.as_dict())
    diff = list(differences(aio, dyna_data))
    if diff:
        raise SystemExit("aioconfig and Dynaconf load different data:\n  " + "\n  ".join(diff[:20]))
    wrong = {}
    for key, want in EXPECTED.items():
        got = aio
        for part in key.split("."):
            got = got[part]
        got_dyna = lowered(dyna.get(key))
        if got != want or type(got) is not type(want) or got_dyna != want:
            wrong[key] = (want, got, got_dyna)
    if wrong:
        raise SystemExit(f"unexpected values (want, aioconfig, Dynaconf): {wrong}")
    return leaves(aio)


# -- build and refresh --------------------------------------------------------------------------

Samples = dict[str, list[float]]
WARMUP = 2  # rounds run first and not recorded


def record(samples: Samples, name: str, start_ns: int) -> None:
    samples.setdefault(name, []).append((time.perf_counter_ns() - start_ns) / 1e6)


async def measure_build(layers: Layers) -> Samples:
    """Open a Config from nothing to its first validated snapshot and close it; build a
    Dynaconf and make it load (given ``validators=``, it validates as it loads). Each also
    without the validators. Interleaved, round by round."""
    samples: Samples = {}
    for round_ in range(WARMUP + BUILD_ROUNDS):
        scratch: Samples = {} if round_ < WARMUP else samples
        start = time.perf_counter_ns()
        async with layers.aio() as config:
            record(scratch, "aioconfig: load(...) to first snapshot", start)
            if config["app.timeout"] != 30 or config["s0.k0"] != 100_000:
                raise SystemExit("aioconfig did not load the layers and run the validators")
            start = time.perf_counter_ns()
        record(scratch, "aioconfig: close", start)
        start = time.perf_counter_ns()
        async with layers.aio(validate=False):  # how much of the build is validation
            record(scratch, "aioconfig: load(...) without the validators", start)

        start = time.perf_counter_ns()
        settings = layers.dyna()
        settings.get("s0.k0")  # the lazy load: files, variables, then the validators
        record(scratch, "Dynaconf: Dynaconf(..., validators=) + first read", start)
        if settings.get("app.timeout") != 30 or settings.get("s0.k0") != 100_000:
            raise SystemExit("Dynaconf did not load the layers and run the validators")
        start = time.perf_counter_ns()
        settings.validators.validate()
        record(scratch, "Dynaconf: settings.validators.validate() alone, again", start)
        start = time.perf_counter_ns()
        layers.dyna(validate=False).get("s0.k0")
        record(scratch, "Dynaconf: Dynaconf(...) + first read, without the validators", start)
    return samples


async def measure_refresh(layers: Layers, name: str, section: str, key: str) -> Samples:
    """Refresh after one value in file ``name`` changed (rewritten before the timer starts).

    Every refresh is checked: aioconfig reports exactly that key changed and both libraries
    serve the new value (and Dynaconf the validators' defaults again).
    """
    samples: Samples = {}
    data = layers.aio_data[name]
    first = (data["default"] if "default" in data else data)[section][key]
    dotted = f"{section}.{key}"
    settings = layers.dyna()
    settings.get("s0.k0")
    async with layers.aio() as config:
        for round_ in range(WARMUP + REFRESH_ROUNDS):
            scratch: Samples = {} if round_ < WARMUP else samples
            value = first + 1 + round_ % 2  # differs from the value before, every round
            layers.change(name, section, key, value)

            start = time.perf_counter_ns()
            result = await config.refresh(force=True)
            record(scratch, "aioconfig: await config.refresh(force=True)", start)
            if result.keys != {dotted} or config[dotted] != value:
                raise SystemExit(f"aioconfig did not swap in {dotted}={value}: {result}")

            start = time.perf_counter_ns()
            settings.reload()
            settings.validators.validate()
            record(scratch, "Dynaconf: settings.reload() + validators.validate()", start)
            if settings.get(dotted) != value or settings.get("cache.ttl") != 300:
                raise SystemExit(f"Dynaconf did not reload {dotted}={value}")
        # Nothing changed: each file answers a stat, the variables a digest; no build.
        for round_ in range(WARMUP + REFRESH_ROUNDS):
            scratch = {} if round_ < WARMUP else samples
            start = time.perf_counter_ns()
            result = await config.refresh(force=True)
            record(scratch, "aioconfig: refresh(force=True), nothing changed", start)
            if result.changed:
                raise SystemExit("a refresh with nothing changed swapped a snapshot")
    layers.change(name, section, key, first)
    return samples


def measure_parts(layers: Layers, variables: Payload) -> list[tuple[str, float, float]]:
    """Where a build's time goes: each step of the engine's work alone, in ms (median, best).

    ``variables``: what the ``Env`` source loaded.
    """
    names = list(layers.aio_data)
    raw = {}
    for name in names:
        with open(os.path.join(layers.aio_dir, name), "rb") as file:
            raw[name] = file.read()
    parsed = {name: parse(raw[name], fmt(name), name) for name in names}

    prepared = [prepare_file(parsed[n], n) for n in names] + [prepare(variables.data, "env")]
    data = [layer.data for layer in prepared]
    memo = Memo()
    root, flat, _ = build(data, None, memo)
    local = names.index("local.json")
    edited = list(data)
    # As a re-read file arrives: all new objects, one value different.
    edited[local] = copy.deepcopy(data[local])
    edited[local]["s75"]["k70"] = -1

    def with_memo() -> object:
        fresh = Memo()  # each call starts from the memo the first build left
        fresh.entries = dict(memo.entries)
        return build(edited, (root, flat), fresh)

    plain = [
        v for v in layers.aio_validators if not any(set(name) & set("*?[") for name in v.names)
    ]
    steps: list[tuple[str, Callable[[], object]]] = [
        *(
            (
                f"parse {name} ({len(raw[name]) // 1024} KiB, {fmt(name)})",
                lambda n=name: parse(raw[n], fmt(n), n),
            )
            for name in names
        ),
        *(
            (f"prepare {name} ({what})", lambda n=name: prepare_file(parsed[n], n))
            for name, what in (
                ("settings.toml", "sections, 5 @int"),
                ("services.json", "sections, no @"),
                ("features.toml", "5 @format"),
                ("local.json", "no @"),
            )
        ),
        ("prepare the variables (25 casts)", lambda: prepare(variables.data, "env")),
        ("_merge.build of the 5 layers, from scratch", lambda: build(data)),
        (
            "_merge.build, 1 value changed in local.json, with the previous tree",
            lambda: build(edited, (root, flat)),
        ),
        ("_merge.build, the same, with the previous tree and its memo (as the engine)", with_memo),
        ("run_validators: all 50", lambda: run_validators(layers.aio_validators, flat, env=ENV)),
        (
            f"run_validators: the {len(plain)} without a glob",
            lambda: run_validators(plain, flat, env=ENV),
        ),
    ]
    # Round by round over all the steps, so a burst of other work on the machine spoils a few
    # samples of every step rather than all the samples of one.
    samples: Samples = {}
    for round_ in range(WARMUP + PART_ROUNDS):
        scratch: Samples = {} if round_ < WARMUP else samples
        for name, step in steps:
            start = time.perf_counter_ns()
            step()
            record(scratch, name, start)
    return [(name, statistics.median(v), min(v)) for name, v in samples.items()]


def prepare_file(data: Mapping[str, Any], name: str) -> Layer:
    """What the engine does to a file's payload: sections, casts, tokens."""
    return prepare(data, name, environment=ENV if name in SECTIONED else None)


def fmt(name: str) -> str:
    return "toml" if name.endswith(".toml") else "json"


def time_rows(samples: Samples, base: str) -> list[tuple[str, str, str, str]]:
    best_base = min(samples[base])
    rows = []
    for name, values in samples.items():
        best = min(values)
        rows.append(
            (name, f"{best:,.2f}", f"{statistics.median(values):,.2f}", f"{best / best_base:,.2f}x")
        )
    return rows


# -- reads --------------------------------------------------------------------------------------


def dataclass_model(name: str, node: Mapping[str, Any]) -> type:
    """A frozen dataclass whose fields mirror ``node``: nested dicts become nested dataclasses."""
    fields = [
        (key, dataclass_model(f"{name}_{key}", value) if isinstance(value, dict) else type(value))
        for key, value in node.items()
    ]
    return dataclasses.make_dataclass(name, fields, frozen=True, slots=True)


async def measure_reads(path: str) -> list[tuple[str, float]]:
    data = make_data()
    flat = flatten(data)
    DataSettings = dataclass_model("DataSettings", data)
    ModelSettings = pydantic_model("ModelSettings", data, BaseModel)
    dyna = Dynaconf(settings_files=[path], envvar_prefix="AIOCONFIG_BENCH")
    async with (
        load(Static(data), mode="manual") as config,
        load(Static(data), mode="manual", case_sensitive=False) as folded,
    ):
        ns: dict[str, Any] = {
            "d": data,
            "flat": flat,
            "config": config,
            "folded": folded,
            "DataSettings": DataSettings,
            "ModelSettings": ModelSettings,
            "dc": config.bind(DataSettings),
            "pm": config.bind(ModelSettings),
            "dyna": dyna,
        }
        statements = [
            'd["a"]["b"]["c"]',
            'flat.get("a.b.c")',
            'config.get("a.b.c")',
            'config["a.b.c"]',
            'folded.get("a.b.c")',
            'folded.get("A.B.C")',
            'folded["A.B.C"]',
            "config.bind(DataSettings).a.b.c",
            "config.bind(ModelSettings).a.b.c",
            "dc.a.b.c",
            "pm.a.b.c",
            'dyna.get("a.b.c")',
            'dyna.get("A.B.C")',
        ]
        wrong = {stmt: got for stmt in statements if (got := eval(stmt, ns)) != 42}
        if wrong:
            raise SystemExit(f"a contender does not read 42: {wrong}")
        # READ_PASSES passes over all the rows, best of 7 rounds each time: a burst of other
        # work spoils one pass of a row, not its result.
        best = dict.fromkeys(["pass", *statements], float("inf"))
        for _ in range(READ_PASSES):
            for stmt in best:
                number = PEER_NUMBER if stmt.startswith("dyna") else NUMBER
                best[stmt] = min(best[stmt], best_ns(stmt, ns, number=number))
    return [
        ("pass (timeit loop step alone)" if stmt == "pass" else stmt, ns_op)
        for stmt, ns_op in best.items()
    ]


# -- main ---------------------------------------------------------------------------------------


async def run(directory: str) -> None:
    layers = Layers(directory)
    counts = layers.counts()
    merged = await check(layers)
    total = sum(n for _, n in counts)
    print(
        "Layers: "
        + ", ".join(f"{name} {n:,}" for name, n in counts)
        + f" = {total:,} values; {merged:,} leaves after merging, defaults and casts. "
        + "Same data from both (checked key by key), all validators pass for both.\n"
    )

    build_samples = await measure_build(layers)
    print(
        "### Build: 5 layers, 10,000 values, 50 validators, to a first validated snapshot "
        f"(best and median of {BUILD_ROUNDS}, ms)\n"
    )
    print(
        table(
            ["operation", "best ms", "median ms", "best vs aioconfig"],
            time_rows(build_samples, "aioconfig: load(...) to first snapshot"),
        )
    )
    for name, section, key, what in (
        ("settings.toml", "s20", "k70", "settings.toml [default] (TOML, 3,500 values, sections)"),
        ("local.json", "s75", "k70", "local.json (JSON, 2,000 values, plain)"),
    ):
        samples = await measure_refresh(layers, name, section, key)
        print(
            f"\n### Refresh after one value changed in {what} "
            f"(best and median of {REFRESH_ROUNDS}, ms)\n"
        )
        print(
            table(
                ["operation", "best ms", "median ms", "best vs aioconfig"],
                time_rows(samples, "aioconfig: await config.refresh(force=True)"),
            )
        )
    variables = await Env(PREFIX).load(None)
    assert isinstance(variables, Payload)
    parts = measure_parts(layers, variables)
    print(
        "\n### Where aioconfig's build time goes: each step alone "
        f"(best and median of {PART_ROUNDS}, ms)\n"
    )
    print(
        table(
            ["step", "best ms", "median ms"],
            [(name, f"{best:,.2f}", f"{median:,.2f}") for name, median, best in parts],
        )
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(run(directory))
        path = os.path.join(directory, "read.toml")
        with open(path, "w") as file:
            file.write(to_toml(make_data()))
        reads = asyncio.run(measure_reads(path))
    by_name = dict(reads)
    base = by_name['d["a"]["b"]["c"]']
    get = by_name['config.get("a.b.c")']
    rows = [
        (name, f"{ns_op:,.1f}", f"{ns_op / base:,.2f}x", f"{ns_op / get:,.2f}x")
        for name, ns_op in reads
    ]
    print(
        "\n### Read `a.b.c` from a ~100-key config "
        f"(best of {READ_PASSES} passes x 7 rounds, ns per read)\n"
    )
    print(table(["read", "ns/op", "vs nested dict", "vs config.get"], rows))
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
