"""TLS for the tests: self-signed certificates made on the spot, and ``opslineage serve`` over HTTPS."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from helpers import wait_until_serving

CLI = [sys.executable, "-c", "from opslineage.cli.main import main; raise SystemExit(main())"]


@dataclass(frozen=True)
class Certificate:
    """A PEM certificate and its key on disk; the certificate is its own CA (``cert`` is the bundle)."""

    cert: Path
    key: Path

    def context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate alone."""
        return ssl.create_default_context(cafile=str(self.cert))


def make_certificate(directory: Path, name: str = "server", *, client: bool = False) -> Certificate:
    """A self-signed certificate for ``127.0.0.1`` and ``localhost`` (SAN IP and DNS), valid for a
    day, written as ``NAME.pem`` and ``NAME.key`` (0600) in ``directory``; a client certificate
    (extended key usage clientAuth) with ``client``."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"opslineage test {name}")])
    now = datetime.now(UTC)
    usage = ExtendedKeyUsageOID.CLIENT_AUTH if client else ExtendedKeyUsageOID.SERVER_AUTH
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(IPv4Address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Certificate(cert_path, key_path)


def free_port() -> int:
    """A TCP port free on the loopback address now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class HttpsServer:
    """A running ``opslineage serve --tls-cert … --tls-key …``: its https and http base URLs."""

    url: str
    plain_url: str
    certificate: Certificate


@contextmanager
def serving_https(
    directory: Path, store_url: str, *, token: str | None = None, options: tuple[str, ...] = ()
) -> Iterator[HttpsServer]:
    """``opslineage serve`` on ``store_url`` over HTTPS, with a certificate made in ``directory``
    and ``options`` more, in its own process on a free port; stopped on exit."""
    certificate = make_certificate(directory)
    port = free_port()
    tls = ["--tls-cert", str(certificate.cert), "--tls-key", str(certificate.key)]
    env = {**os.environ, "OPSLINEAGE_KEY": str(directory / "none.key")}
    env.pop("OPSLINEAGE_TOKEN", None)
    process = subprocess.Popen(
        [
            *CLI,
            "serve",
            "--store",
            store_url,
            "--port",
            str(port),
            *tls,
            *(["--token", token] if token else []),
            *options,
        ],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    url = f"https://127.0.0.1:{port}"
    try:
        wait_until_serving(process, url, verify=certificate.context())
        yield HttpsServer(url, f"http://127.0.0.1:{port}", certificate)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
