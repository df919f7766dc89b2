"""RFC 8785 (JSON Canonicalization Scheme) bytes and SHA-256 digests.

The fast path encodes with msgspec (sorted keys, minimal separators), which is byte-identical to
RFC 8785 unless the value holds a float literal that ECMAScript prints differently (``1.0``,
exponents) or a key outside the Basic Multilingual Plane (UTF-16 ordering). Output that could
contain either takes the exact path: floats are re-printed with ECMAScript's Number-to-String
rules, and non-BMP keys go through the ``rfc8785`` reference implementation. A property test
checks both paths against ``rfc8785``.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Any

import msgspec
import rfc8785

__all__ = ["canonical_json", "digest_of", "es_number", "sha256_hex"]

_encode_sorted = msgspec.json.Encoder(order="sorted").encode

# A float literal msgspec may print unlike ECMAScript: integral (``1.0``) or with an exponent.
# Strings can match too; that only sends them down the exact path.
_SUSPECT_FLOAT = re.compile(rb"\d\.0(?:[,}\]]|$)|\d[eE][-+]?\d+(?:[,}\]]|$)")
_NON_BMP = re.compile(rb"[\xf0-\xf4]")
_LONG_INT = re.compile(rb"\d{16,}")


def es_number(value: float) -> str:
    """Print a finite float exactly as ECMAScript's Number::toString does (RFC 8785 §3.2.2.3)."""
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a JSON number (RFC 8785 forbids NaN and Infinity)")
    if value == 0:
        return "0"
    sign = "-" if value < 0 else ""
    mantissa, _, exp_text = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = (whole + frac.rstrip("0")).lstrip("0") or "0"
    # point: where the decimal point sits relative to the start of ``digits`` (ECMAScript's n).
    leading_zeros = len(whole + frac) - len((whole + frac).lstrip("0"))
    point = len(whole) - leading_zeros + (int(exp_text) if exp_text else 0)
    k = len(digits)
    if k <= point <= 21:
        text = digits + "0" * (point - k)
    elif 0 < point <= 21:
        text = digits[:point] + "." + digits[point:]
    elif -6 < point <= 0:
        text = "0." + "0" * -point + digits
    else:
        exponent = point - 1
        sign_e = "+" if exponent >= 0 else "-"
        head = digits[0] + ("." + digits[1:] if k > 1 else "")
        text = f"{head}e{sign_e}{abs(exponent)}"
    return sign + text


def _float_literal(literal: str) -> msgspec.Raw:
    return msgspec.Raw(es_number(float(literal)).encode())


_reprint_floats = msgspec.json.Decoder(float_hook=_float_literal).decode


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical bytes of a JSON-compatible value.

    Raises:
        ValueError: the value holds NaN or Infinity, or an integer outside I-JSON's range.
    """
    data = _encode_sorted(value)
    if _NON_BMP.search(data) or _LONG_INT.search(data):
        return _reference(value)
    if _SUSPECT_FLOAT.search(data):
        return _encode_sorted(_reprint_floats(data))
    if b"null" in data:
        _reject_non_finite(value)
    return data


def _reference(value: Any) -> bytes:
    try:
        return rfc8785.dumps(value)
    except rfc8785.CanonicalizationError as error:
        raise ValueError(f"not canonicalizable as RFC 8785 JSON: {error}") from error


def _reject_non_finite(value: Any) -> None:
    """msgspec writes NaN and Infinity as ``null``; RFC 8785 forbids them, so find and refuse them."""
    if isinstance(value, float):
        es_number(value)
    elif isinstance(value, dict):
        for item in value.values():
            _reject_non_finite(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_non_finite(item)


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def digest_of(value: Any) -> str:
    """The content address of a JSON value: ``sha256:`` + hex SHA-256 of its canonical bytes."""
    return "sha256:" + sha256_hex(canonical_json(value))
