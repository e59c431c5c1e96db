"""One error tree for aioconfig.

```
ConfigError
 ├── SourceError                  a source could not produce data (names the source)
 │    ├── SourceUnavailable       missing file, refused connection, 5xx: may heal by itself
 │    └── ParseError              the data is there but malformed (names file, line, column)
 ├── ValidationError              a candidate snapshot was rejected by `validate=`
 │                                (``details``: one ValidationFailure per broken rule)
 ├── LoadError                    several sources failed in one refresh (``errors``)
 │    └── InitialLoadError        `load()` got no first good configuration
 │         └── InitialValidationError (+ ValidationError)  ... because validation failed
 ├── KeyNotFound (+ KeyError)     a key is not in the configuration
 └── ClosedError (+ RuntimeError) the Config is not open (closed, or not started yet)
```

Messages are built in ``__init__`` and name the source (file path, URL, etcd key) and, where
known, the line. They never contain configuration values, which may be secrets; the one exception
is a validation failure, which shows the offending value so it can be fixed, masked whenever its
key looks secret or the value is a ``Secret`` (``aioconfig._secrets``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = (
    "ClosedError",
    "ConfigError",
    "InitialLoadError",
    "InitialValidationError",
    "KeyNotFound",
    "LoadError",
    "ParseError",
    "SourceError",
    "SourceUnavailable",
    "ValidationError",
    "ValidationFailure",
)


class ConfigError(Exception):
    """Base class of every error aioconfig raises on purpose."""


class SourceError(ConfigError):
    """A source failed to produce data.

    ``transient`` says whether trying again may help (a refused connection may heal; a syntax
    error in a file will not until someone edits it). ``load()`` keeps retrying transient
    failures for up to ``max_init_wait`` and fails fast on the others.
    """

    transient: bool = False
    #: Seconds the server asked to be left alone (``Retry-After`` on a 429 or 503), capped at
    #: ``MAX_RETRY_AFTER``; the next attempt waits at least that long. None: no such request.
    retry_after: float | None = None

    def __init__(self, source: str, problem: str, *, transient: bool | None = None) -> None:
        self.source = source
        self.problem = problem
        if transient is not None:
            self.transient = transient
        super().__init__(f"{source}: {problem}")


class SourceUnavailable(SourceError):
    """The source could not be reached or read (missing file, refused connection, 503)."""

    transient = True


class ParseError(SourceError):
    """The source's content is malformed. ``line`` and ``column`` are 1-based when known."""

    def __init__(
        self,
        source: str,
        problem: str,
        *,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.line = line
        self.column = column
        where = source
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(where, problem, transient=False)
        self.source = source


@dataclass(frozen=True, slots=True)
class ValidationFailure:
    """One key breaking one rule, as a record a program can read instead of parsing messages."""

    #: The dotted key (or the glob that matched nothing).
    key: str
    #: The value as shown: masked if secret, ``"<missing>"`` when absent.
    value: str
    #: The rule broken: ``"must_exist"``, ``"gte"``, ``"condition"``, ``"cast"``, ...
    rule: str
    #: The human sentence, e.g. ``"db.port must gte 1024 but it is 80 in env DEVELOPMENT"``.
    message: str


class ValidationError(ConfigError):
    """A candidate snapshot was rejected; the last good one keeps serving.

    ``details`` holds one ``ValidationFailure`` per broken rule when validators produced it.
    """

    def __init__(self, message: str, *, details: Sequence[ValidationFailure] = ()) -> None:
        self.message = message
        self.details = tuple(details)
        super().__init__(message)


class LoadError(ConfigError):
    """Several sources failed in one refresh; ``errors`` has one entry per failure."""

    head = "could not load the configuration"

    def __init__(self, errors: Sequence[Exception]) -> None:
        self.errors = tuple(errors)
        waits = [w for e in self.errors if (w := getattr(e, "retry_after", None)) is not None]
        #: The longest ``retry_after`` among the failures (None if none asked).
        self.retry_after: float | None = max(waits, default=None)
        lines = [f"{self.head}:"] + [f"  - {_describe(e)}" for e in self.errors]
        super().__init__("\n".join(lines))


class InitialLoadError(LoadError):
    """``load()`` could not build a first good configuration; ``errors`` names each failure."""

    def __init__(self, errors: Sequence[Exception], *, timeout: float | None = None) -> None:
        self.timeout = timeout
        if timeout is not None:
            self.head = f"could not load the configuration within max_init_wait={timeout:g}s"
        super().__init__(errors)


class InitialValidationError(InitialLoadError, ValidationError):
    """``load()`` got a first configuration, and it failed validation.

    Both an ``InitialLoadError`` and a ``ValidationError``, so the handler a Dynaconf user
    writes (``except ValidationError as e: e.details``) catches it, with every failure.
    """

    def __init__(self, error: ValidationError) -> None:
        super().__init__([error])
        self.message = str(self)
        self.details = error.details


class KeyNotFound(ConfigError, KeyError):
    """The key is not in the configuration (a ``KeyError``, so ``Mapping`` code works)."""

    def __init__(self, key: object) -> None:
        self.key = key
        super().__init__(key)

    def __str__(self) -> str:
        return f"no configuration key {self.key!r}"


class ClosedError(ConfigError, RuntimeError):
    """The Config is not open: it was closed, or it was never started."""


def _describe(error: Exception) -> str:
    if isinstance(error, ConfigError):
        return str(error)
    return f"{type(error).__name__}: {error}"
