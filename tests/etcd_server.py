"""Real etcd processes for tests and benchmarks: one member or a small cluster on loopback.

```python
with EtcdCluster(size=3) as cluster:          # or: async with EtcdCluster() as cluster:
    leader = cluster.leader()
    leader.kill()                             # SIGKILL; its data dir stays
    leader.start()                            # rejoins with the same name, ports and data
```

Each member gets free loopback ports (picked by binding ``127.0.0.1:0``), its own data dir in a
temporary directory and a log file (a file, not a pipe: a pipe nobody reads fills up and stalls
etcd). Starting waits, with a bound, until every member answers ``/health``. A member's
``stop()`` is graceful (SIGTERM, wait, then SIGKILL) and keeps its data; the cluster's ``stop()``
(also on leaving the ``with`` block, whatever happened in it) kills every process and removes
the directory. The blocking calls have ``a``-prefixed async twins that run them in a worker
thread.

:class:`EtcdClient` writes to etcd over its JSON gateway (put, delete, txn, compact, auth set-up),
as a real client would: tests never mock etcd.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import aiohttp
import anyio
import anyio.to_thread

__all__ = ("EtcdClient", "EtcdCluster", "EtcdError", "EtcdMember", "etcd_binary", "require_etcd")

STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL
HEALTH_TIMEOUT = 30.0


def etcd_binary() -> str | None:
    """The etcd executable (``$ETCD_BINARY``, then ``etcd`` on ``PATH``), or None."""
    explicit = os.environ.get("ETCD_BINARY")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    return shutil.which("etcd")


def require_etcd() -> None:
    """Skip the calling test when the etcd binary is missing, or fail it under CI
    (``CI=true``): tests that need etcd must fail, not skip, on a CI machine without it."""
    import pytest

    if etcd_binary() is None:
        message = "the etcd binary is not installed: apt-get install etcd-server"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick for ``127.0.0.1:0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def b64(value: str | bytes) -> str:
    raw = value.encode() if isinstance(value, str) else value
    return base64.b64encode(raw).decode("ascii")


def prefix_end(prefix: str | bytes) -> bytes:
    """The ``range_end`` that covers every key starting with ``prefix`` (etcd's ``WithPrefix``)."""
    raw = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\0"
    raw[-1] += 1
    return bytes(raw)


class EtcdMember:
    """One etcd process. Stopping or killing it keeps its data dir, so it can be started again."""

    def __init__(self, name: str, root: Path, binary: str) -> None:
        self.name = name
        self.client_port = free_port()
        self.peer_port = free_port()
        self.data_dir = root / f"{name}.etcd"
        self.log_path = root / f"{name}.log"
        self._binary = binary
        self._args: list[str] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<EtcdMember {self.name} {self.client_url} {state}>"

    def configure(self, args: Sequence[str]) -> None:
        self._args = list(args)

    def start(self, *, wait: bool = True, timeout: float = HEALTH_TIMEOUT) -> None:
        """Start (or restart) the process; with ``wait``, return once it answers ``/health``."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self._reap()
        self._log = open(self.log_path, "ab")  # closed in _reap
        self._process = subprocess.Popen(
            [self._binary, *self._args],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not for etcd
        )
        if wait:
            self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = HEALTH_TIMEOUT) -> None:
        """Wait until ``/health`` says true (the member has a leader and can serve reads)."""
        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"etcd member {self.name} exited with {self._process.returncode}:\n"
                    + self.log_tail()
                )
            if self.healthy():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"etcd member {self.name} not healthy after {timeout:g}s:\n" + self.log_tail()
                )
            time.sleep(0.05)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=1.0) as response:
                return bool(json.loads(response.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    def status(self) -> dict[str, Any]:
        """``/v3/maintenance/status``: ``leader`` and ``header.member_id`` (strings)."""
        return _post_sync(self.client_url + "/v3/maintenance/status", {})

    def leader_id(self) -> str | None:
        """The leader this member knows of ("0": none), or None if it does not answer."""
        try:
            return str(self.status().get("leader", "0"))
        except (OSError, ValueError):
            return None

    def wait_leaderless(self, timeout: float = HEALTH_TIMEOUT) -> None:
        """Wait until this member knows it has no leader (an election timeout after a loss)."""
        deadline = time.monotonic() + timeout
        while self.leader_id() != "0":
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} still follows a leader after {timeout:g}s")
            time.sleep(0.05)

    def is_leader(self) -> bool:
        try:
            status = self.status()
        except (OSError, ValueError):
            return False
        leader = str(status.get("leader", "0"))
        return leader != "0" and leader == str(status.get("header", {}).get("member_id"))

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL if it lingers. Safe to call when not running."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL at once: a crash, with no chance to hand leadership over."""
        self._end(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the process hangs with its connections open (a half-open peer)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        if self._process is not None:
            self._process.send_signal(signal.SIGCONT)

    def _end(self, sig: signal.Signals, deadline: float | None = None) -> None:
        self.signal(sig)
        self.finish(time.monotonic() + STOP_TIMEOUT if deadline is None else deadline)

    def signal(self, sig: signal.Signals) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            process.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM

    def finish(self, deadline: float) -> None:
        """Wait for the process to exit until ``deadline``, then SIGKILL it; close the log."""
        process = self._process
        if process is not None:
            try:
                process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._reap()

    def _reap(self) -> None:
        if self._process is not None:
            self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # async twins: the blocking waits run in a worker thread
    async def astart(self, *, wait: bool = True) -> None:
        await anyio.to_thread.run_sync(lambda: self.start(wait=wait))

    async def astop(self) -> None:
        await anyio.to_thread.run_sync(self.stop)

    async def akill(self) -> None:
        await anyio.to_thread.run_sync(self.kill)


class EtcdCluster:
    """``size`` etcd members on loopback; a context manager (sync or async) that always cleans up.

    ``progress_notify_interval`` is passed as ``--experimental-watch-progress-notify-interval``
    (etcd's own default is 10 minutes); ``auth_token_ttl`` as ``--auth-token-ttl`` (seconds a
    simple auth token lives after its last use; etcd's default is 300).
    """

    def __init__(
        self,
        size: int = 1,
        *,
        binary: str | None = None,
        progress_notify_interval: str = "1s",
        auth_token_ttl: int | None = None,
        heartbeat_ms: int = 100,
        election_ms: int = 1000,
        extra_args: Sequence[str] = (),
    ) -> None:
        found = binary or etcd_binary()
        if found is None:
            raise FileNotFoundError("no etcd binary: apt-get install etcd-server")
        self._binary = found
        self.size = size
        self._options = {
            "progress_notify_interval": progress_notify_interval,
            "auth_token_ttl": auth_token_ttl,
            "heartbeat_ms": heartbeat_ms,
            "election_ms": election_ms,
        }
        self._extra = list(extra_args)
        self._root: Path | None = None
        self.members: list[EtcdMember] = []

    @property
    def endpoints(self) -> list[str]:
        return [member.client_url for member in self.members]

    def start(self, timeout: float = HEALTH_TIMEOUT) -> None:
        self._root = Path(tempfile.mkdtemp(prefix="aioconfig-etcd-"))
        try:
            self.members = [EtcdMember(f"m{i}", self._root, self._binary) for i in range(self.size)]
            initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
            token = f"aioconfig-{uuid.uuid4().hex[:12]}"
            options = self._options
            for member in self.members:
                args = [
                    f"--name={member.name}",
                    f"--data-dir={member.data_dir}",
                    f"--listen-client-urls={member.client_url}",
                    f"--advertise-client-urls={member.client_url}",
                    f"--listen-peer-urls={member.peer_url}",
                    f"--initial-advertise-peer-urls={member.peer_url}",
                    f"--initial-cluster={initial}",
                    "--initial-cluster-state=new",
                    f"--initial-cluster-token={token}",
                    f"--heartbeat-interval={options['heartbeat_ms']}",
                    f"--election-timeout={options['election_ms']}",
                    "--logger=zap",
                    "--log-outputs=stderr",
                    f"--experimental-watch-progress-notify-interval="
                    f"{options['progress_notify_interval']}",
                ]
                if options["auth_token_ttl"] is not None:
                    args.append(f"--auth-token-ttl={options['auth_token_ttl']}")
                member.configure(args + self._extra)
            # All at once: a member of a new cluster waits for its peers before it is healthy.
            for member in self.members:
                member.start(wait=False)
            deadline = time.monotonic() + timeout
            for member in self.members:
                member.wait_healthy(max(0.1, deadline - time.monotonic()))
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill every member and remove the data. Idempotent; runs every step even on errors.

        SIGKILL, not SIGTERM: the data is thrown away, and a leader asked to stop first hands
        its leadership over, waiting up to 7 s when the peer it picked is stopping too.
        """
        try:
            for member in self.members:
                member.signal(signal.SIGKILL)
            deadline = time.monotonic() + STOP_TIMEOUT
            for member in self.members:
                member.finish(deadline)
        finally:
            if self._root is not None:
                shutil.rmtree(self._root, ignore_errors=True)
                self._root = None

    def leader(self, timeout: float = HEALTH_TIMEOUT) -> EtcdMember:
        """The member that is the raft leader now (waits, with a bound, for an election)."""
        deadline = time.monotonic() + timeout
        while True:
            for member in self.members:
                if member.running and member.is_leader():
                    return member
            if time.monotonic() > deadline:
                raise TimeoutError(f"no etcd leader after {timeout:g}s")
            time.sleep(0.05)

    def __enter__(self) -> EtcdCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> EtcdCluster:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)

    async def aleader(self) -> EtcdMember:
        return await anyio.to_thread.run_sync(self.leader)


def _post_sync(url: str, body: Mapping[str, Any], timeout: float = 2.0) -> dict[str, Any]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


class EtcdError(Exception):
    """A request to etcd failed: ``status`` is the HTTP status, ``body`` etcd's JSON error."""

    def __init__(self, url: str, status: int, body: str) -> None:
        self.url = url
        self.status = status
        self.body = body
        super().__init__(f"{url}: HTTP {status}: {body[:300]}")


class EtcdClient:
    """Writes to etcd over the JSON gateway, as the tests' other party. Use as a context manager.

    Each request goes to the first endpoint that answers; on a connection error or a 5xx it
    tries the next one (``attempts`` rounds), so writers keep going while a member is down.
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        token: str | None = None,
        timeout: float = 5.0,
        attempts: int = 1,
    ) -> None:
        self.endpoints = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        self.token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._attempts = attempts
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> EtcdClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self, path: str, body: Mapping[str, Any], *, anonymous: bool = False
    ) -> dict[str, Any]:
        """POST ``body`` to ``path`` (``/v3/kv/put``...) and return the decoded answer."""
        assert self._session is not None, "use EtcdClient as an async context manager"
        headers = {} if self.token is None or anonymous else {"Authorization": self.token}
        last: Exception | None = None
        for attempt in range(self._attempts):
            if attempt:
                await anyio.sleep(0.1)
            for endpoint in self.endpoints:
                url = endpoint + path
                try:
                    async with self._session.post(url, json=body, headers=headers) as response:
                        text = await response.text()
                        if response.status >= 500:
                            last = EtcdError(url, response.status, text)
                            continue
                        if response.status != 200:
                            raise EtcdError(url, response.status, text)
                        result: dict[str, Any] = json.loads(text)
                        return result
                # asyncio.TimeoutError: on 3.10 it is not the builtin TimeoutError
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    last = exc
        assert last is not None
        raise last

    async def put(self, key: str, value: str | bytes) -> int:
        """Put one key; returns the revision of the write."""
        answer = await self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})
        return int(answer["header"]["revision"])

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        body = {"key": b64(key)}
        if prefix:
            body["range_end"] = b64(prefix_end(key))
        answer = await self.call("/v3/kv/deleterange", body)
        return int(answer["header"]["revision"])

    async def txn(
        self, puts: Mapping[str, str | bytes] | None = None, deletes: Sequence[str] = ()
    ) -> int:
        """Several puts and deletes as one transaction: one revision for all of them."""
        success: list[dict[str, Any]] = [
            {"request_put": {"key": b64(k), "value": b64(v)}} for k, v in (puts or {}).items()
        ]
        success += [{"request_delete_range": {"key": b64(k)}} for k in deletes]
        answer = await self.call("/v3/kv/txn", {"success": success})
        return int(answer["header"]["revision"])

    async def get_prefix(self, prefix: str) -> tuple[int, dict[str, bytes]]:
        """(store revision, {key: raw value}) for every key under ``prefix``."""
        answer = await self.call(
            "/v3/kv/range", {"key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        )
        kvs = {
            base64.b64decode(kv["key"]).decode(): base64.b64decode(kv.get("value", ""))
            for kv in answer.get("kvs", [])
        }
        return int(answer["header"]["revision"]), kvs

    async def revision(self) -> int:
        answer = await self.call("/v3/kv/range", {"key": b64("\0"), "limit": 1})
        return int(answer["header"]["revision"])

    async def compact(self, revision: int | None = None) -> int:
        """Compact history up to ``revision`` (default: the current one); returns it."""
        if revision is None:
            revision = await self.revision()
        await self.call("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    async def authenticate(self, name: str, password: str) -> str:
        answer = await self.call(
            "/v3/auth/authenticate", {"name": name, "password": password}, anonymous=True
        )
        return str(answer["token"])

    async def enable_auth(
        self, *, root_password: str, user: str, password: str, prefix: str
    ) -> str:
        """Create root, a user that may read ``prefix``, and turn auth on.

        Returns a root token, for writing afterwards (also stored in ``self.token``).
        """
        await self.call("/v3/auth/user/add", {"name": "root", "password": root_password})
        await self.call("/v3/auth/role/add", {"name": "root"})
        await self.call("/v3/auth/user/grant", {"user": "root", "role": "root"})
        await self.call("/v3/auth/user/add", {"name": user, "password": password})
        await self.call("/v3/auth/role/add", {"name": f"{user}-read"})
        permission = {"permType": "READ", "key": b64(prefix), "range_end": b64(prefix_end(prefix))}
        await self.call("/v3/auth/role/grant", {"name": f"{user}-read", "perm": permission})
        await self.call("/v3/auth/user/grant", {"user": user, "role": f"{user}-read"})
        await self.call("/v3/auth/enable", {})
        self.token = await self.authenticate("root", root_password)
        return self.token

    async def disable_auth(self) -> None:
        await self.call("/v3/auth/disable", {})


@contextlib.contextmanager
def etcd_with(keys: Mapping[str, str]) -> Iterator[EtcdCluster]:
    """A one-member etcd holding ``keys``, for a test; fails under CI when etcd is missing.

    Tests that need etcd must fail, not skip, on a CI machine without it (``CI=true``).
    """
    require_etcd()

    async def put(endpoints: list[str]) -> None:
        async with EtcdClient(endpoints) as client:
            for key, value in keys.items():
                await client.put(key, value)

    with EtcdCluster() as etcd:
        anyio.run(put, list(etcd.endpoints))
        yield etcd
