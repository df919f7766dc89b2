"""Where recorded events go: the small transport contract and the transports that need nothing.

A transport has ``emit(events)`` and ``close()``. It raises :class:`TransportError` for events it
refused (they are counted, never retried) and :class:`TransportUnavailable` when it cannot
deliver now (the emitter keeps the batch and retries with backoff). Shipped here:
:class:`FileTransport` (OpenLineage JSON lines), :class:`MemoryTransport` (captures events; for
tests), :class:`NoopTransport` (the free default) and :class:`HttpTransport` (an ``opslineage
serve``, over HTTPS with certificates verified, with a bearer token). Writing to a store directly
(``opslineage.sdk.StoreTransport``) and NATS (``opslineage.bus.NatsTransport``) live in modules
of their own, loaded only when used.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

import msgspec

if TYPE_CHECKING:
    import http.client
    import ssl

__all__ = [
    "FileTransport",
    "HttpTransport",
    "MemoryTransport",
    "NoopTransport",
    "Transport",
    "TransportError",
    "TransportUnavailable",
]


class Transport(Protocol):
    """Sends OpenLineage events somewhere. May raise; the emitter catches and counts.

    A transport may also have a ``sink`` attribute naming where its events go (a URL, a path):
    events spilled while it was down are delivered only by a transport with the same ``sink``.
    """

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Deliver a batch of events."""

    def close(self) -> None:
        """Release resources."""


class NoopTransport:
    """Discards events: what a Tracer does when nothing is configured."""

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Do nothing."""

    def close(self) -> None:
        """Do nothing."""


class MemoryTransport:
    """Keeps every event in :attr:`events`, in order. The test helper for SDK users."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Append the batch."""
        self.events.extend(events)

    def close(self) -> None:
        """Nothing to release."""


class FileTransport:
    """Appends events as OpenLineage JSON lines to a file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.sink = str(self.path.resolve())
        self._file = self.path.open("ab")

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Write one line per event and flush."""
        self._file.write(b"".join(msgspec.json.encode(event) + b"\n" for event in events))
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class TransportError(Exception):
    """A transport refused ``refused`` events of a batch (the rest were delivered)."""

    def __init__(self, message: str, refused: int) -> None:
        super().__init__(message)
        self.refused = refused


class TransportUnavailable(Exception):
    """A transport cannot deliver now (its backend is down, locked or cannot be opened).

    The first ``delivered + refused`` events of the batch were dealt with (``refused`` of them
    refused; default none), and the emitter keeps the rest and retries them with backoff
    (spilling them to disk while this lasts).
    """

    def __init__(self, message: str, *, delivered: int = 0, refused: int = 0) -> None:
        super().__init__(message)
        self.delivered = delivered
        self.refused = refused


_BATCH_PATH = "/api/v1/lineage/batch"
_RETRIED_STATUSES = {408, 425, 429}  # and every 5xx: the server may take the events later
_UNAUTHORIZED = {401, 403}
_TOO_LARGE = 413
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

log = logging.getLogger("opslineage")


class HttpTransport:
    """Posts each batch to an ``opslineage serve`` (``POST /api/v1/lineage/batch``), over HTTPS
    with the server's certificate verified, or plain HTTP.

    Certificate verification is always on: against the system's CAs, or against ``ca_file``
    alone (a PEM bundle, e.g. the server's self-signed certificate). The token, given or from
    ``$OPSLINEAGE_TOKEN``, is sent as ``Authorization: Bearer``; a token over plain HTTP to
    another host than this one is warned about once. Redirects are not followed (the token goes
    to the URL given, nowhere else).

    Events the server rejects are refused (:class:`TransportError`, with the server's first
    reason). A batch bigger than the server's body limit (413) is sent again in halves; one event
    over it is refused. Everything that may pass (no connection, a timeout, a TLS handshake
    refused, a certificate that does not verify, a token refused with 401 or 403, a redirect, a
    5xx, 408 or 429) is :class:`TransportUnavailable`: the emitter keeps the events (spilling
    them) and retries with backoff, so fixing the configuration loses nothing.

    Args:
        url: the server's base URL, ``https://HOST[:PORT]`` (or ``http://``), optionally with a
            path prefix it is served under.
        token: the bearer token; default ``$OPSLINEAGE_TOKEN``; none is sent without either.
        ca_file: a PEM file of the CAs to trust instead of the system's (https only).
        timeout: seconds to wait to connect and for each answer.

    Raises:
        ValueError: the URL is not http(s) with a host, ``ca_file`` is given for an http URL or
            cannot be read as PEM certificates, or the token holds characters a header cannot.
    """

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        ca_file: str | Path | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{url!r} is not an HTTP server URL: give https://HOST[:PORT] (or http://)")
        if parts.username is not None or parts.query or parts.fragment:
            raise ValueError(f"{url!r}: give the token as token=, and no query or fragment in the URL")
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"{url!r} has an invalid port") from None
        self.url = url.rstrip("/")
        self.sink = self.url
        self.timeout = timeout
        self._host, self._port = parts.hostname, port
        self._path = parts.path.rstrip("/") + _BATCH_PATH
        self._https = parts.scheme == "https"
        self._context = self._tls_context(ca_file)
        token = token if token is not None else os.environ.get("OPSLINEAGE_TOKEN") or None
        if token is not None and (not token.strip() or any(c in token for c in "\r\n\0")):
            raise ValueError("the token is empty or holds a line break or NUL")
        self._headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token is not None:
            self._headers["Authorization"] = f"Bearer {token.strip()}"
            if not self._https and self._host not in _LOOPBACK:
                log.warning("opslineage: the token goes to %s over plain HTTP; use https://", self.url)
        self._connection: http.client.HTTPConnection | None = None

    def _tls_context(self, ca_file: str | Path | None) -> ssl.SSLContext | None:
        if not self._https:
            if ca_file is not None:
                raise ValueError(f"ca_file is for https URLs; {self.url} is http")
            return None
        import ssl  # noqa: PLC0415 (loaded only for an https transport)

        try:
            return ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
        except (OSError, ssl.SSLError) as error:
            reason = getattr(error, "strerror", None) or getattr(error, "reason", None) or error
            raise ValueError(f"ca_file {ca_file}: cannot be read as PEM certificates ({reason})") from None

    def emit(self, events: list[dict[str, Any]]) -> None:
        """Post the batch; a batch over the server's body limit goes again in halves.

        Raises:
            TransportError: events the server rejected (or too big for it alone); the rest were stored.
            TransportUnavailable: the server cannot take events now; the first ``delivered +
                refused`` of the batch were dealt with.
        """
        if not events:
            return
        try:
            body = msgspec.json.encode(events)
        except (TypeError, msgspec.EncodeError) as error:
            raise TransportError(f"events not JSON: {error}", refused=len(events)) from None
        status, answer = self._post(body)
        if status == _TOO_LARGE:
            if len(events) == 1:
                raise TransportError("an event bigger than the server's body limit (413)", refused=1)
            self._emit_halves(events)
            return
        if status == 200:
            rejected = answer.get("rejected", 0) if isinstance(answer, dict) else 0
            if rejected:
                results = answer.get("results", [])
                first: dict[str, Any] = next((r for r in results if r.get("status") == "rejected"), {})
                raise TransportError(
                    f"{rejected} event(s) rejected by {self.url}, first: {first.get('detail', '?')}",
                    refused=int(rejected),
                )
            return
        reason = f"{self.url} answered {status}: {_detail(answer)}"
        if status in _UNAUTHORIZED:
            raise TransportUnavailable(f"{reason} (check the token)")
        if 300 <= status < 400 or status >= 500 or status in _RETRIED_STATUSES:
            raise TransportUnavailable(reason)
        raise TransportError(reason, refused=len(events))

    def _emit_halves(self, events: list[dict[str, Any]]) -> None:
        middle = len(events) // 2
        refused, reasons = 0, []
        for start, half in ((0, events[:middle]), (middle, events[middle:])):
            try:
                self.emit(half)
            except TransportUnavailable as error:
                raise TransportUnavailable(
                    str(error), delivered=start - refused + error.delivered, refused=refused + error.refused
                ) from None
            except TransportError as error:
                refused += error.refused
                reasons.append(str(error))
        if refused:
            raise TransportError("; ".join(reasons), refused=refused)

    def _post(self, body: bytes) -> tuple[int, Any]:
        """The status and decoded JSON answer (None when not JSON) of one POST of ``body``.

        Raises:
            TransportUnavailable: no answer (no connection, TLS refused, a timeout).
        """
        import http.client  # noqa: PLC0415 (loaded only when a transport is made)

        try:
            connection = self._connection or self._connect()
            connection.request("POST", self._path, body=body, headers=self._headers)
            response = connection.getresponse()
            data = response.read()
            if response.will_close:
                self._close_connection()
        except (OSError, http.client.HTTPException) as error:
            self._close_connection()
            raise TransportUnavailable(f"cannot post to {self.url}: {_failure(error)}") from None
        try:
            answer = msgspec.json.decode(data) if data else None
        except msgspec.DecodeError:
            answer = None
        return response.status, answer

    def _connect(self) -> http.client.HTTPConnection:
        import http.client  # noqa: PLC0415 (loaded only when a transport is made)

        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        self._connection = connection
        return connection

    def _close_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def close(self) -> None:
        """Close the connection."""
        self._close_connection()


def _detail(answer: Any) -> str:
    """The reason in an opslineage error answer (``{"error", "detail"}``), else a placeholder."""
    if isinstance(answer, dict) and ("detail" in answer or "error" in answer):
        return str(answer.get("detail") or answer.get("error"))
    return "no JSON reason"


def _failure(error: BaseException) -> str:
    """A one-line reason for a failed request; a certificate that does not verify says so."""
    if type(error).__name__ == "SSLCertVerificationError":
        message = getattr(error, "verify_message", None) or str(error)
        return f"certificate verification failed ({message}); give ca_file= the CA that signed it"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def sink_of(transport: object) -> str:
    """Where ``transport`` sends its events: its ``sink``, else the name of its class."""
    return str(getattr(transport, "sink", None) or type(transport).__qualname__)
