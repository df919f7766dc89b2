"""The API's read routes share the read path with the CLI: the why-tree is the CLI's tree of lines,
and the bearer of the token reads what an anonymous caller reads (nothing is enforced yet)."""

from __future__ import annotations

import httpx
import msgspec

from helpers import record_chain
from live import LiveServer
from opslineage import Tracer, open_store
from opslineage.query import why, why_view

AUTH = {"Authorization": "Bearer s3cret"}


def test_the_why_tree_is_the_view_the_cli_draws(live: LiveServer) -> None:
    tracer = Tracer.in_memory()
    chain = record_chain(tracer)
    httpx.post(f"{live.url}/api/v1/lineage/batch", json=tracer.transport.events, headers=AUTH)  # type: ignore[attr-defined]
    action = f"run:{chain.action.run_id}"
    tree = httpx.get(f"{live.url}/api/v1/why-tree/{action}").json()
    with open_store(live.store, create=False) as store:
        view = why_view(why(store, action))
    assert tree["complete"] is True
    assert tree["root"]["spans"][0] == {"text": "action scale_out → svc-01", "style": "strong"}
    assert tree == msgspec.json.decode(msgspec.json.encode(view))
    assert httpx.get(f"{live.url}/api/v1/why-tree/{chain.features.id}").status_code == 404
    assert (
        httpx.get(f"{live.url}/api/v1/why/{action}", headers=AUTH).json()
        == httpx.get(f"{live.url}/api/v1/why/{action}").json()
    )
