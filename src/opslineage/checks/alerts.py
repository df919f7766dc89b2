"""Alerting owners of drift: a webhook (a JSON POST per drift, retried with backoff) and a NATS
subject per namespace (``opslineage.alerts.<namespace>``), each drift once until it changes again.

Which drift each channel was told of is kept in the store's settings under
``reconcile.alerted.<baseline>``: per channel, each drift's key and the fingerprint it was
alerted with. A drift that is gone is forgotten there, so it alerts again when it comes back; a
delivery that failed is not recorded, so it is tried again on the next run.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from opslineage.checks.reconcile import Drift, ReconcileReport
from opslineage.query import Reader

if TYPE_CHECKING:
    from opslineage.store import Store

__all__ = [
    "ALERT_SUBJECT",
    "AlertChannel",
    "NatsChannel",
    "WebhookChannel",
    "alert_payload",
    "send_alerts",
    "state_key",
]

ALERT_SUBJECT = "opslineage.alerts"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

log = logging.getLogger("opslineage")


def state_key(baseline: str) -> str:
    """The store setting that keeps which drifts of ``baseline`` were alerted on."""
    return f"reconcile.alerted.{baseline}"


def alert_payload(report: ReconcileReport, drift: Drift) -> dict[str, Any]:
    """The JSON document one drift is alerted as."""
    return {
        "type": "opslineage.drift",
        "baseline": report.baseline.name,
        "baseline_id": report.baseline.id,
        "clock": report.clock,
        **drift.to_dict(),
        "namespace": drift.namespace or report.baseline.namespace,
    }


class AlertChannel(Protocol):
    """Where alerts go: ``target`` names it in the kept state; ``send`` says which were delivered."""

    @property
    def target(self) -> str:
        """The channel's name in the kept state (its kind and address)."""

    def send(self, payloads: list[dict[str, Any]]) -> list[bool]:
        """Deliver each payload; True for each one delivered."""


@dataclass
class WebhookChannel:
    """A JSON POST of each alert to ``url``, tried ``attempts`` times with doubling waits from ``backoff`` s."""

    url: str
    attempts: int = 4
    backoff: float = 0.5
    timeout: float = 5.0

    def __post_init__(self) -> None:
        if not re.match(r"https?://[^/\s]+", self.url):
            raise ValueError(f"alert webhook {self.url!r} is not an http:// or https:// URL")

    @property
    def target(self) -> str:
        """The URL."""
        return f"webhook {self.url}"

    def send(self, payloads: list[dict[str, Any]]) -> list[bool]:
        """POST each payload; one that fails every attempt is logged once and reported undelivered."""
        return [self._post(payload) for payload in payloads]

    def _post(self, payload: dict[str, Any]) -> bool:
        body = json.dumps(payload, sort_keys=True).encode()
        error: Exception | None = None
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            request = urllib.request.Request(
                self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    response.read()
                return True
            except (urllib.error.URLError, OSError) as failure:
                error = failure
        log.warning(
            "alert webhook %s failed after %d attempts, %s not delivered: %s",
            self.url,
            self.attempts,
            payload["key"],
            error,
        )
        return False


@dataclass
class NatsChannel:
    """Each alert published on ``opslineage.alerts.<namespace>`` of the NATS server at ``url``,
    over TLS with ``tls`` (see :func:`opslineage.bus.streams.tls_context`)."""

    url: str
    tls: ssl.SSLContext | None = None

    @property
    def target(self) -> str:
        """The server URL."""
        return f"nats {self.url}"

    @staticmethod
    def subject(payload: dict[str, Any]) -> str:
        """The subject an alert goes on: its namespace as subject-safe tokens (``all`` when none)."""
        namespace = payload.get("namespace") or "all"
        return ALERT_SUBJECT + "." + ".".join(_UNSAFE.sub("_", part) or "_" for part in namespace.split("."))

    def send(self, payloads: list[dict[str, Any]]) -> list[bool]:
        """Publish every payload and flush; when NATS cannot be reached, log it and deliver none."""
        if not payloads:
            return []
        try:
            asyncio.run(self._publish(payloads))
        except Exception as error:
            log.warning(
                "alerts to NATS at %s not delivered (%d): %s",
                self.url,
                len(payloads),
                error or type(error).__name__,
            )
            return [False] * len(payloads)
        return [True] * len(payloads)

    async def _publish(self, payloads: list[dict[str, Any]]) -> None:
        import nats  # noqa: PLC0415 (nats-py loads only when alerts go to NATS)

        async def quiet(error: Exception) -> None:
            """Connection errors end in the exception connect raises; nats-py would log each one."""

        client = await nats.connect(
            self.url,
            connect_timeout=3,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            error_cb=quiet,
            tls=self.tls,
        )
        try:
            for payload in payloads:
                await client.publish(self.subject(payload), json.dumps(payload, sort_keys=True).encode())
            await client.flush(timeout=5)
        finally:
            await client.close()


def send_alerts(
    report: ReconcileReport, channels: list[AlertChannel], reader: Reader, store: Store
) -> dict[str, int]:
    """Alert each channel of the drifts it was not told of yet (or that changed since), and keep
    what was delivered in the store's settings. Returns how many alerts each channel took."""
    key = state_key(report.baseline.name)
    state: dict[str, dict[str, str]] = json.loads(reader.setting(key) or "{}")
    current = {drift.key for drift in report.drifts}
    sent: dict[str, int] = {}
    for channel in channels:
        told = {k: fingerprint for k, fingerprint in state.get(channel.target, {}).items() if k in current}
        new = [drift for drift in report.drifts if told.get(drift.key) != drift.fingerprint]
        delivered = channel.send([alert_payload(report, drift) for drift in new])
        told.update({drift.key: drift.fingerprint for drift, ok in zip(new, delivered, strict=True) if ok})
        state[channel.target] = told
        sent[channel.target] = sum(delivered)
    if channels:
        store.set_meta(key, json.dumps(state, sort_keys=True))
    return sent
