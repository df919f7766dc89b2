"""The server's small cache: an answer is served again while fresh, computed anew after, and the
oldest key goes once the cache is full."""

from __future__ import annotations

import time

from opslineage.server.cache import Fresh


def test_an_answer_is_served_again_only_while_fresh() -> None:
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    cache: Fresh[str, str] = Fresh(ttl=0.2, entries=2)
    assert [cache.get("a", lambda: compute("a")) for _ in range(3)] == ["A", "A", "A"]
    assert calls == ["a"]
    time.sleep(0.25)
    assert cache.get("a", lambda: compute("a")) == "A" and calls == ["a", "a"]
    cache.get("b", lambda: compute("b"))
    cache.get("c", lambda: compute("c"))  # the cache is full: "a", the oldest, goes
    cache.get("a", lambda: compute("a"))
    assert calls == ["a", "a", "b", "c", "a"]


def test_a_ttl_of_zero_never_serves_again() -> None:
    calls: list[int] = []
    cache: Fresh[int, int] = Fresh(ttl=0, entries=8)
    for _ in range(3):
        cache.get(1, lambda: calls.append(1) or 1)
    assert calls == [1, 1, 1]
