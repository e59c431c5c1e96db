"""ConfigCat's own conformance data, run against aioconfig.flags (offline, in seconds).

The data is vendored under ``conformance/data`` (see ``conformance/LICENSE-NOTE.md``): the rollout
matrices, evaluation-log vectors and override documents of ``configcat/python-sdk``, the
``config_v6.json`` documents per SDK key stored by ``configcat/go-sdk``, the matrices with their
(re-salted) configs and the configs of ``configcat/kotlin-sdk``, and the vectors that live in the
Python SDK's test modules, extracted as JSON by ``conformance/extract.py``.

How each kind of vector maps onto aioconfig:

* **Matrices** (CSV): every row is a user (``##null##`` identifier: no user; an empty or
  ``##null##`` cell: no such attribute; the fourth column is the custom attribute the header
  names), every further column a setting key and the expected ``str()`` of the value, or of the
  variation id for ``testmatrix_variationId.csv``, evaluated with default ``None``, as the SDK
  compares them. Each CSV runs against every config the peers run it against: Go's documents for
  the v1 and v2 SDK keys and Kotlin's re-salted copy.
* **Evaluation logs**: the returned value must equal ``returnValue``, and the records aioconfig
  logs on ``aioconfig.flags`` (INFO and up) must equal the expected log line for line, with two
  mappings: the SDK's event id (``[5000]``) is dropped, since aioconfig logs through ``logging``
  with no event ids; and the missing-User hint names aioconfig's call ("Pass a User to
  evaluate() ...") where the SDK names its own (``get_value()``), so that one sentence is
  compared up to the API name. Everything else (rule by rule, hashed-value masks, truncation,
  the warnings' text) is compared verbatim.
* **Rollout, override, variation-id, special-character and client vectors**: the test the SDK
  runs, with aioconfig's public API: ``parse_flags``/``evaluate`` for a document, and
  ``load(MutableSource(flags=remote), FlagOverrides(...))`` where the SDK combines a remote
  config with flag overrides; ``EvaluationDetails.error`` stands for the SDK's error log and a
  WARNING record on ``aioconfig.flags`` for its warning log.

The number of cases is pinned in ``test_case_counts`` so that vectors cannot silently vanish.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aioconfig import load
from aioconfig.flags import FlagConfig, User, evaluate, parse_flags
from aioconfig.sources import ConfigCat, FlagOverrides
from aioconfig.testing import MutableSource

DATA = Path(__file__).parent / "conformance" / "data"
PY_DATA = DATA / "python-sdk"


def _json(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


CONTENT_BY_KEY: dict[str, Any] = _json("go-sdk-content-by-key.json")
MATRIX_KEYS: list[dict[str, str]] = _json("go-sdk-matrix-keys.json")
KOTLIN: dict[str, dict[str, Any]] = _json("kotlin-sdk-strings.json")
VECTORS: dict[str, dict[str, Any]] = _json("python-sdk-vectors.json")
CONSTANTS: dict[str, Any] = _json("python-sdk-constants.json")

# The one config of the suites that Go's store lacks; Kotlin keeps it in ConfigV2EvaluationTest.
PREREQUISITE_KEY = "configcat-sdk-1/JcPbCGl_1E-K9M-fJOyKyQ/JoGwdqJZQ0K2xDy7LnbyOg"
RULE_OR_OPTION_KEY = "configcat-sdk-1/JcPbCGl_1E-K9M-fJOyKyQ/P4e3fAz_1ky2-Zg2e4cbkw"
DOCUMENTS: dict[str, Any] = {
    **CONTENT_BY_KEY,
    RULE_OR_OPTION_KEY: KOTLIN["ConfigV2EvaluationTest"]["ruleOrOptionRemoteJson"],
}

# Which Kotlin matrix carries which of the Python SDK's CSVs.
KOTLIN_MATRICES = {
    "Matrix": "testmatrix.csv",
    "NumberMatrix": "testmatrix_number.csv",
    "SemanticMatrix": "testmatrix_semantic.csv",
    "SemanticMatrix2": "testmatrix_semantic_2.csv",
    "SensitiveMatrix": "testmatrix_sensitive.csv",
    "VariationIdMatrix": "testmatrix_variationId.csv",
    "AndOrMatrix": "testmatrix_and_or.csv",
    "ComparatorsV6Matrix": "testmatrix_comparators_v6.csv",
    "PrerequisiteFlagMatrix": "testmatrix_prerequisite_flag.csv",
    "SegmentMatrix": "testmatrix_segments.csv",
    "SegmentsOldMatrix": "testmatrix_segments_old.csv",
    "UnicodeMatrix": "testmatrix_unicode.csv",
}

_PARSED: dict[str, FlagConfig] = {}


def flags_for(sdk_key: str) -> FlagConfig:
    if sdk_key not in _PARSED:
        _PARSED[sdk_key] = parse_flags(DOCUMENTS[sdk_key], source=sdk_key)
    return _PARSED[sdk_key]


def _tagged(value: Any) -> Any:
    """A value of ``extract.py``'s JSON back as Python (datetimes and special floats)."""
    if isinstance(value, dict) and set(value) == {"datetime"}:
        return datetime.fromisoformat(value["datetime"])
    if isinstance(value, dict) and set(value) == {"float"}:
        return float(value["float"])
    if isinstance(value, list):
        return [_tagged(v) for v in value]
    return value


def vectors(module: str, test: str) -> list[Any]:
    entry = VECTORS[module][test]
    return [pytest.param(*map(_tagged, case), id=str(i)) for i, case in enumerate(entry["cases"])]


# -- rollout matrices -------------------------------------------------------------------------


def _matrix_runs() -> Iterator[Any]:
    for entry in MATRIX_KEYS:
        text = (PY_DATA / entry["csv"]).read_text(encoding="utf-8")
        yield pytest.param(entry["csv"], text, DOCUMENTS[entry["sdk_key"]], id=entry["sdk_key"])
    for name, csv_name in KOTLIN_MATRICES.items():
        matrix = KOTLIN[name]
        yield pytest.param(csv_name, matrix["data"], matrix["remoteJson"], id=f"kotlin:{name}")


def _cell(value: str) -> str | None:
    return None if value in ("", "##null##") else value


@pytest.mark.parametrize(("csv_name", "text", "document"), list(_matrix_runs()))
def test_matrix(csv_name: str, text: str, document: Any) -> None:
    flags = parse_flags(document, source=csv_name)
    variation = csv_name == "testmatrix_variationId.csv"
    rows = list(csv.reader(io.StringIO(text), delimiter=";"))
    header, rows = rows[0], [row for row in rows[1:] if row]
    custom_name, keys = header[3], header[4:]
    keys = [k for k in keys if k]
    disagreements = []
    for row in rows:
        user = None
        if row[0] != "##null##":
            custom = _cell(row[3])
            user = User(
                row[0],
                email=_cell(row[1]),
                country=_cell(row[2]),
                custom=None if custom is None else {custom_name: custom},
            )
        for key, expected in zip(keys, row[4:], strict=False):  # variationId rows end in ';'
            details = evaluate(flags, key, None, user)
            actual = details.variation_id if variation else details.value
            if str(actual) != expected:
                disagreements.append(f"{row[0]!r} {key}: expected {expected}, got {actual!r}")
    assert not disagreements, "\n".join(disagreements)


# -- evaluation logs --------------------------------------------------------------------------

_EVENT_ID = re.compile(r"^(\w+) \[\d+\] ", re.M)
_SDK_API = "You should pass a User Object to the evaluation methods like `get_value()`"
_HINT = re.compile(r"You should (\w)(.*?) in order to make targeting work properly")


def _as_aioconfig_words(log: str) -> str:
    """The SDK's expected log in aioconfig's words (see the module docstring)."""
    log = _EVENT_ID.sub(r"\1 ", log.replace("\r\n", "\n"))
    log = log.replace(_SDK_API, "You should pass a User to evaluate()")
    return _HINT.sub(lambda m: f"{m[1].upper()}{m[2]} to make targeting work properly", log)


# The Kotlin SDK keeps each suite's config next to it (the newest copies: Go's store of
# 2023 predates some flags); each suite runs against Kotlin's and, for the keys it has, Go's.
KOTLIN_LOG_SUITES = {
    "1_targeting_rule": "OneTargetingRuleTests",
    "2_targeting_rules": "TwoTargetingRulesTests",
    "and_rules": "AndRulesTests",
    "comparators": "ComparatorsTests",
    "epoch_date_validation": "EpochDateValidationTests",
    "list_truncation": "ListTruncationTests",
    "number_validation": "NumberValidationTests",
    "options_after_targeting_rule": "OptionsAfterTargetingRuleTests",
    "options_based_on_custom_attr": "OptionsBasedOnCustomAttrTests",
    "options_based_on_user_id": "OptionsBasedOnUserIdTests",
    "options_within_targeting_rule": "OptionsWithinTargetingRuleTests",
    "prerequisite_flag": "PrerequisiteFlagTests",
    "segment": "SegmentTests",
    "semver_validation": "SemverValidationTests",
    "simple_value": "SimpleValueTests",
}


def _log_documents(suite: Path, data: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    if "jsonOverride" in data:
        path = PY_DATA / "evaluation" / suite.stem / data["jsonOverride"]
        yield "python-sdk", json.loads(path.read_text(encoding="utf-8"))
    yield "kotlin-sdk", KOTLIN[KOTLIN_LOG_SUITES[suite.stem]]["jsonOverride"]
    if data.get("sdkKey") in CONTENT_BY_KEY:
        yield "go-sdk", CONTENT_BY_KEY[data["sdkKey"]]


def _log_cases() -> Iterator[Any]:
    for suite in sorted((PY_DATA / "evaluation").glob("*.json")):
        data = json.loads(suite.read_text(encoding="utf-8"))
        for origin, document in _log_documents(suite, data):
            for test in data["tests"]:
                if test["key"] not in document["f"]:
                    continue  # a flag added after that copy was taken
                log = (PY_DATA / "evaluation" / suite.stem / test["expectedLog"]).read_text(
                    encoding="utf-8"
                )
                name = f"{origin}:{suite.stem}/{test['expectedLog']}"
                yield pytest.param(document, test, log, id=name)


def _user(spec: dict[str, Any] | None) -> User | None:
    if spec is None:
        return None
    custom = {k: v for k, v in spec.items() if k not in ("Identifier", "Email", "Country")}
    return User(
        spec.get("Identifier", ""),
        email=spec.get("Email"),
        country=spec.get("Country"),
        custom=custom or None,
    )


@pytest.mark.parametrize(("document", "test", "expected_log"), list(_log_cases()))
def test_evaluation_log(
    document: Any, test: dict[str, Any], expected_log: str, caplog: pytest.LogCaptureFixture
) -> None:
    flags = parse_flags(document)
    with caplog.at_level(logging.INFO, logger="aioconfig.flags"):
        details = evaluate(flags, test["key"], test["defaultValue"], _user(test.get("user")))
    assert details.value == test["returnValue"]
    assert type(details.value) is type(test["returnValue"])
    expected = _as_aioconfig_words(expected_log)
    actual = "".join(
        f"{r.levelname} {r.getMessage()}\n" for r in caplog.records if r.name == "aioconfig.flags"
    )
    assert actual.rstrip("\n") == expected.rstrip("\n")
    # Every warning and error says which flag it is about (for WarningLimit).
    assert all(hasattr(r, "flag_key") for r in caplog.records if r.levelno >= logging.WARNING)


# -- rollout vectors (configcat/python-sdk test_rollout.py) -----------------------------------


def _document(name: str) -> Any:
    return json.loads((PY_DATA / name).read_text(encoding="utf-8"))


def _literal_user(test: str) -> User:
    spec = VECTORS["test_rollout"][test]["user"]
    return User(*spec["args"], **spec["kwargs"])


@pytest.mark.parametrize(
    ("sdk_key", "key", "user_id", "email", "percentage_base", "value", "rule", "option"),
    vectors(
        "test_rollout", "test_evaluation_details_matched_evaluation_rule_and_percentage_option"
    ),
)
def test_matched_rule_and_option(
    sdk_key: str,
    key: str,
    user_id: str | None,
    email: str | None,
    percentage_base: str | None,
    value: str,
    rule: bool,
    option: bool,
) -> None:
    user = None
    if user_id is not None:
        user = User(user_id, email=email, custom={"PercentageBase": percentage_base})
    details = evaluate(flags_for(sdk_key), key, None, user)
    assert details.value == value
    assert (details.matched_targeting_rule is not None) == rule
    assert (details.matched_percentage_option is not None) == option


@pytest.mark.parametrize(
    ("sdk_key", "key", "user_id", "attribute", "attribute_value", "expected"),
    vectors("test_rollout", "test_user_object_attribute_value_conversion_non_text_comparisons"),
)
def test_attribute_conversion_non_text(
    sdk_key: str, key: str, user_id: str, attribute: str, attribute_value: Any, expected: Any
) -> None:
    user = User(user_id, custom={attribute: attribute_value})
    assert evaluate(flags_for(sdk_key), key, None, user).value == expected


def test_attribute_conversion_text_comparison(caplog: pytest.LogCaptureFixture) -> None:
    """A number compared as text is converted, with the SDK's one warning (3005)."""
    flags = flags_for("configcat-sdk-1/JcPbCGl_1E-K9M-fJOyKyQ/OfQqcTjfFUGBwMKqtyEOrQ")
    with caplog.at_level(logging.WARNING, logger="aioconfig.flags"):
        value = evaluate(flags, "boolTextEqualsNumber", None, User("12345", custom={"Custom1": 42}))
    assert value.value is True
    assert [r.getMessage() for r in caplog.records] == [
        "Evaluation of condition (User.Custom1 EQUALS '42') for setting 'boolTextEqualsNumber' "
        "may not produce the expected result (the User.Custom1 attribute is not a string value, "
        "thus it was automatically converted to the string value '42'). Please make sure that "
        "using a non-string value was intended."
    ]


@pytest.mark.parametrize(
    ("key", "attribute_value", "expected"),
    vectors("test_rollout", "test_attribute_conversion_to_canonical_string"),
)
def test_attribute_conversion_to_canonical_string(
    key: str, attribute_value: Any, expected: str
) -> None:
    flags = parse_flags(_document("comparison_attribute_conversion.json"))
    user = User("12345", custom={"Custom1": attribute_value})
    assert evaluate(flags, key, "default_value", user).value == expected


@pytest.mark.parametrize(
    ("document", "test", "key", "expected"),
    [
        pytest.param(f"{name}.json", f"test_{name}", *case.values, id=f"{name}/{case.id}")
        for name in ("comparison_attribute_trimming", "comparison_value_trimming")
        for case in vectors("test_rollout", f"test_{name}")
    ],
)
def test_trimming(document: str, test: str, key: str, expected: str) -> None:
    flags = parse_flags(_document(document))
    assert evaluate(flags, key, "default_value", _literal_user(test)).value == expected


@pytest.mark.parametrize(
    ("key", "cycle"), vectors("test_rollout", "test_prerequisite_flag_circular_dependency")
)
def test_circular_dependency(key: str, cycle: str) -> None:
    flags = parse_flags(_document("test_circulardependency_v6.json"))
    details = evaluate(flags, key, "default_value")
    assert details.value == "default_value"
    assert details.error is not None
    assert "Circular dependency detected" in details.error
    assert cycle in details.error


@pytest.mark.parametrize(
    ("key", "prerequisite", "prerequisite_value", "expected"),
    vectors("test_rollout", "test_prerequisite_flag_comparison_value_type_mismatch"),
)
@pytest.mark.anyio
async def test_prerequisite_value_type_mismatch(
    key: str, prerequisite: str, prerequisite_value: Any, expected: Any
) -> None:
    remote = MutableSource(flags=DOCUMENTS[PREREQUISITE_KEY])
    local = FlagOverrides({prerequisite: prerequisite_value}, behaviour="local_over_remote")
    async with load(remote, local, mode="manual") as config:
        details = config.get_value_details(key, None)
    assert details.value == expected
    if expected is None:
        assert details.error is not None
        if prerequisite_value is None or isinstance(prerequisite_value, list):
            assert "Unsupported setting type" in details.error
        else:
            assert "Setting value is not of the expected type" in details.error


# -- flag overrides (test_override.py) --------------------------------------------------------

_BEHAVIOURS = {
    "LocalOnly": "local_only",
    "LocalOverRemote": "local_over_remote",
    "RemoteOverLocal": "remote_over_local",
}


@pytest.mark.parametrize(
    ("sdk_key", "override_file", "key", "user_id", "email", "behaviour", "expected"),
    [
        pytest.param(sdk_key, file, *case.values, id=f"{test}/{case.id}")
        for test, sdk_key, file in (
            (
                "test_prerequisite_flag_override",
                PREREQUISITE_KEY,
                "test_override_flagdependency_v6.json",
            ),
            (
                "test_config_salt_segment_override",
                "configcat-sdk-1/JcPbCGl_1E-K9M-fJOyKyQ/h99HYXWWNE2bH8eWyLAVMA",
                "test_override_segments_v6.json",
            ),
        )
        for case in vectors("test_override", test)
    ],
)
@pytest.mark.anyio
async def test_override(
    sdk_key: str,
    override_file: str,
    key: str,
    user_id: str,
    email: str,
    behaviour: str | None,
    expected: Any,
) -> None:
    sources: list[Any] = [MutableSource(flags=DOCUMENTS[sdk_key])]
    if behaviour is not None:
        path = PY_DATA / override_file
        sources.append(FlagOverrides(path, behaviour=_BEHAVIOURS[behaviour]))  # type: ignore[arg-type]
    async with load(*sources, mode="manual") as config:
        assert config.get_value(key, None, User(user_id, email=email)) == expected


@pytest.mark.anyio
async def test_override_dictionary() -> None:
    dictionary = VECTORS["test_override"]["test_dictionary"]["dictionary"]
    async with load(FlagOverrides(dictionary, behaviour="local_only"), mode="manual") as config:
        for key, value in dictionary.items():
            assert config.get_value(key, None) == value


# -- the client: variation ids, special characters, SDK keys, default values -------------------

TEST_OBJECT = CONSTANTS["TEST_OBJECT"]


def test_variation_ids() -> None:
    flags = parse_flags(TEST_OBJECT)
    assert evaluate(flags, "key1", None).variation_id == "id3"
    assert evaluate(flags, "key2", None).variation_id == "id4"
    assert evaluate(flags, "nonexisting", "default_value").variation_id is None


@pytest.mark.parametrize("key", ["specialCharacters", "specialCharactersHashed"])
def test_special_characters(key: str) -> None:
    flags = parse_flags(KOTLIN["ConfigCatClientTests"]["specialCharacterContent"])
    special = "äöüÄÖÜçéèñışğâ¢™✓😀"
    assert evaluate(flags, key, "NOT_CAT", User(special)).value == special


@pytest.mark.parametrize(
    ("sdk_key", "custom_base_url", "valid"),
    vectors("test_configcatclient", "test_sdk_key_format_validation"),
)
def test_sdk_key_format(sdk_key: str, custom_base_url: bool, valid: bool) -> None:
    base_url = "https://my-configcat-proxy" if custom_base_url else None
    if valid:
        ConfigCat(sdk_key, base_url=base_url)
    else:
        with pytest.raises(ValueError, match="SDK key"):
            ConfigCat(sdk_key, base_url=base_url)


@pytest.mark.parametrize(
    ("key", "user_id", "default", "expected", "warns"),
    vectors("test_configcatclient", "test_default_value_and_setting_type_mismatch"),
)
def test_default_value_type_mismatch(
    key: str,
    user_id: str | None,
    default: Any,
    expected: Any,
    warns: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    flags = parse_flags(TEST_OBJECT)
    user = User(user_id) if user_id else None
    with caplog.at_level(logging.WARNING, logger="aioconfig.flags"):
        assert evaluate(flags, key, default, user).value == expected
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if warns:
        assert len(warnings) == 1
        assert warnings[0].startswith(
            "The type of a setting does not match the type of the specified default value "
            f"({default})."
        )
    else:
        assert warnings == []


# -- the count --------------------------------------------------------------------------------


def _matrix_cells() -> int:
    cells = 0
    for run in _matrix_runs():
        _, text, _ = run.values
        rows = [row for row in csv.reader(io.StringIO(text), delimiter=";") if row]
        cells += (len(rows) - 1) * len([k for k in rows[0][4:] if k])
    return cells


def test_case_counts(record_property: Any) -> None:
    """How many cases the suite runs, pinned so that no vector can silently go missing."""
    counts = {
        "matrix runs": len(list(_matrix_runs())),
        "matrix cells": _matrix_cells(),
        "evaluation logs": len(list(_log_cases())),
        "python-sdk vectors": sum(
            len(test.get("cases", [])) for module in VECTORS.values() for test in module.values()
        ),
    }
    print("\nConfigCat conformance cases:", counts)
    for kind, n in counts.items():
        record_property(kind, n)
    assert counts == {
        "matrix runs": 31,
        "matrix cells": 49104,
        "evaluation logs": 80,
        "python-sdk vectors": 230,
    }
