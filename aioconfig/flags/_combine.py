"""Flags from several sources made into one FlagConfig, and what changed between two of them.

Layering follows ConfigCat's flag overrides. Every source's flags have a *behaviour*:

* ``None`` (a remote source such as ``ConfigCat``): layered in source order, a later source's
  setting replacing an earlier one with the same key; then the overrides, in source order,
  wherever they stand among the sources:
* ``"local_over_remote"``: the override's settings replace the remote ones with the same key;
* ``"remote_over_local"``: the override's settings fill in keys the remote flags lack;
* ``"local_only"``: the remote flags are ignored altogether.

A prerequisite is looked up in the combined flags, as the SDK does: a remote flag whose
prerequisite is overridden locally depends on the local one. Settings with prerequisites are
therefore copied and linked again in a combination; the parsed documents are never changed.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Literal

from ._model import FlagConfig, PrerequisiteCondition, Setting, _link

__all__ = ("EMPTY", "Behaviour", "changed_keys", "combine")

Behaviour = Literal["local_only", "local_over_remote", "remote_over_local"]

#: No flags at all: what a snapshot holds when no source provides any.
EMPTY = FlagConfig({}, "", "<no flags>")


def combine(layers: Sequence[tuple[FlagConfig, Behaviour | None]]) -> FlagConfig:
    """One FlagConfig from ``(flags, behaviour)`` pairs in source order (see the module doc)."""
    if not layers:
        return EMPTY
    if len(layers) == 1:
        return layers[0][0]  # alone, every behaviour means "these flags as they are"
    local_only = any(behaviour == "local_only" for _, behaviour in layers)
    settings: dict[str, Setting] = {}
    if not local_only:
        for flags, behaviour in layers:
            if behaviour is None:
                settings.update(flags._settings)
    # Then the overrides, whatever their place among the sources.
    for flags, behaviour in layers:
        if behaviour == "remote_over_local":
            settings = {**flags._settings, **settings}
        elif behaviour is not None:
            settings.update(flags._settings)
    sources = ", ".join(flags.source for flags, _ in layers)
    return FlagConfig(_relinked(settings), layers[-1][0].salt, sources)


def _relinked(settings: dict[str, Setting]) -> dict[str, Setting]:
    """``settings`` with every prerequisite resolved against them (copies where needed)."""
    combined = dict(settings)
    conditions: list[PrerequisiteCondition] = []
    for key, setting in settings.items():
        if not _prerequisites(setting):
            continue
        rules = []
        for rule in setting.rules:
            copied = tuple(
                copy.copy(c) if isinstance(c, PrerequisiteCondition) else c for c in rule.conditions
            )
            conditions.extend(c for c in copied if isinstance(c, PrerequisiteCondition))
            new_rule = copy.copy(rule)
            new_rule.conditions = copied
            rules.append(new_rule)
        relinked = copy.copy(setting)
        relinked.rules = tuple(rules)
        relinked.quick = None  # compiled against the old prerequisites, if at all
        combined[key] = relinked
    for condition in conditions:
        condition.target = None
        condition.error = None
        condition.comparison = None
        _link(condition, combined)
    return combined


def _prerequisites(setting: Setting) -> list[str]:
    return [
        condition.key
        for rule in setting.rules
        for condition in rule.conditions
        if isinstance(condition, PrerequisiteCondition) and condition.key is not None
    ]


def changed_keys(old: FlagConfig, new: FlagConfig) -> frozenset[str]:
    """The keys whose evaluation may differ between ``old`` and ``new``.

    A key added, removed or changed (its JSON, or the salt or segments its rules use), and every
    flag that has a changed flag among its prerequisites, directly or through others.
    """
    if old is new:
        return frozenset()
    before, after = old._settings, new._settings
    changed = set(before.keys() ^ after.keys())
    for key in before.keys() & after.keys():
        if before[key].raw != after[key].raw:
            changed.add(key)
    if changed:
        dependents = {key: _prerequisites(s) for key, s in after.items() if s.rules}
        growing = True
        while growing:
            growing = False
            for key, prerequisites in dependents.items():
                if key not in changed and any(p in changed for p in prerequisites):
                    changed.add(key)
                    growing = True
    return frozenset(changed)
