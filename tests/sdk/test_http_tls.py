"""The SDK's own :class:`HttpTransport` against a real ``opslineage serve`` over HTTPS: certificates
verified by default (the system's CAs, or ``ca_file``), the token (given or ``$OPSLINEAGE_TOKEN``)
sent as a bearer token, rejections counted, a batch over the body limit sent in halves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import CHAIN_EVENTS, record_chain
from opslineage import Tracer, open_store
from opslineage.query import why
from opslineage.sdk import HttpTransport, TransportError, TransportUnavailable
from tls import HttpsServer, free_port, make_certificate, serving_https

TOKEN = "s3cret-sdk"
MAX_BODY = 8192


@pytest.fixture
def https(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[HttpsServer]:
    monkeypatch.delenv("OPSLINEAGE_TOKEN", raising=False)
    with serving_https(tmp_path, store_url, token=TOKEN, options=("--max-body", str(MAX_BODY))) as server:
        yield server


def event(number: int, padding: int = 0) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "https://example.com/sdk-tls",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": f"0190a4b2-7c3e-7d1a-9f00-{number:012x}"},
        "job": {"namespace": "tls", "name": f"job-{number}"},
        **({"inputs": [{"namespace": "tls", "name": "x" * padding}]} if padding else {}),
    }


def stored(store_url: str) -> int:
    with open_store(store_url) as store:
        return store.log_size()


def test_a_chain_sent_with_ca_file_and_token_is_stored_whole(https: HttpsServer, store_url: str) -> None:
    transport = HttpTransport(https.url, token=TOKEN, ca_file=https.certificate.cert)
    assert transport.sink == https.url
    tracer = Tracer("x", transport=transport, sync=True)
    chain = record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    assert tracer.stats.emitted == CHAIN_EVENTS
    assert stored(store_url) == CHAIN_EVENTS
    with open_store(store_url) as store:
        answer = why(store, "run:" + chain.action.run_id)
    assert answer.complete, answer.missing


def test_the_certificate_is_verified_by_default_and_nothing_is_lost(
    https: HttpsServer, store_url: str
) -> None:
    transport = HttpTransport(https.url, token=TOKEN)  # the system's CAs do not know the test's certificate
    with pytest.raises(TransportUnavailable, match=r"certificate verification failed.*give ca_file="):
        transport.emit([event(1)])
    transport.close()
    other = HttpTransport(
        https.url, token=TOKEN, ca_file=make_certificate(https.certificate.cert.parent, "x").cert
    )
    with pytest.raises(TransportUnavailable, match="certificate verification failed"):
        other.emit([event(1)])
    other.close()
    assert stored(store_url) == 0

    tracer = Tracer("x", transport=HttpTransport(https.url, token=TOKEN))
    chain = record_chain(tracer)
    assert not tracer.flush(timeout=2)
    status = tracer.status()
    tracer.close(timeout=5)
    assert (status.refused, status.available) == (0, False)  # kept for a retry, not refused
    assert "certificate verification failed" in (status.last_error or "")
    assert (tracer.stats.spilled, tracer.stats.errors, tracer.stats.dropped) == (CHAIN_EVENTS, 0, 0)
    assert stored(store_url) == 0

    fixed = Tracer("x", transport=HttpTransport(https.url, token=TOKEN, ca_file=https.certificate.cert))
    fixed.emit(event(99))  # the spill of the same URL goes first, once the CA is given
    assert fixed.flush(timeout=30)
    fixed.close()
    assert stored(store_url) == CHAIN_EVENTS + 1
    with open_store(store_url) as store:
        assert why(store, "run:" + chain.action.run_id).complete


def test_the_token_comes_from_opslineage_token_and_a_wrong_one_is_refused(
    https: HttpsServer, store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = https.certificate.cert
    with pytest.raises(TransportUnavailable, match=r"401.*check the token"):
        HttpTransport(https.url, ca_file=ca).emit([event(1)])
    with pytest.raises(TransportUnavailable, match="401"):
        HttpTransport(https.url, ca_file=ca, token="wrong").emit([event(1)])
    assert stored(store_url) == 0

    monkeypatch.setenv("OPSLINEAGE_TOKEN", TOKEN)
    from_env = HttpTransport(https.url, ca_file=ca)
    from_env.emit([event(1), event(2)])
    from_env.close()
    assert stored(store_url) == 2
    with pytest.raises(TransportUnavailable, match="401"):  # a token given wins over the variable
        HttpTransport(https.url, ca_file=ca, token="wrong").emit([event(3)])


def test_rejected_events_are_refused_and_the_rest_stored(https: HttpsServer, store_url: str) -> None:
    transport = HttpTransport(https.url, token=TOKEN, ca_file=https.certificate.cert)
    broken = {**event(2), "eventTime": "not a time"}
    with pytest.raises(TransportError, match=r"1 event\(s\) rejected.*eventTime") as refused:
        transport.emit([event(1), broken, event(3)])
    assert refused.value.refused == 1
    assert stored(store_url) == 2


def test_a_batch_over_the_body_limit_goes_in_halves_and_an_event_over_it_alone_is_refused(
    https: HttpsServer, store_url: str
) -> None:
    transport = HttpTransport(https.url, token=TOKEN, ca_file=https.certificate.cert)
    events = [event(n, padding=1500) for n in range(1, 13)]  # about 20 KiB, the limit 8 KiB
    transport.emit(events)
    assert stored(store_url) == 12
    with pytest.raises(TransportError, match="bigger than the server's body limit") as refused:
        transport.emit([event(20), event(21, padding=MAX_BODY), event(22)])
    assert refused.value.refused == 1
    assert stored(store_url) == 14


def test_no_server_is_unavailable_not_a_refusal(tmp_path: Path) -> None:
    certificate = make_certificate(tmp_path)
    transport = HttpTransport(f"https://127.0.0.1:{free_port()}", ca_file=certificate.cert, timeout=2)
    with pytest.raises(TransportUnavailable, match=r"cannot post to https://127.0.0.1"):
        transport.emit([event(1)])


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("ftp://127.0.0.1", {}, "is not an HTTP server URL"),
        ("https://", {}, "is not an HTTP server URL"),
        ("https://user:pw@127.0.0.1", {}, "give the token as token="),
        ("https://127.0.0.1:99999", {}, "invalid port"),
        ("http://127.0.0.1:5000", {"ca_file": "ca.pem"}, "ca_file is for https URLs"),
        (
            "https://127.0.0.1:5000",
            {"ca_file": "/nonexistent/ca.pem"},
            "ca_file /nonexistent/ca.pem: cannot be read",
        ),
        ("https://127.0.0.1:5000", {"token": "a\r\nX-Evil: 1"}, "line break"),
        ("https://127.0.0.1:5000", {"token": " "}, "empty"),
    ],
)
def test_bad_options_are_a_clear_value_error(url: str, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HttpTransport(url, **options)


def test_a_file_that_is_not_pem_is_no_ca_file(tmp_path: Path) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("not a certificate\n")
    with pytest.raises(ValueError, match=f"ca_file {bogus}: cannot be read as PEM"):
        HttpTransport("https://127.0.0.1:5000", ca_file=bogus)


def test_a_token_over_plain_http_to_another_host_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    HttpTransport("http://127.0.0.1:5000", token=TOKEN)
    assert not caplog.records
    HttpTransport("http://lineage.example.com:5000", token=TOKEN)
    assert "over plain HTTP" in caplog.text
    assert TOKEN not in caplog.text
