"""Azure App Configuration, read with Microsoft's async client, as the provider 2.5 reads it.

```python
AzureAppConfig(connection_string=os.environ["APPCONFIG"], refresh_on=[WatchKey("sentinel")])
```

Selection (selectors, labels, tags, snapshots, ``trim_prefixes``, JSON content types, Key Vault
references, feature flags) follows ``azure-appconfiguration-provider`` 2.5, quirks included:
the differential suite (tests/sources/test_azure_differential.py) compares the two on random
stores. Change detection is cheap: a conditional GET per sentinel key (304 when unchanged), or
else the page ETags of the last listing sent back (304 per unchanged page).

``azure.appconfiguration`` (and ``azure.keyvault.secrets`` for a vault) are imported on the
first load, not with aioconfig: the client alone takes about 100 ms to import. Without them
(the ``azure`` extra), constructing the source is a ``ModuleNotFoundError`` naming the extra,
and a Key Vault reference that needs a ``SecretClient`` a ``SourceError`` naming it. Its own retries
are turned off (``retry_total=0``): aioconfig's backoff decides when to ask again, so a fleet
does not multiply retries.

Values are data, never aioconfig tokens (``Source.tokens = False``): a stored ``"@del"``,
``"@format {x}"`` or ``"@int abc"``, at the top level or inside a JSON value, is served as the
string it is, as the provider serves it.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from .._exceptions import ParseError, SourceError, SourceUnavailable
from .._frozen import FrozenList
from .._limits import check_shape, too_deep
from .._secrets import Secret
from ._base import NotModified, Payload, Source, check_flag

if TYPE_CHECKING:
    from azure.appconfiguration import ConfigurationSetting
    from azure.appconfiguration.aio import AzureAppConfigurationClient

    from .._clock import Clock

__all__ = ("NULL_LABEL", "AzureAppConfig", "SettingSelector", "WatchKey")

#: The null label ("(No label)" in the portal), the default of every selector.
NULL_LABEL = "\0"
FEATURE_FLAG_PREFIX = ".appconfig.featureflag/"
_FLAG_CONTENT_TYPE = "application/vnd.microsoft.appconfig.ff+json;charset=utf-8"

#: The options of ``client_options`` that are about the connection, not the service: the
#: Key Vault clients take them too.
_CONNECTION_OPTIONS = frozenset(
    {"connection_verify", "connection_cert", "proxies", "connection_timeout", "read_timeout"}
)

SecretResolver = Callable[[str], "str | Awaitable[str]"]


class SettingSelector:
    """Which settings to load: a key filter with a label and tags, or a snapshot.

    As the provider's: ``key_filter`` ends in ``*`` for a prefix and may list alternatives
    with ``,``; ``label_filter`` defaults to the null label; ``tag_filters`` are
    ``"name=value"`` strings; ``snapshot_name`` excludes the others.
    """

    __slots__ = ("key_filter", "label_filter", "snapshot_name", "tag_filters")

    def __init__(
        self,
        *,
        key_filter: str | None = None,
        label_filter: str | None = NULL_LABEL,
        tag_filters: list[str] | None = None,
        snapshot_name: str | None = None,
    ) -> None:
        if snapshot_name is not None:
            for name, given in (
                ("key_filter", key_filter is not None),
                ("label_filter", label_filter != NULL_LABEL),
                ("tag_filters", tag_filters is not None),
            ):
                if given:
                    raise ValueError(f"a snapshot selector takes no {name}")
        elif key_filter is None:
            raise ValueError("a SettingSelector needs key_filter or snapshot_name")
        if tag_filters is not None:
            if not isinstance(tag_filters, list):
                raise TypeError("tag_filters must be a list of strings")
            for tag in tag_filters:
                if not isinstance(tag, str) or "=" not in tag or tag.startswith("="):
                    raise ValueError(f"tag filter {tag!r} is not of the form 'name=value'")
        self.key_filter = key_filter
        self.label_filter = label_filter
        self.tag_filters = tag_filters
        self.snapshot_name = snapshot_name

    def __repr__(self) -> str:
        if self.snapshot_name is not None:
            return f"SettingSelector(snapshot_name={self.snapshot_name!r})"
        label = "" if self.label_filter == NULL_LABEL else f", label_filter={self.label_filter!r}"
        tags = "" if self.tag_filters is None else f", tag_filters={self.tag_filters!r}"
        return f"SettingSelector(key_filter={self.key_filter!r}{label}{tags})"


class WatchKey(NamedTuple):
    """A sentinel: a key (and label) whose change reloads the whole selection."""

    key: str
    label: str = NULL_LABEL


@dataclass(frozen=True, slots=True)
class _Token:
    """One applied version: what it was made of, and the validators to ask with next time."""

    settings: Mapping[str, Any]
    flags: tuple[Any, ...] | None
    page_etags: tuple[tuple[str | None, ...], ...]
    flag_page_etags: tuple[tuple[str | None, ...], ...]
    watched: tuple[tuple[WatchKey, str | None], ...]
    serial: int
    secrets: frozenset[str] = field(default=frozenset())


class AzureAppConfig(Source):
    """The settings and feature flags of an Azure App Configuration store.

    Give ``endpoint`` and ``credential`` (any ``azure.core`` ``AsyncTokenCredential``, such as
    ``azure.identity.aio.DefaultAzureCredential()``), or ``connection_string``. The other
    options are the provider's (see the README's migration table); besides them:

    * ``separator``: nest keys on it (``":"`` makes ``app:db:port`` read as ``app.db.port``);
      None (the default) keeps them flat, as the provider does (``config["app:db:port"]``);
    * ``refresh_interval`` and ``feature_flag_refresh_interval``: how often settings (their
      sentinels or pages) and flags are checked, when not at every poll of the engine. The
      source suggests the shorter as the engine's interval, and checks the longer one only when
      it is due (within half a poll), so flags every 5 s do not check the sentinel every 5 s.
      A push (``notify``) checks both at once; a forced refresh checks what is due;
    * ``clock``: what to read the time from for those intervals (the engine's, such as
      ``aioconfig.testing.FakeClock``; by default ``time.monotonic``);
    * ``client_options``: more keywords for ``AzureAppConfigurationClient``; those of the
      connection (``connection_verify``, ``connection_cert``, ``proxies``, the timeouts) go to
      the Key Vault ``SecretClient`` too (a private CA, a proxy).

    Key Vault references are resolved with ``secret_resolver(uri)`` (sync or async) or a
    ``SecretClient`` per vault made with ``keyvault_credential``; their values are served as
    plain strings, as the provider serves them, but their keys are secret: masked wherever
    aioconfig shows them.
    """

    refresh_interval: float | None = None
    tokens = False  # the provider's values, as they are: "@del" is a string, not a deletion

    def __init__(
        self,
        endpoint: str | None = None,
        credential: Any = None,
        *,
        connection_string: str | None = None,
        selects: Sequence[SettingSelector] | None = None,
        trim_prefixes: Iterable[str] = (),
        refresh_on: Iterable[WatchKey | str | tuple[str, str]] = (),
        refresh_enabled: bool | None = None,
        refresh_interval: float | None = None,
        feature_flag_enabled: bool = False,
        feature_flag_selectors: Sequence[SettingSelector] | None = None,
        feature_flag_refresh_enabled: bool = False,
        feature_flag_refresh_interval: float | None = None,
        keyvault_credential: Any = None,
        secret_resolver: SecretResolver | None = None,
        separator: str | None = None,
        client_options: Mapping[str, Any] | None = None,
        optional: bool = False,
        clock: Clock | None = None,
    ) -> None:
        _require("azure.appconfiguration", "azure-appconfiguration")
        if connection_string is not None:
            if endpoint is not None or credential is not None:
                raise ValueError("pass endpoint and credential, or connection_string, not both")
            endpoint = _connection_endpoint(connection_string)
        elif endpoint is None or credential is None:
            raise ValueError("pass endpoint= and credential=, or connection_string=")
        if not isinstance(endpoint, str) or urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError("endpoint must be an http(s):// URL")
        if keyvault_credential is not None and secret_resolver is not None:
            raise ValueError("pass keyvault_credential or secret_resolver, not both")
        if secret_resolver is not None and not callable(secret_resolver):
            raise TypeError("secret_resolver must be callable")
        if separator is not None and (not isinstance(separator, str) or not separator):
            raise ValueError("separator must be a non-empty string or None")
        self._endpoint = endpoint.rstrip("/")
        self._credential = credential
        self._connection_string = connection_string
        self._selects = list(selects) if selects is not None else [SettingSelector(key_filter="*")]
        for selector in [*self._selects, *(feature_flag_selectors or ())]:
            if not isinstance(selector, SettingSelector):
                raise TypeError(f"selectors must be SettingSelector, got {type(selector).__name__}")
        self._trim = sorted(trim_prefixes, key=len, reverse=True)
        self._watched = tuple(_watch_key(w) for w in refresh_on)
        self._refresh_enabled = (
            bool(self._watched)
            if refresh_enabled is None
            else check_flag("refresh_enabled", refresh_enabled)
        )
        self._flags_enabled = check_flag("feature_flag_enabled", feature_flag_enabled)
        self._flag_selectors = (
            list(feature_flag_selectors)
            if feature_flag_selectors is not None
            else [SettingSelector(key_filter="*")]
        )
        self._flags_refresh = check_flag(
            "feature_flag_refresh_enabled", feature_flag_refresh_enabled
        )
        self._settings_interval = _interval("refresh_interval", refresh_interval)
        self._flag_interval = _interval(
            "feature_flag_refresh_interval", feature_flag_refresh_interval
        )
        given = [i for i in (self._settings_interval, self._flag_interval) if i is not None]
        self.refresh_interval = min(given) if given else None
        self._now: Callable[[], float] = time.monotonic if clock is None else clock.now
        self._keyvault_credential = keyvault_credential
        self._secret_resolver = secret_resolver
        self._separator = separator
        self._client_options = dict(client_options or {})
        self.optional = check_flag("optional", optional)
        self._client: AzureAppConfigurationClient | None = None
        self._vaults: dict[str, Any] = {}
        self._secret_cache: dict[str, str] = {}
        self._sync_tokens: list[str] = []
        self._pushed = False
        self._settings_checked = 0.0
        self._flags_checked = 0.0
        self._serial = 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._endpoint!r})"

    @property
    def name(self) -> str:
        """The store's endpoint (never the connection string: it holds the secret)."""
        return self._endpoint

    @property
    def endpoint(self) -> str:
        return self._endpoint

    # ------------------------------------------------------------------ push

    def notify(self, sync_token: str | None = None) -> None:
        """A change was announced (an Event Grid event): remember its sync token, so that the
        next read sees the change, and check everything on the next load, due or not."""
        if sync_token:
            self._sync_tokens.append(sync_token)
        self._pushed = True

    # ------------------------------------------------------------------ loading

    async def load(self, token: Hashable | None) -> Payload | NotModified:
        client = await self._open()
        while self._sync_tokens:
            await client.update_sync_token(self._sync_tokens.pop(0))
        previous = token if isinstance(token, _Token) else None
        pushed, self._pushed = self._pushed, False
        checked = self._settings_checked, self._flags_checked
        try:
            if previous is None:
                return await self._load_all(client)
            return await self._check(client, previous, pushed)
        except SourceError:  # nothing was checked: all of it is still due
            self._pushed = self._pushed or pushed
            self._settings_checked, self._flags_checked = checked
            raise

    async def _load_all(self, client: AzureAppConfigurationClient) -> Payload:
        self._settings_checked = self._flags_checked = self._now()
        raw, page_etags = await self._list(client, self._selects, flags=False)
        watched = []
        for watch in self._watched:
            watched.append((watch, await self._watched_etag(client, watch)))
        settings, secrets = await self._process(raw)
        flags: tuple[Any, ...] | None = None
        flag_etags: tuple[tuple[str | None, ...], ...] = ()
        if self._flags_enabled:
            flags, flag_etags = await self._load_flags(client)
        return self._payload(settings, secrets, flags, page_etags, flag_etags, tuple(watched))

    async def _check(
        self, client: AzureAppConfigurationClient, previous: _Token, pushed: bool
    ) -> Payload | NotModified:
        settings, secrets = previous.settings, previous.secrets
        page_etags, watched = previous.page_etags, previous.watched
        changed = False
        now = self._now()
        if (self._refresh_enabled and self._due(now, settings=True)) or pushed:
            self._settings_checked = now
            if self._watched:
                watched, reload = await self._check_watched(client, previous.watched)
            else:
                reload = await self._pages_changed(client, self._selects, previous.page_etags)
            if reload:
                raw, page_etags = await self._list(client, self._selects, flags=False)
                settings, secrets = await self._process(raw)
                changed = True
        flags, flag_etags = previous.flags, previous.flag_page_etags
        due = self._flags_refresh and self._due(now, settings=False)
        if self._flags_enabled and (due or pushed):
            self._flags_checked = now
            if not flag_etags or await self._pages_changed(
                client, self._flag_selectors, flag_etags, prefix=FEATURE_FLAG_PREFIX
            ):
                flags, flag_etags = await self._load_flags(client)
                changed = True
        if not changed:
            return NotModified(previous)
        return self._payload(settings, secrets, flags, page_etags, flag_etags, watched)

    def _due(self, now: float, *, settings: bool) -> bool:
        """Whether the settings' (or the flags') check is due. Only the longer of the two
        intervals is ever held back: the engine polls at the shorter, so a check is due from
        half a poll before its time (a jittered poll lands within 10% of it)."""
        mine, other = self._settings_interval, self._flag_interval
        last = self._settings_checked
        if not settings:
            mine, other, last = other, mine, self._flags_checked
        if mine is None or other is None or mine <= other:
            return True
        return now - last >= mine - other / 2

    def _payload(
        self,
        settings: Mapping[str, Any],
        secrets: frozenset[str],
        flags: tuple[Any, ...] | None,
        page_etags: tuple[tuple[str | None, ...], ...],
        flag_etags: tuple[tuple[str | None, ...], ...],
        watched: tuple[tuple[WatchKey, str | None], ...],
    ) -> Payload:
        self._serial += 1
        token = _Token(settings, flags, page_etags, flag_etags, watched, self._serial, secrets)
        data: dict[str, Any] = {
            key: Secret(value) if key in secrets else value for key, value in settings.items()
        }
        if self._separator is not None:
            data = _nested(data, self._separator, self._endpoint)
        if flags is not None:
            data["feature_management"] = {"feature_flags": FrozenList(flags)}
        return Payload(data, token, order=self._serial)

    # ------------------------------------------------------------------ requests

    async def _open(self) -> AzureAppConfigurationClient:
        if self._client is None:
            from azure.appconfiguration.aio import AzureAppConfigurationClient

            options: dict[str, Any] = {"retry_total": 0, **self._client_options}
            if self._connection_string is not None:
                self._client = AzureAppConfigurationClient.from_connection_string(
                    self._connection_string, **options
                )
            else:
                self._client = AzureAppConfigurationClient(
                    self._endpoint, self._credential, **options
                )
        return self._client

    async def _list(
        self,
        client: AzureAppConfigurationClient,
        selectors: Sequence[SettingSelector],
        *,
        flags: bool,
        prefix: str = "",
    ) -> tuple[list[ConfigurationSetting], tuple[tuple[str | None, ...], ...]]:
        from azure.appconfiguration import FeatureFlagConfigurationSetting

        found: list[ConfigurationSetting] = []
        all_etags: list[tuple[str | None, ...]] = []
        for selector in selectors:
            etags: list[str | None] = []
            with _failures(self._endpoint, selector):
                if selector.snapshot_name is not None:
                    if not await self._snapshot_ok(client, selector.snapshot_name):
                        all_etags.append(())
                        continue
                    pager = client.list_configuration_settings(snapshot_name=selector.snapshot_name)
                    async for setting in pager:
                        if isinstance(setting, FeatureFlagConfigurationSetting) == flags:
                            found.append(setting)
                else:
                    pager = client.list_configuration_settings(
                        key_filter=prefix + (selector.key_filter or ""),
                        label_filter=selector.label_filter,
                        tags_filter=selector.tag_filters,
                    )
                    pages = pager.by_page()
                    async for page in pages:
                        async for setting in page:
                            if isinstance(setting, FeatureFlagConfigurationSetting) == flags:
                                found.append(setting)
                        etags.append(pages.etag)
            all_etags.append(tuple(etags))
        return found, tuple(all_etags)

    async def _pages_changed(
        self,
        client: AzureAppConfigurationClient,
        selectors: Sequence[SettingSelector],
        page_etags: tuple[tuple[str | None, ...], ...],
        prefix: str = "",
    ) -> bool:
        for i, selector in enumerate(selectors):
            if i >= len(page_etags):
                return True
            if selector.snapshot_name is not None:
                continue  # a snapshot never changes
            with _failures(self._endpoint, selector):
                pager = client.list_configuration_settings(
                    key_filter=prefix + (selector.key_filter or ""),
                    label_filter=selector.label_filter,
                    tags_filter=selector.tag_filters,
                )
                async for _ in pager.by_page(match_conditions=[e or "" for e in page_etags[i]]):
                    return True  # a page came back: it changed
        return False

    async def _snapshot_ok(self, client: AzureAppConfigurationClient, name: str) -> bool:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            snapshot = await client.get_snapshot(name)
        except ResourceNotFoundError:
            self.logger.warning("%s: snapshot %r not found", self._endpoint, name)
            return False
        if snapshot.composition_type != "key":
            raise SourceError(
                self._endpoint,
                f"snapshot {name!r}: composition type must be 'key'",
                transient=False,
            )
        return True

    async def _watched_etag(
        self, client: AzureAppConfigurationClient, watch: WatchKey
    ) -> str | None:
        from azure.core.exceptions import ResourceNotFoundError

        with _failures(self._endpoint, watch):
            try:
                setting = await client.get_configuration_setting(key=watch.key, label=watch.label)
            except ResourceNotFoundError:
                return None  # a refresh follows when it is created
        return None if setting is None else setting.etag

    async def _check_watched(
        self,
        client: AzureAppConfigurationClient,
        watched: tuple[tuple[WatchKey, str | None], ...],
    ) -> tuple[tuple[tuple[WatchKey, str | None], ...], bool]:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceNotFoundError

        updated: list[tuple[WatchKey, str | None]] = []
        changed = False
        for watch, etag in watched:
            with _failures(self._endpoint, watch):
                try:
                    setting = await client.get_configuration_setting(
                        key=watch.key,
                        label=watch.label,
                        etag=etag,
                        match_condition=MatchConditions.IfModified,
                    )
                except ResourceNotFoundError:
                    if etag is not None:  # deleted
                        changed = True
                    updated.append((watch, None))
                    continue
            if setting is not None:  # None: 304, unchanged
                changed = True
                etag = setting.etag
            updated.append((watch, etag))
        return (tuple(updated) if changed else watched), changed

    async def _load_flags(
        self, client: AzureAppConfigurationClient
    ) -> tuple[tuple[Any, ...], tuple[tuple[str | None, ...], ...]]:
        raw, etags = await self._list(
            client, self._flag_selectors, flags=True, prefix=FEATURE_FLAG_PREFIX
        )
        return tuple(self._flag(setting) for setting in raw), etags

    # ------------------------------------------------------------------ processing

    async def _process(
        self, raw: list[ConfigurationSetting]
    ) -> tuple[dict[str, Any], frozenset[str]]:
        """The provider's order: duplicates resolved on untrimmed keys (the later selector
        wins, in the place of the first), then prefixes trimmed (the later key wins)."""
        from azure.appconfiguration import (
            FeatureFlagConfigurationSetting,
            SecretReferenceConfigurationSetting,
        )

        unique: dict[str, ConfigurationSetting] = {}
        for setting in raw:
            unique[setting.key] = setting
        settings: dict[str, Any] = {}
        secrets: set[str] = set()
        for setting in unique.values():
            if isinstance(setting, FeatureFlagConfigurationSetting):
                continue  # flags matched by ordinary selectors are dropped
            key = setting.key
            for prefix in self._trim:
                if key.startswith(prefix):
                    key = key[len(prefix) :]
                    break
            if isinstance(setting, SecretReferenceConfigurationSetting):
                settings[key] = await self._resolve(setting)
                secrets.add(key)
            else:
                settings[key] = _decoded(
                    setting.value, setting.content_type, self.name, setting.key
                )
                secrets.discard(key)
        return settings, frozenset(secrets)

    async def _resolve(self, setting: Any) -> str:
        uri = setting.secret_id
        where = f"the Key Vault reference at {setting.key!r}"
        if uri is None:
            raise ParseError(self._endpoint, f"{where} has no uri")
        cached = self._secret_cache.get(uri)
        if cached is not None:
            return cached
        parts = urlsplit(uri)
        path = [p for p in parts.path.split("/") if p]
        if parts.scheme != "https" or len(path) not in (2, 3) or path[0] != "secrets":
            raise ParseError(self._endpoint, f"{where} is not a Key Vault secret URI")
        vault = f"{parts.scheme}://{parts.netloc}"
        name, version = path[1], path[2] if len(path) == 3 else None
        value: Any = None
        if self._keyvault_credential is not None:
            value = await self._from_vault(vault, name, version, where)
        if value is None and self._secret_resolver is not None:
            try:
                value = self._secret_resolver(uri)
                if isinstance(value, Awaitable):
                    value = await value
            except Exception as exc:  # the user's resolver: shown by type only
                raise SourceError(
                    self._endpoint, f"secret_resolver failed for {where} ({type(exc).__name__})"
                ) from None
        if not value:
            raise SourceError(
                self._endpoint,
                f"cannot resolve {where} in vault {vault}: pass keyvault_credential= or "
                "secret_resolver=",
                transient=False,
            )
        self._secret_cache[uri] = value
        return str(value)

    async def _from_vault(self, vault: str, name: str, version: str | None, where: str) -> Any:
        from azure.core.exceptions import AzureError

        client = self._vaults.get(vault)
        if client is None:
            try:
                from azure.keyvault.secrets.aio import SecretClient
            except ModuleNotFoundError:
                raise SourceError(
                    self._endpoint,
                    f"{where} needs azure-keyvault-secrets, which is not installed: "
                    "pip install 'aioconfig[azure]'",
                    transient=False,
                ) from None
            shared = {k: v for k, v in self._client_options.items() if k in _CONNECTION_OPTIONS}
            client = self._vaults[vault] = SecretClient(
                vault, self._keyvault_credential, retry_total=0, **shared
            )
        try:
            secret = await client.get_secret(name, version)
        except AzureError as exc:
            raise _azure_error(self._endpoint, f"{where} (vault {vault})", exc) from None
        return secret.value

    def _flag(self, setting: Any) -> dict[str, Any]:
        """A flag as the provider serves it: the SDK's normalised value, with telemetry."""
        try:
            value = json.loads(setting.value)
        except ValueError:
            return {}
        if not isinstance(value, dict):
            return {}
        telemetry = value.setdefault("telemetry", {})
        metadata = telemetry.setdefault("metadata", {})
        metadata["ETag"] = setting.etag
        if telemetry.get("enabled"):
            reference = f"{self._endpoint}/kv/{setting.key}"
            if setting.label and not setting.label.isspace():
                reference += f"?label={setting.label}"
            metadata["FeatureFlagReference"] = reference
            allocation_id = _allocation_id(value)
            if allocation_id:
                metadata["AllocationId"] = allocation_id
        return value

    async def aclose(self) -> None:
        client, self._client = self._client, None
        vaults, self._vaults = list(self._vaults.values()), {}
        for vault in vaults:
            await vault.close()
        if client is not None:
            await client.close()


# ---------------------------------------------------------------------- helpers


def _connection_endpoint(connection_string: str) -> str:
    if not isinstance(connection_string, str):
        raise TypeError("connection_string must be a str")
    fields = dict(part.split("=", 1) for part in connection_string.split(";") if "=" in part)
    endpoint = fields.get("Endpoint")
    if not endpoint or "Id" not in fields or "Secret" not in fields:
        # Never the string itself: it holds the secret.
        raise ValueError("connection_string must hold Endpoint=...;Id=...;Secret=...")
    return endpoint


def _require(module: str, package: str) -> None:
    """A ``ModuleNotFoundError`` naming the extra if ``module`` cannot be imported (nothing is
    imported: the client takes about 100 ms)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ModuleNotFoundError, ValueError):  # a parent missing, or blocked in sys.modules
        found = False
    if not found:
        raise ModuleNotFoundError(
            f"aioconfig.sources.AzureAppConfig needs {package}, which is not installed: "
            "pip install 'aioconfig[azure]'",
            name=module,
        )


def _interval(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1 second")
    return float(value)


def _watch_key(value: WatchKey | str | tuple[str, str]) -> WatchKey:
    if isinstance(value, WatchKey):
        watch = value
    elif isinstance(value, str):
        watch = WatchKey(value)
    else:
        key = getattr(value, "key", None)
        if isinstance(key, str):  # aioconfig.WatchKey
            watch = WatchKey(key)
        else:
            watch = WatchKey(*value)
    if "*" in watch.key or "*" in watch.label:
        raise ValueError("refresh_on takes exact keys and labels, no wildcards")
    return watch


def _is_json(content_type: str) -> bool:
    mime = content_type.strip().lower().split(";")[0].strip()
    main, _, sub = mime.partition("/")
    return main == "application" and "/" not in sub and "json" in sub.split("+")


def _decoded(value: str | None, content_type: str | None, source: str, key: str) -> Any:
    """A JSON content type's value decoded (comments allowed); anything else as it is.

    Decoded as the provider decodes it (``json``: big integers stay exact, ``1e400`` is inf),
    and bounded as every parsed document is (``check_shape``): nested past ``MAX_DEPTH`` it
    is a ``ParseError`` naming the store and the key, not a ``RecursionError`` later.
    """
    if not content_type or value is None or not _is_json(content_type):
        return value
    try:
        try:
            decoded = json.loads(value)
        except ValueError:
            try:
                decoded = json.loads(_strip_comments(value))
            except ValueError:
                return value
        check_shape(decoded, source, len(value))
    except RecursionError:  # json's decoder recurses (in C) once per level
        problem = too_deep(source).problem
        raise ParseError(source, f"the JSON value at {key!r}: {problem}") from None
    except ParseError as exc:
        raise ParseError(source, f"the JSON value at {key!r}: {exc.problem}") from None
    return decoded


def _strip_comments(text: str) -> str:
    """``text`` without ``//`` and ``/* */`` comments outside strings; ValueError if a
    string or a block comment never ends."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while True:
                if j >= n:
                    raise ValueError("unterminated string")
                if text[j] == "\\":
                    j += 2
                    continue
                if text[j] == '"':
                    break
                j += 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            if end < 0:
                break
            out.append("\n")
            i = end + 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise ValueError("unterminated comment")
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _allocation_id(flag: Mapping[str, Any]) -> str | None:
    """The telemetry AllocationId of a flag's allocation: a digest of its seed, default
    variant, percentile ranges and the variants they allocate (Microsoft's definition)."""
    allocation = flag.get("allocation")
    if not allocation:
        return None
    allocated: list[Any] = []
    text = f"seed={allocation.get('seed', '')}"
    if "default_when_enabled" in allocation:
        allocated.append(allocation.get("default_when_enabled"))
    text += f"\ndefault_when_enabled={allocation.get('default_when_enabled', '')}"
    text += "\npercentiles="
    percentiles = allocation.get("percentile")
    if percentiles:
        ranges = sorted(
            (p for p in percentiles if p.get("from") != p.get("to")), key=lambda p: p.get("from")
        )
        allocated.extend(p.get("variant") for p in ranges if "variant" in p)
        text += ";".join(
            f"{p.get('from')},{base64.b64encode(p.get('variant').encode()).decode()},{p.get('to')}"
            for p in ranges
        )
    if not allocated and not allocation.get("seed"):
        return None
    text += "\nvariants="
    variants = flag.get("variants")
    if allocated and isinstance(variants, list) and all(isinstance(v, dict) for v in variants):
        chosen = sorted(
            (v for v in variants if v.get("name") in allocated), key=lambda v: v.get("name")
        )
        parts = []
        for variant in chosen:
            part = base64.b64encode(variant.get("name", "").encode()).decode() + ","
            if "configuration_value" in variant:
                part += json.dumps(
                    variant.get("configuration_value", ""), separators=(",", ":"), sort_keys=True
                )
            parts.append(part)
        text += ";".join(parts)
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest[:15]).decode()


class _Section(dict):  # type: ignore[type-arg]
    """A mapping made by nesting keys (not a JSON value, which may be a mapping too)."""


def _nested(flat: Mapping[str, Any], separator: str, source: str) -> dict[str, Any]:
    """``{"a:b": 1}`` -> ``{"a": {"b": 1}}``; a key that is both a value and a section is a
    ParseError naming it."""
    root: dict[str, Any] = _Section()
    for key, value in flat.items():
        parts = key.split(separator)
        node = root
        for part in parts[:-1]:
            child = node.get(part)
            if child is None and part not in node:
                child = node[part] = _Section()
            elif not isinstance(child, _Section):
                raise ParseError(source, f"the key {key!r} lies under another key's value")
            node = child
        if isinstance(node.get(parts[-1]), _Section):
            raise ParseError(source, f"the key {key!r} is also a section of other keys")
        node[parts[-1]] = value
    return root


class _failures:
    """Turns azure-core's exceptions into SourceErrors naming the endpoint and the selector
    or key, never quoting the service's own text (it may echo a request)."""

    def __init__(self, endpoint: str, what: SettingSelector | WatchKey) -> None:
        self._endpoint = endpoint
        if isinstance(what, WatchKey):
            label = "" if what.label == NULL_LABEL else f" (label {what.label!r})"
            self._what = f"key {what.key!r}{label}"
        else:
            self._what = repr(what)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None or isinstance(exc, SourceError):
            return
        from azure.core.exceptions import AzureError

        if isinstance(exc, AzureError):
            raise _azure_error(self._endpoint, self._what, exc) from None


def _azure_error(endpoint: str, what: str, exc: Exception) -> SourceError:
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    from ._http import retry_after

    status = getattr(exc, "status_code", None)
    if isinstance(exc, HttpResponseError) and status is not None:
        problem = f"{what}: HTTP {status}"
        if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            return SourceError(endpoint, f"{problem} (authentication failed)", transient=False)
        if status >= 500 or status in (408, 429):
            response = exc.response
            headers = getattr(response, "headers", None) or {}
            wait = retry_after(headers.get("Retry-After"))
            if wait is not None:
                problem += f" (Retry-After: {wait:g}s)"
            error = SourceUnavailable(endpoint, problem)
            error.retry_after = wait
            return error
        return SourceError(endpoint, problem, transient=False)
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError

    if isinstance(exc, ServiceRequestError):
        if "non-TLS" in str(exc):  # azure-core refuses to send a bearer token over http
            return SourceError(
                endpoint, f"{what}: a token credential needs an https:// endpoint", transient=False
            )
        return SourceUnavailable(endpoint, f"{what}: cannot connect")
    if isinstance(exc, ServiceResponseError):
        return SourceUnavailable(endpoint, f"{what}: no answer (the connection was lost)")
    return SourceUnavailable(endpoint, f"{what}: {type(exc).__name__}")
