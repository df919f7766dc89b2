"""The stored form of an event: its body with artifact contents split out, and the way back.

:func:`join_event` rebuilds the full event as a dict; :func:`canonical_event` rebuilds its RFC 8785
bytes, splicing artifacts back into the canonical body without decoding when it can.
"""

from __future__ import annotations

from typing import Any

import msgspec

from opslineage.model.canonical import canonical_json, decode_json

__all__ = ["CONTENT_KEY", "canonical_event", "join_event"]

CONTENT_KEY = "_content"
_decode = msgspec.json.decode


def join_event(body: bytes, artifact: Any) -> dict[str, Any]:
    """Rebuild the full event from a stored body; ``artifact(digest)`` returns content bytes."""
    return _join(body, artifact, _decode)


_STUB = b'{"_content":"sha256:'
_STUB_REF = len(_STUB) + 64 + 1  # the stub up to the closing quote of its digest
_SCHEMA_URL = b'"_schemaURL":"'


def canonical_event(body: bytes, artifact: Any) -> bytes:
    """The canonical bytes of the full event a stored body stands for.

    Bodies are stored canonical, so each artifact is spliced back in as bytes: a stub
    ``{"_content":D,"_producer":P,"_schemaURL":S}`` becomes ``{"_producer":P,"_schemaURL":S,`` +
    the content's members, which is canonical when every content key sorts after the ``_`` keys
    (true of every opslineage facet). Any other shape is decoded and re-encoded instead.
    """
    if _STUB not in body:
        return body
    parts, position = [], 0
    while (start := body.find(_STUB, position)) != -1:
        spliced = _splice(body, start, artifact)
        if spliced is None:
            return _canonical_by_decoding(body, artifact)
        merged, end = spliced
        parts += [body[position:start], merged]
        position = end
    return b"".join([*parts, body[position:]])


def _splice(body: bytes, start: int, artifact: Any) -> tuple[bytes, int] | None:
    """The full facet replacing the stub at ``start`` and where the stub ends, or None."""
    if body[start + _STUB_REF - 1 : start + _STUB_REF + 1] != b'",':
        return None
    url = body.find(_SCHEMA_URL, start)
    close = body.find(b'"', url + len(_SCHEMA_URL)) if url != -1 else -1
    if close == -1 or body[close - 1 : close] == b"\\" or body[close + 1 : close + 2] != b"}":
        return None
    content = artifact(body[start + len(b'{"_content":"') : start + _STUB_REF - 1].decode())
    if content == b"{}" or content[2:3] <= b"_":  # empty, or a key that would sort among the _ keys
        return None
    return b"{" + body[start + _STUB_REF + 1 : close + 1] + b"," + content[1:], close + 2


def _canonical_by_decoding(body: bytes, artifact: Any) -> bytes:
    normalized = True

    def decode(data: bytes) -> Any:
        nonlocal normalized
        value, exact = decode_json(data)
        normalized = normalized and exact
        return value

    return canonical_json(_join(body, artifact, decode), normalized=normalized, from_json=True)


def _join(body: bytes, artifact: Any, decode: Any) -> dict[str, Any]:
    event: dict[str, Any] = decode(body)
    datasets = [*(event.get("inputs") or ()), *(event.get("outputs") or ())]
    if isinstance(event.get("dataset"), dict):
        datasets.append(event["dataset"])
    for dataset in datasets:
        for facet in (dataset.get("facets") or {}).values():
            if isinstance(facet, dict) and CONTENT_KEY in facet:
                facet.update(decode(artifact(facet.pop(CONTENT_KEY))))
    return event
