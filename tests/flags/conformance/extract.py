"""Regenerates ``data/`` from the peers' repositories (run by hand, never by the tests).

    python tests/flags/conformance/extract.py /path/to/peerdata/configcat

Files that are data already (CSV matrices, config_v6 documents, evaluation-log vectors) are
copied byte for byte. Vectors that live inside the peers' test sources are read as data only:
Python literals through ``ast`` (never imported or executed), Kotlin raw strings and Go struct
literals by pattern. Values JSON cannot hold are tagged: ``{"datetime": iso}``,
``{"float": "inf"}``; an enum member (``OverrideBehaviour.LocalOnly``) becomes its name.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import sys
import textwrap
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
DATA = HERE / "data"

_ZONES = {"timezone.utc": timezone.utc, "utc_plus_2": timezone(timedelta(hours=2))}


def _value(node: ast.expr) -> Any:
    if isinstance(node, ast.Call):
        name = ast.unparse(node.func)
        if name == "datetime":
            args = [ast.literal_eval(a) for a in node.args[:7]]
            zone = _ZONES[ast.unparse(node.args[7])] if len(node.args) > 7 else None
            return {"datetime": datetime(*args).replace(tzinfo=zone).isoformat()}
        if name == "float":
            return {"float": ast.literal_eval(node.args[0])}
    if isinstance(node, ast.Attribute) and ast.unparse(node.value) == "OverrideBehaviour":
        return node.attr
    if isinstance(node, (ast.Tuple, ast.List)):
        return [_value(e) for e in node.elts]
    if isinstance(node, ast.Dict):
        return {ast.literal_eval(k): _value(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    value = ast.literal_eval(node)
    if isinstance(value, float) and value != value:
        return {"float": "nan"}
    return value


def python_vectors(source: Path) -> dict[str, Any]:
    """Every ``@parameterized.expand([...])`` list, with the test's parameter names."""
    tree = ast.parse(source.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        for deco in node.decorator_list:
            if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "parameterized.expand":
                params = [a.arg for a in node.args.args if a.arg != "self"]
                cases = [_value(e) for e in deco.args[0].elts]  # type: ignore[attr-defined]
                out[node.name] = {"params": params, "cases": cases}
        # Literal dictionaries a test hands to the SDK as flag overrides.
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Assign)
                and isinstance(sub.targets[0], ast.Name)
                and sub.targets[0].id == "dictionary"
                and isinstance(sub.value, ast.Dict)
            ):
                out.setdefault(node.name, {})["dictionary"] = _value(sub.value)
            # The user a test evaluates for, when it is written out literally.
            if (
                isinstance(sub, ast.Assign)
                and isinstance(sub.targets[0], ast.Name)
                and sub.targets[0].id == "user"
                and isinstance(sub.value, ast.Call)
                and ast.unparse(sub.value.func) == "User"
            ):
                try:
                    user = {
                        "args": [_value(a) for a in sub.value.args],
                        "kwargs": {k.arg: _value(k.value) for k in sub.value.keywords},
                    }
                except ValueError:
                    continue  # built from the test's parameters
                out.setdefault(node.name, {})["user"] = user
    return out


def python_constants(source: Path, names: set[str]) -> dict[str, Any]:
    tree = ast.parse(source.read_text(encoding="utf-8"))
    out: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name not in names:
                continue
            value = node.value
            if isinstance(value, ast.Call) and ast.unparse(value.func) == "json.loads":
                out[name] = json.loads(ast.literal_eval(value.args[0]))
            else:
                text = ast.literal_eval(value)
                try:
                    out[name] = json.loads(text)
                except ValueError:
                    out[name] = text
    return out


_KT_STRING = re.compile(r'val\s+(\w+)\s*(?::\s*String)?\s*=\s*"""(.*?)"""', re.S)
_KT_KEY = re.compile(r'val\s+(sdkKey|baseUrl)\s*(?::\s*String\??)?\s*=\s*"([^"]*)"')


def kotlin_strings(source: Path) -> dict[str, Any]:
    """Raw strings (``val name = \"\"\"...\"\"\"``): JSON documents parsed, CSV kept as text."""
    text = source.read_text(encoding="utf-8")
    out: dict[str, Any] = dict(_KT_KEY.findall(text))
    for name, body in _KT_STRING.findall(text):
        body = textwrap.dedent(body).strip("\n")
        try:
            out[name] = json.loads(body)
        except ValueError:
            out[name] = body
    return out


def go_matrix_keys(source: Path) -> list[dict[str, str]]:
    text = source.read_text(encoding="utf-8")
    pairs = re.findall(r'sdkKey:\s*"([^"]+)",\s*fileName:\s*"([^"]+)"', text)
    return [{"sdk_key": key, "csv": name} for key, name in pairs]


def _dump(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(peer: Path) -> None:
    py, go, kt = peer / "python-sdk", peer / "go-sdk", peer / "kotlin-sdk"
    if DATA.exists():
        shutil.rmtree(DATA)
    shutil.copytree(py / "data", DATA / "python-sdk")
    shutil.copy(go / "resources" / "content-by-key.json", DATA / "go-sdk-content-by-key.json")
    _dump(DATA / "go-sdk-matrix-keys.json", go_matrix_keys(go / "rollout_integration_test.go"))
    vectors = {f.stem: python_vectors(f) for f in sorted(py.glob("test_*.py"))}
    _dump(DATA / "python-sdk-vectors.json", vectors)
    _dump(
        DATA / "python-sdk-constants.json",
        {
            **python_constants(py / "mocks.py", {"TEST_SDK_KEY", "TEST_OBJECT"}),
            **python_constants(py / "test_specialcharacter.py", {"_SDK_KEY"}),
        },
    )
    kotlin = {f.stem: kotlin_strings(f) for f in sorted(kt.rglob("*.kt"))}
    _dump(DATA / "kotlin-sdk-strings.json", {k: v for k, v in kotlin.items() if len(v) > 0})
    for name in ("python-sdk", "go-sdk", "kotlin-sdk"):
        shutil.copy(peer / name / "LICENSE", HERE / f"LICENSE.{name}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
