"""Hostile events over HTTP, one at a time and in batches: a 400 (or a rejected item) naming the
field, never a 500 and never stored changed, on each backend."""

from __future__ import annotations

import httpx
import msgspec
import pytest

from hostile import hostile_cases, valid_event
from live import LiveServer

AUTH = {"Authorization": "Bearer s3cret", "Content-Type": "application/json"}
CASES = hostile_cases()
GOOD = msgspec.json.encode(valid_event())


@pytest.mark.parametrize(("name", "body", "says"), CASES, ids=[case[0] for case in CASES])
def test_a_hostile_event_is_refused_alone_and_in_a_batch(
    live: LiveServer, name: str, body: bytes, says: str
) -> None:
    alone = httpx.post(f"{live.url}/api/v1/lineage", content=body, headers=AUTH)
    assert alone.status_code == 400 and says in alone.json()["detail"], alone.text
    batch = httpx.post(
        f"{live.url}/api/v1/lineage/batch", content=b"[" + GOOD + b"," + body + b"]", headers=AUTH
    )
    if name == "nested 1,000 levels":  # too deep for the array to be split: the whole batch is refused
        assert batch.status_code == 400 and "nested too deep" in batch.json()["detail"], batch.text
        assert httpx.get(f"{live.url}/readyz").json()["events"] == 0
        return
    assert batch.status_code == 200, batch.text
    accepted, rejected = batch.json()["results"]
    assert accepted["status"] == "accepted" and rejected["status"] == "rejected"
    assert says in rejected["detail"]
    assert httpx.get(f"{live.url}/readyz").json()["events"] == 1
