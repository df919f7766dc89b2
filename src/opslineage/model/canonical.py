"""RFC 8785 (JSON Canonicalization Scheme) bytes and SHA-256 digests.

msgspec encodes with sorted keys and minimal separators, byte-identical to RFC 8785 except for
floats ECMAScript prints differently (``1.0`` is ``1``; exponent ranges differ) and for keys
outside the Basic Multilingual Plane (RFC 8785 sorts by UTF-16 code units). Floats are normalised
on decoding (msgspec's ``float_hook``: integral doubles become ints, which print alike); the rare
literal that still differs is re-printed with ECMAScript's Number-to-String rules; non-BMP text
has its keys re-sorted by UTF-16 code units. Property tests check every path against the
``rfc8785`` reference implementation.
"""

from __future__ import annotations

import hashlib
import math
import sys
from typing import Any

import msgspec

__all__ = [
    "NumberOutOfRange",
    "canonical_json",
    "decode_json",
    "digest_of",
    "es_number",
    "reject_non_finite",
    "sha256_hex",
]

_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_encode_as_is = msgspec.json.Encoder().encode
_NON_BMP_LEADS = (b"\xf0", b"\xf1", b"\xf2", b"\xf3", b"\xf4")


class _NeedsExactFloat(Exception):
    """A float literal that msgspec would print unlike ECMAScript."""


class NumberOutOfRange(Exception):
    """A JSON number beyond the range of a double (``1e400``): it would decode as Infinity.

    Not a ValueError, which msgspec would wrap into a ValidationError on its way out of a hook.
    """

    def __init__(self, literal: str) -> None:
        self.literal = literal
        super().__init__(f"the number {literal} is out of range (beyond ±{sys.float_info.max:.6g})")


_LARGEST = sys.float_info.max


def _normalize_float(literal: str) -> float | int:
    """Integral doubles print as integers in ECMAScript, so they become ints; other doubles of
    1e-5 or more print alike in both; anything else needs the exact path, and a literal beyond a
    double's range is refused."""
    value = float(literal)
    if value.is_integer():
        if abs(value) < 2**53:
            return int(value)
        raise _NeedsExactFloat
    if 1e-5 <= abs(value) <= _LARGEST:
        return value
    if math.isinf(value):
        raise NumberOutOfRange(literal)
    raise _NeedsExactFloat


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise NumberOutOfRange(literal)
    return value


_decode_normalized = msgspec.json.Decoder(float_hook=_normalize_float).decode
_decode_plain = msgspec.json.Decoder(float_hook=_finite_float).decode


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


def decode_json(data: bytes) -> tuple[Any, bool]:
    """Decode JSON text; returns the value and whether :func:`canonical_json` may take it as is
    (``normalized``: every float already in a form msgspec prints as ECMAScript does).

    Raises:
        msgspec.DecodeError: the text is not JSON.
        NumberOutOfRange: a number is beyond a double's range (it would become Infinity).
    """
    try:
        return _decode_normalized(data), True
    except _NeedsExactFloat:
        return _decode_plain(data), False


def canonical_json(value: Any, *, normalized: bool = False, from_json: bool = False) -> bytes:
    """Return the RFC 8785 canonical bytes of a JSON-compatible value.

    Integers beyond ±2**53, which I-JSON (and so RFC 8785) excludes, are kept exact rather than
    refused.

    Args:
        value: the value.
        normalized: the value came from :func:`decode_json` with ``normalized`` true.
        from_json: the value was decoded from JSON text, so it cannot hold NaN or Infinity.

    Raises:
        ValueError: the value holds NaN or Infinity (the message names where).
    """
    data = _encode_sorted(value)
    if not normalized:
        if not from_json and b"null" in data:
            reject_non_finite(value)  # msgspec writes NaN and Infinity as null
        try:
            data = _encode_sorted(_decode_normalized(data))
        except _NeedsExactFloat:
            data = _encode_sorted(_reprint_floats(data))
    if not data.isascii() and any(lead in data for lead in _NON_BMP_LEADS):
        return _encode_as_is(_utf16_ordered(_reprint_floats(data)))
    return data


def _utf16_ordered(value: Any) -> Any:
    """The value with every object's keys in UTF-16 code unit order (RFC 8785 §3.2.3)."""
    if isinstance(value, dict):
        return {key: _utf16_ordered(value[key]) for key in sorted(value, key=lambda k: k.encode("utf-16-be"))}
    if isinstance(value, list):
        return [_utf16_ordered(item) for item in value]
    return value


def reject_non_finite(value: Any, where: str = "") -> None:
    """Refuse NaN and Infinity in a value (msgspec writes them as ``null``; RFC 8785 forbids them).

    Raises:
        ValueError: naming where (``run.facets.x[2]``).
    """
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(
                f"{where or 'the value'} is {value!r}, not a JSON number (RFC 8785 forbids NaN and Infinity)"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            reject_non_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            reject_non_finite(item, f"{where}[{index}]")


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def digest_of(value: Any) -> str:
    """The content address of a JSON value: ``sha256:`` + hex SHA-256 of its canonical bytes."""
    return "sha256:" + sha256_hex(canonical_json(value))
