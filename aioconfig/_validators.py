"""Declarative validators with Dynaconf's constructor and semantics, over a flat dotted index.

Pure: no anyio, and no I/O but ``load_validators`` reading its one file. The engine calls
``run_validators`` on every candidate snapshot, so a validator compiles its globs once, a plain
name costs one dict lookup, and nothing scans the whole index unless a glob asks for it.

>>> outcome = run_validators(
...     [Validator("db.port", must_exist=True, gte=1024), Validator("db.pool", default=5)],
...     {"db": {"port": 80}, "db.port": 80},
... )
>>> outcome.patch
{'db.pool': 5}
>>> print(outcome.failures[0].message)
db.port must gte 1024 but it is 80 in env DEVELOPMENT

Where this differs from Dynaconf, it is on purpose and said so where it happens: every failure
is collected instead of the first; a raising cast, condition or operation is a failure, not an
exception; ``env=`` picks which validators run against the one active env (Dynaconf re-reads
the settings of each listed env, which a snapshot does not have); keys are case-sensitive; and
``is_type_of=list`` (``dict``, ``set``) accepts the tuples (read-only mappings, frozensets) a
snapshot freezes them into.
"""

from __future__ import annotations

import operator
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from types import MappingProxyType, UnionType
from typing import Any, Union, get_args, get_origin

from ._exceptions import ValidationError, ValidationFailure
from ._literals import typed
from ._merge import thaw
from ._secrets import DEFAULT_SECRET_MATCHER, MASK, Secret, mask_urls, shown

__all__ = (
    "AndValidator",
    "CombinedValidator",
    "OrValidator",
    "Outcome",
    "Validator",
    "error_for",
    "load_validators",
    "run_validators",
    "validators_from_mapping",
)


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


# ``default=`` was not given (``None`` is a real default, as in Dynaconf).
_UNSET: Any = _Sentinel("<unset>")
_MISSING: Any = _Sentinel("<missing>")
_NOT_PATCHED: Any = _Sentinel("<not patched>")

_COMBINED_PREFIX = "combined validators failed "
_NO_ENV = "DEVELOPMENT"  # what {env} shows when no env is active (Dynaconf's default env)

DEFAULT_MESSAGES: Mapping[str, str] = MappingProxyType(
    {
        "must_exist_true": "{name} is required in env {env}",
        "must_exist_false": "{name} cannot exists in env {env}",
        "condition": "{name} invalid for {function}({value}) in env {env}",
        "operations": "{name} must {operation} {op_value} but it is {value} in env {env}",
        "combined": _COMBINED_PREFIX + "{errors}",
    }
)
_PLACEHOLDERS = frozenset({"name", "env", "function", "value", "operation", "op_value", "errors"})


# -- operations --------------------------------------------------------------------------------

# A snapshot freezes lists into tuples, mappings into read-only views and sets into frozensets,
# so a type check for the thawed type accepts its frozen form too.
_FROZEN_FORMS: dict[type, tuple[type, ...]] = {
    list: (list, tuple),
    dict: (Mapping,),
    set: (set, frozenset),
}

_TYPE_NAMES: dict[str, type] = {
    t.__name__: t
    for t in (str, int, float, bool, list, dict, tuple, set, frozenset, bytes, complex)
}
_TYPE_NAMES["NoneType"] = type(None)


def _is_type_of(value: Any, expected: Any) -> bool:
    # Dynaconf's is_type_of (unions, list[T], tuple[T, ...], dict[K, V]), frozen-aware.
    origin = get_origin(expected)
    args = get_args(expected)
    if not args and isinstance(expected, tuple):
        return any(_is_type_of(value, item) for item in expected if item is not Ellipsis)
    if args:
        if origin in (Union, UnionType):
            return any(_is_type_of(value, arg) for arg in args)
        if origin in (list, tuple):
            return isinstance(value, (list, tuple)) and all(_is_type_of(v, args) for v in value)
        if origin is dict:
            key_type, value_type = args
            return isinstance(value, Mapping) and all(
                _is_type_of(k, key_type) and _is_type_of(v, value_type) for k, v in value.items()
            )
    return isinstance(value, _FROZEN_FORMS.get(expected, expected))


def _check_type_spec(spec: Any) -> Any:
    """``spec`` with type names resolved; TypeError now rather than on every snapshot."""
    if isinstance(spec, str):
        try:
            return _TYPE_NAMES[spec]
        except KeyError:
            known = ", ".join(sorted(_TYPE_NAMES))
            raise TypeError(f"is_type_of={spec!r} is not a type name ({known})") from None
    if isinstance(spec, tuple):
        return tuple(_check_type_spec(item) for item in spec)
    args = get_args(spec)
    if args:
        origin = get_origin(spec)
        if origin in (Union, UnionType, list, tuple) or (origin is dict and len(args) == 2):
            for arg in args:
                if arg is not Ellipsis:
                    _check_type_spec(arg)
            return spec
        raise TypeError(f"is_type_of={spec!r}: only unions, list[], tuple[] and dict[] are checked")
    if not isinstance(spec, type):
        raise TypeError(f"is_type_of needs a type, got {spec!r}")
    return spec


def _regex(value: Any, pattern: re.Pattern[str]) -> bool:
    return pattern.match(value) is not None


_OPERATIONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "lt": operator.lt,
    "gte": operator.ge,
    "lte": operator.le,
    "ge": operator.ge,
    "le": operator.le,
    "is_type_of": _is_type_of,
    "is_in": lambda value, other: value in other,
    "is_not_in": lambda value, other: value not in other,
    "identity": operator.is_,
    "cont": operator.contains,
    "contains": operator.contains,
    "not_contains": lambda value, other: other not in value,
    "len_eq": lambda value, other: len(value) == other,
    "len_ne": lambda value, other: len(value) != other,
    "len_min": lambda value, other: len(value) >= other,
    "len_max": lambda value, other: len(value) <= other,
    "startswith": lambda value, term: value.startswith(term),
    "endswith": lambda value, term: value.endswith(term),
    "not_startswith": lambda value, term: not value.startswith(term),
    "not_endswith": lambda value, term: not value.endswith(term),
    "regex": _regex,
    "not_regex": lambda value, pattern: not _regex(value, pattern),
}

# Options a file can give; the callable-only ones are named so the error can say why.
_FILE_OPTIONS = frozenset(
    {"must_exist", "required", "default", "description", "apply_default_on_none", "messages", "env"}
)
_CALLABLE_OPTIONS = frozenset({"condition", "cast", "when"})


# -- names -------------------------------------------------------------------------------------


def _is_glob(name: str) -> bool:
    return "*" in name or "?" in name or "[" in name


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """fnmatch over dotted paths: ``*`` and ``?`` stay within one segment, ``**`` crosses dots."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        i += 1
        if char == "*":
            if i < n and pattern[i] == "*":
                i += 1
                out.append(".*")
            else:
                out.append("[^.]*")
        elif char == "?":
            out.append("[^.]")
        elif char == "[":
            j = i
            if j < n and pattern[j] in "!^":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:
                out.append(r"\[")
            else:
                body = pattern[i:j].replace("\\", r"\\")
                i = j + 1
                if body[:1] == "!":
                    body = "^" + body[1:]
                elif body[:1] == "^":
                    body = "\\" + body
                out.append(f"[{body}]")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Glob:
    pattern: str
    regex: re.Pattern[str]
    head: str | None  # the literal first segment, which narrows the keys to try


def _compile_name(name: str) -> str | _Glob:
    if not isinstance(name, str) or not name:
        raise TypeError(f"validator names must be non-empty strings, got {name!r}")
    if not _is_glob(name):
        return name
    head = name.partition(".")[0]
    return _Glob(name, _glob_regex(name), None if _is_glob(head) else head)


# -- the run -----------------------------------------------------------------------------------


class _Run:
    """What every scope of one run shares: the candidate, the env, and the glob index."""

    __slots__ = ("by_head", "env", "flat", "secret")

    def __init__(
        self, flat: Mapping[str, Any], env: str | None, secret: Callable[[str], bool]
    ) -> None:
        self.flat = flat
        self.env = env
        self.secret = secret
        # keys by first segment, built on the first glob: "db.*" then tries the db keys only
        self.by_head: dict[str, list[str]] | None = None


class _Scope:
    """The candidate's flat index with the patches made so far laid over it."""

    __slots__ = ("_run", "env", "flat", "patch", "secret")

    def __init__(self, run: _Run, patch: dict[str, Any]) -> None:
        self._run = run
        self.flat = run.flat
        self.env = run.env
        self.secret = run.secret
        self.patch = patch

    def child(self) -> _Scope:
        """A scope whose patches can be kept (``commit``) or dropped."""
        return _Scope(self._run, dict(self.patch))

    def commit(self, child: _Scope) -> None:
        self.patch = child.patch

    def get(self, key: str) -> Any:
        patch = self.patch
        if patch:
            if key in patch:
                return patch[key]
            value = self._under_patched_parent(key)
            if value is not _NOT_PATCHED:
                return value
        return self.flat.get(key, _MISSING)

    def _under_patched_parent(self, key: str) -> Any:
        # A patched mapping replaces its whole subtree: read below it, not the stale flat index.
        end = len(key)
        while (end := key.rfind(".", 0, end)) > 0:
            parent = key[:end]
            if parent in self.patch:
                value = self.patch[parent]
                for part in key[end + 1 :].split("."):
                    if not isinstance(value, Mapping) or part not in value:
                        return _MISSING
                    value = value[part]
                return value
        return _NOT_PATCHED

    def set(self, key: str, value: Any) -> None:
        self.patch[key] = value

    def matches(self, glob: _Glob) -> list[str]:
        by_head = self._run.by_head
        if by_head is None:
            by_head = {}
            for key in self.flat:
                by_head.setdefault(key.partition(".")[0], []).append(key)
            self._run.by_head = by_head
        candidates: Iterable[str] = self.flat if glob.head is None else by_head.get(glob.head, ())
        fullmatch = glob.regex.fullmatch
        found = [key for key in candidates if fullmatch(key)]
        found.extend(key for key in self.patch if key not in self.flat and fullmatch(key))
        return found

    def view(self) -> Mapping[str, Any]:
        return _View(self)


class _View(Mapping[str, Any]):
    """Read-only dotted access to the candidate as validated so far (for callable defaults)."""

    __slots__ = ("_scope",)

    def __init__(self, scope: _Scope) -> None:
        self._scope = scope

    def __getitem__(self, key: str) -> Any:
        value = self._scope.get(key)
        if value is _MISSING:
            raise KeyError(key)
        return value

    def __iter__(self) -> Iterator[str]:
        flat = self._scope.flat
        yield from flat
        yield from (key for key in self._scope.patch if key not in flat)

    def __len__(self) -> int:
        flat = self._scope.flat
        return len(flat) + sum(1 for key in self._scope.patch if key not in flat)


# -- validators --------------------------------------------------------------------------------


class Validator:
    """A rule over one or more dotted keys, with Dynaconf's constructor and semantics.

    >>> Validator("db.port", must_exist=True, is_type_of=int, gte=1024)
    Validator('db.port', must_exist=True, is_type_of=int, gte=1024)

    Names are dotted paths or globs over them (``"db.*"``, ``"servers.*.host"``; ``*`` stays
    inside one segment, ``**`` crosses dots). Order per key, as in Dynaconf: ``default``, then
    ``must_exist``, then ``cast``, then the operations (``is_type_of`` first), then
    ``condition``. A missing key skips the checks unless ``must_exist=True``. A callable
    ``default`` is called as ``default(view, validator)``, ``view`` being the candidate so far.
    """

    default_messages: Mapping[str, str] = DEFAULT_MESSAGES

    def __init__(
        self,
        *names: str,
        must_exist: bool | None = None,
        required: bool | None = None,
        condition: Callable[[Any], Any] | None = None,
        when: Validator | None = None,
        env: str | Sequence[str] | None = None,
        messages: Mapping[str, str] | None = None,
        cast: Callable[[Any], Any] | None = None,
        default: Any = _UNSET,
        description: str | None = None,
        apply_default_on_none: bool | None = False,
        **operations: Any,
    ) -> None:
        if not names and type(self) is Validator:
            raise TypeError("Validator() needs the names of the keys it checks")
        for name in names:
            if not isinstance(name, str) or not name:
                raise TypeError(f"a Validator's names must be non-empty strings, got {name!r}")
        self.names = names
        self._targets = tuple(_compile_name(name) for name in names)
        self.must_exist = must_exist if must_exist is not None else required
        if self.must_exist not in (True, False, None):
            raise TypeError(f"must_exist must be True, False or None, got {self.must_exist!r}")
        if condition is not None and not callable(condition):
            raise TypeError("condition must be callable")
        if cast is not None and not callable(cast):
            raise TypeError("cast must be callable")
        if when is not None and not isinstance(when, Validator):
            raise TypeError("when must be a Validator")
        if apply_default_on_none not in (True, False, None):
            raise TypeError("apply_default_on_none must be True or False")
        if description is not None and not isinstance(description, str):
            raise TypeError("description must be a string")
        self.condition = condition
        self.when = when
        self.cast = cast
        self.default = _parsed_default(default, operations.get("is_type_of"))
        self.description = description
        self.apply_default_on_none = bool(apply_default_on_none)
        self.envs = _envs(env)
        self._env_set = None if self.envs is None else frozenset(e.lower() for e in self.envs)
        self.messages: Mapping[str, str] = MappingProxyType(
            {**self.default_messages, **_checked_messages(messages)}
        )
        self.operations: Mapping[str, Any] = MappingProxyType(dict(operations))
        self._operations = _compiled_operations(operations)

    @property
    def required(self) -> bool | None:
        """Dynaconf's alias of ``must_exist``."""
        return self.must_exist

    def __or__(self, other: Validator) -> OrValidator:
        return OrValidator(*_flattened(self, other, OrValidator), description=self.description)

    def __and__(self, other: Validator) -> AndValidator:
        return AndValidator(*_flattened(self, other, AndValidator), description=self.description)

    def __repr__(self) -> str:
        parts = [repr(name) for name in self.names]
        if self.must_exist is not None:
            parts.append(f"must_exist={self.must_exist}")
        parts.extend(f"{name}={_op_text(value)}" for name, value in self.operations.items())
        for option in ("condition", "cast"):
            if (function := getattr(self, option)) is not None:
                parts.append(f"{option}={_callable_name(function)}")
        if self.when is not None:
            parts.append(f"when={self.when!r}")
        if self.envs is not None:
            parts.append(f"env={list(self.envs)!r}")
        if self.default is not _UNSET:
            parts.append("default=...")
        return f"{type(self).__name__}({', '.join(parts)})"

    # The engine-facing run: failures are returned, patches go into the scope.

    def _run(self, scope: _Scope) -> list[ValidationFailure]:
        if self._env_set is not None and (
            scope.env is None or scope.env.lower() not in self._env_set
        ):
            return []
        if self.when is not None and self.when._run(scope.child()):
            return []  # `when` failed: this validator does not apply to this candidate
        return self._check(scope)

    def _check(self, scope: _Scope) -> list[ValidationFailure]:
        failures: list[ValidationFailure] = []
        for target in self._targets:
            if isinstance(target, str):
                self._check_key(target, scope, failures)
                continue
            keys = scope.matches(target)
            if keys:
                for key in keys:
                    self._check_key(key, scope, failures)
            elif self.must_exist is True:
                message = self._format("must_exist_true", target.pattern, scope)
                failures.append(
                    ValidationFailure(
                        target.pattern, "<missing>", "must_exist", message + " (no key matched)"
                    )
                )
        return failures

    def _check_key(self, key: str, scope: _Scope, failures: list[ValidationFailure]) -> None:
        value = scope.get(key)
        if self.default is not _UNSET and (
            value is _MISSING or (value is None and self.apply_default_on_none)
        ):
            if callable(self.default):
                try:
                    value = self.default(scope.view(), self)
                except Exception as exc:
                    failures.append(self._raised("default", key, _MISSING, exc, scope))
                    return
            else:
                value = self.default
            scope.set(key, value)

        if self.must_exist is True and value is _MISSING:
            message = self._format("must_exist_true", key, scope)
            failures.append(ValidationFailure(key, "<missing>", "must_exist", message))
            return
        if value is _MISSING:
            return  # nothing to check, as in Dynaconf
        if self.must_exist is False:
            message = self._format("must_exist_false", key, scope)
            failures.append(
                ValidationFailure(key, self._shown(key, value, scope), "must_exist", message)
            )
            return

        if self.cast is not None:
            try:
                # plain values, as in Dynaconf: cast=str over a list gives "['a', 'b']"
                cast = self.cast(thaw(_revealed(value)))
            except Exception as exc:
                failures.append(self._raised("cast", key, value, exc, scope))
                return
            if isinstance(value, Secret) and not isinstance(cast, Secret):
                cast = Secret(cast)
            if _changed(value, cast):
                scope.set(key, cast)
            value = cast

        checked = _revealed(value)
        for name, (function, argument) in self._operations:
            try:
                passed = bool(function(checked, argument))
            except Exception as exc:
                failures.append(self._invalid_operation(name, key, value, exc, scope))
                passed = False
            else:
                if not passed:
                    message = self._format(
                        "operations",
                        key,
                        scope,
                        value=value,
                        operation=name,
                        op_value=self._shown_argument(key, value, name, scope),
                    )
                    failures.append(
                        ValidationFailure(key, self._shown(key, value, scope), name, message)
                    )
            if not passed and name == "is_type_of":
                return  # the other checks would only fail again, on the wrong type

        if self.condition is not None:
            try:
                passed = bool(self.condition(checked))
            except Exception as exc:
                failures.append(self._raised("condition", key, value, exc, scope))
                return
            if not passed:
                message = self._format(
                    "condition", key, scope, value=value, function=_callable_name(self.condition)
                )
                failures.append(
                    ValidationFailure(key, self._shown(key, value, scope), "condition", message)
                )

    # Messages: every value goes through `shown`, so a secret is masked wherever it appears.

    def _shown(self, key: str, value: Any, scope: _Scope) -> str:
        return "<missing>" if value is _MISSING else shown(key, value, scope.secret)

    def _shown_argument(self, key: str, value: Any, operation: str, scope: _Scope) -> str:
        # The rule's own operand is shown (`must len_min 12`), except where it is (part of)
        # the expected secret: `eq="hunter2"`, `startswith="sk_live_"` on a secret key, or
        # an operand given as Secret.
        argument = self.operations[operation]
        if isinstance(argument, Secret) or _has_secret(argument):
            return MASK
        if operation in _CONTENT_OPERATIONS and (isinstance(value, Secret) or scope.secret(key)):
            return MASK
        return _op_text(argument)

    def _format(self, template: str, key: str, scope: _Scope, **fields: Any) -> str:
        if "value" in fields:
            fields["value"] = self._shown(key, fields["value"], scope)
        context = dict.fromkeys(_PLACEHOLDERS, "")
        context.update(name=key, env=_env_name(scope.env), **fields)
        return self.messages[template].format_map(context)

    def _raised(
        self, rule: str, key: str, value: Any, exc: Exception, scope: _Scope
    ) -> ValidationFailure:
        function = _callable_name(getattr(self, rule))
        shown_value = self._shown(key, value, scope)
        called = f"{function}()" if value is _MISSING else f"{function}({shown_value})"
        message = f"{key}: {rule} {called} raised {_why(key, value, exc, scope)}"
        return ValidationFailure(key, shown_value, rule, message)

    def _invalid_operation(
        self, name: str, key: str, value: Any, exc: Exception, scope: _Scope
    ) -> ValidationFailure:
        message = (
            f"Invalid Operation '{name}' for type {type(_revealed(value)).__name__!r} on "
            f"'{key}': {_why(key, value, exc, scope)}"
        )
        return ValidationFailure(key, self._shown(key, value, scope), name, message)


class CombinedValidator(Validator):
    """Two or more validators judged together; see ``OrValidator`` and ``AndValidator``."""

    def __init__(
        self,
        *validators: Validator,
        env: str | Sequence[str] | None = None,
        when: Validator | None = None,
        messages: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> None:
        if len(validators) < 2 or not all(isinstance(v, Validator) for v in validators):
            raise TypeError(f"{type(self).__name__} combines two or more Validators")
        super().__init__(env=env, when=when, messages=messages, description=description)
        self.validators = validators

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(repr(v) for v in self.validators)})"

    def _combined(
        self, errors: list[list[ValidationFailure]], joiner: str, scope: _Scope
    ) -> ValidationFailure:
        failures = [failure for branch in errors for failure in branch]
        keys = list(dict.fromkeys(failure.key for failure in failures))
        text = joiner.join(
            "; ".join(failure.message.replace(_COMBINED_PREFIX, "") for failure in branch)
            for branch in errors
        )
        context = dict.fromkeys(_PLACEHOLDERS, "")
        context.update(name=", ".join(keys), env=_env_name(scope.env), errors=text)
        value = failures[0].value if len(keys) == 1 else ", ".join(f.value for f in failures)
        return ValidationFailure(
            ", ".join(keys), value, "combined", self.messages["combined"].format_map(context)
        )


class OrValidator(CombinedValidator):
    """``a | b``: passes when any one passes; only the passing one's defaults and casts apply."""

    def _check(self, scope: _Scope) -> list[ValidationFailure]:
        errors: list[list[ValidationFailure]] = []
        for validator in self.validators:
            child = scope.child()
            failures = validator._run(child)
            if not failures:
                scope.commit(child)
                return []
            errors.append(failures)
        return [self._combined(errors, " or ", scope)]


class AndValidator(CombinedValidator):
    """``a & b``: passes when all pass; each sees the defaults the ones before it set."""

    def _check(self, scope: _Scope) -> list[ValidationFailure]:
        errors = [failures for v in self.validators if (failures := v._run(scope))]
        return [self._combined(errors, " and ", scope)] if errors else []


def _flattened(left: Validator, right: Validator, kind: type[CombinedValidator]) -> list[Validator]:
    # `a | b | c` is one OrValidator of three, so its message lists three errors, not a nest.
    parts: list[Validator] = []
    for side in (left, right):
        if type(side) is kind and _plain_combination(side):
            parts.extend(side.validators)
        else:
            parts.append(side)
    return parts


def _plain_combination(validator: Validator) -> bool:
    return (
        validator.envs is None
        and validator.when is None
        and validator.messages["combined"] == DEFAULT_MESSAGES["combined"]
    )


def _envs(env: str | Sequence[str] | None) -> tuple[str, ...] | None:
    if env is None:
        return None
    envs = (env,) if isinstance(env, str) else tuple(env)
    if not envs or not all(isinstance(e, str) for e in envs):
        raise TypeError(f"env must be a name or a list of names, got {env!r}")
    return envs


def _checked_messages(messages: Mapping[str, str] | None) -> dict[str, str]:
    if not messages:
        return {}
    if not isinstance(messages, Mapping):
        raise TypeError("messages must be a mapping of template name to text")
    formatter = string.Formatter()
    for name, text in messages.items():
        if name not in DEFAULT_MESSAGES:
            known = ", ".join(DEFAULT_MESSAGES)
            raise ValueError(f"unknown message template {name!r} (known: {known})")
        if not isinstance(text, str):
            raise TypeError(f"message template {name!r} must be a string")
        try:
            fields = [field for _, field, _, _ in formatter.parse(text) if field is not None]
        except ValueError as exc:
            raise ValueError(f"message template {name!r}: {exc}") from None
        for field in fields:
            root = re.split(r"[.\[]", field, maxsplit=1)[0]
            if root not in _PLACEHOLDERS:
                placeholders = ", ".join(sorted(_PLACEHOLDERS))
                raise ValueError(
                    f"message template {name!r} uses {{{field}}}; placeholders: {placeholders}"
                )
    return dict(messages)


def _compiled_operations(operations: Mapping[str, Any]) -> tuple[tuple[str, tuple[Any, Any]], ...]:
    compiled: list[tuple[str, tuple[Any, Any]]] = []
    for name, argument in operations.items():
        try:
            function = _OPERATIONS[name]
        except KeyError:
            raise TypeError(f"Validator got an unknown operation {name!r}") from None
        if name == "is_type_of":
            argument = _check_type_spec(argument)
        elif name in ("regex", "not_regex") and isinstance(argument, str):
            argument = re.compile(argument)
        compiled.append((name, (function, argument)))
    # is_type_of first, as in Dynaconf: the others assume the type
    compiled.sort(key=lambda item: item[0] != "is_type_of")
    return tuple(compiled)


def _env_name(env: str | None) -> str:
    """The environment as Dynaconf's messages name it: upper case (``DEVELOPMENT``)."""
    return (env or _NO_ENV).upper()


def _parsed_default(default: Any, is_type_of: Any) -> Any:
    """A string ``default=`` read as Dynaconf reads it: tokens apply (``"@str +172800"``), and
    unmarked text is a TOML literal (``"+172800"`` -> 172800) unless ``is_type_of=str``."""
    if not isinstance(default, str):
        return default
    if default.startswith("@"):
        from ._layers import converters

        name, _, rest = default.partition(" ")
        table = converters()
        if name in table:
            try:
                return table[name](rest)
            except Exception as exc:
                raise ValueError(f"default={default!r}: {name} failed ({exc})") from None
        return default
    if is_type_of is str:
        return default
    return typed(default)


def _revealed(value: Any) -> Any:
    return value.reveal() if isinstance(value, Secret) else value


def _changed(old: Any, new: Any) -> bool:
    if new is old:
        return False
    if type(new) is not type(old):
        return True
    try:
        return not bool(old == new)
    except Exception:
        return True


def _callable_name(function: Any) -> str:
    return str(getattr(function, "__name__", None) or repr(function))


def _op_text(argument: Any) -> str:
    if isinstance(argument, type):
        return argument.__name__
    if isinstance(argument, re.Pattern):
        return repr(argument.pattern)
    text = mask_urls(repr(argument))
    return text if len(text) <= 80 else text[:77] + "..."


#: Operations whose operand is (part of) a value, not its shape: masked on a secret key.
_CONTENT_OPERATIONS = frozenset(
    {"eq", "ne", "is_in", "is_not_in", "identity", "cont", "startswith", "endswith"}
)


def _has_secret(argument: Any) -> bool:
    if isinstance(argument, (list, tuple, set, frozenset)):
        return any(isinstance(item, Secret) for item in argument)
    return False


def _why(key: str, value: Any, exc: Exception, scope: _Scope) -> str:
    # An exception's text often quotes the value (int("hunter2")), and any value may be a
    # secret under a name no pattern knows: the type only. The exception stays chained.
    return type(exc).__name__


# -- the entry point ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a validator run says about one candidate."""

    #: dotted key -> new value: defaults applied and casts that changed a value. A mapping value
    #: replaces that key's whole subtree.
    patch: dict[str, Any]
    failures: tuple[ValidationFailure, ...]

    @property
    def ok(self) -> bool:
        return not self.failures


def run_validators(
    validators: Sequence[Validator],
    flat: Mapping[str, Any],
    *,
    env: str | None = None,
    secret: Callable[[str], bool] = DEFAULT_SECRET_MATCHER,
) -> Outcome:
    """Run every validator over ``flat`` (every dotted path -> value) and collect every failure.

    Each validator sees the patches of those before it. ``env`` is the active environment; a
    validator with ``env=`` runs only when it is one of its envs. ``secret(key)`` says which
    values to mask in messages.
    """
    scope = _Scope(_Run(flat, env, secret), {})
    failures: list[ValidationFailure] = []
    for validator in validators:
        failures.extend(validator._run(scope))
    return Outcome(scope.patch, tuple(failures))


def error_for(outcome: Outcome) -> ValidationError | None:
    """One ``ValidationError`` listing every failure on its own line, or None if there are none."""
    failures = outcome.failures
    if not failures:
        return None
    noun = "failure" if len(failures) == 1 else "failures"
    lines = [f"{len(failures)} validation {noun}:"]
    for failure in failures:
        if failure.message.startswith(failure.key):
            lines.append(f"  - {failure.message}")
        else:
            lines.append(f"  - {failure.key}: {failure.message}")
    return ValidationError("\n".join(lines), details=failures)


# -- validators from a file --------------------------------------------------------------------


def validators_from_mapping(
    data: Mapping[str, Any], *, source: str = "<mapping>"
) -> list[Validator]:
    """Validators from Dynaconf's ``dynaconf_validators.toml`` layout, already parsed.

    ``{"default": {"db.port": {"gte": 1024}}, "production": {"db": {"port": {"lte": 2048}}}}``:
    top-level tables are envs (``default`` means every env); under them, a key holds a table of
    options, and a table of tables spells a dotted name. ``source`` names the file in errors.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"{source}: expected a table of environments")
    validators: list[Validator] = []
    for env_name, names in data.items():
        env = str(env_name).lower()
        if not isinstance(names, Mapping):
            raise ValueError(f"{source}: [{env_name}] must be a table of names")
        for name, options in names.items():
            where = f"{source}: [{env_name}] {name}"
            if not isinstance(options, Mapping):
                raise ValueError(f"{where}: must be a table of options")
            _from_table(
                str(name), options, None if env == "default" else env, source, env_name, validators
            )
    return validators


def _from_table(
    name: str,
    table: Mapping[str, Any],
    env: str | None,
    source: str,
    env_name: str,
    out: list[Validator],
) -> None:
    where = f"{source}: [{env_name}] {name}"
    options: dict[str, Any] = {}
    children: list[tuple[str, Mapping[str, Any]]] = []
    for option, value in table.items():
        if option in _FILE_OPTIONS or option in _OPERATIONS:
            options[option] = value
        elif option in _CALLABLE_OPTIONS:
            raise ValueError(f"{where}: option {option!r} needs Python code; a file cannot give it")
        elif isinstance(value, Mapping):
            children.append((f"{name}.{option}", value))
        else:
            raise ValueError(f"{where}: unknown option {option!r}")
    if options or not children:
        if _means_every_env(options.get("env")):
            options["env"] = None
        options.setdefault("env", env)
        try:
            out.append(Validator(name, **options))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    for child, value in children:
        _from_table(child, value, env, source, env_name, out)


def _means_every_env(env: Any) -> bool:
    names = [env] if isinstance(env, str) else env if isinstance(env, list) else []
    return any(isinstance(name, str) and name.lower() == "default" for name in names)


def load_validators(path: str | PathLike[str]) -> list[Validator]:
    """Validators from a TOML, JSON or YAML file in ``dynaconf_validators.toml``'s layout.

    A malformed file is a ``ParseError`` naming the line; a bad rule a ``ValueError`` naming the
    file and the key.
    """
    # Imported here: the sources package brings aiohttp and anyio, which validating never needs.
    from .sources._formats import format_from_path, parse

    source = str(path)
    fmt = format_from_path(source)
    if fmt not in ("toml", "json", "yaml"):
        raise ValueError(f"{source}: validators are read from .toml, .json or .yaml files")
    data = parse(Path(path).read_bytes(), fmt, source)
    return validators_from_mapping(data, source=source)
