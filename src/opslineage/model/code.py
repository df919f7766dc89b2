"""Naming code so that it can be found and checked again: entry points and source digests.

A transform or a model's scorer is recorded by its entry point (``module:qualname``) and the
SHA-256 of its source, so that ``verify`` can import it later, tell whether the code it finds is
the code that ran, and run it again.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from types import CodeType
from typing import Any

__all__ = ["CodeIdentity", "identify", "load_entry_point"]

_KNOWN: dict[CodeType, CodeIdentity] = {}
_KNOWN_MAX = 4096


@dataclass(frozen=True)
class CodeIdentity:
    """Where a function's code lives and what it is.

    Attributes:
        entry_point: ``module:qualname`` when the function can be imported by that name (not a
            nested function, a lambda or one defined in ``__main__``), else None.
        digest: ``sha256:`` and the hex digest of its source text; None when the source is not
            available (a built-in, code typed at a prompt).
        path: the file holding the source, when known.
    """

    entry_point: str | None
    digest: str | None
    path: str | None


def identify(fn: Callable[..., Any]) -> CodeIdentity:
    """The identity of ``fn``'s code.

    Reading the source costs about a millisecond (and file system calls), so the answer is kept
    per code object: a function redefined (or reloaded) has a new one and is read again.
    """
    code = getattr(fn, "__code__", None)
    if not isinstance(code, CodeType):
        return _read(fn)
    known = _KNOWN.get(code)
    if known is None:
        known = _read(fn)
        if len(_KNOWN) >= _KNOWN_MAX:
            _KNOWN.clear()
        _KNOWN[code] = known
    return known


def _read(fn: Callable[..., Any]) -> CodeIdentity:
    module, name = getattr(fn, "__module__", None), getattr(fn, "__qualname__", "")
    importable = module not in (None, "__main__") and name and "<" not in name
    entry_point = f"{module}:{name}" if importable else None
    try:
        source = inspect.getsource(fn)
        path = inspect.getsourcefile(fn)
    except (OSError, TypeError):
        return CodeIdentity(entry_point, None, None)
    return CodeIdentity(entry_point, "sha256:" + hashlib.sha256(source.encode()).hexdigest(), path)


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    """The function an entry point (``module:qualname``) names, imported.

    Raises:
        LookupError: the text is not an entry point, or its module or name cannot be found.
    """
    module_name, colon, qualname = entry_point.partition(":")
    if not colon or not module_name or not qualname:
        raise LookupError(f"{entry_point!r} is not an entry point 'module:qualname'")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # any error of an import is why it cannot be found
        raise LookupError(f"cannot import {module_name!r}: {error}") from None
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            raise LookupError(f"{module_name!r} has no {qualname!r}")
    if not callable(target):
        raise LookupError(f"{entry_point!r} is not callable")
    return target
