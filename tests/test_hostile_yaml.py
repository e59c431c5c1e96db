"""Hostile YAML: merge-key bombs, aliases with merges, long merge chains, depth, numbers.

PyYAML builds a merge key (``<<: [*a, *a]``) by copying the merged entries, so a few hundred
bytes can cost it minutes while the result, deduplicated, stays small. The document is measured
on PyYAML's node graph before anything is built; each bomb here is a ParseError naming the
source, and its message says which check found it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import FrameType

import pytest
import yaml
from aiohttp import web
from http_helpers import serve

from aioconfig import InitialLoadError, ParseError, load
from aioconfig._limits import MAX_DEPTH
from aioconfig.sources import File, Http
from aioconfig.sources._formats import parse

pytestmark = pytest.mark.anyio

EXPANDS = "expands to more than 100,000 values (YAML aliases or merge keys?)"
NESTED = f"nested more than {MAX_DEPTH} levels deep"


def merge_bomb(levels: int = 10, fan: int = 4) -> str:
    """The audit's bomb: each level merges the one before ``fan`` times, with a key of its
    own. PyYAML copies ``fan ** levels`` entries; the result has ``levels + 2`` keys."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for n in range(1, levels):
        refs = ", ".join([f"*m{n - 1}"] * fan)
        lines.append(f"m{n}: &m{n} {{<<: [{refs}], c{n}: {n}}}")
    return "\n".join(lines) + "\n"


def repeated_merge_keys(levels: int = 10, fan: int = 4) -> str:
    """The same with one ``<<`` key per merge: PyYAML keeps duplicate keys and merges each."""
    lines = ["m0: &m0 {a: 1, b: 2}"]
    for n in range(1, levels):
        merges = ", ".join([f"<<: *m{n - 1}"] * fan)
        lines.append(f"m{n}: &m{n} {{{merges}}}")
    return "\n".join(lines) + "\n"


def merges_of_lists(levels: int = 7) -> str:
    """Merges and aliases together: each level merges the one before and lists it again."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]", "m0: &m0 {a: *a0}"]
    for n in range(1, levels):
        before = f"*m{n - 1}"
        lines.append(f"m{n}: &m{n} {{<<: [{before}, {before}], k{n}: [{before}, {before}]}}")
    return "\n".join(lines) + "\n"


def merge_chain(length: int) -> str:
    """Each mapping merges the one before: PyYAML recurses ``length`` deep to flatten the last."""
    lines = ["m0: &m0 {k0: 0}"]
    for n in range(1, length):
        lines.append(f"m{n}: &m{n} {{<<: *m{n - 1}, k{n}: {n}}}")
    return "\n".join(lines) + "\n"


def many_merges_of_a_big_mapping(copies: int = 30) -> str:
    """1,000 keys merged four times into each of ``copies`` mappings: 30,000 values once
    built, 120,000 entries copied to build them."""
    keys = ", ".join(f"k{n}: {n}" for n in range(1000))
    lines = [f"big: &big {{{keys}}}"]
    lines += [f"s{n}: {{<<: [*big, *big, *big, *big]}}" for n in range(copies)]
    return "\n".join(lines) + "\n"


def nested_lists(depth: int, inner: str = "x") -> str:
    return "[" * depth + inner + "]" * depth


# ---------------------------------------------------------------- bombs, refused before building


@pytest.mark.parametrize(
    "document",
    [
        merge_bomb(),
        merge_bomb(levels=16, fan=2),
        repeated_merge_keys(),
        merges_of_lists(levels=9),
        many_merges_of_a_big_mapping(),
        # A mapping that merges itself, or contains itself: without end.
        "a: &a {<<: *a, b: 1}\n",
        "a: &a {b: *a}\n",
        "a: &a [*a]\n",
    ],
    ids=[
        "merge",
        "merge-fan-2",
        "repeated-<<",
        "merges-and-aliases",
        "big-mapping",
        "self-merge",
        "self-mapping",
        "self-list",
    ],
)
def test_a_merge_bomb_is_refused_naming_the_source(document: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(document.encode(), "yaml", "bomb.yaml")
    assert str(info.value).startswith(f"bomb.yaml: {EXPANDS}")
    assert info.value.source == "bomb.yaml" and not info.value.transient


def test_a_bomb_is_refused_before_anything_is_built() -> None:
    # Built, the top level's bad date fails first, before any nested mapping is flattened.
    # Measured on the node graph first, the bomb is what is reported.
    document = merge_bomb(levels=14) + "z: 2001-02-30\n"
    with pytest.raises(ParseError) as info:
        parse(document.encode(), "yaml", "bomb.yaml")
    assert str(info.value).startswith(f"bomb.yaml: {EXPANDS}")


def test_a_long_merge_chain_is_refused_where_it_passes_the_limit() -> None:
    with pytest.raises(ParseError) as info:
        parse(merge_chain(3000).encode(), "yaml", "chain.yaml")
    line = MAX_DEPTH + 2  # m0 merges nothing: m101, on line 102, is the 101st link
    assert str(info.value) == (
        f"chain.yaml:{line}:7: merge keys (<<) chained more than {MAX_DEPTH} deep"
    )


def test_a_merge_chain_within_the_limit_is_read_as_pyyaml_reads_it() -> None:
    document = merge_chain(MAX_DEPTH + 1)
    data = parse(document.encode(), "yaml", "chain.yaml")
    assert data == yaml.safe_load(document)
    assert data[f"m{MAX_DEPTH}"] == {f"k{n}": n for n in range(MAX_DEPTH + 1)}


def test_ordinary_merges_and_aliases_are_read_as_pyyaml_reads_them() -> None:
    document = (
        "defaults: &defaults {timeout: 30, retries: 3, pool: &pool {min: 1, max: 10}}\n"
        "extra: &extra {tls: true, retries: 5}\n"
        "a: {<<: *defaults, host: a.internal}\n"
        "b: {<<: [*extra, *defaults], host: b.internal, pool: *pool}\n"
        "c:\n  <<: *defaults\n  timeout: 5\n  tags: &tags [x, y]\n"
        "d: {copy: *tags, again: *tags, when: 2001-12-14, at: 1:30:00, ratio: 1:30.5}\n"
    )
    data = parse(document.encode(), "yaml", "app.yaml")
    assert data == yaml.safe_load(document)  # which merge wins is PyYAML's (6.0.4 changed it)
    assert data["a"]["timeout"] == 30 and data["c"]["timeout"] == 5 and data["d"]["at"] == 5400


def test_a_bomb_that_stays_within_the_bound_is_read() -> None:
    document = merge_bomb(levels=7)  # 4 ** 7 = 16,384 entries copied
    data = parse(document.encode(), "yaml", "small.yaml")
    assert data == yaml.safe_load(document)
    assert data["m6"] == {"a": 1, "b": 2, **{f"c{n}": n for n in range(1, 7)}}


# ---------------------------------------------------------------- depth, counted before recursion


@pytest.mark.parametrize(
    ("document", "where"),
    [
        # Counted as the document is read, never PyYAML's RecursionError (which would say
        # nowhere), so a 100,000-deep one costs no more than a 101-deep one. The scanner, which
        # reads ahead, stops a long run at its 101st bracket; the composer, which counts the
        # top-level mapping too, at the 100th.
        ("a: " + nested_lists(100_000) + "\n", ":1:104"),
        ("a: " + nested_lists(MAX_DEPTH) + "\n", ":1:103"),
        ("a:\n" + "".join(f"{'  ' * (n + 1)}- \n" for n in range(MAX_DEPTH)), ":101:201"),
        # Deep through aliases: 60 levels used inside 60 more; PyYAML never recurses there.
        # Measured from the inside out: the 20th list from the outside holds 101 levels.
        (f"a: &a {nested_lists(60)}\nb: {nested_lists(60, '*a')}\n", ":2:23"),
    ],
    ids=["flow-100000", "flow-101", "block-101", "alias-121"],
)
def test_nesting_past_the_limit_is_refused_where_it_happens(document: str, where: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(document.encode(), "yaml", "deep.yaml")
    assert str(info.value) == f"deep.yaml{where}: {NESTED}"


def test_nesting_up_to_the_limit_is_read() -> None:
    document = "a: " + nested_lists(MAX_DEPTH - 1) + "\n"  # the top level is the 100th
    data = parse(document.encode(), "yaml", "deep.yaml")
    assert data == yaml.safe_load(document)


# ---------------------------------------------------------------- numbers that cost or crash


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        # Python refuses int() past 4,300 digits with a ValueError, which escaped.
        ("a: " + "1" * 5000 + "\n", "1:4: a number too long"),
        # Base 60: PyYAML multiplies a growing integer per part (quadratic), and a float of
        # more than ~170 parts overflows (an OverflowError escaped).
        ("a: 1" + ":30" * 30_000 + "\n", "1:4: a base-60 number of more than 100 parts"),
        ("a: 1" + ":30" * 200 + ".5\n", "1:4: a base-60 number of more than 100 parts"),
        # datetime's ValueError escaped, and may quote the value.
        ("a: 2001-02-30\n", "1:4: a date or time out of range"),
        ("a: 0000-01-01 25:00:00\n", "1:4: a date or time out of range"),
    ],
    ids=["long-int", "base-60-int", "base-60-float", "30-february", "year-0"],
)
def test_a_number_python_cannot_build_is_a_parse_error(document: str, problem: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(document.encode(), "yaml", "n.yaml")
    assert str(info.value) == f"n.yaml:{problem}"


def test_a_toml_integer_python_cannot_build_is_a_parse_error() -> None:
    with pytest.raises(ParseError) as info:
        parse(("a = " + "1" * 5000).encode(), "toml", "n.toml")
    assert str(info.value) == "n.toml: a number too long"


def test_numbers_within_the_limits_are_read() -> None:
    document = "a: " + "1" * 4000 + "\nb: 1" + ":30" * 99 + "\nc: 0x" + "f" * 40 + "\n"
    assert parse(document.encode(), "yaml", "n.yaml") == yaml.safe_load(document)


# ---------------------------------------------------------------- through the sources


async def test_a_merge_bomb_file_fails_at_start_up_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(merge_bomb())
    with pytest.raises(InitialLoadError) as info:
        await load(File(path), max_init_wait=60)
    (error,) = info.value.errors
    assert isinstance(error, ParseError) and not error.transient  # not retried for a minute
    assert str(error).startswith(f"{path}: {EXPANDS}")


async def test_a_merge_bomb_file_on_refresh_keeps_the_last_good_configuration(
    tmp_path: Path,
) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("a: 1\n")
    async with load(File(path), mode="manual") as config:
        path.write_text(merge_bomb() + "a: 2\n")
        result = await config.refresh(force=True)
        assert isinstance(result.error, ParseError)
        assert str(result.error).startswith(f"{path}: {EXPANDS}")
        assert config["a"] == 1 and config.version == 1


@pytest.mark.parametrize(
    "padding",
    [0, 4096],  # under 2 KiB, Http parses YAML on the event loop; over it, in a worker thread
    ids=["on-the-loop", "in-a-thread"],
)
async def test_a_merge_bomb_served_over_http_keeps_the_last_good_configuration(
    padding: int,
) -> None:
    body = {"text": "a: 1\n"}

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body["text"], content_type="application/yaml")

    async with serve(("/app.yaml", handler)) as server:
        url = str(server.make_url("/app.yaml"))
        async with load(Http(url), mode="manual") as config:
            bomb = merge_bomb() + "a: 2\n" + "#" * padding + "\n"
            assert (len(bomb) < 2048) == (padding == 0)
            body["text"] = bomb
            result = await config.refresh(force=True)
            assert isinstance(result.error, ParseError)
            assert str(result.error).startswith(f"{url}: {EXPANDS}")
            assert config["a"] == 1 and config.version == 1
            body["text"] = "a: 3\n"
            result = await config.refresh(force=True)
            assert result.error is None and config["a"] == 3


async def test_small_yaml_with_an_alias_is_parsed_off_the_event_loop() -> None:
    # Under 2 KiB, Http parses YAML on the loop. With an alias, a document within the limits
    # may still cost 100,000 values' work (a merge bomb of 500 bytes: about 0.1 s): it goes to
    # a worker thread. The profile hook sees the calls of this thread, the loop's, only.
    body = {"text": "a: 1\n"}
    on_the_loop: list[FrameType] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is parse.__code__:
            on_the_loop.append(frame)

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body["text"], content_type="application/yaml")

    async with serve(("/app.yaml", handler)) as server:
        async with load(Http(str(server.make_url("/app.yaml"))), mode="manual") as config:
            for text, on_loop in (
                ("a: 2\n", True),
                ("x: &x {k: 1}\na: {<<: *x}\n", False),
                (merge_bomb(levels=7) + "a: 4\n", False),
            ):
                body["text"] = text
                on_the_loop.clear()
                sys.setprofile(profile)
                try:
                    result = await config.refresh(force=True)
                finally:
                    sys.setprofile(None)
                assert result.error is None and result.changed
                assert bool(on_the_loop) is on_loop
            assert config["a"] == 4 and config["m6.c6"] == 6
