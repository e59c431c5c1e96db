"""evaluate(): one flag, one user, the same answer as ConfigCat's own SDK. Pure: no I/O.

The order of everything below is the SDK's (``rolloutevaluator.py`` in configcat-client 10),
because the order decides the answer: rules are tried first to last; within a rule the
conditions are ANDed and the first that does not hold ends the rule; a condition that "cannot be
evaluated" (no user, a missing or unusable attribute) skips the rule like a false one, except
inside a segment, where it also keeps ``IS NOT IN SEGMENT`` from holding; a rule's percentage
options, and then the setting's, are tried when no served value decided; and last comes the
setting's own value.

When the logger ``aioconfig.flags`` is enabled for INFO, each evaluation also logs why it
decided what it did, rule by rule, in the shape of ConfigCat's evaluation log. When it is not,
none of that text is ever built: the logger is asked once per evaluation, and for a ``User``
the setting's compiled form answers first (``_compile``, "the quiet path"). It answers only
when there is nothing to say; on a warning or an error to come, the general path below starts
over and says it.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from ._compare import Failure, Invalid, stringify
from ._compile import quick
from ._details import EvaluationDetails
from ._model import (
    UNKNOWN_COMPARATOR,
    Condition,
    FlagConfig,
    Percentages,
    PrerequisiteCondition,
    Rule,
    SegmentCondition,
    Setting,
    UserCondition,
    _mismatched,
)
from ._model import bucket as _bucket
from ._user import User, percentage_identifier

__all__ = ("evaluate",)

T = TypeVar("T")

logger = logging.getLogger("aioconfig.flags")
_INFO = logging.INFO
_logs_info = logger.isEnabledFor  # bound once: this runs on every evaluation
#: What ``isEnabledFor`` last worked out per level (True/False), no entry before it has: the
#: logger's own cache, which logging empties (never replaces) whenever a level changes. Looking
#: there first costs a dict lookup instead of a method call, on the paths where that matters.
#: Without the cache (another logging implementation) it is always empty, and the callers ask
#: properly.
info_is_enabled: dict[int, bool] = getattr(logger, "_cache", {})
info_cached = info_is_enabled.get

_Outcome = EvaluationDetails[Any]
# What a condition comes to: True (holds), False (does not), or why it cannot be evaluated.
_Verdict = bool | str

_USER_DOCS = "Read more: https://configcat.com/docs/advanced/user-object/"


def evaluate(
    flags: FlagConfig, key: str, default_value: T, user: User | None = None
) -> EvaluationDetails[T | Any]:
    """Evaluate the setting ``key`` for ``user``. Never raises for a problem with the flag.

    >>> evaluate(flags, "newCheckout", False, User("42", country="HU")).value
    True

    On a problem (no such key, a broken setting, a circular prerequisite) the result holds
    ``default_value``, ``is_default_value=True`` and the reason in ``error``, and the reason is
    logged at ERROR. A ``default_value`` of another type than the setting's does not change the
    result (a warning says so): as in the SDK, it is only returned when something goes wrong.
    """
    try:
        setting = flags._settings[key]
    except KeyError:
        return _not_found(flags, key, default_value)
    if info_cached(_INFO) is not False and _logs_info(_INFO):
        return _evaluate_logged(setting, default_value, user)
    result = setting.fixed
    if result is None:
        if user.__class__ is User:
            # The quiet path (see _compile); on anything worth a word, the general path.
            try:
                result = (setting.quick or quick(setting))(user._attributes)
            except Exception:
                result = None
        if result is None:
            try:
                result = _decide(setting, _Run(user, None))
            except Exception as exc:  # the SDK's contract: any failure yields the default value
                return _failed(key, default_value, exc)
    if default_value is not None and result.value.__class__ is not default_value.__class__:
        _check_type(key, result.value, default_value)
    return result


class _Run:
    """The state of one evaluation, shared with the prerequisites it evaluates."""

    __slots__ = ("log", "user", "visited", "warned_attribute", "warned_user")

    def __init__(self, user: object, log: _Log | None) -> None:
        if user is not None and user.__class__ is not User and not isinstance(user, User):
            logger.warning(
                "Cannot evaluate targeting rules and %% options (the user is a %s, not an "
                "aioconfig.flags.User); evaluating as if there were no user.",
                type(user).__name__,
            )
            user = None
        self.user: User | None = user
        self.log = log
        #: Keys of the settings whose prerequisites are being evaluated, outermost first.
        self.visited: list[str] | None = None
        self.warned_user = False
        self.warned_attribute = False


class _Log:
    """The evaluation log: lines with two-space indents, as ConfigCat prints it."""

    __slots__ = ("depth", "parts")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.depth = 0

    def add(self, text: str) -> None:
        self.parts.append(text)

    def line(self, text: str = "") -> None:
        self.parts.append("\n" + "  " * self.depth + text)

    def __str__(self) -> str:
        return "".join(self.parts)


def _evaluate_logged(
    setting: Setting, default_value: T, user: User | None
) -> EvaluationDetails[T | Any]:
    log = _Log()
    log.add(f"Evaluating '{setting.key}'")
    if isinstance(user, User):
        try:
            shown = user.to_json()
        except Exception:  # custom values json cannot take (a cycle): the log must not fail
            shown = repr(user)
        log.add(f" for User '{shown}'")
    log.depth = 1
    result: EvaluationDetails[Any]
    try:
        result = _decide(setting, _Run(user, log))
    except Exception as exc:
        result = _failed(setting.key, default_value, exc)
        log.line(f"Returning the default value '{default_value}' ({exc}).")
    else:
        log.line(f"Returning '{result.value}'.")
    logger.info("%s", log)
    if default_value is not None and not result.is_default_value:
        _check_type(setting.key, result.value, default_value)
    return result


def _decide(setting: Setting, run: _Run) -> _Outcome:
    """Rules, then percentage options, then the setting's value: the first to decide wins."""
    log = run.log
    if setting.rules:
        if log is not None:
            log.line("Evaluating targeting rules and applying the first match if any:")
        for rule in setting.rules:
            if rule.conditional:
                served = rule.served
                if isinstance(served, str):
                    # The SDK reads the served value before it looks at the conditions.
                    raise Failure(served)
                if log is None:
                    if not _holds(rule.conditions, setting.key, run):
                        continue
                elif _conditions_logged(rule, setting, run, log) is not True:
                    continue
                if served is not None:
                    return served
            if rule.percentages is None:
                if log is not None:
                    log.line(
                        "The current targeting rule is ignored and the evaluation continues "
                        "with the next rule."
                    )
                continue
            if log is not None:
                log.depth += 1
            picked = _percentage(rule.percentages, setting, run)
            if log is not None:
                if picked is None:
                    log.line(
                        "The current targeting rule is ignored and the evaluation continues "
                        "with the next rule."
                    )
                log.depth -= 1
            if picked is not None:
                return picked
    if setting.percentages is not None:
        picked = _percentage(setting.percentages, setting, run)
        if picked is not None:
            return picked
    outcome = setting.outcome
    if isinstance(outcome, str):
        raise Failure(outcome)
    return outcome


def _holds(conditions: tuple[Condition, ...], key: str, run: _Run) -> bool:
    """Whether all of a rule's conditions hold (no log: "cannot evaluate" is just "no")."""
    user = run.user
    for condition in conditions:
        if type(condition) is UserCondition:
            # The common case inline: a user with a non-empty string for the attribute.
            if user is not None and condition.early_error is None:
                value = user._attributes.get(condition.attribute)
                if value.__class__ is str and value:
                    try:
                        if condition.check(value):
                            continue
                        return False
                    except Invalid:
                        pass  # the general path below explains it
            if _user_condition(condition, key, run) is not True:
                return False
        elif type(condition) is SegmentCondition:
            if _segment_condition(condition, key, run) is not True:
                return False
        elif _prerequisite_condition(condition, key, run) is not True:  # type: ignore[arg-type]
            return False
    return True


def _user_condition(condition: UserCondition, key: str, run: _Run) -> _Verdict:
    if condition.early_error is not None:
        raise Failure(condition.early_error)
    if run.log is not None:
        run.log.add(condition.text + " ")
    user = run.user
    if user is None:
        _warn_no_user(key, run)
        return "cannot evaluate, User Object is missing"
    attribute = condition.attribute
    value = user._attributes.get(attribute)
    if value is None or (isinstance(value, str) and not value):
        logger.warning(
            "Cannot evaluate condition (%s) for setting %r (the User.%s attribute is missing). "
            "Set the User.%s attribute to make targeting work properly. %s",
            condition.text, key, attribute, attribute, _USER_DOCS,
            extra=_about(key, condition.text),
        )  # fmt: skip
        return f"cannot evaluate, the User.{attribute} attribute is missing"
    if condition.textual and not isinstance(value, str):
        logger.warning(
            "Evaluation of condition (%s) for setting %r may not produce the expected result "
            "(the User.%s attribute is not a string value, thus it was automatically converted "
            "to the string value %r). Please make sure that using a non-string value was "
            "intended.",
            condition.text, key, attribute, _Lazy(value),
            extra=_about(key, condition.text),
        )  # fmt: skip
    try:
        return condition.check(value)
    except Invalid as exc:
        logger.warning(
            "Cannot evaluate condition (%s) for setting %r (%s). Please check the User.%s "
            "attribute and make sure that its value corresponds to the comparison operator.",
            condition.text, key, exc.reason, attribute,
            extra=_about(key, condition.text),
        )  # fmt: skip
        return f"cannot evaluate, the User.{attribute} attribute is invalid ({exc.reason})"


def _segment_condition(condition: SegmentCondition, key: str, run: _Run) -> _Verdict:
    if run.user is None:
        _warn_no_user(key, run)
        if run.log is not None:
            run.log.add(f"User {_segment_text(condition)} ")
        return "cannot evaluate, User Object is missing"
    if condition.comparator not in (0, 1):
        raise Failure(UNKNOWN_COMPARATOR)
    if run.log is not None:
        return _segment_logged(condition, key, run, run.log)
    inside = condition.comparator == 0
    for user_condition in condition.segment.conditions:
        verdict = _user_condition(user_condition, key, run)
        if verdict is not True:
            # A condition that cannot be evaluated fails IS NOT IN SEGMENT as well.
            return verdict if isinstance(verdict, str) else not inside
    return inside


def _prerequisite_condition(condition: PrerequisiteCondition, key: str, run: _Run) -> _Verdict:
    if condition.error is not None:
        raise Failure(condition.error)
    assert condition.target is not None
    visited = run.visited
    if visited is None:
        visited = run.visited = []
    visited.append(key)
    if condition.key in visited:
        chain = " -> ".join(f"'{name}'" for name in [*visited, condition.key])
        raise Failure(
            f"Circular dependency detected between the following depending flags: {chain}."
        )
    log = run.log
    if log is not None:
        log.add(_prerequisite_text(condition))
        log.line("(")
        log.depth += 1
        log.line(f"Evaluating prerequisite flag '{condition.key}':")
    # The SDK warns of a missing User once per setting it evaluates, a prerequisite included
    # (and again each time one is evaluated): the prerequisite's evaluation warns on its own.
    warned_user, run.warned_user = run.warned_user, False
    try:
        value = _decide(condition.target, run).value
    finally:
        run.warned_user = warned_user
    visited.pop()
    if condition.comparator == 0:
        verdict = bool(value == condition.comparison)
    elif condition.comparator == 1:
        verdict = bool(value != condition.comparison)
    else:
        raise Failure(UNKNOWN_COMPARATOR)
    if log is not None:
        log.line(f"Prerequisite flag evaluation result: '{value}'.")
        log.line(f"Condition ({_prerequisite_text(condition)}) evaluates to {_bool(verdict)}.")
        log.depth -= 1
        log.line(")")
    return verdict


def _percentage(percentages: Percentages, setting: Setting, run: _Run) -> _Outcome | None:
    """The option the user's hash bucket falls in, or None to let the evaluation go on."""
    user = run.user
    log = run.log
    if user is None:
        _warn_no_user(setting.key, run)
        if log is not None:
            log.line("Skipping % options because the User Object is missing.")
        return None
    attribute = setting.percentage_attribute
    if attribute is None:
        value: object = percentage_identifier(user)
    else:
        value = user._attributes.get(attribute)
        if value is None:
            if not run.warned_attribute:
                run.warned_attribute = True
                logger.warning(
                    "Cannot evaluate %% options for setting %r (the User.%s attribute is "
                    "missing). Set the User.%s attribute to make targeting work properly. %s",
                    setting.key, attribute, attribute, _USER_DOCS,
                    extra=_about(setting.key, attribute),
                )  # fmt: skip
            if log is not None:
                log.line(f"Skipping % options because the User.{attribute} attribute is missing.")
            return None
    bucket = _bucket(setting, value if isinstance(value, str) else stringify(value))
    index = percentages.table[bucket]
    if log is not None:
        name = attribute if attribute is not None else "Identifier"
        log.line(f"Evaluating % options based on the User.{name} attribute:")
        log.line(
            f"- Computing hash in the [0..99] range from User.{name} => {bucket} "
            "(this value is sticky and consistent across all SDKs)"
        )
        if index >= 0:
            log.line(
                f"- Hash value {bucket} selects % option {index + 1} "
                f"({percentages.percentages[index]}%), '{percentages.values[index]}'."
            )
    if index < 0:
        return None
    outcome = percentages.outcomes[index]
    if isinstance(outcome, str):
        raise Failure(outcome)
    return outcome


# -- the logged variants: the same decisions, told as they are made ---------------------------


def _conditions_logged(rule: Rule, setting: Setting, run: _Run, log: _Log) -> _Verdict:
    count = len(rule.conditions)
    verdict: _Verdict = True
    for position, condition in enumerate(rule.conditions):
        if position == 0:
            log.line("- IF ")
            log.depth += 1
        else:
            log.line("AND ")
        if type(condition) is UserCondition:
            verdict = _user_condition(condition, setting.key, run)
            if count > 1:
                log.add(f"=> {_bool(verdict is True)}")
        elif type(condition) is SegmentCondition:
            verdict = _segment_condition(condition, setting.key, run)
            if count > 1:
                log.add(f"{'' if isinstance(verdict, str) else ' '}=> {_bool(verdict is True)}")
            elif not isinstance(verdict, str):
                log.line()
        else:
            assert isinstance(condition, PrerequisiteCondition)
            verdict = _prerequisite_condition(condition, setting.key, run)
            if count > 1:
                log.add(f" => {_bool(verdict is True)}")
            else:
                log.line()
        if verdict is not True:
            if count > 1:
                log.add(", skipping the remaining AND conditions")
            break
    if not rule.conditions:
        log.line("- IF (no condition the evaluator knows, so the rule applies) ")
        log.depth += 1
    if count > 1:
        log.line()
    served = f"'{rule.served_value}'" if rule.served is not None else "% options"
    if isinstance(verdict, str):
        log.add(f"THEN {served} => {verdict}")
        log.line(
            "The current targeting rule is ignored and the evaluation continues with the next rule."
        )
    else:
        log.add(f"THEN {served} => {'MATCH, applying rule' if verdict else 'no match'}")
    log.depth -= 1
    return verdict


def _segment_logged(condition: SegmentCondition, key: str, run: _Run, log: _Log) -> _Verdict:
    segment = condition.segment
    inside = condition.comparator == 0
    log.add(f"User {_segment_text(condition)}")
    log.line("(")
    log.depth += 1
    log.line(f"Evaluating segment '{segment.name}':")
    result: bool = inside
    error: str | None = None
    for position, user_condition in enumerate(segment.conditions):
        if position == 0:
            log.line("- IF ")
            log.depth += 1
        else:
            log.line("AND ")
        verdict = _user_condition(user_condition, key, run)
        log.add(f"=> {_bool(verdict is True)}")
        if verdict is not True:
            log.add(", skipping the remaining AND conditions")
            result = not inside
            error = verdict if isinstance(verdict, str) else None
            break
    if segment.conditions:
        log.depth -= 1
    log.line("Segment evaluation result: ")
    if error is None:
        member = result if inside else not result
        log.add(f"User IS{' ' if member else ' NOT '}IN SEGMENT.")
    else:
        log.add(f"{error}.")
    log.line(f"Condition (User {_segment_text(condition)}) ")
    log.add(f"evaluates to {_bool(result)}." if error is None else "failed to evaluate.")
    log.depth -= 1
    log.line(")")
    if error is not None:
        log.line()
        return error
    return result


# -- errors and warnings ---------------------------------------------------------------------


def _not_found(flags: FlagConfig, key: str, default_value: T) -> EvaluationDetails[T]:
    available = ", ".join(f"'{name}'" for name in flags._settings)
    why = f"'{key}' (the key was not found in config JSON)"
    return _defaulted(key, default_value, why, f" Available keys: [{available}].")


def _failed(key: str, default_value: T, exc: Exception) -> EvaluationDetails[T]:
    return _defaulted(key, default_value, f"'{key}'. ({exc})", " ")


def _defaulted(key: str, default_value: T, why: str, tail: str) -> EvaluationDetails[T]:
    """The default value as a result, logged at ERROR in the SDK's words."""
    error = (
        f"Failed to evaluate setting {why}. "
        "Returning the `default_value` parameter that you specified in your application: "
        f"'{default_value!s}'.{tail}"
    )
    logger.error("%s", error, extra=_about(key, why))
    return EvaluationDetails(key, default_value, None, True, error)


def _about(key: str, detail: object) -> dict[str, object]:
    """What ``WarningLimit`` tells repeated records apart by: the flag, and what went wrong."""
    return {"flag_key": key, "flag_detail": detail}


def _check_type(key: str, value: object, default_value: object) -> None:
    if _mismatched(value, type(default_value)):
        logger.warning(
            "The type of a setting does not match the type of the specified default value (%s). "
            "Setting's type was %s but the default value's type was %s. Please make sure that "
            "using a default value not matching the setting's type was intended.",
            default_value, type(value), type(default_value),
            extra=_about(key, type(default_value)),
        )  # fmt: skip


def _warn_no_user(key: str, run: _Run) -> None:
    if not run.warned_user:
        run.warned_user = True
        logger.warning(
            "Cannot evaluate targeting rules and %% options for setting %r (User Object is "
            "missing). Pass a User to evaluate() to make targeting work properly. %s",
            key, _USER_DOCS,
            extra=_about(key, None),
        )  # fmt: skip


class _Lazy:
    """Formats a converted attribute only if the warning is actually emitted."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(stringify(self.value))


def _segment_text(condition: SegmentCondition) -> str:
    relation = "IS IN SEGMENT" if condition.comparator == 0 else "IS NOT IN SEGMENT"
    return f"{relation} '{condition.segment.name}'"


def _prerequisite_text(condition: PrerequisiteCondition) -> str:
    relation = "EQUALS" if condition.comparator == 0 else "DOES NOT EQUAL"
    return f"Flag '{condition.key}' {relation} '{condition.comparison}'"


def _bool(value: bool) -> str:
    return "true" if value else "false"
