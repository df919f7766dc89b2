"""The transparency log: Merkle tree, proofs, checkpoints, signatures."""

from opslineage.ledger.merkle import (
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
