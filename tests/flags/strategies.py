"""Hypothesis strategies: valid ConfigCat config_v6 documents, and users that actually hit them.

Documents and users draw from the same small pools (texts, numbers, versions, dates, lists), so
comparisons match often enough; hashed comparison values are hashed the way the SDK hashes them
(sha256 over the UTF-8 value + the config salt + the setting key or the segment name).

    @given(case=cases())
    def test(case: Case) -> None: ...
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from functools import cached_property
from typing import Any

from hypothesis import strategies as st

# ------------------------------------------------------------------------------ the v6 format

BOOL, STRING, INT, DOUBLE = 0, 1, 2, 3
VALUE_KEYS = {BOOL: "b", STRING: "s", INT: "i", DOUBLE: "d"}
MISSING_KEY = "keyThatIsNotThere"

# Comparators, by what they compare (numbers as in configcatclient.config.Comparator).
TEXT_ONE_OF = (0, 1)  # IS (NOT) ONE OF: "l", whole texts
TEXT_CONTAINS = (2, 3)  # (NOT) CONTAINS ANY OF: "l", fragments
SEMVER_ONE_OF = (4, 5)  # "l" of versions
SEMVER_ORDER = (6, 7, 8, 9)  # < <= > >=: "s"
NUMBER = (10, 11, 12, 13, 14, 15)  # = != < <= > >=: "d"
HASHED_ONE_OF = (16, 17)  # "l" of sha256
DATETIME = (18, 19)  # BEFORE / AFTER: "d", seconds since the epoch
HASHED_EQUALS = (20, 21)  # "s", sha256
HASHED_STARTS = (22, 23)  # "l" of "<byte length>_<sha256 of that many leading bytes>"
HASHED_ENDS = (24, 25)  # ... trailing bytes
HASHED_ARRAY = (26, 27)  # ARRAY (NOT) CONTAINS ANY OF: "l" of sha256
TEXT_EQUALS = (28, 29)  # "s"
TEXT_STARTS = (30, 31)  # "l" of prefixes
TEXT_ENDS = (32, 33)  # "l" of suffixes
TEXT_ARRAY = (34, 35)  # ARRAY (NOT) CONTAINS ANY OF: "l"
COMPARATORS = range(36)

# ---------------------------------------------------------------------------------- the pools

# The first item of each pool is what Hypothesis draws most and shrinks to: an ordinary value.
TEXTS: tuple[str, ...] = (
    "a",
    "",
    " ",
    "A",
    "ab",
    "abc",
    "alice@example.com",
    "bob@example.org",
    "Carol@EXAMPLE.com",
    "Hungary",
    "hungary",
    "United Kingdom",
    "ünïcödé",
    "日本語のテキスト",
    "🙂👍",
    "e\u0301",  # e + combining acute: two code points, three UTF-8 bytes
    "x,y",
    "  padded  ",
    "line\nbreak",
    'quote"d',
    "True",
    "False",
    "None",
    "null",
    "0",
    "1",
    "-1",
    "42",
    "1.5",
    "1,5",
    "1e+16",
    "1700000000",
    "NaN",
    "Infinity",
    "[]",
    '["admin","beta"]',
    "admin",
    "beta",
    "beta-tester",
    "1.0.0",
    "2.1.0-rc.1",
)
NUMBERS: tuple[float, ...] = (
    1.5,
    0.0,
    -0.0,
    1.0,
    -1.0,
    -2.5,
    42.0,
    0.1,
    0.30000000000000004,
    1e-300,
    5e-324,
    1.7976931348623157e308,
    -1.7976931348623157e308,
    9007199254740992.0,
    1e16,
    123456.789,
)
NUMBER_TEXTS: tuple[str, ...] = (
    "1,5",
    " 42 ",
    "+3",
    "-0",
    ".5",
    "4.",
    "1e3",
    "1E-3",
    "1_000",
    "nan",
    "NaN",
    "inf",
    "-Infinity",
    "0x10",
    "1.5e",
    "abc",
    "1.0.0",
    "١٢",  # Arabic-Indic digits: Python's float() takes them
    "1e400",
    "-1e400",
    "1e-400",
    "infinity",
    "  ",
)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
INSTANTS: tuple[float, ...] = (  # seconds since the epoch, years 0001 to 9999
    1e9,
    0.0,
    1.0,
    -1.0,
    1234567890.123,
    1700000000.0,
    1700000000.5,
    -1e9,
    253402300799.0,
    -62135596800.0,
)
# Beyond year 9999 (or before year 1): the SDK fails the whole evaluation when it formats such a
# comparison value for its log message, even for a user it would not compare.
OUT_OF_RANGE_INSTANTS: tuple[float, ...] = (253402300800.0, 1e12, -1e12)
# Values of types the SDK was not written for, in custom attributes: it turns them into text
# (str()), into numbers (float(), which may raise), or rejects them.
ODD_VALUES: tuple[Any, ...] = (
    True,
    False,
    None,
    ("admin", "beta"),
    {"admin": 1},
    b"1.5",
    Decimal("1.5"),
    date(2023, 11, 14),
    [1, 2],
    ["admin", 1],
    10**400,
    -0.0,
)
TIMEZONES = (
    timezone.utc,
    timezone(timedelta(hours=14)),
    timezone(timedelta(hours=-12)),
    timezone(timedelta(hours=5, minutes=30)),
)
SEMVERS: tuple[str, ...] = (
    "1.0.0",
    "0.0.0",
    "0.0.1",
    "1.0.0-0",
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0-x.7.z.92",
    "1.0.0-RC.1",
    "1.0.0-0A",
    "1.0.0--",
    "0.0.0-0.0",
    "1.0.0+build.7",
    "1.0.0-rc.1+build.1",
    "1.2.3",
    "1.10.0",
    "2.0.0",
    "10.0.0",
    "99999999999999999999.0.0",
)
NOT_SEMVERS: tuple[str, ...] = (
    "",
    "1",
    "1.0",
    "v1.0.0",
    "1.0.0.0",
    "01.0.0",
    "1.0.0-",
    "1.0.0-01",
    "1.0.0-beta.011",
    "1.0.0+",
    "1.0.0 beta",
    "latest",
    "\uff11.\uff10.\uff10",  # fullwidth digits
)
INVALID_ARRAYS: tuple[str, ...] = (
    "admin,beta",
    "admin",
    '{"a": "b"}',
    "[1, 2]",
    '"admin"',
    "[",
    "null",
)

# User attributes, each with the kind of value it usually holds.
TEXT_ATTRIBUTES = ("Identifier", "Email", "Country", "Plan", "Név")
NUMBER_ATTRIBUTES = ("Age", "Score")
SEMVER_ATTRIBUTES = ("AppVersion",)
DATETIME_ATTRIBUTES = ("SignedUpAt",)
ARRAY_ATTRIBUTES = ("Roles",)
CUSTOM_ATTRIBUTES = (
    "Plan",
    "Név",
    *NUMBER_ATTRIBUTES,
    *SEMVER_ATTRIBUTES,
    *DATETIME_ATTRIBUTES,
    *ARRAY_ATTRIBUTES,
)
ALL_ATTRIBUTES = TEXT_ATTRIBUTES + CUSTOM_ATTRIBUTES[2:]

KEYS = ("isAwesomeFeatureEnabled", "flag", "ключ", "日本語", "with space", "a.b", "x")
SEGMENT_NAMES = ("Beta testers", "Ünïcödé users", "日本", "comma,name", "s")
SALTS = ("21mMqUnwaPEJkTm9lAzc5GHzc6lqkbQqlrtHG8kDmGo=", "salt", "ünï", "")
VARIATION_IDS = ("7a0be518", "e6a2e5b1", "", "ünï")

# ----------------------------------------------------------------------------- small helpers


def sha256(value: bytes, config_salt: str, context_salt: str) -> str:
    """The SDK's hash for "hashed" comparators; context_salt is the setting key or segment name."""
    return hashlib.sha256(value + config_salt.encode() + context_salt.encode()).hexdigest()


def served(setting_type: int, value: Any) -> dict[str, Any]:
    return {VALUE_KEYS[setting_type]: value}


def weighted(*options: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Like ``st.one_of`` with weights (``one_of`` drops repeated branches, so it cannot weigh)."""
    branches = [strategy for _, strategy in options]
    indices = [index for index, (weight, _) in enumerate(options) for _ in range(weight)]
    return st.sampled_from(indices).flatmap(branches.__getitem__)


def chance(draw: st.DrawFn, percent: int) -> bool:
    """True with about this probability (the simplest draw, 0, gives False)."""
    return draw(st.integers(0, 99)) >= 100 - percent


# Strategies are built once (here, or once per vocabulary): building one costs more than a draw.
TEXT = st.one_of(st.sampled_from(TEXTS), st.text(max_size=6))
NUMBER_VALUE = st.one_of(st.sampled_from(NUMBERS), st.floats(allow_nan=False, allow_infinity=False))
INT_VALUE = st.one_of(
    st.sampled_from((0, 1, -1, 42, 2**31 - 1, -(2**31), 2**53 + 1, -(2**63), 2**64, 10**30)),
    st.integers(-1000, 1000),
)
SPACES = st.sampled_from(("", "", " ", "\t"))
ZONES = st.one_of(st.none(), st.sampled_from(TIMEZONES))
# Naive or aware (two strategies: Hypothesis' overloads type a mixed zone strategy only
# without bounds).
_LOW, _HIGH = datetime(1, 1, 2), datetime(9999, 12, 30)
ANY_DATETIME = st.one_of(
    st.datetimes(min_value=_LOW, max_value=_HIGH),
    st.datetimes(min_value=_LOW, max_value=_HIGH, timezones=st.sampled_from(TIMEZONES)),
)


def _at(instant: float, zone: timezone | None) -> datetime:
    moment = EPOCH + timedelta(seconds=instant)
    return moment.replace(tzinfo=None) if zone is None else moment.astimezone(zone)


def _padded(pair: tuple[str, str]) -> str:
    version, space = pair
    return f"{space}{version}{space[:1]}"


def _as_json_number(number: float) -> float:
    return int(number) if number.is_integer() and abs(number) < 1e20 else number


ANY_SEMVER = st.tuples(st.sampled_from(SEMVERS), SPACES).map(_padded)


def _cut(triple: tuple[str, int, int]) -> str:
    text, head, tail = triple
    return text[head : len(text) - tail]


@dataclass(frozen=True)
class Vocabulary:
    """The few values one case is about: its document and its users both draw from them."""

    texts: tuple[str, ...]
    numbers: tuple[float, ...]
    semvers: tuple[str, ...]
    instants: tuple[float, ...]

    @cached_property
    def text(self) -> st.SearchStrategy[str]:
        return weighted((3, st.sampled_from(self.texts)), (1, TEXT))

    @cached_property
    def number(self) -> st.SearchStrategy[float]:
        return weighted((3, st.sampled_from(self.numbers)), (1, NUMBER_VALUE))

    @cached_property
    def nearby_number(self) -> st.SearchStrategy[float]:
        """Just above or below one of the numbers: the edges of <, <=, >, >=."""
        offsets = st.sampled_from((-0.5, 0.5, -1e-9, 1e-9))
        return st.tuples(st.sampled_from(self.numbers), offsets).map(sum)

    @cached_property
    def semver(self) -> st.SearchStrategy[str]:
        """Versions, sometimes padded: the SDK strips whitespace around both sides."""
        return st.tuples(st.sampled_from(self.semvers), SPACES).map(_padded)

    @cached_property
    def instant(self) -> st.SearchStrategy[float]:
        nearby = st.tuples(st.sampled_from(self.instants), st.sampled_from((-0.5, 0.001, 3600.0)))
        return weighted((2, st.sampled_from(self.instants)), (1, nearby.map(sum)))

    @cached_property
    def comparison_instant(self) -> st.SearchStrategy[float]:
        return weighted(
            (12, self.instant.map(_as_json_number)), (1, st.sampled_from(OUT_OF_RANGE_INSTANTS))
        )

    @cached_property
    def comparison_number(self) -> st.SearchStrategy[float]:
        """Numbers as JSON has them: ConfigCat writes a whole double as 5, not 5.0."""
        return self.number.map(_as_json_number)

    @cached_property
    def fragment(self) -> st.SearchStrategy[str]:
        """Prefixes, suffixes and infixes of the texts, so that (NOT) CONTAINS/STARTS/ENDS hit."""
        cut = st.sampled_from((0, 0, 1, 2))
        return st.tuples(st.sampled_from(self.texts), cut, cut).map(_cut)

    @cached_property
    def setting_values(self) -> dict[int, st.SearchStrategy[Any]]:
        double = weighted((3, self.number), (1, self.comparison_number))
        return {BOOL: st.booleans(), STRING: self.text, INT: INT_VALUE, DOUBLE: double}

    @cached_property
    def attribute_values(self) -> dict[str, st.SearchStrategy[Any]]:
        """Per attribute: mostly the kind of value it usually holds, sometimes any other kind."""
        kinds = {
            "text": self.text,
            "number": weighted(
                (3, self.number),
                (2, self.nearby_number),
                (2, self.number.map(str)),
                (1, self.number.map(lambda x: str(x).replace(".", ","))),
                (1, st.sampled_from((0, 1, -1, 42, 2**53 + 1, -(2**63)))),
                (1, st.sampled_from(NUMBER_TEXTS)),
                (1, st.floats()),
            ),
            "semver": weighted(
                (4, self.semver),
                (2, ANY_SEMVER),
                (1, st.sampled_from(NOT_SEMVERS)),
                (1, st.sampled_from((1, 1.5))),
            ),
            "datetime": st.one_of(  # all branches alike
                # the very instants the comparison values use, as datetimes in several zones
                st.builds(
                    _at, st.sampled_from(self.instants).filter(lambda x: abs(x) < 1e10), ZONES
                ),
                ANY_DATETIME,
                self.instant,
                self.instant.map(str),
                st.sampled_from(("1700000000,5", "2023-11-14T22:13:20Z", "yesterday")),
            ),
            "array": weighted(
                (4, self.lists),
                (2, self.lists.map(json.dumps)),
                (1, self.lists.map(lambda items: json.dumps(items, ensure_ascii=False, indent=1))),
                (1, st.sampled_from(INVALID_ARRAYS)),
            ),
        }
        others = st.one_of(*kinds.values(), st.sampled_from(ODD_VALUES))
        return {
            attribute: weighted((5, kinds[kind]), (1, others)) for attribute, kind in _KIND.items()
        }

    @cached_property
    def lists(self) -> st.SearchStrategy[list[str]]:
        return st.lists(self.text, max_size=3)


def _few(items: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(items, min_size=1, max_size=4, unique=True).map(tuple)


def vocabularies() -> st.SearchStrategy[Vocabulary]:
    return st.builds(
        Vocabulary,
        texts=_few(TEXT),
        numbers=_few(st.sampled_from(NUMBERS)),
        semvers=_few(st.sampled_from(SEMVERS)),
        instants=_few(st.sampled_from(INSTANTS)),
    )


_KIND = (
    {name: "text" for name in TEXT_ATTRIBUTES}
    | {name: "number" for name in NUMBER_ATTRIBUTES}
    | {name: "semver" for name in SEMVER_ATTRIBUTES}
    | {name: "datetime" for name in DATETIME_ATTRIBUTES}
    | {name: "array" for name in ARRAY_ATTRIBUTES}
)


# ---------------------------------------------------------------------------- user conditions


def _attributes(usual: tuple[str, ...]) -> st.SearchStrategy[str]:
    # Mostly the attribute that holds the right kind of value; now and then any other one.
    return weighted((3, st.sampled_from(usual)), (1, st.sampled_from(ALL_ATTRIBUTES)))


_ATTRIBUTE_FOR = {
    **{c: _attributes(SEMVER_ATTRIBUTES) for c in SEMVER_ONE_OF + SEMVER_ORDER},
    **{c: _attributes(NUMBER_ATTRIBUTES) for c in NUMBER},
    **{c: _attributes(DATETIME_ATTRIBUTES) for c in DATETIME},
    **{c: _attributes(ARRAY_ATTRIBUTES) for c in HASHED_ARRAY + TEXT_ARRAY},
}
_TEXT_ATTRIBUTE = _attributes(TEXT_ATTRIBUTES)


@st.composite
def user_conditions(
    draw: st.DrawFn, vocabulary: Vocabulary, config_salt: str, context_salt: str
) -> dict[str, Any]:
    """``{"a": attribute, "c": comparator, "s" | "d" | "l": comparison value}``."""
    comparator = draw(st.sampled_from(COMPARATORS))
    attribute = draw(_ATTRIBUTE_FOR.get(comparator, _TEXT_ATTRIBUTE))
    condition: dict[str, Any] = {"a": attribute, "c": comparator}

    def some(strategy: st.SearchStrategy[Any]) -> list[Any]:
        return draw(st.lists(strategy, min_size=1, max_size=3))

    def hashed(text: str) -> str:
        return sha256(text.encode(), config_salt, context_salt)

    if comparator in TEXT_ONE_OF + TEXT_ARRAY:
        condition["l"] = some(vocabulary.text)
    elif comparator in TEXT_CONTAINS + TEXT_STARTS + TEXT_ENDS:
        condition["l"] = some(vocabulary.fragment)
    elif comparator in TEXT_EQUALS:
        condition["s"] = draw(vocabulary.text)
    elif comparator in SEMVER_ONE_OF:
        # The SDK ignores empty items of the list.
        condition["l"] = some(weighted((5, vocabulary.semver), (1, st.just(""))))
    elif comparator in SEMVER_ORDER:
        condition["s"] = draw(vocabulary.semver)
    elif comparator in NUMBER:
        condition["d"] = draw(vocabulary.comparison_number)
    elif comparator in DATETIME:
        condition["d"] = draw(vocabulary.comparison_instant)
    elif comparator in HASHED_ONE_OF + HASHED_ARRAY:
        condition["l"] = [hashed(text) for text in some(vocabulary.text)]
    elif comparator in HASHED_EQUALS:
        condition["s"] = hashed(draw(vocabulary.text))
    else:  # HASHED_STARTS + HASHED_ENDS
        starts = comparator in HASHED_STARTS
        items = []
        for text in some(vocabulary.text):
            utf8 = text.encode()
            # Byte lengths: a prefix may end inside a multi-byte character, as it can in the SDK.
            length = draw(st.integers(0, len(utf8)))
            # As the SDK cuts: utf8[-0:] is the whole value, not an empty suffix.
            part = utf8[:length] if starts else utf8[-length:]
            items.append(f"{length}_{sha256(part, config_salt, context_salt)}")
        condition["l"] = items
    return condition


# ----------------------------------------------------------------------------------- settings

VARIATION_ID = st.one_of(st.sampled_from(VARIATION_IDS), st.text(max_size=4), st.none())


def _variation_id(draw: st.DrawFn, target: dict[str, Any]) -> None:
    variation_id = draw(VARIATION_ID)
    if variation_id is not None:  # the SDK falls back to None when "i" is missing
        target["i"] = variation_id


@st.composite
def percentage_options(draw: st.DrawFn, setting_type: int, pool: Sequence[Any]) -> list[Any]:
    """1 to 4 options whose percentages (some of them 0) add up to 100."""
    count = draw(st.integers(1, 4))
    cuts = sorted(draw(st.lists(st.integers(0, 100), min_size=count - 1, max_size=count - 1)))
    bounds = [0, *cuts, 100]
    options = []
    for low, high in itertools.pairwise(bounds):
        value = served(setting_type, draw(st.sampled_from(pool)))
        option: dict[str, Any] = {"p": high - low, "v": value}
        _variation_id(draw, option)
        options.append(option)
    return options


@dataclass(frozen=True)
class _Plan:
    """What every setting of a document looks like before its rules are drawn."""

    vocabulary: Vocabulary
    config_salt: str
    segments: int
    types: dict[str, int]
    pools: dict[str, list[Any]]  # the values each setting serves: prerequisites compare to these


@st.composite
def _condition(
    draw: st.DrawFn, plan: _Plan, key: str, prerequisites: Sequence[str]
) -> dict[str, Any]:
    kinds = ["u", "u", "u"]
    if plan.segments:
        kinds += ["s", "s"]
    if prerequisites:
        kinds += ["p", "p"]
    kind = draw(st.sampled_from(kinds))
    if kind == "u":
        return {"u": draw(user_conditions(plan.vocabulary, plan.config_salt, key))}
    if kind == "s":
        index = draw(st.integers(0, plan.segments - 1))
        return {"s": {"s": index, "c": draw(st.sampled_from((0, 1)))}}
    target = draw(st.sampled_from(prerequisites))
    target_type = plan.types[target]
    pool = st.sampled_from(plan.pools[target])
    value = draw(weighted((3, pool), (1, plan.vocabulary.setting_values[target_type])))
    comparator = draw(st.sampled_from((0, 1)))
    return {"p": {"f": target, "c": comparator, "v": served(target_type, value)}}


@st.composite
def _setting(draw: st.DrawFn, plan: _Plan, key: str, prerequisites: Sequence[str]) -> Any:
    setting_type, pool = plan.types[key], plan.pools[key]
    setting: dict[str, Any] = {"t": setting_type}
    if draw(st.booleans()):
        # Which attribute percentage options hash (the identifier when there is none).
        setting["a"] = draw(st.sampled_from(ALL_ATTRIBUTES))
    rules = []
    for _ in range(draw(st.integers(0, 3))):
        conditions = draw(st.lists(_condition(plan, key, prerequisites), min_size=1, max_size=3))
        rule: dict[str, Any] = {"c": conditions}
        if not chance(draw, 25):
            rule["s"] = {"v": served(setting_type, draw(st.sampled_from(pool)))}
            _variation_id(draw, rule["s"])
        else:
            rule["p"] = draw(percentage_options(setting_type, pool))
        rules.append(rule)
    if rules or chance(draw, 50):  # empty lists are omitted as often as not
        setting["r"] = rules
    options = draw(percentage_options(setting_type, pool)) if chance(draw, 50) else []
    if options or chance(draw, 50):
        setting["p"] = options
    setting["v"] = served(setting_type, draw(st.sampled_from(pool)))
    _variation_id(draw, setting)
    return setting


@st.composite
def documents(
    draw: st.DrawFn, vocabulary: Vocabulary | None = None, *, circular: bool = False
) -> dict[str, Any]:
    """A valid config_v6 document.

    Prerequisites point only to settings later in the document, so they form chains but never
    cycles; with ``circular=True`` they may point anywhere, the setting itself included.
    """
    if vocabulary is None:
        vocabulary = draw(vocabularies())
    config_salt = draw(st.sampled_from(SALTS))
    # Three settings most often: enough for a chain of prerequisites.
    count = draw(st.sampled_from((3, 1, 2, 4, 5)))
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=count, max_size=count, unique=True))
    types = {key: draw(st.sampled_from((BOOL, STRING, INT, DOUBLE))) for key in keys}
    pools = {
        key: draw(st.lists(vocabulary.setting_values[types[key]], min_size=1, max_size=3))
        for key in keys
    }
    segments = []
    for name in draw(st.lists(st.sampled_from(SEGMENT_NAMES), max_size=3)):
        conditions = user_conditions(vocabulary, config_salt, name)
        segments.append({"n": name, "r": draw(st.lists(conditions, min_size=1, max_size=2))})
    plan = _Plan(vocabulary, config_salt, len(segments), types, pools)
    settings = {
        key: draw(_setting(plan, key, keys if circular else keys[index + 1 :]))
        for index, key in enumerate(keys)
    }
    document: dict[str, Any] = {
        "p": {"u": "https://cdn-global.configcat.com", "r": 0, "s": config_salt},
        "f": settings,
    }
    if segments or chance(draw, 50):
        document["s"] = segments
    return document


# --------------------------------------------------------------------------------------- users


@dataclass(frozen=True)
class UserSpec:
    """The fields of a user, kept apart from either library's ``User`` class."""

    identifier: str
    email: str | None = None
    country: str | None = None
    custom: dict[str, Any] | None = None

    def __repr__(self) -> str:
        fields = [repr(self.identifier)]
        for name in ("email", "country", "custom"):
            if getattr(self, name) is not None:
                fields.append(f"{name}={getattr(self, name)!r}")
        return f"User({', '.join(fields)})"


@st.composite
def users(draw: st.DrawFn, vocabulary: Vocabulary | None = None) -> UserSpec | None:
    if vocabulary is None:
        vocabulary = draw(vocabularies())
    if chance(draw, 10):
        return None
    custom: dict[str, Any] = {}
    for attribute in CUSTOM_ATTRIBUTES:
        if not chance(draw, 20):
            custom[attribute] = draw(vocabulary.attribute_values[attribute])
    if chance(draw, 10):
        # Only custom attributes live in `custom`: these must not shadow the user's own fields.
        custom[draw(st.sampled_from(("Identifier", "Email", "Country")))] = draw(TEXT)
    maybe_text = weighted((1, st.none()), (3, vocabulary.text))
    return UserSpec(
        identifier=draw(vocabulary.text),
        email=draw(maybe_text),
        country=draw(maybe_text),
        custom=custom or draw(st.sampled_from((None, {}))),
    )


# ---------------------------------------------------------------------------------------- cases


@dataclass(frozen=True)
class Case:
    """A document, the users to evaluate it for, and the default value passed for each key."""

    document: dict[str, Any]
    users: tuple[UserSpec | None, ...]
    defaults: tuple[tuple[str, Any], ...]  # every key of the document, and MISSING_KEY


_DEFAULTS = {BOOL: False, STRING: "default", INT: -7, DOUBLE: -7.5}


def default_values(setting_type: int | None) -> st.SearchStrategy[Any]:
    """Mostly a default of the setting's type, else one of another type or None."""
    right = _DEFAULTS.get(setting_type) if setting_type is not None else None
    wrong = st.sampled_from([*_DEFAULTS.values(), None, ["a", "list"]])
    return weighted((2, st.just(right)), (1, wrong))


@st.composite
def cases(draw: st.DrawFn, *, circular: bool = False, max_users: int = 12) -> Case:
    vocabulary = draw(vocabularies())
    document = draw(documents(vocabulary, circular=circular))
    defaults = [(key, draw(default_values(setting["t"]))) for key, setting in document["f"].items()]
    defaults.append((MISSING_KEY, draw(default_values(None))))
    return Case(
        document=document,
        users=tuple(draw(st.lists(users(vocabulary), min_size=4, max_size=max_users))),
        defaults=tuple(defaults),
    )
