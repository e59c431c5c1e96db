"""The command line, part two: ``list``, "did you mean", options on either side of the command,
``PATH:FORMAT`` sources, and validation problems as one flat list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import SETTINGS, cli_all

from aioconfig import InitialLoadError, LoadError, SourceUnavailable, ValidationError
from aioconfig._cli import _describe, _parser, parse_source
from aioconfig._exceptions import ValidationFailure
from aioconfig._secrets import MASK
from aioconfig.sources import File


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "settings.toml").write_text(SETTINGS)
    return tmp_path


@pytest.mark.slow
def test_list_shows_every_key_masked_with_its_origin(project: Path) -> None:
    (project / "extra.toml").write_text('[db]\nhost = "db.extra"\n')
    table, section, as_json, revealed, nothing = cli_all(
        project,
        ["-s", "settings.toml", "-s", "extra.toml", "list"],
        ["list", "db.pool"],
        ["list", "--json", "db"],
        ["list", "db", "--reveal", "--json"],
        ["list", "db.nope"],
        env={"MYAPP_NAME": "x"},
    )
    assert (table.code, table.err) == (0, "")
    lines = [line.split() for line in table.out.splitlines()]
    assert lines[0] == ["KEY", "VALUE", "KIND", "ORIGIN"]
    rows = {line[0]: line[1:] for line in lines[1:]}
    assert rows["db.host"] == ['"db.extra"', "file", "extra.toml"]
    assert rows["db.port"] == ["5432", "file", "settings.toml"]
    assert rows["db.password"] == [MASK, "file", "settings.toml"]
    assert rows["feature.servers"][0].startswith('[{"host":"a","token":"**********"}')
    assert "db" not in rows and "db.pool" not in rows  # sections: their keys are the rows
    assert "hunter2" not in table.out and "t0k3n" not in table.out
    assert section.out.splitlines()[1].split() == [
        "db.pool.max_size",
        "10",
        "file",
        "settings.toml",
    ]
    listed = json.loads(as_json.out)
    assert listed["db.password"] == {
        "value": MASK,
        "kind": "file",
        "source": "settings.toml",
        "origin": "settings.toml",
    }
    assert sorted(listed) == ["db.host", "db.password", "db.pool.max_size", "db.port"]
    assert json.loads(revealed.out)["db.password"]["value"] == "hunter2"
    assert nothing.one_line_error(1) == "aioconfig: no configuration key 'db.nope'"


@pytest.mark.slow
def test_a_mistyped_key_gets_a_suggestion(project: Path) -> None:
    get, explain, listed = cli_all(
        project, ["get", "db.hots"], ["explain", "db.prot"], ["list", "feture"]
    )
    assert get.one_line_error(1) == (
        "aioconfig: no configuration key 'db.hots' (did you mean 'db.host'?)"
    )
    assert (explain.code, explain.out) == (
        1,
        "db.prot: not set by any source (did you mean 'db.port'?)\n",
    )
    assert listed.one_line_error(1).endswith("(did you mean 'feature'?)")


@pytest.mark.slow
def test_global_options_before_or_after_the_command(project: Path) -> None:
    (project / "sections.toml").write_text('[default]\nhost = "h"\n[production]\nhost = "p"\n')
    results = cli_all(
        project,
        ["--reveal", "get", "db.password"],
        ["get", "db.password", "--reveal"],
        ["get", "--reveal", "db.password"],
        ["--reveal", "dump"],
        ["get", "host", "-s", "sections.toml", "--env", "production"],
        ["-s", "sections.toml", "get", "host", "--env", "production", "--debug"],
        ["--env", "production", "list", "-s", "sections.toml", "--json"],
    )
    assert [r.out for r in results[:3]] == ["hunter2\n"] * 3
    assert json.loads(results[3].out)["db"]["password"] == "hunter2"
    assert results[4].out == "p\n" and results[5].out == "p\n"
    assert json.loads(results[6].out)["host"]["value"] == "p"
    assert all(r.code == 0 for r in results), results


@pytest.mark.slow
def test_a_file_whose_suffix_says_nothing_is_read_in_the_format_named(project: Path) -> None:
    (project / "app.conf").write_text("[db]\nport = 6432\n")
    (project / "odd:name.json").write_text('{"a": 1}')
    named, unnamed, unknown, colon = cli_all(
        project,
        ["-s", "app.conf:toml", "get", "db.port"],
        ["-s", "app.conf", "get", "db.port"],
        ["-s", "app.conf:tmol", "get", "db.port"],
        ["-s", "odd:name.json", "get", "a"],
    )
    assert (named.code, named.out) == (0, "6432\n")
    assert "name it, as in -s app.conf:toml" in unnamed.one_line_error(2)
    assert "unknown format 'tmol'" in unknown.one_line_error(2)
    assert colon.out == "1\n"


def test_path_format_specs() -> None:
    source = parse_source("conf/app.conf:yaml")
    assert isinstance(source, File) and source.format == "yaml"
    assert parse_source("settings.toml").format == "toml"  # type: ignore[attr-defined]


def test_nested_validation_problems_print_as_one_flat_list() -> None:
    def failure(key: str, message: str) -> ValidationFailure:
        return ValidationFailure(key, "80", "gte", message)

    validators = ValidationError(
        "2 validation failures:\n  - db.port must gte 1024\n  - db.user is required",
        details=[failure("db.port", "db.port must gte 1024"), failure("db.user", "is required")],
    )
    model = ValidationError("Settings: 1 problem:\n  - db.host: field required")
    nested = InitialLoadError([LoadError([validators]), model])
    code, message = _describe(nested, debug=False)
    assert code == 1
    assert message.splitlines() == [
        "3 validation failures:",
        "  - db.port must gte 1024",
        "  - db.user: is required",
        "  - db.host: field required",
    ]
    mixed = LoadError([validators, SourceUnavailable("etcd://h/app/", "connection refused")])
    assert _describe(InitialLoadError([mixed]), debug=False)[1].splitlines() == [
        "3 problems:",
        "  - db.port must gte 1024",
        "  - db.user: is required",
        "  - etcd://h/app/: connection refused",
    ]


def test_list_has_examples_and_the_help_names_path_format(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        _parser().parse_args(["list", "--help"])
    assert "\nexamples:\n  aioconfig list" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        _parser().parse_args(["--help"])
    usage = capsys.readouterr().out
    assert "conf/app.conf:toml" in usage and "may come after it too" in usage
