"""Pure RFC 9162 Merkle tree math, below the store (which appends leaves) and the ledger (which proves).

See :mod:`opslineage.merkle.tree`. Nothing here does I/O or imports another package of ours.
"""

from opslineage.merkle.tree import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    NodeReader,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_at,
    subtree_root,
    verify_consistency,
    verify_inclusion,
)

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
