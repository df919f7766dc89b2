"""RFC 9162 (Certificate Transparency v2) Merkle tree math for the transparency log.

This module owns the hashing rules (RFC 9162 §2.1), the compact range ("frontier") that appends
leaves in O(log n), proof generation from *stored perfect subtrees* (§2.1.3 inclusion paths and
§2.1.4 consistency proofs), and the verification algorithms of §2.1.3.2 and §2.1.4.2. It does
no I/O: callers supply a :class:`NodeReader` that returns stored node hashes.

A perfect subtree is named ``(level, index)``: it covers leaves ``[index * 2**level,
(index + 1) * 2**level)``, and level 0 is a leaf hash. Such a node never changes once its last
leaf is appended, so a store can persist every node that :meth:`CompactRange.append` returns
and later answer proofs, and roots of any past tree size, from O(log n) reads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Protocol

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeReader",
    "ProofError",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_at",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
"""Length in bytes of every hash in the tree (SHA-256)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH of the empty tree: SHA-256 of the empty string."""

_sha256 = hashlib.sha256


class ProofError(ValueError):
    """A proof that does not verify, or whose inputs are malformed."""


class NodeReader(Protocol):
    """Returns the stored hash of a perfect subtree; raises (e.g. ``KeyError``) if it is absent."""

    def __call__(self, level: int, index: int, /) -> bytes:
        """Return the hash of the perfect subtree ``(level, index)``."""
        ...


def leaf_hash(data: bytes) -> bytes:
    """Hash a leaf's data: ``SHA-256(0x00 || data)``.

    Args:
        data: the leaf's raw bytes.

    Returns:
        The 32-byte leaf hash.
    """
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash an interior node: ``SHA-256(0x01 || left || right)``.

    Args:
        left: hash of the left child.
        right: hash of the right child.

    Returns:
        The 32-byte node hash.
    """
    return _sha256(b"\x01" + left + right).digest()


def _range_root(start: int, end: int, get: NodeReader) -> bytes:
    # MTH of an aligned, non-empty range: fold its perfect pieces (largest on the left) right to left.
    count = end - start
    low = (count & -count).bit_length() - 1
    pos = end - (1 << low)
    acc = get(low, pos >> low)
    for level in range(low + 1, count.bit_length()):
        if count >> level & 1:
            pos -= 1 << level
            acc = _sha256(b"\x01" + get(level, pos >> level) + acc).digest()
    return acc


def subtree_root(start: int, end: int, get: NodeReader) -> bytes:
    """Compute MTH(D[start:end]) for a range that occurs in RFC 9162's recursion.

    Such ranges are aligned: ``start`` is a multiple of the smallest power of two that is at least
    ``end - start``. The root is folded from at most one stored perfect subtree per level.

    Args:
        start: first leaf index (inclusive).
        end: last leaf index (exclusive).
        get: reader of stored perfect-subtree hashes.

    Returns:
        The 32-byte root of the range; :data:`EMPTY_ROOT` when ``start == end``.

    Raises:
        ValueError: if the range is negative, reversed, or not aligned.
    """
    if not 0 <= start <= end:
        raise ValueError(f"invalid range [{start}, {end})")
    if start == end:
        return EMPTY_ROOT
    width = 1 << (end - start - 1).bit_length()
    if start % width:
        raise ValueError(f"range [{start}, {end}) is not aligned to {width} leaves")
    return _range_root(start, end, get)


def root_at(size: int, get: NodeReader) -> bytes:
    """Return the root of the tree as it stood when it held ``size`` leaves.

    Args:
        size: the tree size (0 gives :data:`EMPTY_ROOT`).
        get: reader of stored perfect-subtree hashes.

    Returns:
        The 32-byte Merkle tree hash.
    """
    return subtree_root(0, size, get)


def _path(index: int, size: int, from_level: int, get: NodeReader) -> list[bytes]:
    # Siblings of leaf `index`'s ancestors, bottom-up, starting at `from_level`. Below `inner` the
    # leaf and the last leaf are in different subtrees; only the sibling at inner - 1 may be a
    # non-perfect right edge. Above it every sibling is a perfect left subtree.
    inner = (index ^ (size - 1)).bit_length()
    out = []
    for level in range(from_level, inner):
        sibling = (index >> level) ^ 1
        start = sibling << level
        if start + (1 << level) <= size:
            out.append(get(level, sibling))
        else:
            out.append(_range_root(start, size, get))
    for level in range(inner, index.bit_length()):
        if index >> level & 1:
            out.append(get(level, (index >> level) ^ 1))
    return out


def inclusion_proof(index: int, size: int, get: NodeReader) -> list[bytes]:
    """Build the audit path PATH(index, D[size]) of RFC 9162 §2.1.3.1.

    Args:
        index: 0-based index of the leaf.
        size: tree size the proof is against.
        get: reader of stored perfect-subtree hashes.

    Returns:
        Sibling hashes ordered from the leaf up to the root, as the RFC defines.

    Raises:
        ValueError: unless ``0 <= index < size``.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not in a tree of size {size}")
    return _path(index, size, 0, get)


def consistency_proof(old_size: int, new_size: int, get: NodeReader) -> list[bytes]:
    """Build PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1.

    Args:
        old_size: size of the earlier tree (at least 1).
        new_size: size of the later tree.
        get: reader of stored perfect-subtree hashes.

    Returns:
        The proof nodes in the RFC's order; empty when the sizes are equal.

    Raises:
        ValueError: unless ``0 < old_size <= new_size``.
    """
    if not 0 < old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == new_size:
        return []
    # SUBPROOF follows the last old leaf down to the largest complete subtree ending at old_size:
    # the perfect node at level tz(old_size). The RFC omits it when it is the whole old tree.
    level = (old_size & -old_size).bit_length() - 1
    last = old_size - 1
    seed = [] if old_size == 1 << level else [get(level, last >> level)]
    return seed + _path(last, new_size, level, get)


def _check_size(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProofError(f"{name} must be a non-negative integer, got {value!r}")


def _check_hash(name: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        got = f"{len(value)} bytes" if isinstance(value, bytes | bytearray) else type(value).__name__
        raise ProofError(f"{name} is not a {HASH_SIZE}-byte hash (got {got})")


def _check_hashes(name: str, values: Iterable[bytes]) -> None:
    for i, value in enumerate(values):
        _check_hash(f"{name}[{i}]", value)


def _inclusion_len(index: int, size: int) -> int:
    inner = (index ^ (size - 1)).bit_length()
    return inner + (index >> inner).bit_count()


def _root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: list[bytes]) -> bytes:
    # RFC 9162 §2.1.3.2 steps 2-5, on a proof whose length has been checked.
    fn, sn, r = index, size - 1, bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is longer than the path")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("inclusion proof is shorter than the path")
    return r


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> None:
    """Verify an inclusion proof with the algorithm of RFC 9162 §2.1.3.2.

    Args:
        leaf_hash: the 32-byte leaf hash (already ``0x00``-prefixed and hashed).
        index: 0-based index of the leaf.
        size: size of the tree the proof is against.
        proof: the audit path, leaf side first.
        root: the expected 32-byte root of the tree of ``size`` leaves.

    Raises:
        ProofError: if any input is malformed or the proof does not lead to ``root``.
    """
    _check_size("index", index)
    _check_size("size", size)
    if index >= size:
        raise ProofError(f"leaf index {index} is not in a tree of size {size}")
    _check_hash("leaf_hash", leaf_hash)
    _check_hash("root", root)
    _check_hashes("proof", proof)
    if len(proof) != (want := _inclusion_len(index, size)):
        raise ProofError(f"inclusion proof has {len(proof)} hashes, expected {want}")
    if _root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def _consistency_len(old_size: int, new_size: int) -> int:
    level = (old_size & -old_size).bit_length() - 1
    last = old_size - 1
    inner = (last ^ (new_size - 1)).bit_length()
    seed = 0 if old_size == 1 << level else 1
    return seed + inner - level + (last >> inner).bit_count()


def _roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, proof: list[bytes]
) -> tuple[bytes, bytes]:
    # RFC 9162 §2.1.4.2 steps 2-7 for 0 < old_size < new_size, on a length-checked proof.
    path = [old_root, *proof] if old_size & (old_size - 1) == 0 else list(proof)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = bytes(path[0])
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is longer than the path")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("consistency proof is shorter than the path")
    return fr, sr


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    """Verify a consistency proof with the algorithm of RFC 9162 §2.1.4.2.

    Edge rules: a proof from size 0 is refused (it proves nothing); equal sizes require an empty
    proof and equal roots; every hash must be 32 bytes.

    Args:
        old_size: size of the earlier tree.
        new_size: size of the later tree.
        old_root: the 32-byte root of the earlier tree.
        new_root: the 32-byte root of the later tree.
        proof: the consistency proof, in the RFC's order.

    Raises:
        ProofError: if any input is malformed or the proof does not link the two roots.
    """
    _check_size("old_size", old_size)
    _check_size("new_size", new_size)
    if old_size > new_size:
        raise ProofError(f"old size {old_size} is larger than new size {new_size}")
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree is meaningless")
    _check_hash("old_root", old_root)
    _check_hash("new_root", new_root)
    _check_hashes("proof", proof)
    if old_size == new_size:
        if proof:
            raise ProofError("sizes are equal but the proof is not empty")
        if old_root != new_root:
            raise ProofError("sizes are equal but the roots differ")
        return
    if len(proof) != (want := _consistency_len(old_size, new_size)):
        raise ProofError(f"consistency proof has {len(proof)} hashes, expected {want}")
    fr, sr = _roots_from_consistency(old_size, new_size, old_root, proof)
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


class CompactRange:
    """The frontier: roots of the perfect subtrees covering leaves ``[0, size)``.

    Holds at most one hash per level (one per set bit of ``size``), largest subtree first.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        """Create the frontier of the empty tree."""
        self._size = 0
        self._hashes: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Append one leaf hash in O(log n).

        Args:
            leaf_hash: the 32-byte leaf hash (see :func:`leaf_hash`).

        Returns:
            Every perfect subtree completed by this leaf as ``(level, index, hash)``, from the
            leaf itself at level 0 upwards, for a store to persist.

        Raises:
            ValueError: if ``leaf_hash`` is not a 32-byte hash.
        """
        _check_hash("leaf_hash", leaf_hash)
        h, index, level = bytes(leaf_hash), self._size, 0
        completed = [(0, index, h)]
        while index & 1:
            h = node_hash(self._hashes.pop(), h)
            index, level = index >> 1, level + 1
            completed.append((level, index, h))
        self._hashes.append(h)
        self._size += 1
        return completed

    def root(self) -> bytes:
        """Return the MTH of the whole tree (:data:`EMPTY_ROOT` when empty)."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def to_list(self) -> list[bytes]:
        """Return the frontier hashes, largest (leftmost) subtree first, for saving with ``size``."""
        return list(self._hashes)

    @classmethod
    def from_list(cls, size: int, hashes: list[bytes]) -> CompactRange:
        """Restore a frontier saved with :meth:`to_list`.

        Args:
            size: the number of leaves the frontier covers.
            hashes: the saved hashes, largest subtree first.

        Returns:
            The restored frontier.

        Raises:
            ValueError: if ``size`` is negative or the hashes do not fit it.
        """
        _check_size("size", size)
        if len(hashes) != size.bit_count():
            raise ValueError(f"a frontier of size {size} has {size.bit_count()} hashes, got {len(hashes)}")
        _check_hashes("hashes", hashes)
        frontier = cls()
        frontier._size, frontier._hashes = size, [bytes(h) for h in hashes]
        return frontier

    @classmethod
    def from_reader(cls, size: int, get: NodeReader) -> CompactRange:
        """Rebuild the frontier for ``size`` leaves from stored perfect subtrees.

        Args:
            size: the number of leaves.
            get: reader of stored perfect-subtree hashes.

        Returns:
            The frontier, read with one ``get`` per set bit of ``size``.
        """
        levels = [lv for lv in range(size.bit_length() - 1, -1, -1) if size >> lv & 1]
        return cls.from_list(size, [get(lv, (size >> lv) - 1) for lv in levels])

    def __repr__(self) -> str:
        """Return a short description with the size and root."""
        return f"CompactRange(size={self._size}, root={self.root().hex()})"
