"""Dynaconf's constructor, spelled as Dynaconf users know it, returning an aioconfig Config.

```python
from aioconfig.dynaconf import Validator, load

settings = await load(                      # or: async with load(...) as settings:
    settings_files=["settings.toml", ".secrets.toml"],
    envvar_prefix="MYAPP",
    environments=True,
    env_switcher="MYAPP_ENV",
    load_dotenv=True,
    validators=[Validator("db.port", gte=1024)],
)
settings["db.port"]
```

What each keyword becomes: ``settings_files`` (a list, or one string split on ``,`` and ``;``;
globs allowed) are files read in order, a missing one skipped as Dynaconf skips it, each
followed by its ``<name>.local.<ext>`` when there is one; then ``secrets``; then
``Env(envvar_prefix)``, fed by the ``.env`` file with ``load_dotenv=True``. Keys are read
case-insensitively, as Dynaconf reads them. UPPER-CASE keywords that are not options are
settings, the lowest layer (``load(DEBUG=False)``). ``options`` of :func:`aioconfig.load`
(``refresh_interval``, ``mode``, ``cache``...) pass through.

A misspelled keyword is a ``TypeError`` (Dynaconf would take it as a setting); a Dynaconf
option aioconfig does not have is a ``TypeError`` saying so and why.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Iterable, Sequence
from typing import Any

from ._config import Config
from ._load import load as _load
from ._validators import Validator
from .sources._base import Source
from .sources._env import Env

__all__ = ("Validator", "load")

#: Dynaconf options with no counterpart here, and what to do instead.
UNSUPPORTED: dict[str, str] = {
    "auto_cast": "casts (@int, @json, ...) always apply",
    "commentjson_enabled": "JSON files are strict JSON (orjson)",
    "core_loaders": "sources are chosen by the arguments given",
    "default_env": "the [default] section is always named default",
    "dotenv_override": "the real environment always wins over the .env file",
    "dotenv_verbose": "a missing .env file is skipped silently",
    "dotted_lookup": "dotted keys are always looked up",
    "encoding": "files are read as UTF-8",
    "envvar": "pass settings_files= instead of naming a variable that holds them",
    "force_env": "pass env=",
    "fresh_vars": "every key is fresh: the whole configuration is refreshed in the background",
    "ignore_unknown_envvars": "every MYAPP_ variable is read",
    "includes": "list the files in settings_files=",
    "index_separator": "lists are read whole",
    "instance": "one Config per load()",
    "loaders": "pass aioconfig sources to aioconfig.load() instead",
    "main_env": "the [global] section is always named global",
    "preload": "list the files first in settings_files=",
    "redis": "no Redis source; see the README's sources",
    "redis_enabled": "no Redis source; see the README's sources",
    "redis_url": "no Redis source; see the README's sources",
    "silent_errors": "errors are raised, named by source",
    "skip_files": "list only the files to read",
    "sysenv_fallback": "variables are read under envvar_prefix only",
    "validate_on_update": "validators run on every candidate, before the swap",
    "validate_only": "pass only the validators to run",
    "validate_exclude": "pass only the validators to run",
    "vault": "no Vault source; see the README's sources",
    "vault_enabled": "no Vault source; see the README's sources",
    "yaml_loader": "YAML is read with the safe loader only",
}

_OWN = (
    "settings_files",
    "settings_file",
    "envvar_prefix",
    "environments",
    "env_switcher",
    "env",
    "load_dotenv",
    "dotenv_path",
    "validators",
    "root_path",
    "secrets",
    "nested_separator",
    "merge_enabled",
    "lowercase_read",
    "apply_default_on_none",
)


def load(
    *,
    settings_files: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    settings_file: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
    envvar_prefix: str | bool = "DYNACONF",
    environments: bool | Sequence[str] = False,
    env_switcher: str = "ENV_FOR_DYNACONF",
    env: str | None = None,
    load_dotenv: bool = False,
    dotenv_path: str | os.PathLike[str] = ".env",
    validators: Iterable[Validator] = (),
    root_path: str | os.PathLike[str] | None = None,
    secrets: str | os.PathLike[str] | None = None,
    nested_separator: str = "__",
    merge_enabled: bool = False,
    lowercase_read: bool = True,
    apply_default_on_none: bool = False,
    **options: Any,
) -> Config:
    """``Dynaconf(...)``'s keywords, as an aioconfig :class:`~aioconfig.Config`.

    ``await`` it or ``async with`` it, as ``aioconfig.load()``. See the module docstring.
    """
    settings = {name: value for name, value in options.items() if name.isupper()}
    options = {name: value for name, value in options.items() if not name.isupper()}
    _check_names(options)
    if apply_default_on_none:
        raise TypeError(
            "apply_default_on_none= is not supported by aioconfig.dynaconf.load(): "
            "give it to each Validator(..., apply_default_on_none=True)"
        )
    if not isinstance(merge_enabled, bool) or not isinstance(lowercase_read, bool):
        raise TypeError("merge_enabled and lowercase_read must be True or False")
    # merge_enabled: aioconfig always deep-merges mappings (Dynaconf's merge_enabled=True);
    # lowercase_read: keys are always read case-insensitively here, so both are accepted.
    if envvar_prefix is False or envvar_prefix == "":
        raise TypeError(
            "envvar_prefix=False (every environment variable) is not supported: "
            "name a prefix, as in envvar_prefix='MYAPP'"
        )
    if not isinstance(envvar_prefix, str):
        raise TypeError(f"envvar_prefix must be a string, got {envvar_prefix!r}")
    if settings_files is not None and settings_file is not None:
        raise TypeError("give settings_files= or settings_file=, not both")
    root = None if root_path is None else os.fspath(root_path)
    sources: list[Source] = []
    if settings:
        from .sources._static import Static

        sources.append(Static(settings, name="keywords"))
    paths = _paths(settings_files if settings_files is not None else settings_file)
    locals_: list[Source] = []
    for path in paths:
        sources.append(_file(path, root))
        local = _local_name(path)
        if local is not None:
            locals_.append(_file(local, root))
    sources.extend(locals_)
    if secrets is not None:
        sources.append(_file(os.fspath(secrets), root))
    dotenv = None
    if load_dotenv:
        dotenv = os.fspath(dotenv_path)
        if root is not None and not os.path.isabs(dotenv):
            dotenv = os.path.join(root, dotenv)
    sources.append(Env(envvar_prefix, nested_separator=nested_separator, dotenv=dotenv))
    if env is None and dotenv is not None and env_switcher not in os.environ:
        env = _from_dotenv(dotenv, env_switcher)
    options.setdefault("case_sensitive", False)
    return _load(
        *sources,
        environments=bool(environments),
        env=env,
        env_var=env_switcher,
        validators=validators,
        **options,
    )


def _check_names(options: dict[str, Any]) -> None:
    known = set(inspect.signature(_load).parameters) - {"sources"}
    for name in options:
        if name in UNSUPPORTED or name.lower() in UNSUPPORTED:
            reason = UNSUPPORTED[name.lower()]
            raise TypeError(
                f"{name}= is a Dynaconf option aioconfig.dynaconf.load() does not support: {reason}"
            )
    unknown = sorted(set(options) - known)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, [*_OWN, *known], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"load() got an unexpected keyword argument {name!r}{hint}")


def _paths(files: Any) -> list[str]:
    if files is None:
        return []
    if isinstance(files, (str, os.PathLike)):
        text = os.fspath(files)
        parts = text.replace(";", ",").split(",") if isinstance(text, str) else [text]
        return [part.strip() for part in parts if part.strip()]
    return [os.fspath(item) for item in files]


def _file(path: str, root: str | None) -> Source:
    from .sources._file import File
    from .sources._glob import Glob, has_magic

    if root is not None and not os.path.isabs(path):
        path = os.path.join(root, path)
    if has_magic(path):
        return Glob(path)
    # Dynaconf skips a settings file that does not exist
    return File(path, optional=True)


def _local_name(path: str) -> str | None:
    """``settings.toml`` -> ``settings.local.toml`` (Dynaconf reads it after the others)."""
    from .sources._glob import has_magic

    base, suffix = os.path.splitext(path)
    if not suffix or has_magic(path) or base.endswith(".local"):
        return None
    return f"{base}.local{suffix}"


def _from_dotenv(path: str, name: str) -> str | None:
    """The environment switch from the ``.env`` file, when the environment lacks it."""
    if not os.path.isfile(path):
        return None
    try:
        from dotenv import dotenv_values
    except ImportError:
        return None  # Env reports the missing extra when it loads
    value = dotenv_values(path).get(name)
    return value or None
