"""The access log: every read and every refused attempt, in a tamper-evident Merkle log of its own.

:class:`AccessLog` is the store-backed :class:`~opslineage.governance.AccessTrail`. Each access
event is kept as its RFC 8785 canonical JSON; leaf ``seq - 1`` of the access log is the RFC 9162
leaf hash of those bytes, appended with the event in one transaction (the store's
:class:`~opslineage.store.AccessLogStorage`), beside the lineage log and hashed the same way. Its
checkpoints are signed with the lineage log's key under the origin line ``<origin>/access``, when
the lineage log's cadence says one is due.

**Fail-closed**, in one of two ways:

- waiting (the default): :meth:`AccessLog.record` returns only once the event is committed; a
  read whose event cannot be written (the store refuses it, is unreachable, or does not answer
  within the timeout) gets :class:`AccessLogUnavailable` instead of its answer, so nothing is
  served unaudited. Records made at the same time by many threads share transactions (group
  commit): the thread that finds no write under way writes its event with every one queued
  meanwhile; the others wait for that commit, or write the next group. The reading threads write
  themselves: a hand-over to a writer thread was measured at 0.35 ms more per read than the
  commit (see :mod:`opslineage.ingest._group` for the same finding).
- queued (``wait=False``): the event is queued and a background thread writes the queue, as much
  of it per transaction as has arrived; the read is answered at once. Once a write has failed,
  or the queue holds more than ``backlog`` events or one older than ``lag`` seconds, every read
  is refused until the queue is written (the thread keeps trying; nothing queued is dropped).
  What this allows: reads answered within the last ``lag`` seconds before the store failed are
  audited only once it comes back, and lost if the process dies first.

:func:`verify_access_log` recomputes every leaf from the stored rows and the tree from the
leaves, and checks every stored node and every checkpoint's signature, origin and root.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from opslineage.ledger._checks import CHUNK, Finding, check_checkpoint, check_nodes
from opslineage.ledger.checkpoint import Checkpoint, CheckpointError, parse_note, sign
from opslineage.ledger.keys import LogKeyError, load_private_key
from opslineage.ledger.log import (
    checkpoint_due,
    checkpoint_policy,
    log_key_path,
    prove_consistency,
    prove_inclusion,
    signing_origin,
    tree_root,
)
from opslineage.merkle import CompactRange, leaf_hash
from opslineage.model import canonical_json
from opslineage.store import AccessEventRow, AccessRow, CheckpointRow, Store, StoreError, StoreUnavailable

if TYPE_CHECKING:
    from opslineage.governance import AccessEvent

__all__ = [
    "ACCESS_SUFFIX",
    "RETRY_SECONDS",
    "AccessLog",
    "AccessLogReport",
    "AccessLogUnavailable",
    "access_checkpoint",
    "access_consistency",
    "access_inclusion",
    "access_origin",
    "access_root",
    "access_row",
    "latest_access_checkpoint",
    "verify_access_log",
]

ACCESS_SUFFIX = "/access"
"""What the access log's origin line adds to the lineage log's."""

RETRY_SECONDS = 0.2
"""How long the background writer waits before it tries a failed write again, or ends when idle."""

_log = logging.getLogger(__name__)


class AccessLogUnavailable(StoreUnavailable):
    """An access event could not be written, so the read it records is refused (fail-closed)."""


def access_row(event: AccessEvent) -> AccessRow:
    """The row an access event is stored as: its canonical JSON and the columns searches use (the
    node ids it names, and its target).

    Raises:
        ValueError: ``event.at`` is not an ISO 8601 time.
    """
    body = canonical_json(msgspec.to_builtins(event))
    at = datetime.fromisoformat(event.at)
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    nodes = dict.fromkeys([*event.nodes, *([event.target] if event.target else [])])
    return AccessRow(at, event.actor, event.outcome, event.name, body, tuple(nodes))


@dataclass(slots=True)
class _Pending:
    row: AccessRow
    done: bool = False
    error: Exception | None = None
    queued: float = field(default_factory=time.monotonic)


class AccessLog:
    """The access trail kept in the store's access log (see the module's description).

    Args:
        store: where the events go; the recording threads write through it in turn (give a
            SQLite store a connection of its own when other threads use theirs at the same time).
        key: the log's private key file (default: ``$OPSLINEAGE_KEY``, else where ``init`` put
            it); without one, no access checkpoint is signed.
        timeout: seconds a read waits for another thread's write to take its event before it is
            refused (a write of its own is bounded by the store's lock timeout).
        max_batch: the most events one transaction takes.
        durable: each commit is synced to disk (the default); when false, a commit survives
            the process crashing but not the machine losing power.
        wait: each read waits for its event's commit (the default); when false, events are
            queued for a background thread (see the module's description).
        backlog: with ``wait`` false, the most events queued before reads are refused.
        lag: with ``wait`` false, the most seconds an event waits in the queue before reads are refused.
    """

    def __init__(
        self,
        store: Store,
        *,
        key: str | None = None,
        timeout: float = 10.0,
        max_batch: int = 1000,
        durable: bool = True,
        wait: bool = True,
        backlog: int = 10_000,
        lag: float = 1.0,
    ) -> None:
        self.store = store
        self._durable, self._wait, self._backlog, self._lag = durable, wait, backlog, lag
        self._failure: Exception | None = None  # the last write's error, while the queue is unwritten
        self._writer: threading.Thread | None = None
        self._key = key
        self._timeout = timeout
        self._max_batch = max_batch
        self._queue: list[_Pending] = []
        self._busy = False  # a thread is writing a group
        self._closed = False
        self._wake = threading.Condition()
        self._signer: tuple[Ed25519PrivateKey, str, tuple[int, int]] | None = None
        self._looked_up = False  # for the key and the latest checkpoint, on the first commit
        self._signed: Checkpoint | None = None
        self.commits = 0
        """Transactions written so far (fewer than the events when records came together)."""

    def record(self, event: AccessEvent) -> None:
        """Keep ``event``; returns once it is committed. While another thread writes, the event
        waits in the queue and goes into the next transaction, with every other one queued.

        Raises:
            AccessLogUnavailable: it could not be written, or not within the timeout, or the log
                is closed: the operation it records must not be answered.
        """
        pending = _Pending(access_row(event))
        deadline = time.monotonic() + self._timeout
        with self._wake:
            if self._closed:
                raise AccessLogUnavailable("the access log is closed: the read is refused")
            if not self._wait:
                self._enqueue(pending)
                return
            self._queue.append(pending)
            while self._busy and not pending.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    if pending in self._queue:  # not taken yet: it will not be written
                        self._queue.remove(pending)
                    raise AccessLogUnavailable(
                        f"the access log did not record {event.name!r} within {self._timeout:g} s:"
                        " the read is refused"
                    )
                self._wake.wait(left)
            group = [] if pending.done else self._take()
        if group:
            self._commit(group)
        if pending.error is not None:
            raise AccessLogUnavailable(
                f"the access log cannot be written ({pending.error}): the read is refused"
            ) from pending.error

    def _enqueue(self, pending: _Pending) -> None:
        """Queue ``pending`` for the background writer (the caller holds the lock).

        Raises:
            AccessLogUnavailable: a write failed, or the queue is over its bounds: the read is refused.
        """
        if self._failure is not None:
            raise AccessLogUnavailable(
                f"the access log cannot be written ({self._failure}): the read is refused"
            ) from self._failure
        if len(self._queue) >= self._backlog or (
            self._queue and time.monotonic() - self._queue[0].queued > self._lag
        ):
            raise AccessLogUnavailable(
                f"the access log is {len(self._queue)} event(s) behind: the read is refused"
            )
        self._queue.append(pending)
        if self._writer is None:
            self._writer = threading.Thread(target=self._drain, name="opslineage-access-log", daemon=True)
            self._writer.start()
        self._wake.notify_all()

    def _drain(self) -> None:
        """The background writer: write the queue, as much per transaction as has arrived; after a
        failure keep the events and try again (reads are refused meanwhile); end when closed and
        written, or after :data:`RETRY_SECONDS` with nothing queued."""
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._queue or self._closed, RETRY_SECONDS)
                if not self._queue:
                    self._writer = None
                    self._wake.notify_all()
                    return
                group, self._busy = self._queue[: self._max_batch], True
            try:
                self.store.append_access([pending.row for pending in group], durable=self._durable)
                self.commits += 1
                self._checkpoint_if_due()
            except Exception as error:  # kept queued; reads are refused until it is written
                with self._wake:
                    self._failure, self._busy = error, False
                    self._wake.notify_all()
                    self._wake.wait(RETRY_SECONDS)
                continue
            with self._wake:
                del self._queue[: len(group)]
                self._failure, self._busy = None, False
                self._wake.notify_all()

    def flush(self, timeout: float | None = None) -> None:
        """Write every event queued so far (or let it fail), waiting for a write under way.

        Raises:
            AccessLogUnavailable: (queued mode) the queue could not be written within ``timeout``
                seconds (default: the log's timeout).
        """
        if not self._wait:
            with self._wake:
                written = self._wake.wait_for(
                    lambda: not self._queue, self._timeout if timeout is None else timeout
                )
                if not written:
                    raise AccessLogUnavailable(
                        f"{len(self._queue)} access event(s) are not written ({self._failure})"
                    )
            return
        while True:
            with self._wake:
                self._wake.wait_for(lambda: not self._busy)
                if not self._queue:
                    return
                group = self._take()
            self._commit(group)

    def close(self) -> None:
        """Write what is queued; later records are refused. The store stays open (its owner closes it).

        Raises:
            AccessLogUnavailable: (queued mode) what is queued could not be written within the timeout.
        """
        with self._wake:
            self._closed = True
            self._wake.notify_all()
        self.flush()
        writer = self._writer
        if writer is not None:
            writer.join()

    def __enter__(self) -> AccessLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _take(self) -> list[_Pending]:
        """The next group, oldest first; the caller (holding the lock) becomes its writer."""
        group, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
        self._busy = True
        return group

    def _commit(self, group: list[_Pending]) -> None:
        """Write ``group`` in one transaction, then answer every thread waiting on it."""
        error: Exception | None = None
        try:
            self.store.append_access([pending.row for pending in group], durable=self._durable)
            self.commits += 1
            self._checkpoint_if_due()
        except Exception as failed:  # every reader in the group is refused, with the reason
            error = failed
        finally:
            with self._wake:
                for pending in group:
                    pending.done, pending.error = True, error
                self._busy = False
                self._wake.notify_all()

    def _checkpoint_if_due(self) -> None:
        """Sign an access checkpoint when the lineage log's cadence says one is due. One that
        cannot be signed is logged and tried after a later commit: the events are committed, so
        it is no reason to refuse their reads."""
        try:
            if not self._looked_up:
                self._signer, self._looked_up = self._find_signer(), True
                self._signed = latest_access_checkpoint(self.store)
            if self._signer is None:
                return
            key, origin, (every, seconds) = self._signer
            now = datetime.now(UTC)
            size = self.store.access_size()
            if checkpoint_due(self._signed, size, now, every, seconds):
                self._signed = _sign(self.store, key, origin, size, now)
        except (StoreError, CheckpointError, ValueError) as error:
            _log.warning("access checkpoint not signed: %s", error)

    def _find_signer(self) -> tuple[Ed25519PrivateKey, str, tuple[int, int]] | None:
        path = log_key_path(self.store, self._key)
        if not path.exists() or self.store.get_meta("log_origin") is None:
            return None
        try:
            key = load_private_key(path)
            return key, access_origin(self.store, key), checkpoint_policy(self.store)
        except (LogKeyError, OSError) as error:
            _log.warning("access checkpoints are not signed: %s", error)
            return None


def access_origin(store: Store, key: Ed25519PrivateKey) -> str:
    """The access log's origin line: the lineage log's, then ``/access``.

    Raises:
        LogKeyError: ``key`` is not the log's key, or the log was not initialised.
    """
    return signing_origin(store, key) + ACCESS_SUFFIX


def access_root(store: Store, size: int | None = None) -> bytes:
    """The access log's root hash at ``size`` leaves (default: now)."""
    return tree_root(store.access_size() if size is None else size, store.access_log_node)


def access_inclusion(store: Store, seq: int, tree_size: int | None = None) -> dict[str, Any]:
    """The inclusion proof of access event ``seq`` in the access log's tree of ``tree_size``.

    Raises:
        ValueError: ``seq`` or ``tree_size`` outside the access log.
    """
    return prove_inclusion(store.access_size(), store.access_log_node, seq, tree_size)


def access_consistency(store: Store, first: int, second: int) -> dict[str, Any]:
    """The proof that the access log's tree of ``second`` leaves extends its tree of ``first``.

    Raises:
        ValueError: sizes outside the access log, or ``first`` > ``second``.
    """
    return prove_consistency(store.access_size(), store.access_log_node, first, second)


def access_checkpoint(store: Store, key: Ed25519PrivateKey, now: datetime | None = None) -> Checkpoint:
    """Sign the access log's current size and root under ``<origin>/access`` and keep it.

    Raises:
        LogKeyError: ``key`` is not the log's key, or the log was not initialised.
    """
    return _sign(store, key, access_origin(store, key), store.access_size(), now or datetime.now(UTC))


def _sign(store: Store, key: Ed25519PrivateKey, origin: str, size: int, now: datetime) -> Checkpoint:
    made = sign(key, origin, size, access_root(store, size), now)
    store.add_access_checkpoint(size, made.root_hash, made.note)
    return made


def latest_access_checkpoint(store: Store) -> Checkpoint | None:
    """The access-log checkpoint of the largest tree size kept, if any."""
    kept = store.latest_access_checkpoint()
    return None if kept is None else parse_note(kept.note, store.get_meta("log_public_key") or "")


@dataclass
class AccessLogReport:
    """What :func:`verify_access_log` checked and found; a finding's ``seq`` is the access event
    (or the tree size) it concerns."""

    size: int = 0
    """Access events the log holds."""
    events: int = 0
    checkpoints: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing differs."""
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "ok": self.ok,
            "size": self.size,
            "events_checked": self.events,
            "checkpoints_checked": self.checkpoints,
            "findings": [{"seq": f.seq, "what": f.what} for f in self.findings],
        }


def verify_access_log(store: Store, public_key: Ed25519PublicKey | None) -> AccessLogReport:
    """Rebuild the access log from its stored rows and check every leaf, stored node and
    checkpoint (signature, ``/access`` origin, root) against them."""
    report = AccessLogReport(size=store.access_size())
    checkpoints = {row.size: row for row in store.access_checkpoints()}
    tree, stored_tree = CompactRange(), CompactRange()
    after = 0
    while rows := store.access_rows(after=after, limit=CHUNK):
        first, last = after + 1, max(rows[-1].seq, after + len(rows))
        leaves = store.access_log_range(0, first - 1, last)
        by_seq = {row.seq: row for row in rows}
        completed: list[tuple[int, int, bytes]] = []
        for seq in range(first, last + 1):
            stored = leaves.get(seq - 1)
            if stored is None:
                report.findings.append(Finding(seq, "the access log has no leaf for this access event"))
            completed.extend(stored_tree.append(stored or bytes(32)))
            row = by_seq.get(seq)
            if row is None:
                report.findings.append(Finding(seq, "access event is missing (deleted from the store)"))
                tree.append(stored or bytes(32))
            else:
                report.events += 1
                tree.append(_check_row(row, stored, report.findings))
            if tree.size in checkpoints:
                report.checkpoints += 1
                report.findings.extend(
                    _check_access_checkpoint(store, tree, checkpoints[tree.size], public_key)
                )
        report.findings.extend(
            Finding(f.seq, f"access log: {f.what}") for f in check_nodes(store.access_log_range, completed)
        )
        after = last
    if tree.size != report.size:
        report.findings.append(
            Finding(tree.size + 1, f"the access log has {report.size} events but only {tree.size} remain")
        )
    report.findings.extend(
        Finding(size, "an access checkpoint claims a larger log than the events stored")
        for size in checkpoints
        if size > tree.size
    )
    return report


def _check_row(row: AccessEventRow, stored: bytes | None, findings: list[Finding]) -> bytes:
    """Check one stored access event against its leaf and its columns; returns its leaf hash."""
    leaf = leaf_hash(row.body)
    if stored is not None and stored != leaf:
        findings.append(Finding(row.seq, "access event does not match its log leaf (its row was changed)"))
    try:
        body = msgspec.json.decode(row.body)
        columns = (datetime.fromisoformat(body["at"]), body["actor"], body["outcome"], body["name"])
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        findings.append(Finding(row.seq, "access event body is not an access event"))
        return leaf
    if columns != (row.at, row.actor, row.outcome, row.name):
        findings.append(
            Finding(row.seq, "access event columns (at, actor, outcome, name) differ from its body")
        )
    return leaf


def _check_access_checkpoint(
    store: Store, tree: CompactRange, row: CheckpointRow, public_key: Ed25519PublicKey | None
) -> list[Finding]:
    found = [
        Finding(f.seq, f"access {f.what}") for f in check_checkpoint(tree, row.root, row.note, public_key)
    ]
    try:
        origin = parse_note(row.note).origin
    except CheckpointError:
        return found  # already a finding
    lineage = store.get_meta("log_origin")
    if lineage is not None and origin != lineage + ACCESS_SUFFIX:
        found.append(
            Finding(tree.size, f"access checkpoint has origin {origin!r}, not {lineage + ACCESS_SUFFIX!r}")
        )
    return found
