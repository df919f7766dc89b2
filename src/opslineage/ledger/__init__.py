"""The transparency log: checkpoints, signatures, proofs from the store, and ``verify``.

The Merkle math itself is :mod:`opslineage.merkle`; import its names from there.
"""
