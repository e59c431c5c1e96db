from __future__ import annotations

from typing import Any

import pytest

from aioconfig._exceptions import ParseError
from aioconfig.sources._formats import Format, format_from_path, parse

SECRET = "hunter2-s3cr3t"


def parse_text(text: str, format: Format) -> dict[str, Any]:
    return parse(text.encode(), format, "cfg")


def parse_error(text: str, format: Format) -> ParseError:
    with pytest.raises(ParseError) as caught:
        parse_text(text, format)
    error = caught.value
    assert SECRET not in str(error)
    # The parser's own exception may quote the document: it must not show in tracebacks.
    assert error.__cause__ is None
    assert error.__context__ is None or error.__suppress_context__
    return error


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("a.json", "json"),
        ("a.toml", "toml"),
        ("a.yaml", "yaml"),
        ("a.yml", "yaml"),
        ("A.YML", "yaml"),
        ("a.ini", "ini"),
        ("setup.cfg", "ini"),
        (".env", "env"),
        ("dir/.env", "env"),
        ("prod.env", "env"),
        ("a.txt", None),
        ("config", None),
        (".env.local", None),
    ],
)
def test_format_from_path(path: str, expected: str | None) -> None:
    assert format_from_path(path) == expected


# --- JSON


def test_json() -> None:
    assert parse_text('{"db": {"port": 5432, "hosts": ["a"]}}', "json") == {
        "db": {"port": 5432, "hosts": ["a"]}
    }


def test_json_malformed() -> None:
    error = parse_error(f'{{"password": "{SECRET}",\n "b": }}', "json")
    # orjson's wording grows between versions ("unexpected character, expected a JSON value"
    # in 3.11+); the place and the start of the problem are ours to promise.
    assert str(error).startswith("cfg:2:7: unexpected character")
    assert (error.line, error.column) == (2, 7)


def test_json_empty() -> None:
    assert str(parse_error("", "json")) == "cfg:1:1: empty document"


def test_top_level_must_be_a_mapping() -> None:
    error = parse_error(f'["{SECRET}"]', "json")
    assert str(error) == "cfg: top level must be a mapping, got list"
    assert error.line is None
    assert str(parse_error("null", "json")) == "cfg: top level must be a mapping, got null"
    assert str(parse_error("- a", "yaml")) == "cfg: top level must be a mapping, got list"
    assert str(parse_error(SECRET, "yaml")) == "cfg: top level must be a mapping, got str"


# --- TOML


def test_toml() -> None:
    assert parse_text('[db]\nport = 5432\nname = "x"\n', "toml") == {
        "db": {"port": 5432, "name": "x"}
    }


def test_toml_malformed() -> None:
    error = parse_error(f'password = "{SECRET}"\nport = = 2\n', "toml")
    assert str(error) == "cfg:2:8: Invalid value"
    assert (error.line, error.column) == (2, 8)


def test_toml_error_at_end_of_document() -> None:
    error = parse_error(f'password = "{SECRET}"\nhosts = [1,', "toml")
    assert str(error) == "cfg:2:12: Invalid value"


# --- YAML


def test_yaml() -> None:
    assert parse_text("db:\n  port: 5432\n  hosts: [a, b]\n", "yaml") == {
        "db": {"port": 5432, "hosts": ["a", "b"]}
    }


def test_yaml_empty_document_is_empty() -> None:
    assert parse_text("", "yaml") == {}
    assert parse_text("# nothing yet\n", "yaml") == {}


def test_yaml_malformed() -> None:
    error = parse_error(f"password: {SECRET}\n  port: 5432\n", "yaml")
    assert str(error) == "cfg:2:7: mapping values are not allowed here"
    assert (error.line, error.column) == (2, 7)


def test_yaml_unclosed_flow() -> None:
    error = parse_error(f"password: {SECRET}\nhosts: [a, b\n", "yaml")
    assert str(error) == "cfg:3:1: expected ',' or ']', but got '<stream end>'"


def test_yaml_control_character() -> None:
    error = parse_error(f"password: {SECRET}\x07\n", "yaml")
    assert str(error) == "cfg:1:25: special characters are not allowed (#x0007)"


def test_yaml_is_safe() -> None:
    error = parse_error("a: !!python/object/apply:os.system ['true']\n", "yaml")
    assert str(error).startswith("cfg:1:4: could not determine a constructor for the tag")


def test_yaml_keys_must_be_strings() -> None:
    error = parse_error(f"db:\n  1: {SECRET}\n", "yaml")
    assert str(error) == "cfg: keys must be strings, got a int key at 'db'"
    error = parse_error(f"null: {SECRET}\n", "yaml")
    assert str(error) == "cfg: keys must be strings, got a null key at the top level"


# --- INI


def test_ini() -> None:
    text = "[DEFAULT]\nTimeout = 5\n\n[db]\nport = 5432\nurl = a%(b)s\n"
    assert parse_text(text, "ini") == {
        "timeout": "5",
        "db": {"port": "5432", "url": "a%(b)s", "timeout": "5"},
    }


def test_ini_malformed() -> None:
    error = parse_error(f"[db]\npassword = {SECRET}\n{SECRET}\n", "ini")
    assert str(error) == "cfg:3: expected 'key = value' or a [section] header"
    assert (error.line, error.column) == (3, None)


def test_ini_missing_section_header() -> None:
    error = parse_error(f"password = {SECRET}\n", "ini")
    assert str(error) == "cfg:1: expected a [section] header"


def test_ini_duplicates() -> None:
    error = parse_error(f"[db]\npassword = {SECRET}\npassword = x\n", "ini")
    assert str(error) == "cfg:3: duplicate key 'password' in section [db]"
    error = parse_error(f"[db]\npassword = {SECRET}\n[db]\n", "ini")
    assert str(error) == "cfg:3: duplicate section [db]"


def test_ini_section_clashes_with_default_key() -> None:
    error = parse_error(f"[DEFAULT]\ndb = {SECRET}\n[db]\nport = 1\n", "ini")
    assert str(error) == "cfg: section [db] clashes with the key 'db' of [DEFAULT]"


# --- .env


def test_env() -> None:
    text = (
        "# a comment\n"
        "\n"
        "PLAIN=value\n"
        "  SPACED = padded value   # trailing comment\n"
        "export EXPORTED=1\n"
        "HASH=a#b\n"
        "EMPTY=\n"
        "SINGLE='lit\\n # not a comment'\n"
        'DOUBLE="a\\nb\\tc\\"d\\\\e\\qf" # comment\n'
        'MULTI="line one\n'
        'line two"\n'
        "dotted.key_1=x\r\n"
        "PLAIN=again\n"
    )
    assert parse_text(text, "env") == {
        "PLAIN": "again",
        "SPACED": "padded value",
        "EXPORTED": "1",
        "HASH": "a#b",
        "EMPTY": "",
        "SINGLE": "lit\\n # not a comment",
        "DOUBLE": 'a\nb\tc"d\\e\\qf',
        "MULTI": "line one\nline two",
        "dotted.key_1": "x",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"A=1\nPASSWORD='{SECRET}\n", "cfg:2:10: unterminated single-quoted value"),
        (f'A=1\nPASSWORD="{SECRET}\n', "cfg:2:10: unterminated double-quoted value"),
        (f"A=1\n  PASSWORD {SECRET}\n", "cfg:2:12: expected '=' after the variable name"),
        (f"A=1\n1PASSWORD={SECRET}\n", "cfg:2:1: invalid variable name"),
        (f"A=1\nPASS-WORD={SECRET}\n", "cfg:2:1: invalid variable name"),
        (f"PASSWORD='{SECRET}' x\n", "cfg:1:27: unexpected text after the closing quote"),
    ],
)
def test_env_malformed(text: str, expected: str) -> None:
    assert str(parse_error(text, "env")) == expected


# --- encoding


def test_not_utf8() -> None:
    data = f"password: {SECRET}\nname: caf\xe9 \xff\n".encode("latin-1")
    with pytest.raises(ParseError) as caught:
        parse(data, "yaml", "cfg")
    assert str(caught.value) == "cfg:2:10: not valid UTF-8"
    assert SECRET not in str(caught.value)


def test_byte_order_mark_is_skipped() -> None:
    assert parse(b'\xef\xbb\xbf{"a": "\xc3\xa9"}', "json", "cfg") == {"a": "\u00e9"}
