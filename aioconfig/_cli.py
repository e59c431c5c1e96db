"""The ``aioconfig`` command: read, dump, explain, validate and watch a configuration from a shell.

```
aioconfig -s settings.toml -s env:MYAPP get db.host
aioconfig -s settings.toml --env production dump --format toml
aioconfig -s conf/app.conf:toml list db
aioconfig -s etcd://10.0.0.1:2379/myapp/ watch db
```

It opens the configuration exactly as a service would, with ``load()`` and the same sources and
options, so what it prints is what the service sees. One-shot commands open it in ``"manual"``
mode (one load, no background work); ``watch`` in the default mode. When every source is local
(files, ``env:``), a one-shot command first reads them in this thread, with no event loop, into
the snapshot the same pipeline would build (``_OneShot``: no anyio or asyncio to import, most of
the start-up); on any problem at all, or with ``--debug``, it opens the Config instead, so errors,
retries and logs are the engine's. Exit status: 0 success,
1 a validation failure or a key that is not there, 2 a usage or source error. Errors are one
line on stderr (a list only for validation failures); ``--debug`` adds the traceback.

``dump --format toml`` has its own writer (``to_toml``) rather than ``tomli-w``, decided in
issue 13 after reading tomli-w 1.2: a configuration holds nulls, which TOML cannot, and the dump
must leave them out and name each path, where tomli-w raises a ``TypeError`` naming only the
type; tomli-w also refuses sets, and writes a time offset with seconds that ``tomllib`` will not
read back, where this writer refuses it naming the key. A pre-pass doing all that would be most
of the writer, so it stays (property-tested to round-trip through ``tomllib``).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import math
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import orjson

from . import __version__, sources
from ._exceptions import ConfigError, InitialLoadError, KeyNotFound, LoadError, ValidationError
from ._history import HistoryEntry, render
from ._load import load, pipeline
from ._provenance import Provenance
from ._secrets import MASK, masked
from ._snapshot import Snapshot
from ._validators import Validator, load_validators
from .sources import Env, File, Payload, Source
from .sources._formats import FORMATS, format_from_path

if TYPE_CHECKING:  # the engine's: imported where a command needs it, never on the fast path
    import anyio
    import anyio.abc

    from ._config import Config
    from ._events import ChangeEvent

__all__ = ("NoTomlForm", "main", "parse_source", "to_toml")

OK, FAILED, USAGE = 0, 1, 2

DEFAULT_FILE = "settings.toml"
DEFAULT_VALIDATORS = "aioconfig_validators.toml"
ETCD_PORT = 2379

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_SOURCE_FORMS = (
    "a file path (PATH:FORMAT for a suffix that does not say it), env:PREFIX, http(s)://URL "
    "or etcd://HOST:PORT[,HOST:PORT...]/PREFIX/"
)

_RED, _GREEN, _YELLOW, _CYAN = "\x1b[31m", "\x1b[32m", "\x1b[33m", "\x1b[36m"
_RESET = "\x1b[0m"

_EXAMPLES = """\
examples:
  # db.port from ./settings.toml
  aioconfig get db.port
  # the file, then the MYAPP_* variables over it (MYAPP_DB__HOST sets db.host)
  aioconfig -s settings.toml -s env:MYAPP get db.host
  # the [production] section over [default], as TOML
  aioconfig -s settings.toml --env production dump --format toml
  # every key under db, its value (secrets masked) and where it comes from
  aioconfig list db
  # which source sets db.password (the value stays masked)
  aioconfig -s https://config.internal/app.json -s env:MYAPP explain db.password
  # every change under db, from a three-member etcd cluster
  aioconfig -s etcd://10.0.0.1:2379,10.0.0.2:2379,10.0.0.3:2379/myapp/ watch db
  # check ./settings.toml against ./aioconfig_validators.toml (in CI, say)
  aioconfig validate

sources (-s, repeatable; later ones win; with none, ./settings.toml):
  settings.toml, conf/app.yaml, .env   a file, in any format File reads
  conf/app.conf:toml                   a file in the format named after the colon (env, ini,
                                       json, toml, yaml)
  env:MYAPP                            MYAPP_* variables (MYAPP_DB__PORT is db.port)
  https://config.internal/app.json     a document over HTTP
  etcd://10.0.0.1:2379/myapp/          the keys under /myapp/ in etcd (port 2379 if left out)

exit status: 0 success; 1 a validation failure, or a key that is not set; 2 a usage or
source error.

Options before the command (-s, --env, --reveal, --debug, ...) may come after it too.
"""

_COMMAND_EXAMPLES = {
    "get": """\
Strings print as they are, anything else as JSON; secrets print as **********.
Exit status 1 when the key is not set.

examples:
  aioconfig get db.port                     # 5432
  aioconfig get db                          # {"host": "localhost", "password": "**********"}
  aioconfig -s settings.toml -s env:MYAPP get db.host
  export DB_PASSWORD="$(aioconfig get db.password --reveal)"
""",
    "list": """\
Every key holding a value, with the value (secrets masked unless --reveal) and where it comes
from: the kind of source and the exact origin (file and section, variable, URL, etcd key).
Exit status 1 when PREFIX names nothing.

examples:
  aioconfig list
  aioconfig -s settings.toml -s env:MYAPP list db
  aioconfig list --json | jq '.["db.host"].origin'
""",
    "dump": """\
Secrets print as ********** unless --reveal. TOML has no null: a key holding null is left
out, with a warning on stderr. JSON has no inf or nan: they are written as null, with a
warning. YAML needs PyYAML (pip install 'aioconfig[yaml]').

examples:
  aioconfig dump
  aioconfig --env production dump --format toml > production.toml
  aioconfig -s settings.toml -s env:MYAPP dump --format yaml --sort-keys
""",
    "explain": """\
Every source that sets the key, newest (winning) first; * marks the value served.
Exit status 1 when no source sets it.

examples:
  aioconfig -s settings.toml -s env:MYAPP explain db.host
  aioconfig --env production explain db.password --reveal
""",
    "validate": """\
The validators file has Dynaconf's layout (dynaconf_validators.toml), e.g.:

  [default]
  "db.port" = { must_exist = true, gte = 1024 }
  [production]
  "db.host" = { must_exist = true, ne = "localhost" }

Exit status 1 listing every failure (secret values masked), 2 when the file is missing or
malformed.

examples:
  aioconfig validate
  aioconfig -s settings.toml --env production validate -V checks/validators.toml
""",
    "watch": """\
Each change prints as a diff: "+ key: new" added, "- key: old" removed, "~ key: old -> new"
changed (values as JSON, secrets masked). A failed refresh prints a "!" line and the last
good configuration keeps serving. Ctrl-C or SIGTERM stops it, with exit status 0.

examples:
  aioconfig watch
  aioconfig -s etcd://127.0.0.1:2379/myapp/ watch db feature.new_checkout
  aioconfig -s https://config.internal/app.json watch --interval 5 --color never | tee log
""",
}


class _Usage(Exception):
    """A mistake in the command line that argparse cannot see: reported like its own errors."""

    def __init__(self, message: str, *, command: str | None = None) -> None:
        super().__init__(message)
        self.prog = "aioconfig" if command is None else f"aioconfig {command}"


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line: ``aioconfig: <problem> (see '... --help')``."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"aioconfig: {message} (see '{self.prog} --help')\n")


# -- the command line --------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    args.sources = [*args.sources, *getattr(args, "late_sources", ())]
    args.reveal = getattr(args, "reveal", False)
    _log_to_stderr(debug=args.debug, watching=args.command == "watch")
    try:
        try:
            code = _run(args)
        except _Usage as exc:
            parser.exit(USAGE, f"aioconfig: {exc} (see '{exc.prog} --help')\n")
        sys.stdout.flush()  # here, where a closed pipe can still be caught
    except KeyboardInterrupt:
        return OK if args.command == "watch" else 130
    except BrokenPipeError:
        return _after_broken_pipe()
    return code


def _log_to_stderr(*, debug: bool, watching: bool) -> None:
    """aioconfig's own log on stderr: warnings (a cache ignored, say), and all with --debug."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("aioconfig: %(levelname)s: %(message)s"))
    if watching and not debug:
        # watch prints every failed refresh itself, as a ! line on stdout.
        handler.addFilter(lambda record: not record.getMessage().startswith(_REFRESH_FAILED))
    if not debug:
        # The start-up's retries end in one error line (or a load): their news is for --debug.
        handler.addFilter(lambda record: not str(record.msg).startswith(_START_UP))
    handler.name = _LOG_HANDLER
    logger = logging.getLogger("aioconfig")
    for old in [h for h in logger.handlers if h.name == _LOG_HANDLER]:
        logger.removeHandler(old)  # main() run again in the same process
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.WARNING)
    logger.propagate = False


_REFRESH_FAILED = "configuration refresh failed:"
_START_UP = "start-up"
_LOG_HANDLER = "aioconfig command line"


def _parser() -> _Parser:
    parser = _Parser(
        prog="aioconfig",
        description="Read a configuration the way a service does: the same sources, layered "
        "the same way, secrets masked.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aioconfig {__version__}")
    _add_common(parser, top=True)
    _add_reveal(parser, top=True)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", required=True, parser_class=_Parser
    )

    def command(name: str, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(
            name,
            help=summary,
            description=summary[0].upper() + summary[1:] + ".",
            epilog=_COMMAND_EXAMPLES[name],
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _add_common(sub, top=False)
        return sub

    get = command("get", "print the value of one dotted key")
    get.add_argument("key", metavar="KEY", help="a dotted key, e.g. db.port")
    _add_reveal(get)

    listing = command("list", "print every key, its value and where it comes from")
    listing.add_argument(
        "prefix", metavar="PREFIX", nargs="?", help="only the keys under this section, e.g. db"
    )
    listing.add_argument(
        "--json", action="store_true", help="one JSON object: key -> value, kind, source, origin"
    )
    _add_reveal(listing)

    dump = command("dump", "print the whole configuration")
    dump.add_argument(
        "-f",
        "--format",
        choices=("json", "yaml", "toml"),
        default="json",
        help="the output format (default: json)",
    )
    dump.add_argument(
        "--sort-keys", action="store_true", help="sort keys (default: the order of the sources)"
    )
    _add_reveal(dump)

    explain = command("explain", "show every source that sets a key, and which one wins")
    explain.add_argument("key", metavar="KEY", help="a dotted key, e.g. db.port")
    _add_reveal(explain)

    validate = command("validate", "check the configuration against a validators file")
    validate.add_argument(
        "-V",
        "--validators",
        metavar="FILE",
        help=f"the validators (TOML, JSON or YAML; default: ./{DEFAULT_VALIDATORS})",
    )

    watch = command("watch", "print every change until interrupted")
    watch.add_argument(
        "keys", metavar="KEY", nargs="*", help="only changes to these keys and sections"
    )
    watch.add_argument(
        "--color",
        choices=("auto", "always", "never"),
        default="auto",
        help="colour the diff (default: auto, when stdout is a terminal and NO_COLOR is unset)",
    )
    watch.add_argument(
        "--interval",
        type=_positive_seconds,
        metavar="SECONDS",
        help="poll the sources this often (default: what the sources ask for, 30 s for most). "
        "etcd pushes its changes anyway, and so do files when watchfiles is installed "
        "(aioconfig[watch]); without it files are polled too",
    )
    _add_reveal(watch)
    return parser


def _add_common(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The source options, accepted before and after the command name.

    After it they must not reset what was given before it, so there they default to nothing
    at all (``SUPPRESS``), and sources collect in a list of their own.
    """

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("sources")
    group.add_argument(
        "-s",
        "--source",
        dest="sources" if top else "late_sources",
        action="append",
        metavar="SOURCE",
        default=default([]),
        help="where the configuration comes from, repeatable, later ones win: "
        f"{_SOURCE_FORMS} (default: ./{DEFAULT_FILE})",
    )
    group.add_argument(
        "--env",
        metavar="NAME",
        default=default(None),
        help="the environment section to use ([production]); turns sections on",
    )
    group.add_argument(
        "--environments",
        action="store_true",
        default=default(False),
        help="files have environment sections; the active one comes from --env-var",
    )
    group.add_argument(
        "--env-var",
        metavar="NAME",
        default=default(None),
        help="the variable naming the environment (default: <PREFIX>_ENV of the first "
        "env: source, else AIOCONFIG_ENV)",
    )
    group.add_argument(
        "--case-insensitive",
        action="store_true",
        default=default(False),
        help="keys match whatever their case",
    )
    group.add_argument(
        "--timeout",
        type=_seconds,
        metavar="SECONDS",
        default=default(5.0),
        help="how long to keep trying sources that do not answer (default: 5)",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks and aioconfig's debug log",
    )


def _add_reveal(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    # After the command it must not reset a --reveal given before it (see _add_common).
    parser.add_argument(
        "--reveal",
        action="store_true",
        default=False if top else argparse.SUPPRESS,
        help=f"show secrets instead of {MASK} (careful)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}")
    return value


def _positive_seconds(text: str) -> float:
    value = _seconds(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


# -- sources -----------------------------------------------------------------------------------


def parse_source(spec: str) -> Source:
    """The source a ``-s`` argument names; ``_Usage`` if it names none."""
    try:
        if spec.startswith("env:"):
            return Env(spec[len("env:") :])
        if spec.startswith(("http://", "https://")):
            return sources.Http(spec)  # aiohttp is imported here, when it is needed
        if spec.startswith("etcd://"):
            return _etcd(spec)
        if _SCHEME.match(spec):
            raise _Usage(f"unknown source {spec!r}: expected {_SOURCE_FORMS}")
        if not spec:
            raise _Usage(f"an empty source: expected {_SOURCE_FORMS}")
        path, colon, format = spec.rpartition(":")
        if colon and path and format in FORMATS:
            return File(path, format=format)
        if colon and path and format.isalpha() and not os.path.exists(spec):
            raise _Usage(f"source {spec!r}: unknown format {format!r}: {', '.join(FORMATS)}")
        if format_from_path(spec) is None:
            raise _Usage(
                f"cannot tell the format of {spec!r} from its suffix: name it, as in "
                f"-s {spec}:toml (one of: {', '.join(FORMATS)})"
            )
        return File(spec)
    except (TypeError, ValueError) as exc:
        raise _Usage(f"source {spec!r}: {exc}") from None


def _etcd(spec: str) -> sources.Etcd:
    hosts, slash, path = spec[len("etcd://") :].partition("/")
    if not slash:
        raise _Usage(f"source {spec!r}: etcd needs a prefix: etcd://HOST:PORT/PREFIX/")
    endpoints = []
    for host in hosts.split(","):
        if not host:
            raise _Usage(f"source {spec!r}: an empty etcd host")
        if not re.search(r":[0-9]+\Z", host):
            host = f"{host}:{ETCD_PORT}"
        endpoints.append(f"http://{host}")
    return sources.Etcd(endpoints, prefix="/" + path)


def _sources(specs: Sequence[str]) -> list[Source]:
    if not specs:
        if not os.path.isfile(DEFAULT_FILE):
            raise _Usage(f"no sources: pass -s SOURCE, or run where {DEFAULT_FILE} is")
        specs = [DEFAULT_FILE]
    return [parse_source(spec) for spec in specs]


# -- running a command -------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    sources = _sources(args.sources)
    command: str = args.command
    if command == "dump" and args.format == "yaml":
        _yaml()  # missing PyYAML is a usage error, found before any source is read
    try:
        args.loaded_validators = _validators(args.validators) if command == "validate" else []
        read = _read_now(sources, args)
        if read is not None:
            return _answer(read, args)
        config = _open(sources, args)
        import anyio  # the engine's event loop: here, so the fast path never imports it

        return anyio.run(_main, config, args)
    except (_Usage, BrokenPipeError):
        raise
    except Exception as exc:
        return _report(exc, debug=args.debug)


def _open(sources: Sequence[Source], args: argparse.Namespace) -> Config:
    try:
        return load(
            *sources,
            refresh_interval=getattr(args, "interval", None),
            max_init_wait=args.timeout,
            mode="auto" if args.command == "watch" else "manual",
            **_shape(args),
        )
    except (TypeError, ValueError) as exc:
        raise _Usage(str(exc)) from None


def _shape(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``load()`` that shape the data, as the command line gives them."""
    return {
        "env": args.env,
        "environments": args.environments or args.env is not None,
        "env_var": args.env_var,
        "case_sensitive": not args.case_insensitive,
        "validators": args.loaded_validators,
    }


# -- the fast path -----------------------------------------------------------------------------

#: Whether one-shot commands over local sources may skip the engine (tests turn it off to
#: compare the two).
_FAST = True


class _View(Protocol):
    """What a one-shot command reads: an open Config, or a :class:`_OneShot`."""

    @property
    def snapshot(self) -> Snapshot: ...

    def history(self, key: str, *, reveal: bool = False) -> list[HistoryEntry]: ...

    def explain(self, key: str, *, reveal: bool = False) -> str: ...


class _OneShot:
    """The first snapshot of local sources, read in this thread: what a ``"manual"`` Config
    serves once open, built by the same pipeline (``_load.pipeline``) from the same payloads,
    with the same provenance; no event loop, so neither anyio nor asyncio is imported."""

    def __init__(self, sources: Sequence[Source], args: argparse.Namespace) -> None:
        shape = pipeline(sources, **_shape(args))
        payloads: dict[int, Payload] = {}
        for index, source in enumerate(sources):
            payload = source._load_blocking(None)
            if not isinstance(payload, Payload):  # a network source: the engine's work
                raise _NeedsEngine(source.name)
            payloads[index] = payload
        candidate = shape.candidate(payloads, None)
        assert candidate.snapshot is not None  # a first candidate always has one
        shape.commit(payloads, candidate)
        self.snapshot: Snapshot = candidate.snapshot
        self._provenance = Provenance(shape)
        self._provenance.note(candidate.keys, self.snapshot)

    def history(self, key: str, *, reveal: bool = False) -> list[HistoryEntry]:
        return self._provenance.history(self.snapshot, key, reveal=reveal)

    def explain(self, key: str, *, reveal: bool = False) -> str:
        return render(key, self.history(key, reveal=reveal))


class _NeedsEngine(Exception):
    """A source that reads only on the event loop."""


def _read_now(sources: Sequence[Source], args: argparse.Namespace) -> _OneShot | None:
    """The configuration read without the engine, or None when the engine must answer:
    ``watch``, ``--debug``, a network source, or any problem at all, which the engine then
    meets again and reports as it always has (its retries, its logs, its exit status)."""
    if not _FAST or args.command == "watch" or args.debug:
        return None
    try:
        return _OneShot(sources, args)
    except Exception:
        return None


def _answer(view: _View, args: argparse.Namespace) -> int:
    """Run a one-shot command over ``view``; its exit status."""
    try:
        return _ONE_SHOT[args.command](view, args)
    except BrokenPipeError:
        return _after_broken_pipe()
    except Exception as exc:
        return _report(exc, debug=args.debug)


def _validators(path: str | None) -> list[Validator]:
    chosen = DEFAULT_VALIDATORS if path is None else path
    if not os.path.isfile(chosen):
        if path is None:
            raise _Usage(f"no {DEFAULT_VALIDATORS} here: pass -V FILE", command="validate")
        raise _Usage(f"no validators file {path!r}", command="validate")
    try:
        return load_validators(chosen)
    except TypeError as exc:  # a rule the Validator refuses (is_type_of="integer")
        raise ValueError(f"{chosen}: {exc}") from exc


async def _main(config: Config, args: argparse.Namespace) -> int:
    """Run the command; SIGINT or SIGTERM cancels it cleanly, even in the middle of a load.

    Interrupted, ``watch`` exits 0 (it is how it is meant to end), the others 128 + the signal.
    """
    import anyio

    stopped: list[int] = []
    code = OK
    async with anyio.create_task_group() as tg:
        # Signals are taken before the first load, so Ctrl-C during a slow start is clean too.
        await tg.start(_stop_on_signals, tg.cancel_scope, stopped)
        try:
            if args.command == "watch":
                await _watch(config, args)
            else:
                async with config:
                    code = _answer(config, args)
        except BrokenPipeError:
            code = _after_broken_pipe()
        except Exception as exc:
            code = _report(exc, debug=args.debug)
        tg.cancel_scope.cancel()
    if stopped and args.command != "watch":
        return 128 + stopped[0]
    return code


def _get(config: _View, args: argparse.Namespace) -> int:
    snapshot = config.snapshot
    key: str = args.key
    if key not in snapshot:
        raise _Missing(key, snapshot)
    value = _masked(snapshot, snapshot[key], key, reveal=args.reveal)
    print(value if isinstance(value, str) else _json(value))
    return OK


def _dump(config: _View, args: argparse.Namespace) -> int:
    snapshot = config.snapshot
    tree = _masked(snapshot, snapshot.to_dict(), "", reveal=args.reveal)
    if args.sort_keys:
        tree = _sorted(tree)
    text = _render(tree, args.format)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return OK


def _explain(config: _View, args: argparse.Namespace) -> int:
    if not config.history(args.key):
        print(f"{args.key}: not set by any source{_did_you_mean(args.key, config.snapshot)}")
        return FAILED
    print(config.explain(args.key, reveal=args.reveal))
    return OK


def _list(config: _View, args: argparse.Namespace) -> int:
    snapshot = config.snapshot
    prefix: str | None = args.prefix
    below = f"{prefix}."
    keys = [
        key
        for key in snapshot.keys_flat()
        if (prefix is None or key == prefix or key.startswith(below))
        # sections are not rows of their own: their keys are (an empty one is a value)
        and not (isinstance(value := snapshot[key], Mapping) and value)
    ]
    if prefix is not None and not keys:
        raise _Missing(prefix, snapshot)
    rows: dict[str, dict[str, Any]] = {}
    for key in keys:
        serving = next((entry for entry in config.history(key) if entry.serving), None)
        rows[key] = {
            "value": _masked(snapshot, snapshot[key], key, reveal=args.reveal),
            "kind": None if serving is None else serving.kind,
            "source": None if serving is None else serving.source,
            "origin": None if serving is None else serving.origin,
        }
    if args.json:
        print(_json(rows))
        return OK
    table = [("KEY", "VALUE", "KIND", "ORIGIN")]
    for key, row in rows.items():
        value = row["value"]
        shown = MASK if value is MASK else _json(value, pretty=False)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        table.append((key, shown, row["kind"] or "", row["origin"] or ""))
    widths = [max(len(line[i]) for line in table) for i in range(3)]
    for line in table:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        print("  ".join([*cells, line[3]]).rstrip())
    return OK


class _Missing(KeyNotFound):
    """A key that is not there, with the keys it may have been meant to be."""

    def __init__(self, key: str, snapshot: Snapshot) -> None:
        super().__init__(key)
        self.hint = _did_you_mean(key, snapshot)

    def __str__(self) -> str:
        return super().__str__() + self.hint


def _did_you_mean(key: str, snapshot: Snapshot) -> str:
    """`` (did you mean 'db.host'?)`` for the keys closest to ``key``, or ``""``."""
    import difflib  # only a mistyped key pays for it

    close = difflib.get_close_matches(key, list(snapshot.keys_flat()), n=3, cutoff=0.75)
    if not close:
        return ""
    return f" (did you mean {' or '.join(map(repr, close))}?)"


def _validate(config: _View, args: argparse.Namespace) -> int:
    # Getting here means the validators passed: load() refuses a snapshot that fails them.
    count = len(args.loaded_validators)
    print(f"valid: {count} validator{'' if count == 1 else 's'} passed")
    return OK


_ONE_SHOT: dict[str, Callable[[_View, argparse.Namespace], int]] = {
    "get": _get,
    "list": _list,
    "dump": _dump,
    "explain": _explain,
    "validate": _validate,
}


# -- errors ------------------------------------------------------------------------------------


def _report(exc: BaseException, *, debug: bool) -> int:
    """Say what went wrong on stderr, in one line where possible; the exit status."""
    if debug:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    code, message = _describe(exc, debug=debug)
    print(f"aioconfig: {message}", file=sys.stderr, flush=True)
    return code


def _describe(exc: BaseException, *, debug: bool) -> tuple[int, str]:
    if isinstance(exc, InitialLoadError):
        problems = _problems(exc)
        if any(valid for valid, _ in problems):  # a list, nested failures and all, flattened
            code = FAILED if all(valid for valid, _ in problems) else USAGE
            return code, _listed(problems)
        message = "; ".join(_describe(e, debug=debug)[1] for e in exc.errors)
        if exc.timeout is not None:
            message += f" (gave up after --timeout {exc.timeout:g}s)"
        return USAGE, message
    if isinstance(exc, ValidationError):
        return FAILED, _listed(_problems(exc))
    if isinstance(exc, KeyNotFound):
        return FAILED, str(exc)
    if isinstance(exc, ConfigError):
        return USAGE, str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return USAGE, f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, ValueError):
        return USAGE, str(exc)
    if debug:  # the traceback above says it all
        return USAGE, f"{type(exc).__name__}: {exc}"
    # By type only: an unexpected exception's text may quote anything, secrets included.
    return USAGE, f"{type(exc).__name__} (--debug shows the traceback)"


def _problems(exc: BaseException) -> list[tuple[bool, str]]:
    """Every problem inside ``exc`` (a LoadError's errors, a ValidationError's failures, nested
    to any depth) as ``(is a validation failure, sentence)``, each once, in order."""
    if isinstance(exc, LoadError):
        found = [problem for error in exc.errors for problem in _problems(error)]
        return list(dict.fromkeys(found))
    if isinstance(exc, ValidationError):
        if exc.details:
            return [
                (True, d.message if d.message.startswith(d.key) else f"{d.key}: {d.message}")
                for d in exc.details
            ]
        # Without details (a model's or validate='s message): its own lines, headers left out.
        lines = [line.strip().removeprefix("- ") for line in str(exc).splitlines()]
        return [(True, line) for line in lines if line and not line.endswith(":")] or [
            (True, str(exc))
        ]
    return [(False, _describe(exc, debug=False)[1])]


def _listed(problems: list[tuple[bool, str]]) -> str:
    """Problems as one flat list under one header (``3 validation failures:``)."""
    count = len(problems)
    noun = "validation failure" if all(valid for valid, _ in problems) else "problem"
    lines = [f"{count} {noun}{'' if count == 1 else 's'}:"]
    lines += [f"  - {text}" for _, text in problems]
    return "\n".join(lines)


def _after_broken_pipe() -> int:
    # The reader went away (``aioconfig dump | head``): not an error. Python would complain
    # again when it flushes stdout at exit, so stdout now points at /dev/null.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return OK


# -- watch -------------------------------------------------------------------------------------


async def _stop_on_signals(
    scope: anyio.CancelScope, stopped: list[int], *, task_status: anyio.abc.TaskStatus[None]
) -> None:
    import signal

    import anyio

    with contextlib.ExitStack() as stack:
        try:
            signals = stack.enter_context(anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM))
        except NotImplementedError:  # Windows: Ctrl-C comes as KeyboardInterrupt (see main)
            task_status.started()
            return
        task_status.started()
        async for signum in signals:
            stopped.append(signum)
            scope.cancel()
            return


async def _watch(config: Config, args: argparse.Namespace) -> None:
    colour = args.color == "always" or (
        args.color == "auto" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    )
    async with config, config.changes(args.keys or None) as events:
        print(f"watching version {config.version} (Ctrl-C to stop)", flush=True)
        async for event in events:
            for line in _event_lines(event, reveal=args.reveal, colour=colour):
                print(line)
            sys.stdout.flush()


def _event_lines(event: ChangeEvent, *, reveal: bool, colour: bool) -> list[str]:
    def paint(code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    if event.error is not None:
        problems = _problems(event.error)
        if len(problems) == 1:
            problem = problems[0][1]
        else:
            problem = _listed(problems).replace("\n", "\n  ")
        text = f"! refresh failed, still serving version {event.new.version}: {problem}"
        return [paint(_YELLOW, text)]
    old, new = event.old, event.new

    def secret(key: str) -> bool:
        return old.is_secret(key) or new.is_secret(key)

    def shown(snapshot: Snapshot, key: str) -> str:
        value = (
            masked(snapshot[key], _never, key, urls=False)
            if reveal
            else masked(snapshot[key], secret, key)
        )
        return MASK if value is MASK else _json(value, pretty=False)

    lines = []
    for key in sorted(event.keys):
        before, after = key in old, key in new
        if before and after:
            if old[key] != new[key]:
                lines.append(paint(_CYAN, f"~ {key}: {shown(old, key)} -> {shown(new, key)}"))
        elif after:
            lines.append(paint(_GREEN, f"+ {key}: {shown(new, key)}"))
        elif before:
            lines.append(paint(_RED, f"- {key}: {shown(old, key)}"))
    if event.flags:
        lines.append(f"* flags: {', '.join(sorted(event.flags))}")
    if not lines:
        return []
    when = time.strftime("%H:%M:%S", time.localtime(new.created_at))
    return [f"version {new.version} at {when}", *lines]


# -- output ------------------------------------------------------------------------------------


def _masked(snapshot: Snapshot, value: Any, key: str, *, reveal: bool) -> Any:
    """``value`` (at ``key``) as plain dicts and lists; its secrets masked unless ``reveal``."""
    if reveal:
        return masked(value, _never, key, urls=False)
    return masked(value, snapshot.is_secret, key)


def _never(key: str) -> bool:
    return False


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, list):
        return [_sorted(item) for item in value]
    return value


def _render(tree: dict[str, Any], format: str) -> str:
    if format == "toml":
        text, dropped = to_toml(tree)
        if dropped:
            _warn(f"TOML has no null; left out: {', '.join(dropped)}")
        return text
    if format == "yaml":
        result: str = _yaml().safe_dump(
            tree, sort_keys=False, allow_unicode=True, default_flow_style=False
        )
        return result
    return _json(tree)


def _json(value: Any, *, pretty: bool = True) -> str:
    if _has_non_finite(value):
        _warn("JSON has no inf or nan; written as null (--format toml or yaml keeps them)")
    option = orjson.OPT_NON_STR_KEYS | (orjson.OPT_INDENT_2 if pretty else 0)
    try:
        return orjson.dumps(value, default=_json_default, option=option).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits: the standard library's encoder
        import json

        return json.dumps(
            _finite_or_null(value),
            default=_json_default,
            indent=2 if pretty else None,
            ensure_ascii=False,
            allow_nan=False,
        )


def _finite_or_null(value: Any) -> Any:
    """``value`` with inf and nan as None, as orjson writes them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(key): _finite_or_null(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_null(item) for item in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    if isinstance(value, Mapping):
        return dict(value)
    return str(value)


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_has_non_finite(item) for item in value)
    return False


def _warn(message: str) -> None:
    print(f"aioconfig: warning: {message}", file=sys.stderr)


def _yaml() -> Any:
    try:
        import yaml
    except ImportError:
        raise _Usage(
            "--format yaml needs PyYAML: pip install 'aioconfig[yaml]'", command="dump"
        ) from None
    return yaml


# -- TOML --------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
# Basic strings: the quote, the backslash and every control character are escaped (TOML 1.0).
_TOML_ESCAPES = {code: f"\\u{code:04x}" for code in (*range(0x20), 0x7F)} | {
    ord('"'): '\\"',
    ord("\\"): "\\\\",
    ord("\b"): "\\b",
    ord("\t"): "\\t",
    ord("\n"): "\\n",
    ord("\f"): "\\f",
    ord("\r"): "\\r",
}

_Path = tuple[str | int, ...]


class NoTomlForm(ValueError):
    """A value TOML cannot hold (a time with a UTC offset, an object of an unknown type)."""

    def __init__(self, where: _Path, value: object) -> None:
        super().__init__(
            f"TOML has no form for {type(value).__name__} (at {_where(where)}); "
            "use --format json or yaml"
        )


def to_toml(data: Mapping[str, Any]) -> tuple[str, list[str]]:
    """``data`` as a TOML document, and the paths of the nulls left out (TOML has no null).

    Mappings become tables (``[db]``, ``[db.pool]``), mappings inside arrays inline tables;
    strings are basic strings, escaped as TOML 1.0 says; floats keep ``inf`` and ``nan``;
    dates and times keep their type. ``tomllib.loads`` gives ``data`` back, nulls aside.
    """
    writer = _TomlWriter()
    writer.table(data, ())
    return "\n".join(writer.lines) + "\n" if writer.lines else "", writer.dropped


class _TomlWriter:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.dropped: list[str] = []

    def table(self, table: Mapping[Any, Any], path: tuple[str, ...]) -> None:
        # A table's own keys first: after a [header] every key belongs to that header.
        own: list[str] = []
        tables: list[tuple[tuple[str, ...], Mapping[Any, Any]]] = []
        for name, value in table.items():
            where = (*path, str(name))
            if value is None:
                self.dropped.append(_where(where))
            elif isinstance(value, Mapping):
                tables.append((where, value))
            else:
                own.append(f"{_toml_key(str(name))} = {self.value(value, where)}")
        # [a] is implied by [a.b]; it is written only when it holds keys or nothing at all.
        if path and (own or not tables):
            if self.lines:
                self.lines.append("")
            self.lines.append(f"[{'.'.join(map(_toml_key, path))}]")
        self.lines.extend(own)
        for where, value in tables:
            self.table(value, where)

    def value(self, value: Any, where: _Path) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            if math.isnan(value):
                return "nan"
            if math.isinf(value):
                return "inf" if value > 0 else "-inf"
            return repr(value)  # always has a "." or an exponent, as TOML wants
        if isinstance(value, str):
            return _toml_string(value)
        if isinstance(value, dt.datetime):
            offset = value.utcoffset()
            if offset is not None and offset.total_seconds() % 60:
                raise NoTomlForm(where, value)  # TOML offsets are whole minutes
            return value.isoformat()
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, dt.time):
            if value.tzinfo is not None:
                raise NoTomlForm(where, value)
            return value.isoformat()
        if isinstance(value, Mapping):
            items = []
            for name, item in value.items():
                inner = (*where, str(name))
                if item is None:
                    self.dropped.append(_where(inner))
                else:
                    items.append(f"{_toml_key(str(name))} = {self.value(item, inner)}")
            return "{" + ", ".join(items) + "}"
        if isinstance(value, (list, tuple, set, frozenset)):
            if isinstance(value, (set, frozenset)):
                value = sorted(value, key=repr)
            items = []
            for index, item in enumerate(value):
                if item is None:
                    self.dropped.append(_where((*where, index)))
                else:
                    items.append(self.value(item, (*where, index)))
            return "[" + ", ".join(items) + "]"
        raise NoTomlForm(where, value)


def _toml_key(name: str) -> str:
    return name if _BARE_KEY.fullmatch(name) else _toml_string(name)


def _toml_string(text: str) -> str:
    return '"' + text.translate(_TOML_ESCAPES) + '"'


def _where(path: _Path) -> str:
    """``("servers", 1, "host")`` as ``servers[1].host``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text
