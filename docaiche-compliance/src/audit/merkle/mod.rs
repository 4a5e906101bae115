//! Merkle trees over a stream of records, as RFC 9162 §2.1 defines them
//! (the hashing of RFC 6962, unchanged): tree heads, inclusion proofs and
//! consistency proofs, generated from an append-only tree and verified by
//! anyone who holds a tree head.
//!
//! ```
//! use docaiche_compliance::audit::merkle::{self, MerkleTree};
//!
//! let mut tree = MerkleTree::new();
//! for record in [&b"first"[..], b"second", b"third"] {
//!     tree.push(merkle::leaf_hash(record));
//! }
//! let root = tree.root();
//!
//! // The record at index 1 is in the tree of size 3 …
//! let proof = tree.inclusion_proof(1, 3)?;
//! proof.verify(&merkle::leaf_hash(b"second"), &root)?;
//! assert!(proof.verify(&merkle::leaf_hash(b"forged"), &root).is_err());
//!
//! // … and the tree of size 3 extends the tree of size 2 without rewriting it.
//! let old_root = tree.root_at(2)?;
//! tree.consistency_proof(2, 3)?.verify(&old_root, &root)?;
//! # Ok::<(), merkle::ProofError>(())
//! ```
//!
//! # Hashing (RFC 9162 §2.1.1)
//!
//! A leaf's hash is `SHA-256(0x00 ‖ data)` ([`leaf_hash`]), an interior
//! node's `SHA-256(0x01 ‖ left ‖ right)` ([`node_hash`]); the two prefixes
//! keep a leaf from posing as a node (a second-preimage attack). The tree
//! of `n > 1` leaves splits at the largest power of two `k < n`: its hash is
//! `node_hash(MTH(D[0..k]), MTH(D[k..n]))`; the empty tree's is
//! `SHA-256("")` ([`EMPTY_ROOT`]).
//!
//! # Storage
//!
//! - [`Frontier`] keeps only the roots of the perfect subtrees that make up
//!   the tree (one per set bit of its size, at most 64 hashes): enough to
//!   append and to compute the root, which is all a writer or a verifier
//!   walking a trail needs.
//! - [`MerkleTree`] keeps the hash of every perfect subtree, level by level
//!   (about `2n` hashes: 64 bytes a record, 640 MB at 10⁷ records), so
//!   that an inclusion or consistency proof for any earlier tree size costs
//!   `O(log n)` lookups and a few hashes, never a rehash of the records.
//!
//! # Verification
//!
//! [`verify_inclusion`] and [`verify_consistency`] follow RFC 9162 §2.1.3.2
//! and §2.1.4.2 step by step, after checking the proof's length against the
//! one the sizes call for. They take attacker-controlled input: every
//! malformed proof (wrong length, index not below the size, sizes out of
//! order) is a [`ProofError`], never a panic, and costs at most 64 hashes.
//! The published test vectors of `transparency-dev/merkle` run in
//! `tests/merkle_vectors.rs`.

mod frontier;
mod proof;
mod tree;

#[cfg(test)]
mod tests;

use sha2::{Digest, Sha256};

pub use super::record::Hash;
pub use frontier::Frontier;
pub use proof::{
    ConsistencyProof, InclusionProof, ProofError, consistency_proof_len, inclusion_proof_len,
    verify_consistency, verify_inclusion,
};
pub use tree::MerkleTree;

/// The root of the empty tree: `SHA-256("")` (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = Hash::from_bytes([
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
]);

/// The most hashes a proof about a tree of up to `u64::MAX` leaves can
/// hold (an inclusion proof has at most 64, a consistency proof 65).
pub const MAX_PROOF_HASHES: usize = 65;

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// The hash of a leaf holding `data`: `SHA-256(0x00 ‖ data)`.
#[must_use]
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(data);
    Hash::from_bytes(hasher.finalize().into())
}

/// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left.as_bytes());
    hasher.update(right.as_bytes());
    Hash::from_bytes(hasher.finalize().into())
}

/// The largest power of two strictly below `n` (`n > 1`): where RFC 9162
/// splits a tree of `n` leaves.
const fn split_point(n: u64) -> u64 {
    debug_assert!(n > 1);
    1 << (63 - (n - 1).leading_zeros())
}
