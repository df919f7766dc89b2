"""The read path: every read that the HTTP API, the CLI and the exports make, for a :class:`Principal`.

A :class:`Reader` binds a store to the principal reading it. The graph (nodes, walks, why-chains,
one node's detail), the events and the transparency log (checkpoints, proofs, ``verify``) are read
through it and nothing else: ``tests/test_read_path.py`` fails when ``server/``, ``cli/`` or
``interop/`` call a store read method or a store-taking query or ledger read themselves. Roles,
record-level access control and the audit of reads are enforced here, and only here: each read
checks the principal's permission (:class:`~opslineage.governance.AccessDenied` when it lacks it),
and each operation (an HTTP request, a command; one read when none is open) is one
:class:`~opslineage.governance.AccessEvent` on the reader's :class:`~opslineage.governance.AccessTrail`.
Payloads the principal is not cleared for (by label or namespace) are redacted in every answer
that carries them (:mod:`opslineage.query.visibility`); such an operation's outcome is ``redacted``.

Every answer is a typed value (a msgspec Struct or a dataclass). Method names differ from the
store's read methods on purpose, so that a call can be told from its name alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from opslineage.governance import (
    LEVELS,
    OUTCOMES,
    AccessDenied,
    AccessEvent,
    AccessTrail,
    LabelRule,
    Permission,
    Principal,
)
from opslineage.ledger.access_log import access_consistency, access_inclusion, latest_access_checkpoint
from opslineage.ledger.checkpoint import Checkpoint
from opslineage.ledger.log import consistency, inclusion, kept_checkpoints, latest_checkpoint, log_key_path
from opslineage.ledger.verify import Finding, VerifyReport, verify_against, verify_store
from opslineage.model import InvalidEvent
from opslineage.query._budget import time_budget
from opslineage.query.lineage import LineageGraph, downstream, list_nodes, resolve_node, upstream
from opslineage.query.nodes import Edge, NodeDetail, NodePage, edges_of, node_detail, node_page
from opslineage.query.visibility import Visibility, governance_of
from opslineage.query.why import WhyChain, chain_links, why
from opslineage.store import (
    AccessEventRow,
    Cut,
    Horizon,
    NodeRecord,
    Store,
    StoredEvent,
    StoreError,
    StoreUnavailable,
    leaf_data,
)

__all__ = ["AccessRecord", "ConsistencyProof", "InclusionProof", "LogLeaf", "Reader", "as_reader"]

_MAX_SEQ = 1 << 62  # the largest sequence number asked for; both backends hold 64-bit integers

ACCESS_LOG_LIMIT = 10_000
"""The most access events one :meth:`Reader.access_log` call returns."""


class InclusionProof(msgspec.Struct, frozen=True):
    """RFC 9162 proof that the event of sequence ``leaf_index + 1`` is in the tree of ``tree_size``."""

    leaf_index: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    audit_path: list[str]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict, in field order."""
        return msgspec.structs.asdict(self)


@dataclass(frozen=True)
class LogLeaf:
    """What the log's leaf of one event hashes (``data``: leaf hash = SHA-256(0x00 || data)), and
    the event, so a verifier can recompute the leaf and see what it commits to."""

    data: bytes
    event: StoredEvent


class ConsistencyProof(msgspec.Struct, frozen=True):
    """RFC 9162 proof that the tree of ``second`` leaves extends the tree of ``first`` leaves."""

    first: int
    second: int
    first_root: str
    second_root: str
    proof: list[str]

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict, in field order."""
        return msgspec.structs.asdict(self)


class AccessRecord(AccessEvent, frozen=True, kw_only=True):
    """An access event as the access log keeps it: ``seq`` is its sequence number (its leaf is
    ``seq - 1`` of the access log)."""

    seq: int

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict, ``seq`` first."""
        found = msgspec.structs.asdict(self)
        return {"seq": found.pop("seq"), **found}


@dataclass
class _Operation:
    """The operation under way: what it is called, what it asked for and what it has returned."""

    name: str
    target: str | None
    nodes: dict[str, None] = field(default_factory=dict)
    redacted: str | None = None
    visibility: Visibility | None = None


class Reader:
    """A store as one principal reads it.

    Args:
        store: the store to read (its owner keeps it open and closes it).
        principal: who is reading.
        trail: where each operation's access event goes (None: nowhere).
        client: where the principal reads from (``host:port``, or ``cli``).
    """

    def __init__(
        self, store: Store, principal: Principal, trail: AccessTrail | None = None, client: str | None = None
    ) -> None:
        self._store = store
        self.principal = principal
        self.trail = trail
        self.client = client
        self._open: _Operation | None = None

    # Operations and permissions.

    @contextmanager
    def operation(self, name: str, target: str | None = None) -> Iterator[None]:
        """One operation: the reads made inside it are recorded as one access event, ``denied``
        when one was refused (:class:`AccessDenied` goes on), ``failed`` when it ended in another
        error (which goes on), ``redacted`` when a payload was withheld, else ``allowed``.
        Operations opened inside it are part of it."""
        if self._open is not None:
            yield
            return
        self._open = pending = _Operation(name, target)
        try:
            yield
        except AccessDenied as denied:
            self._record(pending, "denied", denied.reason)
            raise
        except Exception as error:
            # A trail that cannot take it either (the store is gone) leaves the caller the first error.
            with suppress(StoreUnavailable):
                self._record(pending, "failed", f"{type(error).__name__}: {error}")
            raise
        else:
            withheld = pending.visibility.summary() if pending.visibility is not None else None
            redacted = "; ".join(part for part in (pending.redacted, withheld) if part) or None
            self._record(pending, "redacted" if redacted else "allowed", redacted)
        finally:
            self._open = None

    def allow(self, permission: Permission, operation: str) -> None:
        """Go on only if the principal holds ``permission``.

        Raises:
            AccessDenied: it does not (recorded as denied by the operation under way).
        """
        if not self.principal.can(permission):
            role = self.principal.role or "no role"
            raise AccessDenied(operation, f"{operation} needs {permission.value}, which {role} does not hold")

    def refuse(self, name: str, reason: str, target: str | None = None) -> None:
        """Record a refused attempt that never reached a read (no or bad credentials)."""
        self._record(_Operation(name, target), "denied", reason)

    @contextmanager
    def _reading(
        self, name: str, target: str | None = None, permission: Permission = Permission.READ_LINEAGE
    ) -> Iterator[_Operation]:
        with self.operation(name, target):
            self.allow(permission, name)
            assert self._open is not None
            yield self._open

    @property
    def withheld(self) -> dict[str, str]:
        """The nodes whose payloads the operation under way redacted, with why (empty: none)."""
        visibility = self._open.visibility if self._open is not None else None
        return dict(visibility.withheld) if visibility is not None else {}

    def _visibility(self) -> Visibility:
        """What the principal sees in the operation under way (the rules in force read once per
        operation, and again only when the log has grown)."""
        assert self._open is not None
        if self._open.visibility is None:
            self._open.visibility = Visibility(self.principal, governance_of(self._store))
        return self._open.visibility

    def _covered(self, nodes: list[NodeRecord]) -> list[NodeRecord]:
        """``nodes`` without those outside the principal's namespaces (what a list shows)."""
        if self.principal.namespaces is None:
            return nodes
        return [node for node in nodes if self.principal.covers(node.namespace)]

    def _returned(self, ids: Iterable[str | None]) -> None:
        """Note the node ids an answer names, for the access event."""
        if self._open is not None:
            self._open.nodes.update((node_id, None) for node_id in ids if node_id)

    def _record(self, operation: _Operation, outcome: str, reason: str | None) -> None:
        if self.trail is None:
            return
        self.trail.record(
            AccessEvent(
                name=operation.name,
                actor=self.principal.id,
                role=self.principal.role,
                at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
                client=self.client,
                outcome=outcome,  # type: ignore[arg-type]
                reason=reason,
                target=operation.target,
                nodes=list(operation.nodes),
            )
        )

    # Time.

    def within(self, seconds: float) -> AbstractContextManager[None]:
        """A block whose reads must end within ``seconds``, or are cancelled.

        Raises:
            QueryTimeout: (on leaving the block) a read ran out of time and was cancelled.
        """
        return time_budget(self._store, seconds)

    def sequence_at(self, when: datetime | None) -> int | None:
        """The last sequence number committed at ``when`` (None for None: now).

        Raises:
            InvalidEvent: ``when`` is not a time in UTC's years 1 to 9999.
        """
        if when is None:
            return None
        try:
            return self._store.as_of_seq(when)
        except OverflowError:
            raise InvalidEvent(f"as_of {when.isoformat()} is outside the years 1 to 9999 in UTC") from None

    def horizon(self, stored_by: datetime | None, happened_by: datetime | None = None) -> Horizon:
        """How far a read sees: what was stored by ``stored_by`` (commit time) and, when given,
        had happened by ``happened_by`` (eventTime). None for both: everything.

        Raises:
            InvalidEvent: ``stored_by`` is not a time in UTC's years 1 to 9999.
        """
        seq = self.sequence_at(stored_by)
        return seq if happened_by is None else Cut(seq, happened_by)

    # The graph.

    def resolve(self, node_id: str, as_of: Horizon = None) -> NodeRecord:
        """The node any id form names (see :func:`~opslineage.query.resolve_node`).

        Raises:
            InvalidEvent: a malformed id. NotFound: no such node.
        """
        with self._reading("resolve", node_id):
            node = resolve_node(self._store, node_id, as_of)
            self._returned([node.id])
            return node

    def resolve_covered(self, node_id: str, operation: str) -> NodeRecord:
        """The node ``node_id`` names, once it is in one of the principal's namespaces (a node
        named outright is refused; nodes reached from it are redacted instead).

        Raises:
            InvalidEvent: a malformed id. NotFound: no such node.
            AccessDenied: it is outside the principal's namespaces (named ``operation``).
        """
        node = self.resolve(node_id)
        if not self.principal.covers(node.namespace):
            reason = f"{node.id} is in namespace {node.namespace!r}, outside {self.principal.id}'s namespaces"
            raise AccessDenied(operation, reason)
        return node

    def records(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, NodeRecord]:
        """Nodes by exact id; ids with no node are left out."""
        with self._reading("records"):
            found = self._store.nodes(ids, as_of)
            self._returned(found)
            return found

    def search(
        self,
        *,
        kind: str | None = None,
        namespace: str | None = None,
        name: str | None = None,
        limit: int = 100,
        as_of: Horizon = None,
    ) -> list[NodeRecord]:
        """Nodes of an id kind (``run``, ``job`` …) and naming columns, newest first (those of the
        principal's namespaces)."""
        with self._reading("search"):
            found = self._covered(
                self._store.find_nodes(kind=kind, namespace=namespace, name=name, limit=limit, as_of=as_of)
            )
            self._returned(node.id for node in found)
            return found

    def every_node(self, as_of: int) -> list[NodeRecord]:
        """Every node at ``as_of`` (of the principal's namespaces), oldest first, in one query."""
        with self._reading("nodes"):
            found = self._covered(self._store.find_nodes(limit=1 << 62, as_of=as_of)[::-1])
            self._returned(node.id for node in found)
            return found

    def list_kind(
        self,
        kind: str,
        *,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
        as_of: Horizon = None,
    ) -> list[NodeRecord]:
        """Nodes of one ``ls`` kind, newest first (see :func:`~opslineage.query.list_nodes`).

        Raises:
            InvalidEvent: not an ``ls`` kind.
        """
        with self._reading("nodes"):
            found = self._covered(
                list_nodes(self._store, kind, text=text, limit=limit, offset=offset, as_of=as_of)
            )
            self._returned(node.id for node in found)
            return found

    def page(
        self,
        kind: str | None = None,
        *,
        text: str | None = None,
        namespace: str | None = None,
        facet: str | None = None,
        limit: int = 50,
        offset: int = 0,
        as_of: Horizon = None,
    ) -> NodePage:
        """One page of nodes of an ``ls`` kind (any kind when None) of the principal's namespaces,
        where the next one starts and how many match (see :func:`~opslineage.query.nodes.node_page`).

        Raises:
            InvalidEvent: not an ``ls`` kind. AccessDenied: a ``facet`` search by a principal
                not cleared for every label in force or confined to some namespaces (it would
                search payloads withheld from it).
        """
        with self._reading("nodes"):
            if facet:
                uncleared = sorted(
                    {rule.level for rule in self._visibility().governance.rules}
                    - {level for level in LEVELS if self.principal.sees_level(level)}
                )
                role = self.principal.role or "no role"
                if uncleared:
                    raise AccessDenied(
                        "nodes",
                        f"a facet search reads {', '.join(uncleared)} payloads, which {role} is not cleared for",
                    )
                if self.principal.namespaces is not None:
                    raise AccessDenied("nodes", "a facet search reads every namespace's payloads")
            page = node_page(
                self._store,
                kind,
                text=text,
                namespace=namespace,
                facet=facet,
                namespaces=self.principal.namespaces,
                limit=limit,
                offset=offset,
                as_of=as_of,
            )
            self._returned(node.id for node in page.nodes)
            return page

    def detail(self, node_id: str, as_of: Horizon = None) -> NodeDetail:
        """One node with its content, facets and edges.

        Raises:
            InvalidEvent: a malformed id. NotFound: no such node.
        """
        with self._reading("node", node_id):
            detail = node_detail(self._store, node_id, as_of)
            self._returned([detail.id])
            return self._shown_detail(detail)

    def _shown_detail(self, detail: NodeDetail) -> NodeDetail:
        """``detail`` with its owners, and its payload redacted when the principal may not see it."""
        visibility = self._visibility()
        record = NodeRecord(
            detail.id,
            detail.kind,
            detail.type,
            detail.namespace,
            detail.name,
            detail.version,
            detail.digest,
            0,
        )
        changes: dict[str, Any] = {}
        owners = visibility.owners(record)
        if owners is not None:
            changes["owners"] = owners
        reason = visibility.reason_of(record)
        if reason is not None:
            if detail.content is not msgspec.UNSET:
                changes["content"] = visibility.content(record, detail.content)
            where = detail.kind if detail.kind in ("run", "job") else "dataset"
            changes["facets"] = visibility.facets(detail.id, where, detail.facets, reason)
        return msgspec.structs.replace(detail, **changes) if changes else detail

    def neighbours(
        self, ids: Iterable[str], *, direction: str, kinds: Sequence[str] = (), as_of: Horizon = None
    ) -> list[Edge]:
        """Edges leaving (``up``) or entering (``down``) any of ``ids``, of ``kinds`` when given."""
        with self._reading("edges"):
            found = edges_of(self._store.edges(ids, direction=direction, kinds=kinds, as_of=as_of))
            self._returned(node for edge in found for node in (edge.src, edge.dst))
            return found

    def upstream(self, node_id: str, depth: int = 10, as_of: Horizon = None) -> LineageGraph:
        """Everything ``node_id`` came from, up to ``depth`` edges away."""
        with self._reading("upstream", node_id):
            graph = upstream(self._store, node_id, depth, as_of)
            self._returned(node.get("id") for node in graph.nodes)
            return graph

    def downstream(self, node_id: str, depth: int = 10, as_of: Horizon = None) -> LineageGraph:
        """Everything that came from ``node_id``, up to ``depth`` edges away."""
        with self._reading("downstream", node_id):
            graph = downstream(self._store, node_id, depth, as_of)
            self._returned(node.get("id") for node in graph.nodes)
            return graph

    def why(self, node_id: str, as_of: Horizon = None) -> WhyChain:
        """The causal chain behind an action or a decision.

        Raises:
            NotFound: no such node, or neither an action nor a decision.
        """
        with self._reading("why", node_id):
            chain = why(self._store, node_id, as_of)
            self._returned(link.get("id") for link in chain_links(chain))
            self._show_chain(chain)
            return chain

    def _show_chain(self, chain: WhyChain) -> None:
        """Give each link of ``chain`` its owners, and redact those the principal may not see."""
        visibility = self._visibility()
        records = chain.records
        jobs: dict[str, str | None] = {}
        if visibility.governance.owners:
            runs = {link["run"] for link in chain_links(chain) if link.get("run")}
            jobs = {node.id: node.name for node in self._store.nodes(runs).values()}
        for link in chain_links(chain):
            record = records.get(link["id"])
            if record is None:
                continue
            owners = visibility.owners(record, jobs.get(link.get("run", "")))
            if owners is not None:
                link["owners"] = owners
            visibility.link(link, record)

    def label_rules(self) -> list[LabelRule]:
        """The label rules in force, oldest first (see :func:`~opslineage.query.visibility.label_rules`)."""
        with self._reading("labels"):
            return list(self._visibility().governance.rules)

    def ownership(self) -> list[dict[str, Any]]:
        """The ownership entries in force, one per namespace, scope and name, as dicts."""
        with self._reading("owners"):
            return [entry.to_dict() for entry in self._visibility().governance.owners.values()]

    # The events.

    def log_length(self) -> int:
        """How many events the store holds (the last sequence number)."""
        with self._reading("log-size"):
            return self._store.log_size()

    def event_page(self, *, after: int = 0, limit: int = 1000) -> list[StoredEvent]:
        """Stored events with sequence numbers after ``after``, at most ``limit``, in order."""
        with self._reading("events"):
            return self._shown_events(self._store.events(after=after, limit=limit))

    def run_events(self, run_id: str) -> list[StoredEvent]:
        """Every event of one run (its UUID), in sequence order."""
        with self._reading("events", f"run:{run_id}"):
            return self._shown_events(self._store.events(run_id=run_id))

    def _shown_events(self, events: list[StoredEvent]) -> list[StoredEvent]:
        """``events`` with the payloads the principal may not see replaced by markers."""
        visibility = self._visibility()
        if visibility.sees_everything:
            return events
        return [replace(stored, event=visibility.event(stored.event)) for stored in events]

    # The transparency log.

    def log_key_path(self, key: str | None = None) -> Path:
        """The log's private key file: ``key``, else ``$OPSLINEAGE_KEY``, else where ``init`` put it."""
        return log_key_path(self._store, key)

    def log_public_key(self) -> str | None:
        """The log's public key (base64) as the store recorded it, if the log was initialised."""
        with self._reading("log-key"):
            return self._store.get_meta("log_public_key")

    def signed_checkpoint(self) -> Checkpoint | None:
        """The checkpoint of the largest tree size kept, if any."""
        with self._reading("checkpoint"):
            return latest_checkpoint(self._store)

    def checkpoint_history(self, limit: int = 20) -> list[Checkpoint]:
        """The log's checkpoints, largest tree size first, at most ``limit``."""
        with self._reading("checkpoint"):
            return kept_checkpoints(self._store, limit)

    def covering_checkpoint(self, seq: int) -> Checkpoint | None:
        """The newest checkpoint if it covers event ``seq``, else None. It never signs one: a read
        never writes (``opslineage checkpoint`` does)."""
        with self._reading("checkpoint"):
            signed = latest_checkpoint(self._store)
            return signed if signed is not None and signed.tree_size >= seq else None

    def inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """The inclusion proof of event ``seq`` in the tree of ``tree_size`` (default: now).

        Raises:
            ValueError: ``seq`` or ``tree_size`` outside the log.
        """
        with self._reading("inclusion-proof", str(seq)):
            return msgspec.convert(inclusion(self._store, seq, tree_size), InclusionProof)

    def log_leaf(self, seq: int) -> LogLeaf:
        """The data the log's leaf of event ``seq`` hashes (form 2: tag, digest, stored body) and the event.

        Raises:
            ValueError: ``seq`` is outside the log, or its leaves hash whole events (form 1).
            AccessDenied: the principal may not see the whole event, which the leaf's body shows.
        """
        with self._reading("log-leaf", str(seq)):
            size = self._store.log_size()
            if not 0 < seq <= size:
                raise ValueError(f"seq {seq} is not in the log of {size} events")
            if self._store.leaf_form() != 2:
                raise ValueError(
                    "this log's leaves hash whole events (form 1): check them with `opslineage verify`"
                )
            raw = self._store.raw_events(after=seq - 1, limit=1)[0]
            stored = self._store.events(after=seq - 1, limit=1)[0]
            if self._shown_events([stored])[0].event != stored.event:
                reason = f"event {seq} is redacted for {self.principal.id}, and its leaf holds it"
                raise AccessDenied("log-leaf", reason)
            return LogLeaf(leaf_data(raw.digest, raw.body), stored)

    def consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        """The proof that the tree of ``second`` leaves extends the tree of ``first`` leaves.

        Raises:
            ValueError: sizes outside the log, or ``first`` > ``second``.
        """
        with self._reading("consistency-proof", f"{first}..{second}"):
            return msgspec.convert(consistency(self._store, first, second), ConsistencyProof)

    def verify(
        self, public_key: Ed25519PublicKey | None, on_progress: Callable[[int, int], None] | None = None
    ) -> VerifyReport:
        """Rebuild the log from the stored events and check every leaf, node and checkpoint."""
        with self._reading("verify", permission=Permission.VERIFY):
            return verify_store(self._store, public_key, on_progress)

    def verify_extends(self, kept: Checkpoint, public_key: Ed25519PublicKey) -> list[Finding]:
        """What does not hold in the claim that today's log extends the checkpoint ``kept``."""
        with self._reading("verify", permission=Permission.VERIFY):
            return verify_against(self._store, kept, public_key)

    # The access log.

    def access_log(
        self,
        *,
        actor: str | None = None,
        node: str | None = None,
        since: datetime | None = None,
        outcome: str | None = None,
        limit: int = 100,
        after: int = 0,
    ) -> list[AccessRecord]:
        """Access events after sequence ``after`` by ``actor``, naming ``node``, at or after
        ``since``, of ``outcome`` (each when given), oldest first, at most ``limit``. Needs
        ``access-log:read``; this read is itself recorded.

        Raises:
            InvalidEvent: an unknown outcome, or a limit outside 1 to 10000, or ``after`` outside 0 to 2**62.
        """
        with self._reading("access-log", node, Permission.READ_ACCESS_LOG):
            if outcome is not None and outcome not in OUTCOMES:
                raise InvalidEvent(f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
            if not 0 < limit <= ACCESS_LOG_LIMIT or not 0 <= after <= _MAX_SEQ:
                raise InvalidEvent(f"limit must be 1 to {ACCESS_LOG_LIMIT} and after 0 to {_MAX_SEQ}")
            rows = self._store.search_access(
                actor=actor, node=node, since=since, outcome=outcome, limit=limit, after=after
            )
            return [_access_record(row) for row in rows]

    def access_checkpoint(self) -> Checkpoint | None:
        """The access log's checkpoint of the largest tree size kept, if any (origin ``<origin>/access``)."""
        with self._reading("access-log-checkpoint", permission=Permission.READ_ACCESS_LOG):
            return latest_access_checkpoint(self._store)

    def access_inclusion_proof(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """The inclusion proof of access event ``seq`` in the access log's tree of ``tree_size``
        (default: now).

        Raises:
            ValueError: ``seq`` or ``tree_size`` outside the access log.
        """
        with self._reading("access-log-proof", str(seq), Permission.READ_ACCESS_LOG):
            return msgspec.convert(access_inclusion(self._store, seq, tree_size), InclusionProof)

    def access_consistency_proof(self, first: int, second: int) -> ConsistencyProof:
        """The proof that the access log's tree of ``second`` leaves extends its tree of ``first``.

        Raises:
            ValueError: sizes outside the access log, or ``first`` > ``second``.
        """
        with self._reading("access-log-proof", f"{first}..{second}", Permission.READ_ACCESS_LOG):
            return msgspec.convert(access_consistency(self._store, first, second), ConsistencyProof)

    # The archive tier.

    def archived_through(self) -> int:
        """The last sequence number whose event is archived (0 when none is)."""
        with self._reading("archive"):
            return max((segment.last_seq for segment in self._store.segments()), default=0)

    # Quality

    def artifact_records(
        self, node_type: str, *, namespace: str | None = None, as_of: Horizon = None
    ) -> list[NodeRecord]:
        """Every artifact node of one type (``action``, ``prediction`` …), of ``namespace`` when
        given, oldest first, in one query."""
        with self._reading("artifacts"):
            found = self._covered(
                self._store.find_nodes(
                    kind="entity", type=node_type, namespace=namespace, limit=1 << 62, as_of=as_of
                )[::-1]
            )
            self._returned(node.id for node in found)
            return found

    def contents(self, ids: Iterable[str], as_of: Horizon = None) -> dict[str, Any]:
        """The decoded recorded content of artifacts by node id, in one round trip; ids with no
        node, or only referenced (no content stored), are left out."""
        with self._reading("contents"):
            visibility = self._visibility()
            found = {
                node_id: visibility.content(record, msgspec.json.decode(content))
                for node_id, (record, content) in self._store.nodes_with_content(ids, as_of).items()
                if content is not None
            }
            self._returned(found)
            return found

    # Baselines

    def setting(self, key: str) -> str | None:
        """A store setting (reconciliation keeps which drifts it alerted on), None when unset."""
        return self._store.get_meta(key)


def _access_record(row: AccessEventRow) -> AccessRecord:
    """A stored access event as a typed record.

    Raises:
        StoreError: its body is not an access event (changed behind the store's back).
    """
    try:
        return msgspec.convert({**msgspec.json.decode(row.body), "seq": row.seq}, AccessRecord)
    except (msgspec.DecodeError, msgspec.ValidationError, TypeError) as error:
        raise StoreError(
            f"access event {row.seq} is not an access event ({error}): run `opslineage verify`"
        ) from None


def as_reader(source: Reader | Store) -> Reader:
    """``source`` itself when it is a reader; a store given directly is read by its local administrator
    (whoever holds an open store could read it anyway)."""
    return source if isinstance(source, Reader) else Reader(source, Principal.local_admin())
