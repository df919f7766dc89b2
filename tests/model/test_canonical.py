"""Canonical JSON: byte-identical to the rfc8785 reference on any JSON value."""

from __future__ import annotations

import math
import struct

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from opslineage.model.canonical import canonical_json, decode_json, digest_of, es_number

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@settings(max_examples=500)
@given(json_values)
def test_canonical_json_matches_the_reference(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=2000)
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_es_number_matches_the_reference_on_any_double(bits: int) -> None:
    value = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
    if not math.isfinite(value):
        return
    assert es_number(value) == rfc8785.dumps(value).decode()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (-0.0, "0"),
        (1e21, "1e+21"),
        (1e-7, "1e-7"),
        (1e-6, "0.000001"),
        (1e16, "10000000000000000"),
    ],
)
def test_es_number_edges(value: float, text: str) -> None:
    assert es_number(value) == text


def test_keys_are_ordered_by_utf16_code_units() -> None:
    value = {"\U0001f600": 1, "\ufb01": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("\U0001f600".encode()) < canonical_json(value).index("\ufb01".encode())


@pytest.mark.parametrize("bad", [float("nan"), {"x": [float("inf")]}, [1, None, float("-inf")]])
def test_non_finite_numbers_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="NaN and Infinity"):
        canonical_json(bad)


def test_integers_beyond_i_json_are_kept_exact() -> None:
    assert canonical_json({"rows": 2**60}) == b'{"rows":1152921504606846976}'


@settings(max_examples=300)
@given(json_values)
def test_decoded_json_canonicalizes_like_the_reference(value: object) -> None:
    decoded, normalized = decode_json(rfc8785.dumps(value))
    assert canonical_json(decoded, normalized=normalized) == rfc8785.dumps(value)


def test_digest_is_sha256_of_canonical_bytes() -> None:
    assert digest_of({"b": 1, "a": [1.0]}) == digest_of({"a": [1], "b": 1.0})
    assert digest_of({"a": 1}).startswith("sha256:") and len(digest_of({"a": 1})) == 71
