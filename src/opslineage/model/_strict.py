"""Strict JSON for events: what a JSON decoder lets through without a word, refused with its path.

msgspec decodes an object with a key given twice by keeping the last value, and nests as deep as
the interpreter's recursion limit lets it. Both are checked here without a pass in Python over
the text on the common path:

- duplicate keys: every key of the text is followed by one ``:`` outside strings, and a colon
  inside a string is a ``:`` byte in the text and in the canonical bytes alike, so the text has
  more colons than its canonical form exactly when a key was dropped (or a colon was written as
  ``\\u003a``: then the text is scanned);
- depth: a value of at most ``MAX_DEPTH`` containers cannot be nested deeper than that; a larger
  one is walked level by level, stopping as soon as too few containers are left to go deeper.

Only when one of these says something is wrong does :func:`locate` scan the text token by token
to name what (the path of the duplicate key, of the number out of range, of the nesting too deep).
"""

from __future__ import annotations

import json
import re
from typing import Any

from opslineage.model.canonical import NumberOutOfRange
from opslineage.model.errors import InvalidEvent

__all__ = ["MAX_DEPTH", "Structure", "check_depth", "check_keys", "locate"]

MAX_DEPTH = 64
"""The deepest nesting of objects and arrays an event may have (the event itself is level 1)."""

_KEEP = b":{[\\"
_NOT_STRUCTURE = bytes(byte for byte in range(256) if byte not in _KEEP)
_ESCAPED_COLON = re.compile(rb"\\u003[aA]")
_TOKEN = re.compile(
    rb'[ \t\r\n]*(?:("[^"\\]*(?:\\.[^"\\]*)*")|(-?[0-9][0-9.eE+-]*)|(true|false|null)|([{}\[\]:,]))',
    re.DOTALL,
)
_INFINITIES = (float("inf"), float("-inf"))
_SHOWN = 160  # characters of a long path shown in a message
_CONTAINERS = (dict, list)


class Structure:
    """What one pass of ``bytes.translate`` tells of a JSON text: its colons, its containers (an
    upper bound: brackets in strings count too) and whether it holds an escape."""

    __slots__ = ("colons", "containers", "escapes")

    def __init__(self, text: bytes) -> None:
        kept = text.translate(None, _NOT_STRUCTURE)
        self.colons = kept.count(b":")
        self.containers = kept.count(b"{") + kept.count(b"[")
        self.escapes = b"\\" in kept


def check_depth(value: Any, found: Structure, text: bytes | None = None) -> None:
    """Refuse a decoded value nested deeper than :data:`MAX_DEPTH`.

    Raises:
        InvalidEvent: naming the path where the nesting goes too deep.
    """
    if found.containers <= MAX_DEPTH or not _too_deep(value, found.containers):
        return
    raise InvalidEvent(_deep_path(value) if text is None else locate(text) or _deep_path(value))


def check_keys(text: bytes, found: Structure, canonical: bytes) -> None:
    """Refuse a text that gave a key twice in one object (its decoded value kept only one).

    Raises:
        InvalidEvent: naming the key and the object it is in.
    """
    if found.colons == canonical.count(b":") and not (found.escapes and _ESCAPED_COLON.search(text)):
        return
    reason = locate(text)
    if reason is not None:
        raise InvalidEvent(reason)


def _too_deep(value: Any, containers: int) -> bool:
    """Whether ``value`` nests deeper than MAX_DEPTH, walking it by levels; ``containers`` bounds
    how many it holds, so the walk stops once the ones left cannot make it deeper."""
    level, depth, seen = [value], 1, 1
    while level:
        if depth + containers - seen <= MAX_DEPTH:
            return False
        below: list[Any] = []
        extend = below.extend
        for node in level:
            items = node.values() if type(node) is dict else node
            extend(item for item in items if type(item) in _CONTAINERS)
        depth += 1
        seen += len(below)
        if below and depth > MAX_DEPTH:
            return True
        level = below
    return False


def _deep_path(value: Any) -> str:
    """The message for a value nested too deep, naming the first path that is."""
    path: list[str] = []
    node = value
    for _ in range(MAX_DEPTH):
        items = node.items() if type(node) is dict else enumerate(node)
        for key, item in items:
            if type(item) in _CONTAINERS and _depth_over(item, MAX_DEPTH - len(path) - 1):
                path.append(f".{key}" if type(node) is dict else f"[{key}]")
                node = item
                break
        else:
            break
    return f"{_join(path)} is nested deeper than {MAX_DEPTH} levels"


def _depth_over(value: Any, limit: int) -> bool:
    level = [value]
    for _ in range(limit):
        level = [
            item
            for node in level
            for item in (node.values() if type(node) is dict else node)
            if type(item) in _CONTAINERS
        ]
        if not level:
            return False
    return True


def _join(parts: list[str]) -> str:
    """A path such as ``run.facets.x[2]`` (its middle cut out when long)."""
    path = "".join(parts).removeprefix(".") or "the event"
    return path if len(path) <= _SHOWN else f"{path[: _SHOWN // 2]}…{path[-_SHOWN // 2 :]}"


class _Frame:
    __slots__ = ("index", "key", "keys")

    def __init__(self, is_object: bool) -> None:
        self.keys: set[str] | None = set() if is_object else None
        self.key: str | None = None
        self.index = -1

    def part(self) -> str:
        return f".{self.key}" if self.keys is not None else f"[{self.index}]"


def locate(text: bytes) -> str | None:
    """Scan JSON text for the first key given twice in an object, number beyond a double's range
    or nesting deeper than :data:`MAX_DEPTH`, and say which, with its path; None when there is
    none (or the text is not JSON: the decoder says why)."""
    stack: list[_Frame] = []
    want_key = False
    position, end = 0, len(text)
    while position < end:
        match = _TOKEN.match(text, position)
        if match is None:
            return None
        position = match.end()
        string, number, _, mark = match.groups()
        top = stack[-1] if stack else None
        if want_key and string is not None and top is not None and top.keys is not None:
            top.key = _key(string)
            if top.key is None or top.key in top.keys:
                return (
                    None
                    if top.key is None
                    else f"{_where(stack)} is given twice (duplicate keys are refused)"
                )
            top.keys.add(top.key)
            want_key = False
        elif mark in (b":", b",", b"}", b"]"):
            if mark in (b"}", b"]"):
                stack.pop()
            want_key = mark == b"," and stack[-1].keys is not None if stack else False
        else:  # a value
            if top is not None and top.keys is None:
                top.index += 1
            if number is not None and _out_of_range(number):
                return f"{_where(stack)}: {NumberOutOfRange(number.decode())}"
            if mark is not None:  # { or [
                if len(stack) == MAX_DEPTH:
                    return f"{_where(stack)} is nested deeper than {MAX_DEPTH} levels"
                stack.append(_Frame(mark == b"{"))
                want_key = mark == b"{"
    return None


def _where(stack: list[_Frame]) -> str:
    return _join([frame.part() for frame in stack])


def _key(token: bytes) -> str | None:
    try:
        return json.loads(token) if b"\\" in token else token[1:-1].decode()
    except ValueError:
        return None


def _out_of_range(number: bytes) -> bool:
    try:
        return any(c in number for c in b".eE") and float(number) in _INFINITIES
    except ValueError:
        return False
