"""AzureAppConfig with Entra tokens: a real SecretClient against a loopback Key Vault, and a
token credential against the loopback App Configuration, both over TLS (azure-core sends a
bearer token over https only), with a CA made here and trusted through
``client_options={"connection_verify": ca_file}``.

The vault answers as Key Vault does: a request without a token gets a 401 whose
``WWW-Authenticate: Bearer authorization=..., resource=...`` challenge tells SecretClient which
token to ask the credential for. SecretClient checks that the vault's host lies under the
challenge's resource; for 127.0.0.1 the resource ``https://0.0.1:<port>`` passes that check.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from azure.core.credentials import AccessToken
from azure_server import CREDENTIAL_ID, KEYVAULT_REF, SECRET, Store, app
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from aioconfig.azure import load

pytestmark = pytest.mark.anyio

TOKEN = "entra-token-1"
TENANT = "72f988bf-0000-0000-0000-000000000000"


class Credential:
    """An azure.core AsyncTokenCredential, as azure.identity's are, handing out one token."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(TOKEN, int(time.time()) + 3600)

    async def close(self) -> None:
        pass

    async def __aenter__(self) -> Credential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        pass


def _tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server context for 127.0.0.1 signed by a new CA; and the CA's file, to trust."""
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1))

    def certificate(subject: str, key: Any, issuer: x509.Name, signer: Any, ca: bool) -> Any:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(valid[0])
            .not_valid_after(valid[1])
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
            builder = builder.add_extension(usage, critical=True).add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
        else:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(signer.public_key()),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aioconfig test CA")])
    ca = certificate("aioconfig test CA", ca_key, ca_name, ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = certificate("127.0.0.1", key, ca_name, ca_key, ca=False)
    ca_file = directory / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = directory / "server.pem"
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    return context, ca_file


class Vault:
    """Key Vault's GET /secrets/{name}[/{version}], behind its bearer challenge."""

    def __init__(self, secrets: dict[str, str]) -> None:
        self.secrets = secrets
        self.url = ""
        self.requests: list[tuple[str, int]] = []  # (path, status)

    def app(self) -> web.Application:
        async def get_secret(request: web.Request) -> web.StreamResponse:
            response = self.answer(request)
            self.requests.append((request.path, response.status))
            return response

        application = web.Application()
        application.router.add_get("/secrets/{name}", get_secret)
        application.router.add_get("/secrets/{name}/", get_secret)
        application.router.add_get("/secrets/{name}/{version}", get_secret)
        return application

    def answer(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            port = request.url.port
            challenge = (
                f'Bearer authorization="https://login.microsoftonline.com/{TENANT}", '
                f'resource="https://0.0.1:{port}"'
            )
            return web.json_response(
                {"error": {"code": "Unauthorized"}},
                status=401,
                headers={"WWW-Authenticate": challenge},
            )
        name = request.match_info["name"]
        version = request.match_info.get("version") or "current"
        if name not in self.secrets:
            return web.json_response({"error": {"code": "SecretNotFound"}}, status=404)
        return web.json_response(
            {
                "value": self.secrets[name],
                "id": f"{self.url}/secrets/{name}/{version}",
                "attributes": {"enabled": True},
            }
        )


async def _serve(application: web.Application, context: ssl.SSLContext | None) -> Any:
    runner = web.AppRunner(application, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"{'https' if context else 'http'}://{host}:{port}"


@pytest.fixture
async def tls(tmp_path: Path) -> AsyncIterator[tuple[ssl.SSLContext, Path]]:
    yield _tls(tmp_path)


async def test_key_vault_references_are_read_with_a_real_secret_client(
    tls: tuple[ssl.SSLContext, Path],
) -> None:
    context, ca_file = tls
    vault = Vault({"db-password": "hunter2-kv", "api-key": "k3y"})
    vault_runner, vault.url = await _serve(vault.app(), context)
    store = Store()
    store_runner, store_url = await _serve(app(store), None)
    try:
        store.set("app:plain", "blue")
        ref = json.dumps({"uri": f"{vault.url}/secrets/db-password/v1"})
        store.set("app:db", ref, content_type=KEYVAULT_REF)
        ref = json.dumps({"uri": f"{vault.url}/secrets/api-key"})
        store.set("app:key", ref, content_type=KEYVAULT_REF)
        credential = Credential()
        async with load(
            connection_string=f"Endpoint={store_url};Id={CREDENTIAL_ID};Secret={SECRET}",
            keyvault_credential=credential,
            client_options={"connection_verify": str(ca_file)},
            startup_timeout=5,
        ) as config:
            assert config["app:db"] == "hunter2-kv" and config["app:key"] == "k3y"
            assert config.snapshot.is_secret("app:db")
            assert "hunter2" not in repr(config.snapshot)
        # The challenge first, then the token it named; one SecretClient for the vault.
        assert vault.requests[0] == ("/secrets/db-password/v1", 401)
        assert ("/secrets/db-password/v1", 200) in vault.requests
        port = vault.url.rsplit(":", 1)[1]
        assert credential.scopes[0] == (f"https://0.0.1:{port}/.default",)
    finally:
        await vault_runner.cleanup()
        await store_runner.cleanup()


async def test_an_entra_token_credential_is_accepted(tls: tuple[ssl.SSLContext, Path]) -> None:
    context, ca_file = tls
    store = Store()
    store.bearer = TOKEN
    store.set("app:color", "blue")
    runner, url = await _serve(app(store), context)
    try:
        credential = Credential()
        options = {"connection_verify": str(ca_file)}
        async with load(url, credential, client_options=options, startup_timeout=5) as c:
            assert c["app:color"] == "blue"
        assert credential.scopes  # the token came from the credential
        assert all(status == 200 for _, _, status in store.requests)
    finally:
        await runner.cleanup()
