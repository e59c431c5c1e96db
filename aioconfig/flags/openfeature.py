"""An OpenFeature provider that evaluates aioconfig's feature flags (the ``openfeature`` extra).

```python
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from aioconfig.flags.openfeature import AioconfigProvider

async with load(ConfigCat(sdk_key), default_user=User("anonymous")) as config:
    api.set_provider_and_wait(AioconfigProvider(config))
    client = api.get_client()
    client.get_boolean_value("newCheckout", False, EvaluationContext("42", {"Country": "HU"}))
```

Prefer ``set_provider_and_wait``: the SDK's ``set_provider`` marks a provider ready from a
thread, so an evaluation may come first and get ``PROVIDER_NOT_READY``.

Each resolution reads ``config.snapshot`` once, so it sees one version of the flags even when
a refresh swaps in another meanwhile. Evaluation is pure CPU work and never blocks, so the
``*_async`` methods simply run the synchronous path.

The evaluation context becomes a :class:`~aioconfig.flags.User`: the targeting key is the
identifier; ``Email``/``email`` and ``Country``/``country`` (text) are the email and country;
every other attribute is a custom attribute, passed as it is (the evaluator turns numbers,
datetimes and lists into what each comparator needs, as ConfigCat does). An empty context
means no user, so ``load(default_user=...)`` applies. Attributes without a targeting key give a
user with identifier ``""``, which ConfigCat's conditions treat as a missing identifier and its
percentage options hash as ``""``: the same results as ConfigCat's own provider, which passes
no identifier.

ConfigCat has no object flags: ``get_object_value`` resolves a text flag holding JSON of an
object or an array, and answers ``TYPE_MISMATCH`` for anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import orjson

from .._extras import needs

with needs("openfeature", "openfeature", by=__name__):
    from openfeature.evaluation_context import EvaluationContext
    from openfeature.exception import ErrorCode
    from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
    from openfeature.provider import AbstractProvider, Metadata

from .._exceptions import ClosedError
from ._user import User

if TYPE_CHECKING:
    from .._config import Config

__all__ = ("AioconfigProvider",)

_T = TypeVar("_T")
_Object = Sequence[FlagValueType] | Mapping[str, FlagValueType]

_EMAIL = ("Email", "email")
_COUNTRY = ("Country", "country")
_NAMED = frozenset(_EMAIL + _COUNTRY)


class AioconfigProvider(AbstractProvider):
    """Resolves OpenFeature flag evaluations against a live :class:`~aioconfig.Config`.

    >>> api.set_provider_and_wait(AioconfigProvider(config))

    The provider does not own the Config: its owner opens and closes it. While the Config is
    not open, resolutions answer the default with ``PROVIDER_NOT_READY``.
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self._config = config

    @property
    def config(self) -> Config:
        """The Config whose flags this provider evaluates."""
        return self._config

    def get_metadata(self) -> Metadata:
        return Metadata(name="aioconfig")

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, default_value, evaluation_context, _bool)

    def resolve_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, default_value, evaluation_context, _str)

    def resolve_integer_details(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, default_value, evaluation_context, _int)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, default_value, evaluation_context, _float)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: _Object,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[_Object]:
        # Evaluated with a text default: the flag is text, so nothing warns of a mismatch.
        return self._resolve(flag_key, default_value, "", evaluation_context, _object)

    # Evaluation never blocks, so the async twins run the synchronous path (as the SDK's
    # defaults do today; spelled out so that stays true whatever later SDKs default to).

    async def resolve_boolean_details_async(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self.resolve_boolean_details(flag_key, default_value, evaluation_context)

    async def resolve_string_details_async(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[str]:
        return self.resolve_string_details(flag_key, default_value, evaluation_context)

    async def resolve_integer_details_async(
        self,
        flag_key: str,
        default_value: int,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[int]:
        return self.resolve_integer_details(flag_key, default_value, evaluation_context)

    async def resolve_float_details_async(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self.resolve_float_details(flag_key, default_value, evaluation_context)

    async def resolve_object_details_async(
        self,
        flag_key: str,
        default_value: _Object,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[_Object]:
        return self.resolve_object_details(flag_key, default_value, evaluation_context)

    def _resolve(
        self,
        key: str,
        default: _T,
        evaluated_default: object,
        context: EvaluationContext | None,
        convert: Callable[[object], _T | None],
    ) -> FlagResolutionDetails[_T]:
        try:
            snapshot = self._config.snapshot  # once: one version of the flags throughout
        except ClosedError as exc:
            return _error(default, ErrorCode.PROVIDER_NOT_READY, str(exc))
        flags = snapshot.flags
        if key not in flags:
            available = ", ".join(repr(name) for name in flags)
            message = f"Flag {key!r} was not found in {flags.source}. Available: [{available}]."
            return _error(default, ErrorCode.FLAG_NOT_FOUND, message)
        details = snapshot.get_value_details(key, evaluated_default, _user(context))
        if details.error is not None:
            return _error(default, ErrorCode.GENERAL, details.error)
        value = convert(details.value)
        if value is None:
            kind = type(details.value).__name__
            wanted = _WANTED[convert]
            message = f"Flag {key!r} has a {kind} value, which is not {wanted}."
            return _error(default, ErrorCode.TYPE_MISMATCH, message)
        metadata: dict[str, int] = {"snapshot_version": snapshot.version}
        if details.matched_targeting_rule is not None:
            reason = Reason.TARGETING_MATCH  # even when the rule's percentage options decided
            metadata["matched_targeting_rule"] = details.matched_targeting_rule
        elif details.matched_percentage_option is not None:
            reason = Reason.SPLIT
        elif flags.is_static(key):
            reason = Reason.STATIC
        else:
            reason = Reason.DEFAULT  # rules or percentages there, none decided
        if details.matched_percentage_option is not None:
            metadata["matched_percentage_option"] = details.matched_percentage_option
        return FlagResolutionDetails(
            value=value, reason=reason, variant=details.variation_id, flag_metadata=metadata
        )


def _error(default: _T, code: ErrorCode, message: str) -> FlagResolutionDetails[_T]:
    return FlagResolutionDetails(
        value=default, error_code=code, error_message=message, reason=Reason.ERROR
    )


def _user(context: EvaluationContext | None) -> User | None:
    """The evaluation context as a User; None for an empty one (the default user applies)."""
    if context is None or (not context.targeting_key and not context.attributes):
        return None
    attributes = context.attributes
    custom = {name: value for name, value in attributes.items() if name not in _NAMED}
    return User(
        context.targeting_key or "",
        email=_text(attributes, _EMAIL),
        country=_text(attributes, _COUNTRY),
        custom=custom,
    )


def _text(attributes: Mapping[str, object], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = attributes.get(name)
        if isinstance(value, str):
            return value
    return None


# Converters: the flag's value as the requested type, or None when it is not one. A flag value
# is never None (a flag without a value fails evaluation instead), so None is free to mean that.


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: object) -> float | None:
    # A ConfigCat double may come as a JSON integer (``2``); OpenFeature wants a float.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _object(value: object) -> _Object | None:
    if not isinstance(value, str):
        return None
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    return decoded if isinstance(decoded, (dict, list)) else None


# What each converter accepts, for the TYPE_MISMATCH message.
_WANTED: dict[Callable[[object], object], str] = {
    _bool: "a bool",
    _str: "a str",
    _int: "an int",
    _float: "a number",
    _object: "text holding JSON of an object or an array",
}
