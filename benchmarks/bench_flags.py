"""Feature-flag evaluation: aioconfig.flags against ConfigCat's own SDK (configcat-client).

One config_v6 document, written below, holds four flags: no rules; 10 targeting rules of mixed
comparators (text, number, semver, date, hashed, array contains) that the user matches none of
(the worst case: every rule is tried); a percentage rollout; a rule with a segment condition AND
a prerequisite flag. Every contender is checked to return the same value before it is timed.

aioconfig: ``config.get_value(key, default, user)`` on a Config opened with
``load(FlagOverrides(path, behaviour="local_only"), mode="manual")`` over the same document (and,
for reference, the pure ``evaluate(flags, key, default, user).value`` underneath).
configcat-client: ``client.get_value(key, default, user)`` on a client that cannot reach the
network (``offline=True``, manual polling). Two ways to feed it the document are tried on the
no-rule flag, and the faster is used for every row: an in-memory ``ConfigCache`` holding a
serialized ``ConfigEntry`` (the SDK parses it once, then compares the cached string per call),
and ``LocalFileFlagOverrides(path, OverrideBehaviour.LocalOnly)`` (one ``os.stat`` per call).
The SDK's logger stays at WARNING (at INFO it would also build an evaluation log).

The floors: the least work a path can do, timed in the same run on the same inputs, so that a
path short of the speed-up target shows what stops it:
(1) a plain ``dict.get``, and a Python method that does one dict lookup (what any
``get_value`` has to be at least); (2) the ten comparisons written out by hand for this document
and this user (``ten_comparisons`` below: comparison values prepared in advance, the user's
values converted on every call, as for a user seen for the first time; no validation); (3b) the
SHA-1 of key + identifier on the same new identifiers, and making the ``User`` alone.

Statistic: best of 5 ``timeit`` rounds, the statement compiled into timeit's loop, each round
sized to take about 0.1 s; shown as evaluations per second. A row's statements (aioconfig's
two, configcat-client's and the row's floors) take their rounds in turn, so that a burst of
other work on the machine slows one round of each rather than every round of one.
Run: ``python benchmarks/bench_flags.py``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import re
import tempfile
import time
import timeit
import uuid
from datetime import datetime, timezone
from hashlib import sha1, sha256
from typing import Any

import anyio
import configcatclient
from _common import machine, table
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.configentry import ConfigEntry
from configcatclient.interfaces import ConfigCache
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.pollingmode import PollingMode
from configcatclient.user import User as SdkUser

from aioconfig import load
from aioconfig.flags import User, evaluate, parse_flags
from aioconfig.sources import FlagOverrides

ROUNDS = 5
ROUND_SECONDS = 0.1
POOL = 1_000  # users "seen before", cycled through
SALT = "bench-salt-3f9a"
TARGET_SPEEDUP = 20.0
TARGET_FLOOR_RATIO = 2.0
TARGET_DICT_RATIO = 3.0


def hashed(value: str, context: str) -> str:
    """The SDK's hash for the "hashed" comparators (context: the setting key)."""
    return hashlib.sha256((value + SALT + context).encode()).hexdigest()


def served(kind: str, value: Any, variation: str) -> dict[str, Any]:
    return {"v": {kind: value}, "i": variation}


def rule(condition: dict[str, Any], value: str, n: int) -> dict[str, Any]:
    return {"c": [{"u": condition}], "s": served("s", value, f"r{n}")}


def document() -> dict[str, Any]:
    key = "tenRules"
    conditions: list[dict[str, Any]] = [
        {"a": "Email", "c": 32, "l": ["@acme.com", "@initech.com"]},  # ENDS WITH ANY OF
        {"a": "Country", "c": 0, "l": ["HU", "AT", "DE"]},  # IS ONE OF
        {"a": "plan", "c": 28, "s": "enterprise"},  # EQUALS
        {"a": "logins", "c": 14, "d": 1000},  # NUMBER >
        {"a": "appVersion", "c": 6, "s": "1.0.0"},  # SEMVER <
        {"a": "appVersion", "c": 4, "l": ["3.0.0", "3.1.0-beta.1"]},  # SEMVER IS ONE OF
        {"a": "signedUp", "c": 18, "d": 1_500_000_000},  # DATE BEFORE (unix seconds)
        {"a": "Identifier", "c": 16, "l": [hashed("1", key), hashed("2", key)]},  # SENSITIVE ONE OF
        {"a": "Email", "c": 22, "l": [f"5_{hashed('admin', key)}"]},  # HASHED STARTS WITH ANY OF
        {"a": "roles", "c": 34, "l": ["admin", "owner"]},  # ARRAY CONTAINS ANY OF
    ]
    return {
        "p": {"u": "https://cdn-global.configcat.com", "r": 0, "s": SALT},
        "s": [{"n": "Beta users", "r": [{"a": "Email", "c": 32, "l": ["@example.com"]}]}],
        "f": {
            "noRules": {"t": 0, **served("b", True, "v-on")},
            key: {
                "t": 1,
                **served("s", "default", "v-default"),
                "r": [rule(c, f"variant-{n}", n) for n, c in enumerate(conditions)],
            },
            "rollout": {
                "t": 0,
                **served("b", False, "v-off"),
                "p": [
                    {"p": 30, "v": {"b": True}, "i": "p-on"},
                    {"p": 70, "v": {"b": False}, "i": "p-off"},
                ],
            },
            "segmentPrereq": {
                "t": 0,
                **served("b", False, "v-off"),
                "r": [
                    {
                        "c": [
                            {"s": {"s": 0, "c": 0}},  # IS IN SEGMENT "Beta users"
                            {"p": {"f": "noRules", "c": 0, "v": {"b": True}}},  # noRules == true
                        ],
                        "s": served("b", True, "v-beta"),
                    }
                ],
            },
        },
    }


ATTRIBUTES: dict[str, Any] = {
    "plan": "pro",
    "logins": 7,
    "appVersion": "2.3.1",
    "signedUp": datetime(2023, 5, 17, 12, 0, tzinfo=timezone.utc),
    "roles": ["editor", "viewer"],
}
USER_ARGS: dict[str, Any] = {"email": "ada@example.com", "country": "GB"}


# -- the floors ---------------------------------------------------------------------------

_ENDINGS = ("@acme.com", "@initech.com")
_COUNTRIES = frozenset({"HU", "AT", "DE"})
_VERSION = re.compile(
    r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)"
    r"(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?",
    re.ASCII,
).fullmatch
_V1 = (1, "1", 1, "0", 1, "0", 1)  # 1.0.0 as (length, digits) x 3, then "a release"
_VERSIONS = frozenset({("3", "0", "0", None), ("3", "1", "0", "beta.1")})
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SUFFIX = (SALT + "tenRules").encode()
_IDENTIFIERS = frozenset(bytes.fromhex(hashed(text, "tenRules")) for text in ("1", "2"))
_ADMIN = bytes.fromhex(hashed("admin", "tenRules"))
_ROLES = frozenset({"admin", "owner"})


def _version_key(major: str, minor: str, patch: str, pre: str | None) -> tuple[Any, ...]:
    core = (len(major), major, len(minor), minor, len(patch), patch)
    if pre is None:
        return (*core, 1)
    parts = pre.split(".")
    return (*core, 0, tuple((0, len(p), p) if p.isdigit() else (1, 0, p) for p in parts))


def ten_comparisons(a: dict[str, Any]) -> int:
    """The ten rules of "tenRules" written out: the index of the first that holds, or -1.

    The floor of row (2): the comparison values are prepared in advance, the user's values are
    converted on every call (the version parsed once for both version rules), nothing is
    validated. The SDK's semantics: numbers as floats, versions by precedence, hashes salted.
    """
    email = a["Email"]
    if email.endswith(_ENDINGS):
        return 0
    if a["Country"] in _COUNTRIES:
        return 1
    if a["plan"] == "enterprise":
        return 2
    if float(a["logins"]) > 1000.0:
        return 3
    fields = _VERSION(a["appVersion"].strip()).groups()  # type: ignore[union-attr]
    if _version_key(*fields) < _V1:
        return 4
    if fields in _VERSIONS:
        return 5
    if (a["signedUp"] - _EPOCH).total_seconds() < 1_500_000_000.0:
        return 6
    if sha256(a["Identifier"].encode() + _SUFFIX).digest() in _IDENTIFIERS:
        return 7
    data = email.encode()
    if len(data) >= 5 and sha256(data[:5] + _SUFFIX).digest() == _ADMIN:
        return 8
    if not _ROLES.isdisjoint(a["roles"]):
        return 9
    return -1


# One user per rule, each matching that rule first: the floor and aioconfig must agree on all.
_HITS: list[tuple[str, Any]] = [
    ("email", "ada@acme.com"),
    ("country", "HU"),
    ("plan", "enterprise"),
    ("logins", 5000),
    ("appVersion", "0.9.0"),
    ("appVersion", "3.1.0-beta.1"),
    ("signedUp", datetime(2010, 1, 1, tzinfo=timezone.utc)),
    ("identifier", "2"),
    ("email", "admin@example.org"),
    ("roles", ["viewer", "owner"]),
]


class _Reader:
    """The floor of row (1): a method that does one dict lookup and nothing else."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._values = values

    def get_value(self, key: str, default: Any, user: Any = None) -> Any:
        return self._values[key]


class EntryCache(ConfigCache):  # type: ignore[misc]
    """A ConfigCache that always holds one serialized entry (for whatever cache key)."""

    def __init__(self, serialized: str) -> None:
        self.serialized = serialized

    def get(self, key: str) -> str:
        return self.serialized

    def set(self, key: str, value: str) -> None:
        pass


def sdk_key() -> str:
    # configcatclient.get() hands out one shared instance per key: each client gets its own.
    return f"configcat-sdk-1/{uuid.uuid4().hex[:22]}/{uuid.uuid4().hex[:22]}"


def cache_client(text: str) -> Any:
    entry = ConfigEntry(
        config=json.loads(text), etag="bench", config_json_string=text, fetch_time=time.time()
    )
    options = ConfigCatOptions(
        polling_mode=PollingMode.manual_poll(),
        config_cache=EntryCache(entry.serialize()),
        offline=True,
    )
    return configcatclient.get(sdk_key(), options)


def file_client(path: str) -> Any:
    options = ConfigCatOptions(
        polling_mode=PollingMode.manual_poll(),
        flag_overrides=LocalFileFlagOverrides(path, OverrideBehaviour.LocalOnly),
        offline=True,
    )
    return configcatclient.get(sdk_key(), options)


def evals_per_s(stmt: str, namespace: dict[str, Any]) -> float:
    """Best of ROUNDS timeit rounds, each sized to about ROUND_SECONDS, in evaluations/s."""
    return evals_per_s_together([stmt], namespace)[0]


def evals_per_s_together(stmts: list[str], namespace: dict[str, Any]) -> list[float]:
    """``evals_per_s`` of each statement, their rounds interleaved (a, b, c, a, b, c, ...):
    a burst of other work on the machine then slows one round of each, not all of one."""
    timers = [timeit.Timer(stmt, globals=namespace) for stmt in stmts]
    numbers = []
    for timer in timers:
        number, elapsed = 1, 0.0
        while elapsed < ROUND_SECONDS / 10:
            number *= 10
            elapsed = timer.timeit(number)
        numbers.append(max(1, int(number * ROUND_SECONDS / elapsed)))
    best = [float("inf")] * len(timers)
    for _ in range(ROUNDS):
        for index, (timer, number) in enumerate(zip(timers, numbers, strict=True)):
            best[index] = min(best[index], timer.timeit(number) / number)
    return [1 / seconds for seconds in best]


# (label, flag key, default, which user expression) — the statements use the names below.
CASES: list[tuple[str, str, Any, str]] = [
    ("(1) no rules", "noRules", False, "user"),
    ("(2) 10 targeting rules, none match (worst case)", "tenRules", "fallback", "user"),
    ("(3a) % rollout, users seen before (pool of 1,000)", "rollout", False, "pool"),
    ("(3b) % rollout, a new user each call", "rollout", False, "new"),
    ("(4) segment condition + prerequisite flag", "segmentPrereq", False, "user"),
]
EXPECTED = {"noRules": True, "tenRules": "default", "segmentPrereq": True}


def user_expr(kind: str, sdk: bool) -> str:
    if kind == "user":
        return "sdk_user" if sdk else "user"
    if kind == "pool":
        return "next(sdk_pool)" if sdk else "next(pool)"
    return "SdkUser(str(next(ids)))" if sdk else "User(str(next(ids)))"


def main() -> None:
    logging.getLogger("configcat").setLevel(logging.WARNING)
    doc = document()
    text = json.dumps(doc, separators=(",", ":"))
    flags = parse_flags(text.encode(), source="bench_flags.py")
    user = User("user-4711", custom=ATTRIBUTES, **USER_ARGS)
    sdk_user = SdkUser("user-4711", custom=dict(ATTRIBUTES), **USER_ARGS)
    identifiers = [f"pool-{i}" for i in range(POOL)]

    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "config_v6.json")
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)
        anyio.run(_with_config, flags, path, text, user, sdk_user, identifiers)


async def _with_config(
    flags: Any, path: str, text: str, user: User, sdk_user: SdkUser, identifiers: list[str]
) -> None:
    source = FlagOverrides(path, behaviour="local_only", watch=False)
    async with load(source, mode="manual") as config:
        # Timing blocks the event loop, on purpose: nothing else runs in this process.
        _measure(config, flags, path, text, user, sdk_user, identifiers)


def _check_floor(config: Any) -> None:
    """The hand-written comparisons decide as the evaluation does, rule by rule."""
    base: dict[str, Any] = {"identifier": "user-4711", **USER_ARGS, **ATTRIBUTES}
    for expected, (field, value) in [(-1, ("plan", "pro")), *enumerate(_HITS)]:
        fields = {**base, field: value}
        custom = {name: fields[name] for name in ATTRIBUTES}
        user = User(fields["identifier"], fields["email"], fields["country"], custom)
        floor = ten_comparisons(user._attributes)  # type: ignore[arg-type]
        served = config.get_value("tenRules", "fallback", user)
        wanted = "default" if expected < 0 else f"variant-{expected}"
        if floor != expected or served != wanted:
            raise SystemExit(f"floor of (2) disagrees for {field}={value!r}: {floor}, {served}")


def _measure(
    config: Any,
    flags: Any,
    path: str,
    text: str,
    user: User,
    sdk_user: SdkUser,
    identifiers: list[str],
) -> None:
    try:
        clients = {"in-memory ConfigCache": cache_client(text), "local file": file_client(path)}
        for client in clients.values():
            if not client.is_offline():
                raise SystemExit("configcat-client is not offline: refusing to run")

        # Same answers from both, for every case, before anything is timed.
        for _, key, default, kind in CASES:
            for ident in [*identifiers[:50], "user-4711"] if kind != "user" else ["user-4711"]:
                ours = User(ident, custom=ATTRIBUTES, **USER_ARGS)
                theirs = SdkUser(ident, custom=dict(ATTRIBUTES), **USER_ARGS)
                mine = evaluate(flags, key, default, ours)
                if mine.error is not None:
                    raise SystemExit(f"{key}: aioconfig failed: {mine.error}")
                if config.get_value(key, default, ours) != mine.value:
                    raise SystemExit(f"{key}: config.get_value disagrees with evaluate")
                for name, client in clients.items():
                    details = client.get_value_details(key, default, theirs)
                    if details.error or details.value != mine.value:
                        raise SystemExit(f"{key}: {name} disagrees: {details.value!r}")
                if key in EXPECTED and mine.value != EXPECTED[key]:
                    raise SystemExit(f"{key}: unexpected value {mine.value!r}")
                if key == "tenRules" and mine.matched_targeting_rule is not None:
                    raise SystemExit("tenRules: a rule matched; the worst case needs none")
        _check_floor(config)
        bucket = (int.from_bytes(sha1(b"rollout42").digest()[:4], "big") >> 4) % 100
        if config.get_value("rollout", False, User("42")) is not (bucket < 30):
            raise SystemExit("floor of (3b): the SHA-1 does not pick what aioconfig picks")

        namespace: dict[str, Any] = {
            "config": config,
            "evaluate": evaluate,
            "flags": flags,
            "User": User,
            "SdkUser": SdkUser,
            "user": user,
            "sdk_user": sdk_user,
            "pool": itertools.cycle([User(i) for i in identifiers]),
            "sdk_pool": itertools.cycle([SdkUser(i) for i in identifiers]),
            "ids": itertools.count(10**9),  # never seen before, by either library
            "flag_values": {"noRules": True, "tenRules": "default", "rollout": False},
            "reader": _Reader({"noRules": True}),
            "ten_comparisons": ten_comparisons,
            "attributes": user._attributes,
            "hasher": sha1(b"rollout"),
        }
        for _ in range(POOL):  # "seen before": every pool user evaluated once already
            evaluate(flags, "rollout", False, next(namespace["pool"]))

        # Which way of feeding the SDK is fastest: use that one for every row.
        setups = {}
        for name, client in clients.items():
            namespace["client"] = client
            setups[name] = evals_per_s("client.get_value('noRules', False, sdk_user)", namespace)
        setup = max(setups, key=setups.__getitem__)
        namespace["client"] = clients[setup]

        # (row, what, statement, binding): a binding floor is the least work of the row; the
        # others tell what goes into it.
        floors = [
            (0, "plain `dict.get('noRules', False)`", "flag_values.get('noRules', False)", True),
            (
                0,
                "a method doing one dict lookup: `reader.get_value('noRules', False, user)`",
                "reader.get_value('noRules', False, user)",
                False,
            ),
            (
                1,
                "the ten comparisons by hand: `ten_comparisons(attributes)`",
                "ten_comparisons(attributes)",
                True,
            ),
            (
                3,
                "SHA-1 of key + new identifier: `hasher.copy()`, `.update(str(next(ids))"
                ".encode())`, `.digest()`",
                "h = hasher.copy(); h.update(str(next(ids)).encode()); h.digest()",
                True,
            ),
            (3, "making the user alone: `User(str(next(ids)))`", "User(str(next(ids)))", False),
            (
                3,
                "both in one statement: `User(i := str(next(ids)))`, then the SHA-1 of `i`",
                "u = User(i := str(next(ids))); h = hasher.copy(); h.update(i.encode()); "
                "h.digest()",
                False,
            ),
        ]
        rows: list[tuple[str, float, float]] = []
        pure: list[float] = []
        floor_rates: list[tuple[int, str, float, bool]] = []
        for index, (label, key, default, kind) in enumerate(CASES):
            namespace["default"] = default
            own = [(row, what, stmt, bound) for row, what, stmt, bound in floors if row == index]
            rates = evals_per_s_together(
                [
                    f"config.get_value({key!r}, default, {user_expr(kind, False)})",
                    f"evaluate(flags, {key!r}, default, {user_expr(kind, False)}).value",
                    f"client.get_value({key!r}, default, {user_expr(kind, True)})",
                    *(stmt for _, _, stmt, _ in own),
                ],
                namespace,
            )
            rows.append((label, rates[0], rates[2]))
            pure.append(rates[1])
            floor_rates += [
                (row, what, rate, bound)
                for (row, what, _, bound), rate in zip(own, rates[3:], strict=True)
            ]
    finally:
        configcatclient.close_all()

    print(
        "### Flag evaluations per second: aioconfig's config.get_value vs configcat-client "
        f"{configcatclient.version.CONFIGCATCLIENT_VERSION} (best of {ROUNDS} timeit rounds)\n"
    )
    print(
        table(
            [
                "flag",
                "config.get_value evals/s",
                "evaluate() evals/s",
                "configcat-client evals/s",
                "speed-up (get_value)",
            ],
            [
                (n, f"{a:,.0f}", f"{p:,.0f}", f"{c:,.0f}", f"{a / c:.1f}x")
                for (n, a, c), p in zip(rows, pure, strict=True)
            ],
        )
    )
    others = ", ".join(f"{n}: {r:,.0f}/s" for n, r in setups.items())
    print(
        f"\nconfigcat-client fed from: {setup}, the faster of the two setups on flag (1) "
        f"({others}); offline, manual polling, SDK logging at WARNING."
    )

    print("\n### The floors: the least work of a path, same inputs, same run\n")
    print(
        table(
            [
                "flag",
                "floor (*: the row's floor; the others show what goes into it)",
                "evals/s",
                "get_value time / this",
                "this / configcat-client",
            ],
            [
                (
                    rows[row][0],
                    ("* " if binding else "") + label,
                    f"{rate:,.0f}",
                    f"{rate / rows[row][1]:.2f}x",
                    f"{rate / rows[row][2]:.1f}x",
                )
                for row, label, rate, binding in floor_rates
            ],
        )
    )

    print()
    binding = {row: rate for row, _, rate, bound in floor_rates if bound}
    short = [(index, a / c) for index, (_, a, c) in enumerate(rows) if a / c < TARGET_SPEEDUP]
    if not short:
        print(f"Target: >= {TARGET_SPEEDUP:.0f}x configcat-client on every flag: met")
    for index, speedup in short:
        name = rows[index][0]
        if index not in binding:
            why = "MISSED (no floor measured)"
        else:
            limit = binding[index] / rows[index][2]
            why = (
                f"its floor allows at most {limit:.1f}x"
                if limit < TARGET_SPEEDUP
                else f"MISSED (its floor allows {limit:.1f}x)"
            )
        print(f"Target: >= {TARGET_SPEEDUP:.0f}x configcat-client: {name}: {speedup:.1f}x; {why}")
    for index in (1, 3):
        ratio = binding[index] / rows[index][1]
        verdict = "met" if ratio <= TARGET_FLOOR_RATIO else "MISSED"
        print(
            f"Target: {rows[index][0]} within {TARGET_FLOOR_RATIO:.0f}x of its floor: "
            f"{ratio:.2f}x ({verdict})"
        )
    ratio = binding[0] / rows[0][1]
    verdict = "met" if ratio <= TARGET_DICT_RATIO else "MISSED"
    print(
        f"Target: no-rule flag within {TARGET_DICT_RATIO:.0f}x of a plain dict.get: "
        f"{ratio:.2f}x the time of dict.get ({verdict})"
    )
    print(f"\nMachine: {machine()}")


if __name__ == "__main__":
    main()
