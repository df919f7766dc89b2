"""NATS over TLS: a nats-server of the test's own with a certificate made here (and one requiring
client certificates), the producer and the worker connecting with ``tls://`` and a CA file; a
server they cannot verify, or one without TLS behind a ``tls://`` URL, is refused; the worker's
TLS options are checked before anything is started."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import CHAIN_EVENTS, NATS_URL, listening, nats_unavailable, record_chain, require_nats
from opslineage import Tracer, open_store
from opslineage.bus import NatsTransport
from opslineage.bus.streams import TlsRefused, tls_context
from opslineage.bus.worker import run_worker
from opslineage.cli.main import main
from opslineage.query import why
from tls import Certificate, free_port, make_certificate


class TlsNats:
    """A nats-server with TLS (and JetStream) on a free port; ``clients`` makes it require client
    certificates signed by that CA."""

    def __init__(self, directory: Path, *, clients: Certificate | None = None) -> None:
        binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
        if not Path(binary).exists():
            nats_unavailable("no nats-server binary to run a TLS server of the test's own")
        self.binary, self.directory = binary, directory
        self.certificate = make_certificate(directory, "nats")
        self.port = free_port()
        self.url = f"tls://127.0.0.1:{self.port}"
        tls = ["--tlscert", str(self.certificate.cert), "--tlskey", str(self.certificate.key)]
        tls += ["--tlsverify", "--tlscacert", str(clients.cert)] if clients else ["--tls"]
        self._start(tls)

    def restart_without_tls(self) -> None:
        """Stop the server and start it again on the same port and storage, in plain text."""
        self.stop()
        self._start([])

    def _start(self, tls: list[str]) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "-a",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-js",
                "-sd",
                str(self.directory / "js"),
                *tls,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not listening(self.port):
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                pytest.fail("the test's TLS nats-server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture
def tls_nats(tmp_path: Path) -> Iterator[TlsNats]:
    server = TlsNats(tmp_path)
    yield server
    server.stop()


def _stored(url: str) -> int:
    with open_store(url) as store:
        return store.counts()["events"]


def _store_until(bus: str, store: str, count: int, **options: object) -> int:
    """Run a worker until ``store`` holds ``count`` events (at most 30 s); how many it stored."""
    stop = threading.Event()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run_worker(bus, store, stop=stop, **options).stored),  # type: ignore[arg-type]
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + 30
    while _stored(store) < count and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.1)
    stop.set()
    thread.join(timeout=30)
    assert result, "the worker failed"
    return result[0]


def test_a_chain_goes_through_nats_over_tls_verified_against_the_ca_file(
    tls_nats: TlsNats, tmp_path: Path, store_url: str
) -> None:
    context = tls_context(tls_nats.certificate.cert)
    transport = NatsTransport(
        tls_nats.url, stream="TLS", subject="tls.events", spill_dir=tmp_path, tls=context
    )
    tracer = Tracer("tls.ns", transport=transport)
    chain = record_chain(tracer)
    tracer.close()
    assert tracer.stats.errors == 0, tracer.stats.last_error
    assert (transport.stats.published, transport.pending) == (CHAIN_EVENTS, 0)

    stored = _store_until(
        tls_nats.url,
        store_url,
        CHAIN_EVENTS,
        stream="TLS",
        subject="tls.events",
        tls=tls_context(tls_nats.certificate.cert),
    )
    assert stored == CHAIN_EVENTS
    with open_store(store_url) as store:
        assert why(store, "run:" + chain.action.run_id).complete


def test_the_demo_publishes_over_tls_with_a_ca_file_and_the_worker_stores_it(
    tls_nats: TlsNats, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = str(tls_nats.certificate.cert)
    flags = ["--bus", tls_nats.url, "--nats-ca", ca, "--stream", "TLSDEMO", "--subject", "tlsdemo.events"]
    assert main(["demo", *flags, "--hours", "6", "--services", "2", "--json"]) == 0
    sent = json.loads(capsys.readouterr().out)
    assert sent["published"] == sent["events"] > 0 and sent["pending"] == 0
    store = f"sqlite:///{tmp_path / 'x.db'}"
    with open_store(store) as made:  # made before the worker, which _stored polls beside
        assert made.counts()["events"] == 0
    options = {
        "stream": "TLSDEMO",
        "subject": "tlsdemo.events",
        "tls": tls_context(tls_nats.certificate.cert),
    }
    assert _store_until(tls_nats.url, store, sent["events"], **options) == sent["events"]


def test_a_server_certificate_the_worker_cannot_verify_is_refused(tls_nats: TlsNats, tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(TimeoutError, match="certificate verification failed"):
        run_worker(tls_nats.url, store, connect_timeout=3)  # the system's CAs do not know it
    other = make_certificate(tmp_path, "other")
    with pytest.raises(TimeoutError, match="certificate verification failed"):
        run_worker(tls_nats.url, store, connect_timeout=3, tls=tls_context(other.cert))


def test_a_tls_url_to_a_server_without_tls_is_refused_not_downgraded(tmp_path: Path) -> None:
    require_nats()
    plain = "tls://" + NATS_URL.partition("://")[2]
    with pytest.raises(TlsRefused, match="does not offer TLS"):
        run_worker(plain, f"sqlite:///{tmp_path / 'x.db'}", connect_timeout=5)
    assert (
        main(
            ["worker", "--bus", plain, "--store", f"sqlite:///{tmp_path / 'x.db'}", "--connect-timeout", "5"]
        )
        == 2
    )


def test_a_server_that_comes_back_without_tls_is_dropped_by_the_producer_and_the_worker(
    tls_nats: TlsNats, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    context = tls_context(tls_nats.certificate.cert)
    store = f"sqlite:///{tmp_path / 'x.db'}"
    transport = NatsTransport(
        tls_nats.url, stream="DOWN", subject="down.events", spill_dir=tmp_path, tls=context
    )
    tracer = Tracer("down.ns", transport=transport)
    record_chain(tracer)
    assert tracer.flush(timeout=20)
    assert transport.flush(timeout=20)  # acknowledged by JetStream
    assert transport.stats.published == CHAIN_EVENTS
    failures: list[BaseException] = []

    def work() -> None:
        try:
            run_worker(tls_nats.url, store, stream="DOWN", subject="down.events", tls=context)
        except BaseException as error:
            failures.append(error)

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while _stored(store) < CHAIN_EVENTS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _stored(store) == CHAIN_EVENTS

    tls_nats.restart_without_tls()
    worker.join(timeout=30)
    assert not worker.is_alive(), "the worker went on with a plain-text server"
    assert len(failures) == 1 and isinstance(failures[0], TlsRefused), failures
    deadline = time.monotonic() + 15
    while "came back without TLS; disconnected" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "came back without TLS; disconnected" in caplog.text
    transport.emit([{**record_one(), "eventTime": "2026-01-05T13:00:00Z"}])
    assert (transport.connected, transport.stats.published, transport.pending) == (False, CHAIN_EVENTS, 1)
    tracer.close(timeout=2)


def record_one() -> dict[str, object]:
    """One valid run event."""
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-05T12:00:00Z",
        "producer": "https://example.com/nats-tls",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0190a4b2-7c3e-7d1a-9f00-0000000000cc"},
        "job": {"namespace": "down.ns", "name": "after"},
    }


def test_a_server_requiring_client_certificates_takes_the_worker_with_one(tmp_path: Path) -> None:
    client = make_certificate(tmp_path, "client", client=True)
    server = TlsNats(tmp_path, clients=client)
    try:
        store = f"sqlite:///{tmp_path / 'x.db'}"
        without = tls_context(server.certificate.cert)
        with pytest.raises(TimeoutError, match=f"no NATS server answered at {server.url}"):
            run_worker(server.url, store, connect_timeout=3, tls=without)
        mutual = tls_context(server.certificate.cert, client.cert, client.key)
        transport = NatsTransport(
            server.url, stream="MTLS", subject="mtls.events", spill_dir=tmp_path, tls=mutual
        )
        tracer = Tracer("mtls.ns", transport=transport)
        record_chain(tracer)
        tracer.close()
        assert transport.stats.published == CHAIN_EVENTS
        assert (
            _store_until(server.url, store, CHAIN_EVENTS, stream="MTLS", subject="mtls.events", tls=mutual)
            == CHAIN_EVENTS
        )
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--nats-ca", "{tmp}/absent.pem"], "CA file {tmp}/absent.pem: no such file"),
        (["--nats-cert", "{cert}"], "a client certificate and its key go together"),
        (["--nats-key", "{key}"], "a client certificate and its key go together"),
        (["--nats-ca", "{bogus}"], "CA file {bogus}: cannot be read as PEM"),
        (["--nats-cert", "{cert}", "--nats-key", "{other}"], "the key does not match the certificate"),
    ],
)
@pytest.mark.parametrize("command", ["worker", "demo", "reconcile"])
def test_the_tls_options_are_checked_before_anything_starts(
    command: str, options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made, other = make_certificate(tmp_path), make_certificate(tmp_path, "other")
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate\n")
    names = {"tmp": tmp_path, "cert": made.cert, "key": made.key, "other": other.key, "bogus": bogus}
    argv = [command, *(["b1"] if command == "reconcile" else []), "--bus", "tls://127.0.0.1:1"]
    argv += ["--store", f"sqlite:///{tmp_path / 'x.db'}"]
    started = time.monotonic()
    assert main([*argv, *(option.format(**names) for option in options)]) == 2
    assert message.format(**names) in capsys.readouterr().err
    assert time.monotonic() - started < 5  # refused at once, not after waiting for NATS
    assert not (tmp_path / "x.db").exists()
