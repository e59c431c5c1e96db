"""ConfigCat's own Python SDK (configcat-client 10.0.1) as the oracle, run fully offline.

Each document is written to a temporary file and read by a client in ``LocalOnly`` flag-override
mode: that mode builds neither a fetcher nor a config service, so the client cannot reach the
network and starts no thread. Reading that file is the SDK's own code: a document without a
``flags`` key is taken as a whole config_v6 (preferences with the salt, segments, settings) and
fixed up exactly as a downloaded one.

    with Oracle(document) as oracle:
        oracle.evaluate("isAwesomeFeatureEnabled", False, user)
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

import configcatclient
from configcatclient.config import Comparator
from configcatclient.configcatoptions import ConfigCatOptions
from configcatclient.localfiledatasource import LocalFileFlagOverrides
from configcatclient.overridedatasource import OverrideBehaviour
from configcatclient.pollingmode import PollingMode
from configcatclient.user import User as ConfigCatUser

__all__ = [
    "CoverageStats",
    "Oracle",
    "OracleResult",
    "UserLike",
    "close_all_oracles",
    "oracle_details",
    "to_configcat_user",
]

# The SDK's warnings about missing or invalid user attributes are its normal path for generated
# users: thousands of them would only slow the run down (pytest captures every record).
_SDK_LOGGER = logging.getLogger("configcat")
# Event ids the SDK logs when a condition "cannot be evaluated" (and the rule is skipped).
_USER_MISSING, _ATTRIBUTE_MISSING, _ATTRIBUTE_INVALID = 3001, 3003, 3004


class UserLike(Protocol):
    """What the oracle needs of a user: the four fields of ``configcatclient.user.User``."""

    @property
    def identifier(self) -> str: ...

    @property
    def email(self) -> str | None: ...

    @property
    def country(self) -> str | None: ...

    @property
    def custom(self) -> Mapping[str, Any] | None: ...


def to_configcat_user(user: UserLike | None) -> Any:
    """The SDK's ``User`` with the same attributes (custom values passed through as they are)."""
    if user is None:
        return None
    custom = dict(user.custom) if user.custom is not None else None
    return ConfigCatUser(  # type: ignore[no-untyped-call]
        user.identifier, email=user.email, country=user.country, custom=custom
    )


@dataclass(frozen=True)
class OracleResult:
    """What ``ConfigCatClient.get_value_details`` said, plus which path it took."""

    value: Any
    variation_id: str | None
    is_default_value: bool
    error: str | None
    matched_targeting_rule: Mapping[str, Any] | None
    matched_percentage_option: Mapping[str, Any] | None
    log_events: tuple[int, ...] = ()

    def triple(self) -> tuple[Any, str | None, bool]:
        return self.value, self.variation_id, self.is_default_value


class _EventIds(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.ids: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.ids.append(int(getattr(record, "event_id", 0)))


@contextmanager
def _sdk_logging(level: int | None, capture: bool) -> Iterator[_EventIds]:
    """Run the SDK with its logger silenced, or enabled at ``level`` with the records dropped.

    Only the event ids of warnings and errors are kept, and only with ``capture``.
    """
    saved = _SDK_LOGGER.disabled, _SDK_LOGGER.propagate, _SDK_LOGGER.level
    events = _EventIds()
    if level is None and capture:
        level = logging.WARNING
    try:
        if level is None:
            _SDK_LOGGER.disabled = True
        else:
            _SDK_LOGGER.disabled = False
            _SDK_LOGGER.propagate = False
            if _SDK_LOGGER.getEffectiveLevel() != level:  # setLevel() clears every logger's cache
                _SDK_LOGGER.setLevel(level)
            _SDK_LOGGER.addHandler(events)
        yield events
    finally:
        if level is not None:
            _SDK_LOGGER.removeHandler(events)
            if _SDK_LOGGER.level != saved[2]:
                _SDK_LOGGER.setLevel(saved[2])
        _SDK_LOGGER.disabled, _SDK_LOGGER.propagate = saved[0], saved[1]


def _sdk_key() -> str:
    # LocalOnly accepts any key, but a well-formed one keeps the client on its ordinary path; a
    # unique one matters: ConfigCatClient.get() hands out one shared instance per key.
    return f"configcat-sdk-1/{uuid.uuid4().hex[:22]}/{uuid.uuid4().hex[:22]}"


class Oracle:
    """One configcat-client evaluating a config_v6 document (``load`` another one at will).

    The SDK's logger is off, which gives the results of an application that leaves logging
    alone (WARNING): at INFO the SDK also builds an evaluation log, and that can change a result.
    ``log_level`` runs it at that level instead (the records are dropped).
    """

    def __init__(self, document: Mapping[str, Any], *, log_level: int | None = None) -> None:
        self._log_level = log_level
        self._stamp = 0
        self._closed = False
        fd, self._path = tempfile.mkstemp(prefix="aioconfig-oracle-", suffix=".json")
        os.close(fd)
        try:
            self.load(document)
            # configcat-client ships py.typed without annotations: its calls need an ignore.
            overrides = LocalFileFlagOverrides(  # type: ignore[no-untyped-call]
                self._path, OverrideBehaviour.LocalOnly
            )
            options = ConfigCatOptions(
                polling_mode=PollingMode.manual_poll(),  # type: ignore[no-untyped-call]
                flag_overrides=overrides,
                offline=True,
            )
            with _sdk_logging(None, capture=False):
                self._client: Any = configcatclient.get(  # type: ignore[no-untyped-call]
                    _sdk_key(), options
                )
        except BaseException:
            os.unlink(self._path)
            raise
        if not self._client.is_offline():  # LocalOnly: no config service, hence no network at all
            self.close()
            raise RuntimeError("configcat-client is not offline: refusing to evaluate")

    def load(self, document: Mapping[str, Any]) -> None:
        """Evaluate ``document`` from now on: the client re-reads its file (cheaper than a client).

        The SDK re-reads the file when its mtime changes; each load sets a new one explicitly,
        so that two loads within the file system's time resolution are still told apart.
        """
        #: The JSON text the SDK reads, byte for byte.
        self.json = json.dumps(document, ensure_ascii=False, allow_nan=False).encode()
        with open(self._path, "wb") as file:
            file.write(self.json)
        self._stamp += 1
        os.utime(self._path, (self._stamp, self._stamp))

    def evaluate(
        self, key: str, default: Any, user: UserLike | None, *, capture_log: bool = False
    ) -> OracleResult:
        with _sdk_logging(self._log_level, capture_log) as events:
            details = self._client.get_value_details(key, default, to_configcat_user(user))
        return OracleResult(
            value=details.value,
            variation_id=details.variation_id,
            is_default_value=details.is_default_value,
            error=details.error,
            matched_targeting_rule=details.matched_targeting_rule,
            matched_percentage_option=details.matched_percentage_option,
            log_events=tuple(events.ids),
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._client.close()
        finally:
            os.unlink(self._path)

    def __enter__(self) -> Oracle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# One client, holding the most recent document, so that oracle_details() can be called once per
# evaluation without paying for a client (or a file) each time.
_cached: tuple[str, Oracle] | None = None


def oracle_details(
    document: Mapping[str, Any], key: str, default: Any, user: UserLike | None
) -> tuple[Any, str | None, bool]:
    """``(value, variation_id, is_default_value)`` as configcat-client evaluates them."""
    global _cached
    fingerprint = json.dumps(document, sort_keys=True, ensure_ascii=False)
    if _cached is None:
        _cached = fingerprint, Oracle(document)
    elif _cached[0] != fingerprint:
        _cached[1].load(document)
        _cached = fingerprint, _cached[1]
    return _cached[1].evaluate(key, default, user).triple()


def close_all_oracles() -> None:
    """Close the cached client and any client the SDK still keeps (idempotent)."""
    global _cached
    if _cached is not None:
        oracle, _cached = _cached[1], None
        oracle.close()
    configcatclient.close_all()  # type: ignore[no-untyped-call]


# ------------------------------------------------------------------------------------ coverage

COMPARATOR_NAMES = tuple(comparator.name for comparator in Comparator)
OUTCOMES = ("match", "no match", "missing", "invalid", "flag error")


def _probe_flag(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"t": 0, "v": {"b": False}, "r": [{"c": conditions, "s": {"v": {"b": True}}}]}


def _probes(document: Mapping[str, Any]) -> Iterator[tuple[int, dict[str, Any]]]:
    """One single-condition document per user condition (same salt, same key or segment name)."""
    preferences = document.get("p", {})
    for key, setting in document.get("f", {}).items():
        for rule in setting.get("r", []):
            for condition in rule.get("c", []):
                if "u" in condition:
                    probe = _probe_flag([{"u": condition["u"]}])
                    yield condition["u"]["c"], {"p": preferences, "f": {key: probe}}
    for segment in document.get("s", []):
        for condition in segment.get("r", []):
            one = {"n": segment["n"], "r": [condition]}
            probe = _probe_flag([{"s": {"s": 0, "c": 0}}])
            yield condition["c"], {"p": preferences, "s": [one], "f": {"probe": probe}}


class CoverageStats:
    """How often each comparator matched, and which evaluation paths configcat-client took."""

    def __init__(self) -> None:
        self.comparators: Counter[tuple[int, str]] = Counter()
        self.paths: Counter[str] = Counter()
        self.documents = 0
        self.evaluations = 0
        self._oracle: Oracle | None = None

    def _load(self, document: Mapping[str, Any]) -> Oracle:
        if self._oracle is None:
            self._oracle = Oracle(document)
        else:
            self._oracle.load(document)
        return self._oracle

    def close(self) -> None:
        if self._oracle is not None:
            self._oracle.close()

    def __enter__(self) -> CoverageStats:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def record(
        self,
        document: Mapping[str, Any],
        evaluations: Iterable[tuple[str, Any]],
        users: Sequence[UserLike | None],
    ) -> None:
        self.documents += 1
        for comparator, probe in _probes(document):
            oracle = self._load(probe)
            key = next(iter(probe["f"]))
            for user in users:
                self.comparators[comparator, self._outcome(oracle, key, user)] += 1
        settings = document.get("f", {})
        oracle = self._load(document)
        for key, default in evaluations:
            for user in users:
                self.evaluations += 1
                self._record_path(settings, key, oracle.evaluate(key, default, user))

    @staticmethod
    def _outcome(oracle: Oracle, key: str, user: UserLike | None) -> str:
        result = oracle.evaluate(key, None, user, capture_log=True)
        if result.is_default_value:
            return "flag error"
        if result.value is True:
            return "match"
        # A condition the SDK cannot evaluate (it warns, and skips the rule): no user, or no such
        # attribute ("missing"); an attribute that is no version, number, date or list ("invalid").
        if _ATTRIBUTE_INVALID in result.log_events:
            return "invalid"
        if {_USER_MISSING, _ATTRIBUTE_MISSING} & set(result.log_events):
            return "missing"
        return "no match"

    def _record_path(self, settings: Mapping[str, Any], key: str, result: OracleResult) -> None:
        paths = self.paths
        if key not in settings:
            paths["missing key"] += 1
        elif result.is_default_value:
            error = result.error or ""
            paths["circular prerequisite" if "Circular" in error else "other flag error"] += 1
        elif result.matched_targeting_rule is not None:
            rule = result.matched_targeting_rule
            paths[
                "targeting rule, % option" if "p" in rule else "targeting rule, served value"
            ] += 1
            for condition in rule.get("c", []):
                if "u" in condition:
                    paths["matched rule has a user condition"] += 1
                if "s" in condition:
                    paths[f"segment condition {('IS IN', 'IS NOT IN')[condition['s']['c']]}"] += 1
                if "p" in condition:
                    prerequisite = condition["p"]
                    paths[f"prerequisite {('==', '!=')[prerequisite['c']]}"] += 1
                    target_rules = settings[prerequisite["f"]].get("r", [])
                    if any("p" in c for rule in target_rules for c in rule.get("c", [])):
                        paths["prerequisite chain (target has prerequisites)"] += 1
        elif result.matched_percentage_option is not None:
            paths["flag-level % option"] += 1
        else:
            paths["fallback value"] += 1

    def render(self) -> str:
        lines = [f"{self.documents} documents, {self.evaluations} evaluations"]
        lines.append(f"{'comparator':<34}" + "".join(f"{outcome:>11}" for outcome in OUTCOMES))
        for number, name in enumerate(COMPARATOR_NAMES):
            counts = "".join(f"{self.comparators[number, o]:>11}" for o in OUTCOMES)
            lines.append(f"{number:>2} {name:<31}{counts}")
        lines.append("paths:")
        lines.extend(f"  {path:<48}{count:>8}" for path, count in sorted(self.paths.items()))
        return "\n".join(lines)
