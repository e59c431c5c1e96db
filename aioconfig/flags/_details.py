"""EvaluationDetails: what one evaluation decided, and why."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ("EvaluationDetails",)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class EvaluationDetails(Generic[T]):
    """The outcome of ``evaluate``: the value and where it came from.

    ``matched_targeting_rule`` is the index of the targeting rule that decided (into the
    setting's ``r`` list), or None. ``matched_percentage_option`` is the index of the percentage
    option that decided, or None: an index into that rule's ``p`` list when a rule matched,
    into the setting's own ``p`` list otherwise.

    ``is_default_value`` is true exactly when ``error`` is set: then ``value`` is the default
    the caller passed. Frozen and shared: evaluations that end in the same place return the
    very same object.
    """

    key: str
    value: T
    variation_id: str | None = None
    is_default_value: bool = False
    error: str | None = None
    matched_targeting_rule: int | None = None
    matched_percentage_option: int | None = None
