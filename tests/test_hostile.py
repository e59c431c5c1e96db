"""Hostile input: bombs, depth, ambiguous keys, numbers, and options given the wrong type.

Each case costs a clear error naming the source; the last good configuration stays; the event
loop is never held for long.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp import web
from http_helpers import serve, wait_until

from aioconfig import (
    FileCache,
    InitialLoadError,
    ParseError,
    RefreshResult,
    Secret,
    SourceUnavailable,
    Validator,
    load,
)
from aioconfig._limits import MAX_DEPTH, MIN_VALUES
from aioconfig.sources import Env, File, Http, Static
from aioconfig.sources._formats import parse
from aioconfig.sources._http import MAX_RETRY_AFTER, retry_after
from aioconfig.testing import FakeClock, MutableSource

pytestmark = pytest.mark.anyio


def alias_bomb(levels: int = 10) -> str:
    """The YAML "billion laughs": each level lists the one before nine times (~500 bytes)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for n in range(1, levels):
        refs = ", ".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- YAML aliases


def test_a_yaml_alias_bomb_is_refused_quickly_naming_the_source() -> None:
    document = alias_bomb().encode()
    assert len(document) < 600
    with pytest.raises(ParseError) as info:  # expanded, it would take minutes and gigabytes
        parse(document, "yaml", "bomb.yaml")
    assert str(info.value).startswith("bomb.yaml: expands to more than 100,000 values")


def test_aliases_that_stay_within_the_bound_are_fine() -> None:
    document = alias_bomb(levels=4).encode()  # 9 ** 4 = 6,561 values
    data = parse(document, "yaml", "small.yaml")
    assert len(data["a3"]) == 9 and data["a3"][0] == data["a2"]


async def test_a_bomb_served_over_http_keeps_the_last_good_configuration() -> None:
    body = {"text": "a: 1\n"}

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body["text"], content_type="application/yaml")

    async with serve(("/app.yaml", handler)) as server:
        url = str(server.make_url("/app.yaml"))
        async with load(Http(url), mode="manual") as config:
            body["text"] = alias_bomb()
            result = await config.refresh(force=True)
            assert isinstance(result.error, ParseError)
            assert "expands to more than" in str(result.error)
            assert config["a"] == 1 and config.version == 1


# ---------------------------------------------------------------- depth


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.toml", ".".join(["a"] * 5000) + " = 1\n"),
        ("deep.json", '{"a": ' + "[" * 600 + "]" * 600 + "}"),
        ("deep.yaml", "a: " + "[" * 2000 + "]" * 2000 + "\n"),
        ("deep2.yaml", "".join(f"{'  ' * n}k{n}:\n" for n in range(150)) + "  " * 150 + "v: 1\n"),
    ],
)
async def test_deep_documents_fail_fast_with_a_parse_error(
    tmp_path: Path, name: str, text: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InitialLoadError) as info:
        await load(File(path), max_init_wait=60)
    (error,) = info.value.errors
    assert isinstance(error, ParseError) and not error.transient  # not retried for a minute
    assert info.value.timeout is None
    # YAML's says where: the composer counts the levels as it goes
    where = {"deep.yaml": ":1:104", "deep2.yaml": ":101:201"}.get(name, "")
    assert str(error) == f"{path}{where}: nested more than {MAX_DEPTH} levels deep"


async def test_a_deep_document_on_refresh_is_a_parse_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"a": 1}')
    async with load(File(path), mode="manual") as config:
        path.write_text('{"a": ' + "[" * 600 + "]" * 600 + "}")
        result = await config.refresh(force=True)
        assert isinstance(result.error, ParseError)
        assert config.statistics().engine_errors == 0 and config["a"] == 1


async def test_a_deep_document_at_start_up_falls_back_to_the_cache(tmp_path: Path) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"a": 1}')
    cache = FileCache(tmp_path / "cache.json")
    async with load(File(path), mode="manual", cache=cache):
        pass
    path.write_text('{"a": ' + "[" * 600 + "]" * 600 + "}")
    async with load(File(path), mode="manual", cache=cache) as config:
        assert config.snapshot.from_cache and config["a"] == 1


async def test_an_environment_variable_with_too_many_segments_is_refused() -> None:
    name = "DEEP_" + "__".join(["x"] * (MAX_DEPTH + 1))
    with pytest.raises(InitialLoadError, match=f"more than the {MAX_DEPTH} allowed"):
        await load(Env("DEEP", environ={name: "1"}))


async def test_a_json_cast_that_nests_too_deep_is_a_failed_cast() -> None:
    deep = "[" * 600 + "]" * 600
    with pytest.raises(InitialLoadError, match="nested more than"):
        await load(Env("CAST", environ={"CAST_A": "@json " + deep}))


def test_the_limits_are_what_the_readme_says() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert f"{MAX_DEPTH} levels" in readme and f"{MIN_VALUES:,} values" in readme


# ---------------------------------------------------------------- wrong types, at the call


def test_load_needs_a_source() -> None:
    with pytest.raises(TypeError, match="load\\(\\) needs at least one source"):
        load()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_optional_must_be_a_bool(tmp_path: Path, value: object) -> None:
    with pytest.raises(TypeError, match=f"optional must be True or False, got {value!r}"):
        File(tmp_path / "a.toml", optional=value)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="optional must be True or False"):
        Http("http://127.0.0.1:1/a.json", optional=value)  # type: ignore[arg-type]


def test_a_validator_needs_names() -> None:
    with pytest.raises(TypeError, match="needs the names of the keys it checks"):
        Validator()
    with pytest.raises(TypeError, match="names must be non-empty strings"):
        Validator("")


async def test_a_big_http_body_takes_the_worker_thread_path_and_is_served() -> None:
    text = "{" + ",".join(f'"k{i}": {i}' for i in range(50_000)) + "}"

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=text, content_type="application/json")

    async with serve(("/big.json", handler)) as server:
        async with load(Http(str(server.make_url("/big.json"))), mode="manual") as config:
            assert config["k49999"] == 49999


# ---------------------------------------------------------------- remote servers


async def test_a_304_with_another_etag_never_pins_stale_content() -> None:
    state = {"body": '{"v": 1}', "etag": '"v1"'}
    lies = [False]

    async def handler(request: web.Request) -> web.Response:
        if lies.pop() and request.headers.get("If-None-Match") == '"v1"':
            # A broken cache in front: once, a 304 naming the new ETag.
            lies.append(False)
            return web.Response(status=304, headers={"ETag": '"v2"'})
        lies.append(False)
        if request.headers.get("If-None-Match") == state["etag"]:
            return web.Response(status=304, headers={"ETag": state["etag"]})
        return web.Response(
            text=state["body"], content_type="application/json", headers={"ETag": state["etag"]}
        )

    async with serve(("/app.json", handler)) as server:
        async with load(Http(str(server.make_url("/app.json"))), mode="manual") as config:
            state.update(body='{"v": 2}', etag='"v2"')
            lies[:] = [True]
            assert not (await config.refresh(force=True)).changed  # the lying 304
            assert (await config.refresh(force=True)).changed  # asked again with "v1": 200
            assert config["v"] == 2


async def test_temporary_files_of_crashed_cache_writes_are_swept(tmp_path: Path) -> None:
    old = [tmp_path / f".aioconfig-crashed{n}.tmp" for n in range(3)]
    for path in old:
        path.write_bytes(b"x" * 1000)
        os.utime(path, (time.time() - 3600, time.time() - 3600))
    fresh = tmp_path / ".aioconfig-inflight.tmp"  # another process, writing right now
    fresh.write_bytes(b"x")
    other = tmp_path / "notes.tmp"
    other.write_bytes(b"x")
    async with load(Static({"a": 1}), mode="manual", cache=FileCache(tmp_path / "cache.json")):
        pass
    assert sorted(os.listdir(tmp_path)) == [
        ".aioconfig-inflight.tmp",
        "cache.json",
        "notes.tmp",
    ]


@pytest.mark.slow
async def test_an_unchanged_broken_file_is_reported_once_and_its_recovery_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "app.json"
    path.write_text('{"a": 1}')
    errors: list[Exception] = []
    async with load(
        File(path, watch=False), refresh_interval=0.05, on_refresh_error=errors.append
    ) as config:
        broken = tmp_path / "broken.json"
        broken.write_text('{"a": ')
        os.replace(broken, path)  # at once: a poll never reads a half-written file
        with caplog.at_level(logging.INFO, logger="aioconfig"):
            await wait_until(lambda: config.statistics().consecutive_failures >= 5)
            assert len(errors) == 1 and isinstance(errors[0], ParseError)
            assert config.statistics().errors == 1 and config["a"] == 1
            fixed = tmp_path / "fixed.json"
            fixed.write_text('{"a": 2}')
            os.replace(fixed, path)
            await wait_until(lambda: config["a"] == 2)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        recovered = [r.getMessage() for r in caplog.records if "succeeded again" in r.getMessage()]
        assert len(recovered) == 1 and recovered[0].startswith(
            "configuration refresh succeeded again after "
        )


# ---------------------------------------------------------------- numbers


NUMBERS = """\
big = 1180591620717411303424
negative = -1180591620717411303424
nan = nan
inf = inf
minus_inf = -inf
plain = 1.5
"""


async def test_numbers_come_back_from_the_cache_exactly(tmp_path: Path) -> None:
    path = tmp_path / "numbers.toml"
    path.write_text(NUMBERS)
    cache = FileCache(tmp_path / "cache.json")
    async with load(File(path), mode="manual", cache=cache) as config:
        fresh = config.snapshot.to_dict()
    path.write_text("broken = [")
    async with load(File(path), mode="manual", cache=cache) as config:
        assert config.snapshot.from_cache
        cached = config.snapshot.to_dict()
    assert cached["big"] == fresh["big"] == 2**70 and cached["negative"] == -(2**70)
    assert math.isnan(cached["nan"]) and cached["inf"] == math.inf
    assert cached["minus_inf"] == -math.inf and cached["plain"] == 1.5
    assert {key: type(value) for key, value in cached.items()} == {
        key: type(value) for key, value in fresh.items()
    }


def test_the_command_line_dumps_integers_past_64_bits(tmp_path: Path) -> None:
    (tmp_path / "numbers.toml").write_text(NUMBERS)
    for form in ("json", "toml", "yaml"):
        done = subprocess.run(
            [sys.executable, "-m", "aioconfig", "-s", "numbers.toml", "dump", "--format", form],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "1180591620717411303424" in done.stdout and "-1180591620717411303424" in done.stdout


# ---------------------------------------------------------------- secrets in errors


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ("password: *hunter2\n", "found undefined alias '…'"),
        ("SECRET_KEY: !hunter2 x\n", "could not determine a constructor for the tag '…'"),
        ("a: &hunter2 1\nb: &hunter2 2\n", "second occurrence"),
    ],
)
def test_a_yaml_error_never_quotes_the_document(document: str, problem: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(document.encode(), "yaml", "app.yaml")
    assert "hunter2" not in str(info.value)
    assert info.value.problem == problem


async def test_what_validate_raises_is_shown_by_type_only() -> None:
    def validate(candidate: object) -> None:
        int("hunter2")

    with pytest.raises(InitialLoadError) as info:
        await load(Static({"a": 1}), validate=validate)
    assert str(info.value.errors[0]) == "candidate rejected by validate=: ValueError"
    assert "hunter2" not in str(info.value)


# ---------------------------------------------------------------- Retry-After


def test_retry_after_reads_seconds_and_http_dates_and_is_capped() -> None:
    now = 1_800_000_000.0
    assert retry_after("120") == 120.0
    assert retry_after(" 7 ") == 7.0
    assert retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert retry_after("100000") == MAX_RETRY_AFTER == 300.0
    assert retry_after("soon") is None and retry_after(None) is None and retry_after("-5") is None


class Overloaded:
    """A server that answers 503 with ``Retry-After: <wait>`` for ``wait`` seconds after the
    first request it gets while ``busy``; counts requests."""

    def __init__(self, wait: str) -> None:
        self.wait = wait
        self.busy = True
        self.until: float | None = None
        self.requests = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.busy:
            now = time.monotonic()
            if self.until is None:
                self.until = now + float(self.wait)
            if now < self.until:
                return web.Response(status=503, headers={"Retry-After": self.wait})
        return web.Response(text='{"a": 1}', content_type="application/json")


@pytest.mark.slow
async def test_start_up_waits_as_long_as_the_server_asks() -> None:
    overloaded = Overloaded("1")
    async with serve(("/app.json", overloaded.handle)) as server:
        async with load(Http(str(server.make_url("/app.json"))), max_init_wait=5) as config:
            assert config["a"] == 1
        # Asked once, then again once the second had passed: without Retry-After the start-up
        # backoff (up to a quarter second, doubling) asks three or four times in that second.
        assert overloaded.requests == 2


async def test_the_background_waits_as_long_as_the_server_asks() -> None:
    overloaded = Overloaded("120")
    overloaded.busy = False
    clock = FakeClock()
    errors: list[Exception] = []
    async with serve(("/app.json", overloaded.handle)) as server:
        async with load(
            Http(str(server.make_url("/app.json"))),
            refresh_interval=30,
            clock=clock,
            on_refresh_error=errors.append,
        ) as config:
            overloaded.busy, overloaded.requests = True, 0
            await clock.advance(30)
            await wait_until(lambda: bool(errors))
            assert str(errors[0]).endswith("HTTP 503 Service Unavailable (Retry-After: 120s)")
            # Past the interval: the backoff alone never waits longer than 30 s. (The wait is
            # 120 s from the failure; the fake clock may have moved on a little since.)
            await wait_until(lambda: clock.sleeps[-1] > 60)
            assert await config.refresh() == RefreshResult(snapshot=config.snapshot)  # not due
            assert overloaded.requests == 1


# ---------------------------------------------------------------- ambiguous and empty keys


async def test_one_key_spelled_two_ways_in_one_source_is_refused() -> None:
    with pytest.raises(InitialLoadError) as info:
        await load(Static({"a.b": 1, "a": {"b": 2}}))
    (error,) = info.value.errors
    assert isinstance(error, ParseError)
    assert str(error) == (
        "static: the key 'a.b' is spelled two ways: 'a.b' and 'a' > 'b'; rename one"
    )


async def test_one_key_spelled_two_ways_across_sources_is_refused_on_refresh() -> None:
    nested = MutableSource({"a": {"c": 1}}, name="nested")
    flat = MutableSource({"x": 1}, name="flat")
    async with load(nested, flat, mode="manual") as config:
        flat.set({"a.c": 2})
        result = await config.refresh(force=True)
        assert str(result.error) == (
            "flat: the key 'a.c' is spelled two ways: 'a.c' in flat and 'a' > 'c' in nested; "
            "rename one"
        )
        assert config["a.c"] == 1 and config.version == 1  # the last good stays, unchanged
        nested.set({"b": 1})  # the nested spelling goes: the dotted key is alone now
        assert (await config.refresh(force=True)).error is None
        assert config["a.c"] == 2 and "a" not in config


async def test_a_key_holding_a_dot_is_read_by_its_dotted_path() -> None:
    async with load(Static({"app.name": "shop", "db": {"pool.size": 5}}), mode="manual") as config:
        assert config["app.name"] == "shop" and config["db.pool.size"] == 5
        assert config.snapshot.to_dict() == {"app.name": "shop", "db": {"pool.size": 5}}


@pytest.mark.parametrize("data", [{"": 1}, {"a": {"": 1}}])
async def test_an_empty_key_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(InitialLoadError, match="static: an empty key at"):
        await load(Static(data))


async def test_a_validation_message_masks_a_value_built_from_a_secret() -> None:
    source = Static({"db": {"password": "hunter2-s3cr3t"}, "dsn": "@format pg://{db.password}-x"})
    with pytest.raises(InitialLoadError) as info:
        await load(source, validators=[Validator("dsn", len_max=3)])
    assert "hunter2" not in str(info.value) and "dsn" in str(info.value)


async def test_a_start_from_a_cache_with_secrets_keeps_them_masked(tmp_path: Path) -> None:
    cache = FileCache(tmp_path / "cache.json", store_secrets=True)
    source = MutableSource(
        {"blob": "S3CR3T-blob", "db": {"password": "S3CR3T-pw"}, "dsn": "@format x{db.password}"}
    )
    async with load(source, Static({"given": Secret("S3CR3T-given")}), cache=cache):
        pass
    source.fail(SourceUnavailable("mutable", "down"))
    async with load(
        source, Static({"given": Secret("S3CR3T-given")}), cache=cache, max_init_wait=0.05
    ) as config:
        assert config.snapshot.from_cache and config["given"] == "S3CR3T-given"
        shown = config.explain("given") + config.explain("dsn") + config.explain("db.password")
        assert "S3CR3T" not in shown
