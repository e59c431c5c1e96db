"""The candidate pipeline: the sources' payloads to a validated candidate Snapshot.

Pure: no I/O and no anyio. Every problem with a candidate, whoever raised it (a cast, a
template, a validator, a user's model), comes out as a :class:`~aioconfig.ConfigError`, so the
engine can treat it as a rejection of that candidate and nothing else. Needing no event loop,
``candidate()`` runs in a worker thread when the engine finds it ``costly()``.

```
payloads ─ prepare (environment, case, casts, tokens) ─ merge over the other layers
         ─ @format ─ validators (defaults, casts, checks) ─ sentinels ─ flags ─ models
         ─ Candidate (a Snapshot, or None when there is nothing to swap)
```
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
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
from ._limits import MAX_DEPTH, too_deep
from ._merge import Memo, build, patch
from ._secrets import DEFAULT_SECRET_MATCHER, Secret, tainted
from ._snapshot import FoldedIndex, Snapshot
from ._validators import Validator, error_for, run_validators
from .flags._combine import EMPTY, changed_keys, combine
from .flags._model import FlagConfig, parse_flags
from .flags._user import User

if TYPE_CHECKING:
    from .sources._base import Payload, Source

__all__ = ("Candidate", "Pipeline", "SourceState", "WatchKey")

DEFAULT_ENVIRONMENT = "development"  # Dynaconf's too
#: A candidate over this many values (``Pipeline.costly``) is built in a worker thread. Measured
#: on 2 CPUs: a build costs 0.4 to 0.8 us a value (4 ms at 10,000), a thread hop about 60 us,
#: and a build in a thread still holds the loop for up to the GIL's switch interval (5 ms).
OFF_LOOP_VALUES = 10_000
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
        """The candidate ``updates`` make over the current layers; raises ``ConfigError``.

        Changes no state (``commit`` does), so the engine runs a ``costly()`` one in a worker
        thread while its applier waits: users' converters, validators and models then run in
        that thread too. Nothing else builds meanwhile; only ``_memo`` is written.
        """
        for i, payload in updates.items():  # before anything recursive walks the data
            check_payload(payload.data, self._names[i], fold_case=self.fold_case)
        prepared = {i: self._prepare(i, payload) for i, payload in updates.items()}
        dotted = {i: _dotted_keys(layer.data, self._names[i]) for i, layer in prepared.items()}
        built = self._build(prepared, old)
        self._spelled_twice({**self._dotted, **dotted}, built.root, prepared, updates)
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

    def costly(self, updates: Mapping[int, Payload], old: Snapshot | None) -> bool:
        """Whether building the candidate of ``updates`` over ``old`` is worth a worker thread:
        ``old`` has :data:`OFF_LOOP_VALUES` keys or more (a refresh of a big configuration: no
        count needed, the build copies and compares them all), or the updates hold that many
        values, each key of ``old`` counting a quarter (counted until there, never further)."""
        if old is not None and len(old._flat) >= OFF_LOOP_VALUES:
            return True
        budget = OFF_LOOP_VALUES - (0 if old is None else len(old._flat) // 4)
        return _values_reach([p.data for p in updates.values()], budget)

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
        check_payload(data, "the cache")  # a cache file is read from disk like any source
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
        self,
        dotted: Mapping[int, tuple[tuple[str, ...], ...]],
        root: Mapping[str, Any],
        prepared: Mapping[int, Layer],
        updates: Mapping[int, Payload],
    ) -> None:
        """A ``ParseError`` if one dotted path is spelled two ways in the merged tree, by keys
        that hold dots (``{"a.b": 1}``, ``{"a.b": {"c": 1}}``) and nested keys (``{"a": {"b":
        2}}``, ``{"a": {"b.c": 2}}``) from different layers or sections, which would make
        ``config["a.b"]`` depend on the order things were merged in. Only the mappings that
        hold a dotted key are looked at: two spellings part ways where one of them holds a dot.
        (Within one payload ``check_payload`` has refused them already, naming the keys.)"""
        looked: set[tuple[str, ...]] = set()
        for paths in dotted.values():
            for path in paths:
                parent = path[:-1]
                if parent in looked:
                    continue
                looked.add(parent)
                node = lookup(root, parent)
                if not isinstance(node, Mapping):
                    continue  # overridden or deleted by another layer
                clash = _clash(node, fold_case=False)
                if clash is not None:
                    first, second = ((*parent, *spelling) for spelling in clash)
                    raise self._clash_error(first, second, prepared, updates)

    def _clash_error(
        self,
        first: tuple[str, ...],
        second: tuple[str, ...],
        prepared: Mapping[int, Layer],
        updates: Mapping[int, Payload],
    ) -> ParseError:
        """The error for two spellings of one path in the merged tree, naming the layers that
        give them (the later one first) as their data spells them."""
        layers = [
            prepared[i].data if i in prepared else (state.layer or _NO_LAYER).data
            for i, state in enumerate(self.states)
        ]

        def holder(spelling: tuple[str, ...]) -> int:
            found = [i for i, data in enumerate(layers) if lookup(data, spelling) is not MISSING]
            return found[-1] if found else len(layers) - 1

        (later, a), (earlier, b) = sorted(
            ((holder(spelling), spelling) for spelling in (first, second)), reverse=True
        )
        if self.fold_case:  # the layers hold folded keys: name the keys as the sources give them
            raw = [updates[i].data if i in updates else s.data for i, s in enumerate(self.states)]
            a, b = _as_given(raw[later], a), _as_given(raw[earlier], b)
        names = self._names
        if later == earlier:
            spellings = f"{_spelling(a)} and {_spelling(b)}"
        else:
            spellings = f"{_spelling(a)} in {names[later]} and {_spelling(b)} in {names[earlier]}"
        problem = f"the key {'.'.join(a)!r} is spelled two ways: {spellings}; rename one"
        return ParseError(self._names[later], problem)

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
            tokens=source.tokens,
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
_SCALARS = frozenset({str, int, float, bool, type(None)})
_CONTAINERS = (Mapping, list, tuple, set, frozenset)


def _values_reach(documents: list[Any], limit: int) -> bool:
    """Whether ``documents`` hold ``limit`` values or more, counting each container's entries
    and stopping there: at most about ``limit`` values looked at, a scalar-only container at
    C speed. Iterative, so a deep document costs no stack (its depth is checked later)."""
    count = 0
    stack = documents
    pop, push = stack.pop, stack.append
    while stack:
        node = pop()
        kind = type(node)
        if kind is dict or isinstance(node, Mapping):
            values: Any = node.values()
        elif kind is list or kind is tuple or isinstance(node, (set, frozenset)):
            values = node
        else:
            continue  # a scalar, a Secret: one value, counted in its container
        count += len(node)
        if count >= limit:
            return True
        if _SCALARS.issuperset(map(type, values)):
            continue
        for value in values:
            if type(value) not in _SCALARS:
                push(value)
    return False


def check_payload(data: object, source: str, *, fold_case: bool = False) -> None:
    """A ``ParseError`` naming ``source`` if ``data`` nests deeper than :data:`MAX_DEPTH`
    (mappings, lists, tuples and sets inside one another; a key's dots count as levels, as
    ``a.b.c`` stands for three) or if one dotted path is spelled two ways (``{"a.b": 1, "a":
    {"b": 2}}``; with ``fold_case``, ``{"Port": 1, "PORT": 2}``, where mappings merge).

    Whatever a source hands over, parsed or built (a ``Static``, a source of one's own), passes
    here before anything recursive walks it. Iterative, so it never exhausts the stack itself;
    a container holding only scalars costs one C-level pass.
    """
    if not isinstance(data, Mapping):
        return
    suspects: list[Mapping[Any, Any]] = []  # mappings whose keys may spell a path twice
    # (node, its depth, whether it lies in a list, where mappings are values, not paths)
    stack: list[tuple[Any, int, bool]] = [(data, 1, False)]
    pop, push = stack.pop, stack.append
    while stack:
        node, depth, listed = pop()
        dotted = False
        kind = type(node)
        if kind is list or kind is tuple:
            values: Any = node
            listed = True
        elif kind is dict or isinstance(node, Mapping):
            values = node.values()
            if not listed:
                try:
                    joined = "".join(node)  # one C-level pass over the keys
                    dotted = suspect = "." in joined
                    if fold_case and not dotted and joined != joined.lower():  # upper case
                        suspect = len(set(map(str.lower, node))) < len(node)
                except TypeError:  # a key that is not a str: look properly
                    dotted = suspect = True
                if suspect:
                    suspects.append(node)
                if dotted and depth + max(str(key).count(".") for key in node) > MAX_DEPTH:
                    raise too_deep(source)  # "a.b.c" at the top stands for 3 levels
        else:  # a set, a frozenset
            values = node
            listed = True
        if _SCALARS.issuperset(map(type, values)):
            continue  # at C speed: most containers hold scalars only
        if dotted:  # a key's dots count as levels: "a.b" stands for two
            _deep_keys(node, depth, listed, source, push)
            continue
        below = depth + 1
        for value in values:
            kind = type(value)
            if kind in _SCALARS:
                continue
            if kind is not dict and kind is not list:
                if isinstance(value, Secret):
                    value = value.reveal()
                if not isinstance(value, _CONTAINERS):
                    continue
            if below > MAX_DEPTH:
                raise too_deep(source)
            push((value, below, listed))
    for node in suspects:
        clash = _clash(node, fold_case=fold_case)
        if clash is not None:
            path = _path_to(data, node)
            first, second = ((*path, *spelling) for spelling in clash)
            problem = (
                f"the key {'.'.join(first)!r} is spelled two ways: "
                f"{_spelling(first)} and {_spelling(second)}; rename one"
            )
            raise ParseError(source, problem)


def _deep_keys(
    node: Mapping[Any, Any], depth: int, listed: bool, source: str, push: Callable[[Any], None]
) -> None:
    """``check_payload`` for a mapping with dotted keys: each key's dots are levels too."""
    for key, value in node.items():
        below = depth + 1 + (key if type(key) is str else str(key)).count(".")
        if isinstance(value, Secret):
            value = value.reveal()
        if type(value) not in _SCALARS and isinstance(value, _CONTAINERS):
            if below > MAX_DEPTH:
                raise too_deep(source)
            push((value, below, listed))


def _path_to(root: Mapping[Any, Any], target: Mapping[Any, Any]) -> tuple[str, ...]:
    """The keys leading from ``root`` to the mapping ``target`` (for an error message)."""
    stack: list[tuple[Mapping[Any, Any], tuple[str, ...]]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        for key, value in node.items():
            if isinstance(value, Secret):
                value = value.reveal()
            if isinstance(value, Mapping):
                stack.append((value, (*path, key if type(key) is str else str(key))))
    return ()


def _clash(
    node: Mapping[Any, Any], *, fold_case: bool
) -> tuple[tuple[str, ...], tuple[str, ...]] | None:
    """Two spellings (key paths from ``node``) of one dotted path, or None.

    Keys of ``node`` whose first segment differs cannot spell one path, so only keys sharing
    a first segment are followed, and only into mappings (lists are values, not paths). With
    ``fold_case``, keys that differ only in case spell one path too; where both give a
    mapping the mappings merge (as ``prepare`` merges them), so only their keys can clash.
    """
    groups: dict[str, list[Any]] = {}
    for key in node:
        first = (key if type(key) is str else str(key)).partition(".")[0]
        groups.setdefault(first.lower() if fold_case else first, []).append(key)
    for keys in groups.values():
        if len(keys) < 2:
            continue
        seen: dict[tuple[str, ...], tuple[tuple[str, ...], bool]] = {}
        stack: list[tuple[Any, tuple[str, ...]]] = [
            (node[key], (key if type(key) is str else str(key),)) for key in reversed(keys)
        ]
        while stack:  # depth first, in document order
            value, spelling = stack.pop()
            if isinstance(value, Secret):
                value = value.reveal()
            path = tuple(".".join(spelling).split("."))
            if fold_case:
                path = tuple(part.lower() for part in path)
            branch = isinstance(value, Mapping)
            known = seen.setdefault(path, (spelling, branch))
            if known[0] != spelling:
                other, other_branch = known
                merged = branch and other_branch and len(other) == len(spelling)
                if not merged or any(
                    a.lower() != b.lower() for a, b in zip(other, spelling, strict=True)
                ):
                    return other, spelling
            if branch:
                for key in reversed(list(value)):
                    name = key if type(key) is str else str(key)
                    stack.append((value[key], (*spelling, name)))
    return None


def _as_given(data: Any, folded: tuple[str, ...]) -> tuple[str, ...]:
    """``folded`` (lower-cased keys) as ``data`` spells it; in an environment section if not at
    the top; ``folded`` itself if it is not found."""
    tops = [data] + [v for v in data.values() if isinstance(v, Mapping)] if data else []
    for top in tops:
        node, given = top, []
        for part in folded:
            if not isinstance(node, Mapping):
                break
            key = next((k for k in node if str(k).lower() == part), MISSING)
            if key is MISSING:
                break
            given.append(str(key))
            node = node[key]
        else:
            return tuple(given)
    return folded


def _spelling(path: tuple[str, ...]) -> str:
    """``("a.b",)`` -> ``'a.b'``; ``("a", "b")`` -> ``'a' > 'b'``: how a path is keyed."""
    return " > ".join(repr(key) for key in path)
