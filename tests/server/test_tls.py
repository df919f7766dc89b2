"""HTTPS: ``opslineage serve --tls-cert --tls-key`` with a self-signed certificate made here, fed by
the official openlineage-python client with its CA bundle set; a client without the CA and plain
HTTP to the TLS port store nothing; a bad certificate or key is one line and exit 2."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
from cryptography.hazmat.primitives import serialization

from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer, open_store
from opslineage.cli.main import main
from opslineage.query import why
from tls import CLI, HttpsServer, make_certificate, serving_https

pytest.importorskip("openlineage.client")

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

try:
    from openlineage.client.transport.http import HttpSslContextConfig
except ImportError:  # before openlineage-python 1.54, ``verify`` goes to requests, which takes a CA path
    HttpSslContextConfig = None

from opslineage.sdk.openlineage_client import OpenLineageClientTransport

TOKEN = "s3cret-tls"
NO_RETRY = {"total": 0, "connect": 0, "read": 0}


@pytest.fixture
def https(tmp_path: Path, store_url: str) -> Iterator[HttpsServer]:
    with serving_https(tmp_path, store_url, token=TOKEN) as server:
        yield server


def client_for(server: HttpsServer, *, ca: Path | None) -> OpenLineageClient:
    """The official client's HTTP transport to ``server``, with the bearer token and ``ca`` as its
    CA bundle (None: the system's CAs)."""
    trust: dict[str, Any] = {}
    if ca is not None:
        trust = (
            {"ssl_context": HttpSslContextConfig(ca_cert_path=str(ca))}
            if HttpSslContextConfig is not None
            else {"verify": str(ca)}
        )
    config = HttpConfig(url=server.url, auth=ApiKeyTokenProvider({"api_key": TOKEN}), retry=NO_RETRY, **trust)
    return OpenLineageClient(transport=HttpTransport(config))


def stored_events(server: HttpsServer) -> int:
    answer = httpx.get(f"{server.url}/readyz", verify=server.certificate.context(), timeout=10)
    return int(answer.json()["events"])


def one_event() -> RunEvent:
    return RunEvent(
        eventType=RunState.COMPLETE,
        eventTime="2026-01-05T12:00:00Z",
        run=Run(runId="0190a4b2-7c3e-7d1a-9f00-0000000000aa"),
        job=Job(namespace="tls", name="probe"),
        producer="https://example.com/tls-test",
    )


def test_the_official_client_with_the_ca_bundle_delivers_a_whole_chain_over_https(
    https: HttpsServer, store_url: str
) -> None:
    client = client_for(https, ca=https.certificate.cert)
    tracer = Tracer("x", transport=OpenLineageClientTransport(client), sync=True)
    chain = record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    assert tracer.stats.emitted == CHAIN_EVENTS

    assert stored_events(https) == CHAIN_EVENTS
    with open_store(store_url) as store:
        answer = why(store, "run:" + chain.action.run_id)
    assert answer.complete, answer.missing
    assert answer.decision is not None and answer.decision["id"] == chain.decision.id


def test_a_client_without_the_ca_is_refused_by_certificate_verification(https: HttpsServer) -> None:
    client = client_for(https, ca=None)
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        client.transport.emit(one_event())
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{https.url}/healthz", timeout=5)
    assert stored_events(https) == 0


def test_a_client_trusting_another_ca_is_refused(https: HttpsServer, tmp_path: Path) -> None:
    other = make_certificate(tmp_path, "other")
    client = client_for(https, ca=other.cert)
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        client.transport.emit(one_event())
    assert stored_events(https) == 0


def test_plain_http_to_the_tls_port_stores_nothing(https: HttpsServer) -> None:
    event = {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "https://example.com/tls-test",
        "run": {"runId": "0190a4b2-7c3e-7d1a-9f00-0000000000ab"},
        "job": {"namespace": "tls", "name": "plain"},
    }
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        answer = httpx.post(f"{https.plain_url}/api/v1/lineage", json=event, headers=headers, timeout=5)
    except httpx.TransportError:
        pass  # the server dropped the connection at the failed handshake
    else:
        assert answer.status_code >= 400
    # the TLS client of the test does get in, and finds nothing stored
    client = client_for(https, ca=https.certificate.cert)
    assert stored_events(https) == 0
    assert client.transport.emit(one_event()).status_code == 201
    assert stored_events(https) == 1


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    made = make_certificate(tmp_path)
    return made.cert, made.key


def test_tls_cert_and_key_go_together(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = f"sqlite:///{tmp_path / 'x.db'}"
    cert, key = pair
    assert main(["serve", "--store", store, "--tls-cert", str(cert)]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    assert main(["serve", "--store", store, "--tls-key", str(key)]) == 2
    assert "--tls-cert and --tls-key go together" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()  # refused before anything was made


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("missing-cert", "--tls-cert {cert}: No such file or directory"),
        ("missing-key", "--tls-key {key}: No such file or directory"),
        ("key-is-a-directory", "--tls-key {key}: Is a directory"),
        ("not-pem", "not a usable PEM certificate and key"),
        ("mismatched", "the key does not match the certificate"),
        ("encrypted", "--tls-key is encrypted"),
    ],
)
def test_a_bad_certificate_or_key_is_one_line_and_exit_2(
    which: str, expected: str, pair: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = pair
    if which == "missing-cert":
        cert = tmp_path / "absent.pem"
    elif which == "missing-key":
        key = tmp_path / "absent.key"
    elif which == "key-is-a-directory":
        key = tmp_path
    elif which == "not-pem":
        cert.write_text("not a certificate\n")
    elif which == "mismatched":
        key = make_certificate(tmp_path, "other").key
    else:
        key = _encrypted(key)
    tls = ["--tls-cert", str(cert), "--tls-key", str(key)]
    result = subprocess.run(
        [*CLI, "serve", "--store", f"sqlite:///{tmp_path / 'x.db'}", "--port", "0", *tls],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    assert expected.format(cert=cert, key=key) in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def _encrypted(key: Path) -> Path:
    loaded = serialization.load_pem_private_key(key.read_bytes(), None)
    target = key.with_name("encrypted.key")
    target.write_bytes(
        loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    return target
