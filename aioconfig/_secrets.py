"""Which values are secret, and how a value is shown without giving one away.

Pure: no I/O. Secrecy is decided where values are *shown* (messages, history, the command
line, the cache file), never where they are read: ``config.get`` stays one dict lookup.

A value is secret when

* it was given as :class:`Secret`, or lies under a key given so;
* its key, or a section above it, is named like a secret (the **word rule**, below, or the
  fnmatch patterns given as ``load(secret_patterns=...)``, which replace the rule);
* it was built by ``@format`` from a secret (``"postgres://app:{db.password}@{db.host}/app"``):
  see :func:`tainted`.

Whatever the key, credentials written into a string are masked wherever it is shown (and the
string is left out of the cache file):

* a URL's userinfo: ``postgres://app:hunter2@db/app`` shows as
  ``postgres://app:**********@db/app`` (a userinfo without a password, ``https://ghp_x@host``,
  shows as ``https://**********@host``);
* a query parameter named like a secret by the word rule, or ``sig`` / ``signature`` (Azure
  SAS, S3 and OAuth 1 signatures): ``https://x/?access_token=abc&sig=def`` shows as
  ``https://x/?access_token=**********&sig=**********``; the value ends at ``&``, ``#``,
  ``;``, a quote or white space;
* any other ``Name=value`` field so named, as in connection strings:
  ``Server=db;User Id=app;Password=hunter2;`` shows as
  ``Server=db;User Id=app;Password=**********;`` (``Pwd=``, ``AccountKey=``,
  ``SharedAccessKey=``, ``Secret=``, ``--password=`` too). The value ends at ``;`` or the end
  of the line, or, when it opens with ``"``, ``'`` or ``{``, at the closing one.

The scan is linear in the length of the string, whatever the string holds.

The word rule looks at the last dotted segment only, split into lower-case words at ``_``,
``-``, ``.``, spaces and case changes (``dbPassword`` -> ``db password``, ``APIKey`` ->
``api key``). Qualifiers at the end (``value``, ``b64``, ``hex``, ``old``, ``new``,
``primary``, ``v2``, ..., and numbers) are dropped, and so are a word's trailing digits
(``password2``).
The key is secret when the word left last, the name's head noun,

* ends in ``password``, ``passwd``, ``passphrase``, ``secret``, ``token``, ``credential``,
  ``apikey``, ``privatekey``, ``secretkey`` or ``accesskey``, or in the plural of one
  (``db_password``, ``client_secret``, ``auth_token``, ``APIKEY``, ``credentials``,
  ``clientSecrets``, ``APIKEYS``); or
* is ``pwd``, ``pwds`` or ``creds``; or
* is ``key`` alone, or ``key`` or ``keys`` after ``api``, ``private``, ``secret``, ``access``,
  ``signing``, ``encryption``, ``master``, ``hmac``, ``jwt``, ``sdk``, ``license``, ``app``,
  ``account`` or ``shared`` (``api_key``, ``AWS_SECRET_ACCESS_KEY``, ``private_key``,
  ``stripe.key``, ``api_keys``, ``apiKeys``, ``signing_keys``, ``AccountKey``).

So ``token_ttl`` (a ttl), ``password_file`` (a path), ``keyboard_layout``, ``monkey``,
``key_count``, ``public_key``, ``cache_key`` and ``password.hint`` are not secrets, and
neither are ``keys`` alone (a collection: ``index.keys``, a ``keys`` section whose entries
are judged by their own names), ``primary_keys``, ``monkeys`` or ``hotkeys``.
"""

from __future__ import annotations

import fnmatch
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

__all__ = (
    "DEFAULT_SECRET_MATCHER",
    "MASK",
    "Secret",
    "SecretMatcher",
    "has_credentials",
    "is_secret_name",
    "mask",
    "mask_urls",
    "masked",
    "shown",
    "tainted",
)

_T = TypeVar("_T")

#: The shown form of every secret: fixed width, so not even the length leaks.
MASK = "**********"

_SHOWN_LIMIT = 80
_CACHE_LIMIT = 4096

# -- the word rule -------------------------------------------------------------------------

_WORDS = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+[0-9]*|[A-Z]+[0-9]*|[0-9]+")
_DIGITS = "0123456789"
#: A head word ending in one of these names a secret.
_SECRET_ENDINGS = (
    "password",
    "passwords",
    "passwd",
    "passwds",
    "passphrase",
    "passphrases",
    "secret",
    "secrets",
    "token",
    "tokens",
    "credential",
    "credentials",
    "apikey",
    "apikeys",
    "privatekey",
    "privatekeys",
    "secretkey",
    "secretkeys",
    "accesskey",
    "accesskeys",
)
_SECRET_WORDS = frozenset({"pwd", "pwds", "creds"})
#: ``key`` is a secret alone or after one of these; ``keys`` only after one of these.
_KEY_KINDS = frozenset(
    {"api", "private", "secret", "access", "signing", "encryption", "master", "hmac", "jwt",
     "sdk", "license", "app", "account", "shared"}
)  # fmt: skip
#: Words that qualify the head noun without changing what it is (``api_key_b64``).
_QUALIFIERS = frozenset(
    {"", "value", "values", "b64", "base64", "hex", "raw", "plain", "plaintext", "text", "str",
     "string", "bytes", "pem", "der", "old", "new", "current", "previous", "prev", "next",
     "primary", "secondary", "backup", "v"}
)  # fmt: skip


def is_secret_name(name: str) -> bool:
    """The word rule (module docstring) for one key segment: ``api_key`` yes, ``token_ttl`` no."""
    return _is_secret(_words(name))


def _words(name: str) -> list[str]:
    """``name``'s words, lower-case, up to its head noun (trailing qualifiers dropped)."""
    words = [word.lower() for word in _WORDS.findall(name)]
    while words and (words[-1] in _QUALIFIERS or words[-1].rstrip(_DIGITS) in _QUALIFIERS):
        words.pop()  # "api_key_b64", "token_v2", "password_2": the head comes before
    return words


def _is_secret(words: list[str]) -> bool:
    if not words:
        return False
    head = words[-1].rstrip(_DIGITS)  # "password2"
    if head.endswith(_SECRET_ENDINGS) or head in _SECRET_WORDS:
        return True
    if head == "key" and len(words) == 1:
        return True  # "stripe.key"; "keys" alone is a collection, not a secret
    return head in ("key", "keys") and len(words) > 1 and words[-2] in _KEY_KINDS


class SecretMatcher:
    """Says whether a dotted key names a secret, by its last segment.

    ``SecretMatcher()`` applies the word rule (module docstring): ``SecretMatcher()("db.password")``
    is True, ``SecretMatcher()("token_ttl")`` False. ``SecretMatcher(["dsn", "*cred*"])`` uses
    those fnmatch patterns (case-insensitive) instead. Answers are cached per key, because the
    same few hundred keys are asked about on every refresh.
    """

    __slots__ = ("_cache", "_regex", "patterns")

    def __init__(self, patterns: Iterable[str] | None = None) -> None:
        self.patterns = None if patterns is None else tuple(patterns)
        self._regex: re.Pattern[str] | None = None
        if self.patterns is not None:
            for pattern in self.patterns:
                if not isinstance(pattern, str):
                    raise TypeError(f"secret patterns must be strings, got {pattern!r}")
            if self.patterns:
                alternatives = "|".join(f"(?:{fnmatch.translate(p)})" for p in self.patterns)
                self._regex = re.compile(alternatives, re.IGNORECASE)
        self._cache: dict[str, bool] = {}

    def __call__(self, key: str) -> bool:
        try:
            return self._cache[key]
        except KeyError:
            pass
        last = key.rpartition(".")[2]
        if self.patterns is None:
            answer = is_secret_name(last)
        else:
            regex = self._regex
            answer = regex is not None and regex.match(last) is not None
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # bounded; recomputing an answer costs one short regex match
        self._cache[key] = answer
        return answer

    def __repr__(self) -> str:
        if self.patterns is None:
            return "SecretMatcher()"
        return f"SecretMatcher({self.patterns!r})"


# -- credentials in strings ----------------------------------------------------------------

# scheme://user:password@ or scheme://token@; the password may hold an unescaped "@": the
# authority ends at the last "@" before the path. The scheme starts where a run of scheme
# characters starts (the look-behind): tried from inside a long run, the match would cost the
# run's length at every one of its characters.
_URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z0-9+.-]+://)(?:([^/?#@\s:]*):)?([^/?#\s]*)@"
)
#: ``name=``, of a query parameter (after ``?`` or ``&``) or a field (``Password=``). The
#: look-behind makes the name a whole run, so each character is looked at once.
_FIELD_NAME = re.compile(r"(?<![A-Za-z0-9_.-])([A-Za-z0-9_.-]+)[ \t]*=[ \t]*")
_QUERY_VALUE = re.compile(r"""[^&#;\s'"<>]*""")
_FIELD_VALUE = re.compile(r""""[^"\r\n]*"?|'[^'\r\n]*'?|\{[^}\r\n]*\}?|[^;\r\n]*""")
#: Names of signatures, secret as parameters and fields though not as keys (``email.signature``).
_SIGNATURES = frozenset({"sig", "signature"})
#: What every secret name holds somewhere: a quick no for the many names that are not.
_MAYBE_SECRET = re.compile(r"pass|pw|secret|token|cred|key|sig", re.IGNORECASE)


def _mask_userinfo(match: re.Match[str]) -> str:
    scheme, user, password = match.group(1, 2, 3)
    if user is None:
        return f"{scheme}{MASK}@" if password else match.group(0)
    return f"{scheme}{user}:{MASK}@"


def _is_secret_field(name: str) -> bool:
    if _MAYBE_SECRET.search(name) is None:
        return False
    words = _words(name)
    return _is_secret(words) or (bool(words) and words[-1] in _SIGNATURES)


def _mask_fields(text: str) -> str:
    parts: list[str] = []
    done = 0  # text[:done] is in parts
    position = 0
    while match := _FIELD_NAME.search(text, position):
        position = match.end()
        if not _is_secret_field(match.group(1)):
            continue  # its value is scanned too: "note=see token=abc"
        start = match.start()
        query = start > 0 and text[start - 1] in "?&"
        value = (_QUERY_VALUE if query else _FIELD_VALUE).match(text, position)
        assert value is not None  # both match the empty string
        if value.end() > position:
            parts += [text[done:position], MASK]
            done = position = value.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


def mask_urls(text: str) -> str:
    """``text`` with the credentials in it masked: a URL's userinfo, and the value of every query
    parameter or ``Name=value`` field named like a secret (module docstring)."""
    if "://" in text:
        text = _URL_USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _mask_fields(text)
    return text


def has_credentials(value: object) -> bool:
    """Whether ``value`` (a string, or strings in lists and mappings) holds credentials that
    :func:`mask_urls` masks."""
    if isinstance(value, str):
        return ("://" in value or "=" in value) and mask_urls(value) != value
    if isinstance(value, Mapping):
        return any(has_credentials(item) for item in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(has_credentials(item) for item in value)
    return False


# -- values built from secrets -------------------------------------------------------------


def tainted(
    derived: Mapping[str, str], flat: Mapping[str, Any], is_secret: Callable[[str], bool]
) -> frozenset[str]:
    """The ``@format`` keys in ``derived`` (key -> ``"@format <template>"``) built from a secret.

    A template is tainted when it refers to a secret key, to a section holding one, or to
    another tainted template.
    """
    templates: dict[str, list[str]] = {}
    for key, how in derived.items():
        if how.startswith("@format "):
            templates[key] = _references(how[len("@format ") :])
    found: set[str] = set()
    changed = True
    while changed:
        changed = False
        for key, references in templates.items():
            if key not in found and any(
                ref in found or _secret_reference(ref, flat, is_secret) for ref in references
            ):
                found.add(key)
                changed = True
    return frozenset(found)


def _references(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name]
    except ValueError:
        return []


def _secret_reference(key: str, flat: Mapping[str, Any], is_secret: Callable[[str], bool]) -> bool:
    return is_secret(key) or _holds_secret(flat.get(key), is_secret, key)


def _holds_secret(value: Any, is_secret: Callable[[str], bool], key: str) -> bool:
    if isinstance(value, Secret):
        return True
    if isinstance(value, Mapping):
        return any(
            is_secret(path := f"{key}.{name}") or _holds_secret(item, is_secret, path)
            for name, item in value.items()
        )
    if isinstance(value, (list, tuple)):
        return any(_holds_secret(item, is_secret, key) for item in value)
    return False


#: The matcher used when none is given: the word rule.
DEFAULT_SECRET_MATCHER = SecretMatcher()


class Secret(Generic[_T]):
    """A value that is masked wherever it is shown, whatever its key is called.

    >>> token = Secret("hunter2")
    >>> token
    Secret('**********')
    >>> token.reveal()
    'hunter2'

    Validators check the revealed value (``Validator("db.dsn", startswith="postgres://")``
    works on a ``Secret``); only messages and reprs see the mask.
    """

    __slots__ = ("_value",)

    def __init__(self, value: _T) -> None:
        self._value = value

    def reveal(self) -> _T:
        """The wrapped value. Call it at the point of use, not before."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return bool(self._value == other._value)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((Secret, self._value))


def mask(value: object) -> str:
    """The shown form of a secret value: always ``MASK``, never a hint of its length."""
    return MASK


def shown(key: str, value: object, matcher: Callable[[str], bool] = DEFAULT_SECRET_MATCHER) -> str:
    """``repr(value)`` fit for a message: masked if ``key`` or the value is secret, and short.

    Inside a shown mapping, entries whose own key looks secret are masked too, so a failing
    ``db`` section never prints ``db.password``. Long forms are cut to about 80 characters.
    """
    if isinstance(value, Secret) or matcher(key):
        return mask(value)
    parts: list[str] = []
    size = 0
    for token in _tokens(value, matcher):
        parts.append(token)
        size += len(token)
        if size > _SHOWN_LIMIT:
            break
    text = "".join(parts)
    if len(text) > _SHOWN_LIMIT:
        text = text[: _SHOWN_LIMIT - 3] + "..."
    return text


def _tokens(value: Any, matcher: Callable[[str], bool]) -> Iterator[str]:
    # A lazy repr: the caller stops reading once it has enough, so a 10,000-key section costs
    # no more to show than a short one.
    if isinstance(value, Secret):
        yield MASK
    elif isinstance(value, Mapping):
        yield "{"
        for i, (name, item) in enumerate(value.items()):
            if i:
                yield ", "
            yield repr(name)
            yield ": "
            if isinstance(name, str) and matcher(name):
                yield MASK
            else:
                yield from _tokens(item, matcher)
        yield "}"
    elif type(value) in (list, tuple, set, frozenset):
        if type(value) is list:
            opening, closing = "[", "]"
        elif type(value) is tuple:
            opening, closing = "(", ",)" if len(value) == 1 else ")"
        elif not value:
            yield f"{type(value).__name__}()"
            return
        elif type(value) is set:
            opening, closing = "{", "}"
        else:
            opening, closing = "frozenset({", "})"
        yield opening
        for i, item in enumerate(value):
            if i:
                yield ", "
            yield from _tokens(item, matcher)
        yield closing
    elif isinstance(value, str):
        yield repr(mask_urls(value))
    else:
        yield repr(value)


def masked(
    value: Any,
    is_secret: Callable[[str], bool] = DEFAULT_SECRET_MATCHER,
    key: str = "",
    *,
    urls: bool = True,
) -> Any:
    """``value`` as plain dicts and lists, with every secret in it replaced by ``MASK``.

    ``key`` is the dotted path of ``value`` itself (``""`` for a whole configuration). An entry
    is secret when ``is_secret`` says so of its dotted path (``Snapshot.is_secret`` knows the
    keys given as ``Secret`` and the values built from secrets) or when it is a ``Secret``.
    Items of a list take the list's path, so the password in ``servers = [{password = ...}]``
    is masked too. With ``urls`` (the default), the credentials of URLs in strings are masked.

    >>> masked({"db": {"host": "h", "password": "p", "url": "redis://u:p@h"}})
    {'db': {'host': 'h', 'password': '**********', 'url': 'redis://u:**********@h'}}
    """
    if isinstance(value, Secret) or (key and is_secret(key)):
        return MASK
    if isinstance(value, str):
        return mask_urls(value) if urls else value
    if isinstance(value, Mapping):
        return {
            name: masked(item, is_secret, f"{key}.{name}" if key else str(name), urls=urls)
            for name, item in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [masked(item, is_secret, key, urls=urls) for item in value]
    return value
