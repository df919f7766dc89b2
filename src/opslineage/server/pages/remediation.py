"""The remediation page (``/remediations/{id}``), the one a responder opens at 3 a.m.: an action's
why-chain drawn as a layered graph (sources → snapshots → feature set → prediction → decision →
action → effect), the breaches that fired and the rule, the model and policy in force, the
effect's verdict, the copy of its causes the action recorded, downloads of its evidence, and a
badge that ``static/proof.js`` turns into the browser's own check of the action's inclusion proof
and the checkpoint's signature.

Everything is read in one :meth:`read` (one access event); restricted links come redacted from
the Reader, and the page shows its marker where their content would be.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from fastapi import FastAPI, Request
from fastapi.responses import Response

from opslineage.governance import Permission
from opslineage.ledger.checkpoint import key_id
from opslineage.query import Reader, WhyChain
from opslineage.server.pages.render import node_path, node_url, render, short
from opslineage.server.pages.svg import Box, layered_svg

if TYPE_CHECKING:
    from opslineage.server.pages.routes import PageContext

__all__ = ["COLLAPSE_OVER", "add_remediation_pages", "figure"]

COLLAPSE_OVER = 8
"""A chain with more snapshots than this draws them as one group box (``?snapshots=all``: each)."""

_FROZEN = ("decision", "policy", "policy_digest", "prediction", "model", "features")
"""The fields of an action record that name the causes it acted on."""


@dataclass(frozen=True)
class _Evidence:
    """What the page shows, read in one operation."""

    chain: WhyChain
    seq: int | None  # the log sequence of the event that recorded the action
    public_key: str | None
    key_name: str | None


def add_remediation_pages(app: FastAPI, context: PageContext) -> None:
    """Add ``GET /remediations/{node_id}`` (an action's run id or record id, or a decision's) to ``app``."""

    @app.get("/remediations/{node_id:path}", include_in_schema=False)
    def remediation(request: Request, node_id: str, snapshots: str | None = None) -> Response:
        found = context.read(request, lambda reader: _evidence(reader, node_id))
        chain = found.chain
        every = snapshots == "all"
        kinds = _kinds(chain)
        layers, edges = _layers(chain, kinds, every)
        action = chain.action
        return render(
            request,
            "remediation.html",
            figure=figure,
            node_id=node_id,
            chain=chain,
            action=_loose(action),
            decision=_loose(chain.decision),
            policy=_loose(chain.policy),
            model=_loose(chain.model),
            effect=_loose(chain.effects[0] if chain.effects else None),
            graph=layered_svg(layers, edges, label="Why-chain, from the sources to the effect"),
            collapsed=not every and len(chain.snapshots) > COLLAPSE_OVER,
            every=every,
            rows=[(kind, label, _loose(link)) for layer in kinds for kind, label, link in layer],
            frozen=_frozen(chain),
            seq=found.seq,
            public_key=found.public_key,
            key_name=found.key_name,
            key_id=_key_id(found.key_name, found.public_key),
            may_download=request.state.principal.can(Permission.READ_BUNDLES),
            bundle_url="/api/v1/bundle/" + node_path(node_id),
            intoto_url="/api/v1/intoto/" + node_path(node_id),
            file_name=node_id.replace(":", "-"),
        )


class _Link(dict[str, Any]):
    """A link whose absent fields read as None in a template (a redacted link keeps few)."""

    def __missing__(self, key: str) -> None:
        return None


def _loose(link: dict[str, Any] | None) -> _Link | None:
    return None if link is None else _Link(link)


def _evidence(reader: Reader, node_id: str) -> _Evidence:
    chain = reader.why(node_id)
    seq = None
    run = (chain.action or {}).get("run")
    if isinstance(run, str):
        events = reader.run_events(run.removeprefix("run:"))
        seq = events[-1].seq if events else None
    return _Evidence(chain, seq, reader.log_public_key(), reader.setting("log_origin"))


def _key_id(name: str | None, public_key: str | None) -> str | None:
    """The signed-note key ID (hex) of the log key the page trusts."""
    if not name or not public_key:
        return None
    return key_id(name, Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))).hex()


def figure(value: object) -> str:
    """A measurement to four significant digits (anything else as it is)."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _name(node_id: str) -> str:
    """``model:fleet-anomaly@2`` → ``fleet-anomaly@2``; ``source:ns:svc-02`` → ``svc-02``."""
    return node_id.rpartition(":")[2] if node_id.startswith("source:") else node_id.partition(":")[2]


def _label(kind: str, link: dict[str, Any]) -> str:
    """The name@version (or what stands for it) of one link."""
    if "redacted" in link:
        return f"redacted ({link['redacted']})"
    if kind == "source":
        return _name(link["id"])
    if kind == "snapshot":
        return f"{_name(str(link.get('source', '')))} @ {link.get('window_end', '')}"
    if kind == "feature set":
        transform = link.get("transform") or {}
        return f"{transform.get('name', '?')}@{transform.get('code_version', '?')}"
    if kind == "prediction":
        return f"{_name(str(link.get('model', '')))} → {link.get('label', '')}"
    if kind == "decision":
        return f"{_name(str(link.get('policy', '')))} {'fired' if link.get('fired') else 'held'}"
    if kind == "action":
        return f"{link.get('type', '?')} on {link.get('target', '?')} ({link.get('status', '?')})"
    if kind == "effect":
        return (
            f"{link.get('outcome', '?')}: {link.get('metric', '')} {link.get('before')} → {link.get('after')}"
        )
    return link["id"]


def _kinds(chain: WhyChain) -> list[list[tuple[str, str, dict[str, Any]]]]:
    """The chain's seven layers, each a list of (kind, label, link)."""
    single = [("feature set", chain.features), ("prediction", chain.prediction)]
    single += [("decision", chain.decision), ("action", chain.action)]
    layers = [[("source", link) for link in chain.sources], [("snapshot", link) for link in chain.snapshots]]
    layers += [[(kind, link)] if link is not None else [] for kind, link in single]
    layers.append([("effect", link) for link in chain.effects])
    return [[(kind, _label(kind, link), link) for kind, link in layer] for layer in layers]


def _box(kind: str, label: str, link: dict[str, Any]) -> Box:
    tone = "redacted" if "redacted" in link else kind.replace(" ", "-")
    return Box(link["id"], kind, (label, short(link.get("digest"))), node_url(link["id"]), tone)


def _layers(
    chain: WhyChain, kinds: list[list[tuple[str, str, dict[str, Any]]]], every: bool
) -> tuple[list[list[Box]], list[tuple[str, str]]]:
    """The boxes of each of the chain's layers (``kinds``, see :func:`_kinds`) and the edges
    between them; many snapshots as one group box.

    Each layer joins the next whole, but for a snapshot, which joins only its own source.
    """
    layers = [[_box(*row) for row in layer] for layer in kinds]
    source_of = {link["id"]: link.get("source") for link in chain.snapshots}
    edges = [
        (a.id, b.id)
        for before, after in pairwise(layers)
        for a in before
        for b in after
        if source_of.get(b.id, a.id) in (a.id, None)
    ]
    if not every and len(chain.snapshots) > COLLAPSE_OVER:
        subjects = sorted({_name(str(source)) for source in source_of.values() if source})
        text = f"{len(chain.snapshots)} snapshots of {', '.join(subjects) or 'the sources'}"
        group = Box(
            "snapshots", "snapshot group", (text, "show each: ?snapshots=all"), "?snapshots=all", "group"
        )
        layers[1] = [group]
        grouped = {
            (("snapshots" if a in source_of else a), ("snapshots" if b in source_of else b)) for a, b in edges
        }
        edges = sorted(grouped)
    return layers, edges


def _frozen(chain: WhyChain) -> list[dict[str, Any]]:
    """The causes the action record names, each beside the chain link's id or digest (``holds``:
    they are the same)."""
    action = chain.action
    if action is None or "redacted" in action:
        return []
    found = {
        "decision": (chain.decision or {}).get("digest"),
        "policy": (chain.policy or {}).get("id"),
        "policy_digest": (chain.policy or {}).get("digest"),
        "prediction": (chain.prediction or {}).get("digest"),
        "model": (chain.model or {}).get("id"),
        "features": (chain.features or {}).get("digest"),
    }
    return [
        {"field": name, "recorded": action[name], "chain": found[name], "holds": action[name] == found[name]}
        for name in _FROZEN
        if name in action
    ]
