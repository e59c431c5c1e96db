"""The candidate pipeline: the sources' payloads to a validated candidate Snapshot.

Pure: no I/O and no anyio. Every problem with a candidate, whoever raised it (a cast, a
template, a validator, a user's model), comes out as a :class:`~aioconfig.ConfigError`, so the
engine can treat it as a rejection of that candidate and nothing else.

```
payloads ─ prepare (environment, case, casts, tokens) ─ merge over the other layers
         ─ @format ─ validators (defaults, casts, checks) ─ sentinels ─ flags ─ models
         ─ Candidate (a Snapshot, or None when there is nothing to swap)
```
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError, ParseError, ValidationError
from ._layers import (
    MISSING,
    Converter,
    Layer,
    interpolate,
    key_matches,
    lookup,
    prepare,
    resolve_tokens,
)
from ._merge import Memo, build, patch
from ._secrets import DEFAULT_SECRET_MATCHER, tainted
from ._snapshot import FoldedIndex, Snapshot
from ._validators import Validator, error_for, run_validators
from .flags._combine import EMPTY, changed_keys, combine
from .flags._model import FlagConfig, parse_flags
from .flags._user import User

if TYPE_CHECKING:
    from .sources._base import Payload, Source

__all__ = ("Candidate", "Pipeline", "SourceState", "WatchKey")

DEFAULT_ENVIRONMENT = "development"  # Dynaconf's too
_NO_LAYER = Layer({})


@dataclass(frozen=True, slots=True)
class WatchKey:
    """A sentinel key: with ``refresh_on=[WatchKey("sentinel")]`` other changes wait for it."""

    key: str


@dataclass(slots=True)
class SourceState:
    """What the engine holds of one source: the version applied and where it stands."""

    source: Source
    token: Hashable | None = None
    data: Any = None
    layer: Layer | None = None  # ``data`` prepared: environment, case, casts, tokens
    flags: FlagConfig | None = None
    #: The newest order key applied, for a source that gives them (``Payload.order``).
    order: int | None = None
    #: The engine's sequence number of the newest payload applied from this source (when its
    #: fetch began, or when it was pushed): orders payloads of sources that give no order key.
    seq: int = 0
    watching: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a set of payloads would make: a new snapshot, or None when nothing would change
    (or a sentinel holds the change back); ``prepared`` is committed if it is accepted."""

    snapshot: Snapshot | None
    keys: frozenset[str]
    flags: frozenset[str]
    prepared: Mapping[int, Layer]
    dotted: Mapping[int, tuple[tuple[str, ...], ...]]  # per source: keys holding a dot


@dataclass(frozen=True, slots=True)
class _Built:
    """A candidate's tree, index and changed keys, and what was decided after the merge."""

    root: Mapping[str, Any]
    flat: dict[str, Any]
    keys: frozenset[str]
    derived: Mapping[str, str]  # key -> "@format <template>" or "validators"
    secrets: frozenset[str]  # keys given as Secret(...)


class Pipeline:
    """Builds candidates over the sources' current layers (``states``, owned by the engine)."""

    def __init__(
        self,
        states: Sequence[SourceState],
        *,
        environment: str | None = None,
        environments: bool = False,
        fold_case: bool = False,
        table: Mapping[str, Converter],
        validators: Sequence[Validator] = (),
        models: Sequence[type] = (),
        refresh_on: Sequence[WatchKey] = (),
        default_user: User | None = None,
        secret: Any = DEFAULT_SECRET_MATCHER,
    ) -> None:
        self.states = states
        #: The active environment (``load(env=...)``), and whether files have sections for it
        #: unless they say otherwise (``File(environments=...)``).
        self.environment = environment or DEFAULT_ENVIRONMENT
        self.environments = environments
        self.fold_case = fold_case
        self._table = table
        self._validators = tuple(validators)
        self._models = tuple(models)
        self._sentinels = tuple(w.key for w in refresh_on)
        self._default_user = default_user
        self.secret = secret
        self._memo = Memo()  # sections merged from several layers, for the next build
        self._names = tuple(state.source.name for state in states)
        #: Per source: the key paths whose last key holds a dot (see ``_spelled_twice``).
        self._dotted: dict[int, tuple[tuple[str, ...], ...]] = {}

    # ------------------------------------------------------------------ candidates

    def candidate(self, updates: Mapping[int, Payload], old: Snapshot | None) -> Candidate:
        """The candidate ``updates`` make over the current layers; raises ``ConfigError``."""
        prepared = {i: self._prepare(i, payload) for i, payload in updates.items()}
        dotted = {i: _dotted_keys(layer.data, self._names[i]) for i, layer in prepared.items()}
        built = self._build(prepared, old)
        self._spelled_twice({**self._dotted, **dotted}, built.root)
        states = self.states
        flags = self._combined(
            {i: updates[i].flags if i in updates else s.flags for i, s in enumerate(states)},
            None if old is None else old.flags,
        )
        flag_keys = changed_keys(EMPTY if old is None else old.flags, flags)
        if old is not None and not old.from_cache:
            # Sentinels: hold the settings back until a watched key (or one under it) changes.
            # Flags are not held: a flag document is one consistent version.
            if self._sentinels and not any(key_matches(k, self._sentinels) for k in built.keys):
                built = _Built(old._data, old._flat, frozenset(), old._derived, old._secret_keys)
            if not built.keys and not flag_keys:
                # Nothing to swap (yet): the data is still committed, so a later sentinel
                # change or refresh applies it.
                return Candidate(None, frozenset(), frozenset(), prepared, dotted)
        snapshot = Snapshot(
            built.root,
            FoldedIndex(built.flat) if self.fold_case else built.flat,
            version=1 if old is None else old.version + 1,
            sources=self._names,
            flags=flags,
            default_user=self._default_user,
            secret_keys=built.secrets,
            derived=built.derived,
            secret_matcher=self.secret,
        )
        self.check_models(snapshot)
        return Candidate(snapshot, built.keys, flag_keys, prepared, dotted)

    def commit(self, updates: Mapping[int, Payload], candidate: Candidate) -> None:
        """Make ``updates`` the sources' current versions (the candidate was accepted)."""
        for i, payload in updates.items():
            state = self.states[i]
            state.data = payload.data
            state.layer = candidate.prepared[i]
            state.flags = payload.flags
            state.token = payload.token
        self._dotted.update(candidate.dotted)

    def check_models(self, snapshot: Snapshot) -> None:
        """``load(models=...)`` against ``snapshot``; whatever a model raises is a rejection."""
        for model in self._models:
            try:
                snapshot.bind(model)  # kept on the snapshot: bind() is ready when it serves
            except ValidationError:
                raise
            except Exception as exc:  # a user's __post_init__ or validator, say
                name = getattr(model, "__name__", repr(model))
                # By type only: the text of a user's exception may quote a value (a secret).
                error = ValidationError(f"candidate rejected by model {name}: {type(exc).__name__}")
                raise error from exc

    def from_cache(
        self,
        data: dict[str, Any],
        flags: Sequence[tuple[int, Any]],
        created_at: float,
        secrets: frozenset[str] = frozenset(),
    ) -> Snapshot:
        """The snapshot a cache entry holds (version 1), validated; raises ``ConfigError``."""
        root, flat, _ = build([data])
        built = self._validated(_Built(root, flat, frozenset(), {}, secrets), None)
        restored = {
            index: parse_flags(document, source=self._names[index])
            for index, document in flags
            if 0 <= index < len(self._names)
        }
        snapshot = Snapshot(
            built.root,
            FoldedIndex(built.flat) if self.fold_case else built.flat,
            version=1,
            sources=self._names,
            created_at=created_at,
            from_cache=True,
            flags=self._combined(restored),
            default_user=self._default_user,
            secret_keys=secrets,
            secret_matcher=self.secret,
        )
        self.check_models(snapshot)
        return snapshot

    # ------------------------------------------------------------------ steps

    def _spelled_twice(
        self, dotted: Mapping[int, tuple[tuple[str, ...], ...]], root: Mapping[str, Any]
    ) -> None:
        """A ``ParseError`` if one dotted path is spelled two ways in the merged tree: a key
        that holds a dot (``{"a.b": 1}``) and nested keys (``{"a": {"b": 2}}``), which would
        make ``config["a.b"]`` depend on the order things were merged in."""
        spellings: dict[str, tuple[str, ...]] = {}
        for i, paths in dotted.items():
            for path in paths:
                if lookup(root, path) is MISSING:
                    continue  # overridden or deleted by another layer
                dotted_path = ".".join(path)
                nested = tuple(dotted_path.split("."))
                other = nested if lookup(root, nested) is not MISSING else None
                if other is None:
                    other = spellings.setdefault(dotted_path, path)
                if other != path:
                    raise ParseError(
                        self._names[i],
                        f"the key {dotted_path!r} is spelled two ways: "
                        f"{_spelling(path)} and {_spelling(other)}; rename one",
                    )

    def uses_sections(self, source: Source) -> bool:
        """Whether ``source``'s data is split into environment sections."""
        sections = source.environments
        return self.environments if sections is None else sections

    def _prepare(self, index: int, payload: Payload) -> Layer:
        source = self.states[index].source
        return prepare(
            payload.data,
            source.name,
            environment=self.environment if self.uses_sections(source) else None,
            fold_case=self.fold_case,
            table=self._table,
            describe=source.describe,
            secret=self.secret,
        )

    def _combined(
        self, flags: Mapping[int, FlagConfig | None], previous: FlagConfig | None = None
    ) -> FlagConfig:
        """The sources' flags as one FlagConfig (``previous`` when none of them changed)."""
        states = self.states
        if previous is not None and all(
            flags.get(i) is state.flags for i, state in enumerate(states)
        ):
            return previous
        return combine(
            [
                (config, states[i].source.flag_behaviour)
                for i, config in sorted(flags.items())
                if config is not None
            ]
        )

    def _build(self, prepared: dict[int, Layer], old: Snapshot | None) -> _Built:
        """Merge the prepared layers over the current ones; fill in ``@format`` templates;
        run the validators."""
        layers = [
            prepared[i] if i in prepared else state.layer or _NO_LAYER
            for i, state in enumerate(self.states)
        ]
        if any(layer.tokens for layer in layers):
            data = resolve_tokens(layers)
        else:
            data = [layer.data for layer in layers]
        previous = None if old is None else (old._data, old._flat)
        root, flat, keys = build(data, previous, self._memo)
        derived: dict[str, str] = {}
        formats = {key: spec for layer in layers for key, spec in layer.formats.items()}
        if formats:
            values = interpolate(flat, formats, self._table)
            if values:
                changed = set(keys)
                root = patch(root, flat, values, changed, None if old is None else old._flat)
                keys = frozenset(changed)
                derived.update((key, "@format " + formats[key].template) for key in values)
        secrets = frozenset().union(*(layer.secrets for layer in layers))
        return self._validated(_Built(root, flat, keys, derived, secrets), old)

    def _validated(self, built: _Built, old: Snapshot | None) -> _Built:
        """Run ``load(validators=...)``: apply their defaults and casts, or raise every failure."""
        if not self._validators:
            return built
        secret, given = self.secret, built.secrets
        taint: list[frozenset[str]] = []  # worked out on the first key a message shows

        def is_secret(key: str) -> bool:
            if key in given or secret(key):
                return True
            if not built.derived:
                return False
            if not taint:  # @format values built from secrets are secrets too
                taint.append(tainted(built.derived, built.flat, lambda k: k in given or secret(k)))
            return key in taint[0]

        outcome = run_validators(
            self._validators, built.flat, env=self.environment, secret=is_secret
        )
        error = error_for(outcome)
        if error is not None:
            raise error
        if not outcome.patch:
            return built
        changed = set(built.keys)
        old_flat = None if old is None else old._flat
        root = patch(built.root, built.flat, outcome.patch, changed, old_flat)
        derived = {**built.derived, **dict.fromkeys(outcome.patch, "validators")}
        return _Built(root, built.flat, frozenset(changed), derived, built.secrets)


def rejection(exc: BaseException) -> ConfigError:
    """What ``validate=`` raising ``exc`` means: a rejection of the candidate."""
    if isinstance(exc, ValidationError):
        return exc
    # By type only: the text may quote a value (a secret); the exception stays chained.
    error = ValidationError(f"candidate rejected by validate=: {type(exc).__name__}")
    error.__cause__ = exc
    return error


def _dotted_keys(data: Mapping[str, Any], source: str) -> tuple[tuple[str, ...], ...]:
    """The key paths in ``data`` whose last key holds a dot; a ``ParseError`` for an empty key
    (it would make a dotted path such as ``"a."`` that no read can tell apart). Mappings
    inside lists are not in the dotted index, so they are not looked at."""
    found: list[tuple[str, ...]] = []
    stack: list[tuple[Mapping[str, Any], tuple[str, ...]]] = [(data, ())]
    while stack:
        node, path = stack.pop()
        try:
            suspect = "." in "".join(node) or "" in node  # one C-level pass over the keys
        except TypeError:  # a key that is not a str (a Static source's int, say)
            suspect = True
        if suspect:
            for key in node:
                if type(key) is str and (not key or "." in key):
                    if not key:
                        where = repr(".".join(path)) if path else "the top level"
                        raise ParseError(source, f"an empty key at {where}")
                    found.append((*path, key))
        if _PLAIN.issuperset(map(type, node.values())):
            continue  # only scalars and lists here (checked at C speed): nothing to descend
        for key, value in node.items():
            kind = type(value)
            if kind is dict or (kind not in _PLAIN and isinstance(value, Mapping)):
                stack.append((value, (*path, key)))
    return tuple(found)


_PLAIN = frozenset({str, int, float, bool, type(None), list, tuple})


def _spelling(path: tuple[str, ...]) -> str:
    """``("a.b",)`` -> ``'a.b'``; ``("a", "b")`` -> ``'a' > 'b'``: how a path is keyed."""
    return " > ".join(repr(key) for key in path)
