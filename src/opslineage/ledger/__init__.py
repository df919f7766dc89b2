"""The transparency log: checkpoints, signatures, proofs from the store, and ``verify``.

The Merkle math itself is :mod:`opslineage.merkle`; its names are re-exported here.
"""

from opslineage.merkle import (
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
