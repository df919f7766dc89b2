"""The audit page, ``GET /audit``: the transparency log's size and signed checkpoints, what its
integrity check finds, and for those who may read it (``access-log:read``) the access log, filtered
and paged as ``GET /api/v1/access-log`` answers it.

Each view proves the shown checkpoints against today's log (their signatures, and RFC 9162
consistency proofs), then runs the whole integrity check (``opslineage verify``'s integrity layer:
every event rebuilt) within a time budget of its own, unless the server already finished one of
the log at its present size. A check that does not finish within the budget goes on in the
background, one at a time, as an operation of the principal whose view started it; the next views
show it running, then its result. The page says which result it shows. Roles without ``log:verify`` or
``access-log:read`` see the page without those sections, and a note on why.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import Response

from opslineage.governance import OUTCOMES, AccessTrail, Permission, Principal
from opslineage.ledger.checkpoint import Checkpoint
from opslineage.ledger.keys import LogKeyError, load_public_key
from opslineage.ledger.verify import Finding, VerifyReport
from opslineage.model import InvalidEvent
from opslineage.query import QueryTimeout, Reader
from opslineage.query.reader import AccessRecord
from opslineage.server.pages.render import render
from opslineage.store import open_store

if TYPE_CHECKING:  # routes adds these pages
    from opslineage.server.pages.routes import PageContext

__all__ = [
    "KEPT_SECONDS",
    "VERIFY_SECONDS",
    "AccessFilter",
    "Audit",
    "FullCheck",
    "Integrity",
    "Recorded",
    "add_audit_pages",
    "audit",
    "witness_names",
]

VERIFY_SECONDS = 3.0
"""The integrity check's time budget on each view of the page."""
KEPT_SECONDS = 300.0
"""How long a finished whole check stands in for the next views of the same log size."""
_CHECKPOINTS = 20
_PAGE_SIZE = 50


@dataclass(frozen=True)
class AccessFilter:
    """What the access-log section asks for: by actor, naming node, of outcome, since, after seq."""

    actor: str | None = None
    node: str | None = None
    outcome: str | None = None
    since: str | None = None
    after: int = 0

    def query(self, after: int) -> dict[str, Any]:
        """The page's query string values for these filters, from sequence ``after``."""
        values = {"actor": self.actor, "node": self.node, "outcome": self.outcome, "since": self.since}
        return {key: value for key, value in values.items() if value} | {"after": after}


@dataclass
class FullCheck:
    """One finished run of the whole integrity check (every event rebuilt, every checkpoint)."""

    log_size: int
    events: int
    checkpoints: int
    findings: list[Finding]
    at: datetime


@dataclass
class Integrity:
    """What the page shows of the integrity layer. ``proved``: the checkpoints whose signature and
    consistency with today's log were checked on this view. ``state`` of the whole check:
    ``checked`` (on this view), ``recorded`` (an earlier view's, or the background's, of this same
    log size), ``running`` (over this view's budget, so going on in the background since
    ``started``; ``full`` is the newest earlier run, if any) or ``not-allowed``."""

    state: str
    proved: int = 0
    findings: list[Finding] = field(default_factory=list)
    full: FullCheck | None = None
    seconds: float = VERIFY_SECONDS
    started: datetime | None = None
    failure: str | None = None


class Recorded:
    """The newest whole integrity check a server's audit page finished, kept for the next views,
    and the one running in the background, if any.

    Args:
        store: the URL of the store the server serves (the background check opens its own).
        trail: where the background check's access event goes.
    """

    def __init__(self, store: str, trail: AccessTrail | None = None) -> None:
        self.store, self.trail = store, trail
        self.newest: FullCheck | None = None
        self.started: datetime | None = None
        self.failure: str | None = None
        self._lock = threading.Lock()

    def go_on(self, reader: Reader, size: int, key: Ed25519PublicKey | None) -> None:
        """Run the whole check of the log at ``size`` in the background for ``reader``'s
        principal, unless one is running already."""
        with self._lock:
            if self.started is not None:
                return
            self.started, self.failure = datetime.now(UTC), None
        work = threading.Thread(
            target=self._run, args=(reader.principal, reader.client, size, key), daemon=True
        )
        work.start()

    def _run(self, principal: Principal, client: str | None, size: int, key: Ed25519PublicKey | None) -> None:
        try:
            with open_store(self.store) as store:
                report = Reader(store, principal, self.trail, client).verify(key)
            self.newest = _whole(size, report)
        except Exception as error:  # the page says it; the access event recorded it as failed
            self.failure = f"{type(error).__name__}: {error}"
        finally:
            with self._lock:
                self.started = None


@dataclass
class Audit:
    """Everything the audit page shows."""

    log_size: int
    checkpoints: list[Checkpoint]
    integrity: Integrity
    access: list[AccessRecord] | None
    """None: the reader may not read the access log."""
    next_after: int | None = None


def audit(reader: Reader, wanted: AccessFilter, recorded: Recorded) -> Audit:
    """The audit page's reads, one operation of ``reader``; the whole integrity check last, since
    it runs within its own time budget.

    Raises:
        InvalidEvent: a filter the access log refuses (an unknown outcome, a bad ``since``).
    """
    access, next_after = None, None
    if reader.principal.can(Permission.READ_ACCESS_LOG):
        found = reader.access_log(
            actor=wanted.actor,
            node=wanted.node,
            outcome=wanted.outcome,
            since=_since(wanted.since),
            limit=_PAGE_SIZE + 1,
            after=wanted.after,
        )
        access = found[:_PAGE_SIZE]
        next_after = access[-1].seq if len(found) > _PAGE_SIZE else None
    size, checkpoints = reader.log_length(), reader.checkpoint_history(_CHECKPOINTS)
    return Audit(size, checkpoints, _integrity(reader, size, checkpoints, recorded), access, next_after)


def _integrity(reader: Reader, size: int, checkpoints: list[Checkpoint], recorded: Recorded) -> Integrity:
    """Each shown checkpoint proved against today's log, then the whole check within its budget,
    unless this server already finished one of the log at this size."""
    if not reader.principal.can(Permission.VERIFY):
        return Integrity("not-allowed")
    public = reader.log_public_key()
    try:
        key = load_public_key(public) if public else None
    except LogKeyError as error:
        return Integrity("checked", findings=[Finding(0, f"the log's public key cannot be read: {error}")])
    findings = [f for cp in checkpoints if key is not None for f in reader.verify_extends(cp, key)]
    proved = len(checkpoints) if key is not None else 0
    newest = recorded.newest
    if newest is not None and newest.log_size == size and _age(newest) < KEPT_SECONDS:
        return Integrity("recorded", proved, findings + newest.findings, newest)
    deadline = time.monotonic() + VERIFY_SECONDS

    def on_time(done: int, total: int) -> None:  # between chunks of events, on every backend
        if time.monotonic() > deadline:
            raise QueryTimeout(VERIFY_SECONDS)

    if recorded.started is None:
        try:
            with reader.within(VERIFY_SECONDS):  # within a statement, on SQLite
                report = reader.verify(key, on_time)
        except QueryTimeout:
            recorded.go_on(reader, size, key)
        else:
            recorded.newest = _whole(size, report)
            return Integrity("checked", proved, findings + recorded.newest.findings, recorded.newest)
    earlier = newest.findings if newest else []
    return Integrity(
        "running", proved, findings + earlier, newest, started=recorded.started, failure=recorded.failure
    )


def _whole(size: int, report: VerifyReport) -> FullCheck:
    """A finished whole check of the log at ``size``: its findings, the access log's too."""
    whole = list(report.findings)
    if report.access is not None:
        whole += [
            Finding(f.seq, f"access log, access event {f.seq}: {f.what}") for f in report.access.findings
        ]
    return FullCheck(size, report.events, report.checkpoints, whole, datetime.now(UTC))


def _age(check: FullCheck) -> float:
    return (datetime.now(UTC) - check.at).total_seconds()


def _since(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidEvent(f"since must be an ISO 8601 time (2026-12-04T18:00:00Z), not {text!r}") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def witness_names(checkpoint: Checkpoint) -> list[str]:
    """The names of the witnesses that cosigned ``checkpoint`` (``— <name> <signature>`` lines)."""
    return [line.split(" ")[1] for line in checkpoint.cosignatures if len(line.split(" ")) > 2]


def add_audit_pages(app: FastAPI, context: PageContext) -> None:
    """Add ``GET /audit`` to ``app``."""
    recorded = Recorded(context.settings.store, context.trail)

    @app.get("/audit", include_in_schema=False)
    def audit_page(
        request: Request,
        actor: str | None = None,
        node: str | None = None,
        outcome: str | None = None,
        since: str | None = None,
        after: int = 0,
    ) -> Response:
        wanted = AccessFilter(actor or None, node or None, outcome or None, since or None, max(0, after))
        shown = context.read(request, lambda reader: audit(reader, wanted, recorded))
        return render(
            request,
            "audit.html",
            audit=shown,
            wanted=wanted,
            outcomes=OUTCOMES,
            witnesses=witness_names,
            kept=KEPT_SECONDS,
        )
