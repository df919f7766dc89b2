"""The JetStream stream both ends of the bus share: its name, subjects and how to reach it.

This module owns what producers (:mod:`opslineage.bus.transport`) and ingestion workers
(:mod:`opslineage.bus.worker`) must agree on: the default stream and subject prefix, the subject
an event is published on (``<subject>.<namespace>``), the stream's definition
(:func:`ensure_stream`), the connection options that retry quietly, and TLS to the server
(:func:`tls_context`, :func:`check_tls`).
"""

from __future__ import annotations

import logging
import re
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.js import JetStreamContext, api
from nats.js.errors import BadRequestError, NotFoundError, ServiceUnavailableError

__all__ = [
    "DEFAULT_STREAM",
    "DEFAULT_SUBJECT",
    "DEFAULT_URL",
    "MSG_ID_HEADER",
    "UNSAFE_CHARACTERS",
    "StreamMismatch",
    "TlsRefused",
    "check_bus_url",
    "check_prefix",
    "check_tls",
    "connect_options",
    "describe",
    "ensure_stream",
    "event_subject",
    "offers_tls",
    "tls_context",
    "wants_tls",
]

DEFAULT_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "OPSLINEAGE"
DEFAULT_SUBJECT = "opslineage.events"
MSG_ID_HEADER = "Nats-Msg-Id"

_RECONNECT_WAIT = 1.0  # seconds between attempts to reach NATS
UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9_-]")
"""Characters a subject token (or a spill file name) may not hold."""

log = logging.getLogger("opslineage")


class StreamMismatch(Exception):
    """The stream exists but does not take the subjects this end publishes or consumes."""


BUS_SCHEMES = ("nats", "tls", "ws", "wss")
"""The URL schemes nats-py connects with."""


def check_bus_url(url: str) -> str:
    """``url`` checked as a NATS server URL (``nats://HOST:PORT``, or tls, ws, wss).

    Raises:
        ValueError: it is not one.
    """
    scheme, separator, rest = url.partition("://")
    if not separator or scheme.lower() not in BUS_SCHEMES or not rest.strip("/"):
        raise ValueError(
            f"{url!r} is not a NATS server URL: give nats://HOST:PORT"
            f" (or {', '.join(scheme + '://' for scheme in BUS_SCHEMES[1:])})"
        )
    return url


def check_prefix(subject: str) -> str:
    """``subject`` checked as a subject prefix: dot-separated tokens of ``[A-Za-z0-9_-]``.

    Raises:
        ValueError: it is not.
    """
    tokens = subject.split(".")
    if not subject or any(not token or UNSAFE_CHARACTERS.search(token) for token in tokens):
        raise ValueError(f"subject prefix {subject!r} must be dot-separated tokens of [A-Za-z0-9_-]")
    return subject


def _tokens(text: str) -> str:
    """``text`` as subject-safe tokens: split at dots, every other unsafe character made ``_``."""
    return ".".join(UNSAFE_CHARACTERS.sub("_", part) or "_" for part in text.split("."))


def event_subject(event: dict[str, Any], prefix: str = DEFAULT_SUBJECT, namespace: str | None = None) -> str:
    """The subject an event is published on: ``<prefix>.<namespace>``.

    Args:
        event: an OpenLineage event.
        prefix: the stream's subject prefix.
        namespace: the namespace to use; default, the event's job namespace (its dataset's for a
            DatasetEvent), sanitised to subject-safe tokens (``aiops.demo`` stays two tokens,
            ``postgres://db:5432`` becomes ``postgres___db_5432``).
    """
    if namespace is None:
        holder = event.get("job") or event.get("dataset")
        found = holder.get("namespace") if isinstance(holder, dict) else None
        namespace = found if isinstance(found, str) else ""
    return f"{prefix}.{_tokens(namespace)}"


def _covers(pattern: str, subject: str) -> bool:
    """Whether the stream subject ``pattern`` (with ``*`` and ``>``) takes every subject under ``subject``."""
    wanted = [*subject.split("."), ">"]
    have = pattern.split(".")
    for index, token in enumerate(have):
        if token == ">":
            return True
        if index >= len(wanted) or wanted[index] == ">" or token not in ("*", wanted[index]):
            return False
    return False


async def ensure_stream(js: JetStreamContext, stream: str, subject: str = DEFAULT_SUBJECT) -> api.StreamInfo:
    """The stream, created when missing: subjects ``<subject>.>``, file storage.

    An existing stream is used as it is, provided it takes ``<subject>.>``.

    Raises:
        StreamMismatch: the stream exists and does not take those subjects.
        nats.errors.Error: JetStream refused or did not answer.
    """
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        config = api.StreamConfig(name=stream, subjects=[f"{subject}.>"], storage=api.StorageType.FILE)
        try:
            return await js.add_stream(config)
        except BadRequestError:  # made meanwhile by another process, or the subjects overlap another stream
            info = await js.stream_info(stream)
    subjects = info.config.subjects or []
    if not any(_covers(pattern, subject) for pattern in subjects):
        raise StreamMismatch(f"stream {stream} takes {subjects}, not {subject}.>")
    return info


class TlsRefused(NatsError):
    """TLS was asked for (a ``tls://`` URL, or a TLS context) and the server does not offer it."""


def tls_context(
    ca_file: str | Path | None = None, cert_file: str | Path | None = None, key_file: str | Path | None = None
) -> ssl.SSLContext | None:
    """The client TLS context for a NATS server: its certificate verified against ``ca_file``
    (default: the system's CAs), and ``cert_file`` / ``key_file`` presented to it (mutual TLS);
    None when none is given.

    Raises:
        ValueError: only one of ``cert_file`` and ``key_file``, or a file that cannot be read as
            PEM (naming it), or a key that does not match the certificate.
    """
    if ca_file is None and cert_file is None and key_file is None:
        return None
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate and its key go together: give both, or neither")
    for what, path in (("CA file", ca_file), ("client certificate", cert_file), ("client key", key_file)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{what} {path}: no such file")
    try:
        context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    except (OSError, ssl.SSLError) as error:
        raise ValueError(
            f"CA file {ca_file}: cannot be read as PEM certificates ({_ssl_reason(error)})"
        ) from None
    if cert_file is not None:
        try:
            context.load_cert_chain(str(cert_file), str(key_file), password=_no_password)
        except (OSError, ssl.SSLError) as error:
            raise ValueError(
                f"client certificate {cert_file} / key {key_file}: not a usable PEM pair ({_ssl_reason(error)})"
            ) from None
    return context


def _no_password() -> str:
    raise ssl.SSLError("the key is encrypted; give an unencrypted key")


def _ssl_reason(error: BaseException) -> str:
    if "KEY_VALUES_MISMATCH" in str(error):
        return "the key does not match the certificate"
    return str(getattr(error, "reason", None) or getattr(error, "strerror", None) or error)


def wants_tls(url: str, tls: ssl.SSLContext | None) -> bool:
    """Whether a connection to ``url`` must be TLS: a ``tls://`` or ``wss://`` URL, or a context given."""
    return tls is not None or url.partition("://")[0].lower() in ("tls", "wss")


def offers_tls(nc: Client, url: str, tls: ssl.SSLContext | None) -> bool:
    """Whether the connection ``nc`` (just made, or just remade) is as secure as asked: TLS when
    :func:`wants_tls`. nats-py upgrades to TLS only when the server's INFO says ``tls_required``,
    whatever the URL's scheme, so a server (or a man in the middle) answering in plain text
    would otherwise be talked to in plain text."""
    if not wants_tls(url, tls) or url.partition("://")[0].lower() == "wss":
        return True
    info = getattr(nc, "_server_info", None) or {}
    return bool(info.get("tls_required"))


async def check_tls(nc: Client, url: str, tls: ssl.SSLContext | None) -> None:
    """Close ``nc`` and raise when TLS was asked for and the server did not offer it.

    Raises:
        TlsRefused: the connection is in plain text.
    """
    if not offers_tls(nc, url, tls):
        await nc.close()
        raise TlsRefused(f"the NATS server at {url} does not offer TLS; refusing a plain-text connection")


def connect_options(
    url: str,
    on_error: Callable[[Exception, int], None],
    tls: ssl.SSLContext | None = None,
    **callbacks: Any,
) -> dict[str, Any]:
    """Options for ``nats.connect`` that retry forever (the first connection too) and log quietly,
    over TLS with ``tls`` (see :func:`tls_context`; a ``tls://`` URL without one verifies the
    server against the system's CAs).

    nats-py logs every failed attempt with a traceback at ERROR unless given an ``error_cb``;
    this one hands every error (which may come before or after the connection was made) to
    ``on_error`` with how many there have been so far, and logs it at DEBUG.
    """
    errors = 0

    async def error_cb(error: Exception) -> None:
        nonlocal errors
        errors += 1
        on_error(error, errors)
        log.debug("NATS at %s: %s: %s", url, type(error).__name__, error)

    return {
        "servers": [url],
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": _RECONNECT_WAIT,
        "connect_timeout": 2,
        "error_cb": error_cb,
        **({"tls": tls} if tls is not None else {}),
        **callbacks,
    }


def describe(error: BaseException) -> str:
    """A one-line reason for a NATS failure (nats-py's own text can be ``description='None'``)."""
    if isinstance(error, ServiceUnavailableError | NoRespondersError):
        return "JetStream is not available on that server (nats-server needs -js)"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS certificate verification failed ({error.verify_message}); give the CA that signed it"
    return str(error) or type(error).__name__
