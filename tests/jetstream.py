"""A JetStream stream of a test's own: made with its messages, and deleted afterwards."""

from __future__ import annotations

import nats

from helpers import NATS_URL


async def publish(stream: str, subject: str, payloads: list[bytes], *, leaf: str = "test") -> None:
    """Create ``stream`` over ``subject.>`` and publish each payload on ``subject.leaf``."""
    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        js = nc.jetstream()
        await js.add_stream(name=stream, subjects=[f"{subject}.>"])
        for payload in payloads:
            await js.publish(f"{subject}.{leaf}", payload)
    finally:
        await nc.close()


async def drop(stream: str) -> None:
    """Delete ``stream``."""
    nc = await nats.connect(NATS_URL, connect_timeout=2, allow_reconnect=False)
    try:
        await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()
