//! Inclusion and consistency proofs: their shape, their verification
//! (RFC 9162 §2.1.3.2 and §2.1.4.2) and a compact binary encoding.

use super::{Hash, MAX_PROOF_HASHES, node_hash};

/// Why a proof was refused. Every variant but [`RootMismatch`] describes a
/// proof that is malformed for the sizes it claims (a bug in whoever made
/// it, or an attack); `RootMismatch` is a well-formed proof that does not
/// lead to the expected root: the record, a root or the proof was altered.
///
/// [`RootMismatch`]: ProofError::RootMismatch
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange {
        /// The leaf index claimed.
        index: u64,
        /// The tree size claimed.
        size: u64,
    },
    /// The first tree of a consistency proof is larger than the second.
    #[error("first tree size {first} exceeds second tree size {second}")]
    SizesOutOfOrder {
        /// The first (older) size.
        first: u64,
        /// The second (newer) size.
        second: u64,
    },
    /// A consistency proof from the empty tree: every tree extends it, so
    /// there is nothing to prove (RFC 9162 defines none).
    #[error("a consistency proof from the empty tree proves nothing")]
    EmptyFirstTree,
    /// A proof was asked of a tree for a size it has not reached.
    #[error("tree size {size} is beyond the {available} leaves the tree holds")]
    BeyondTree {
        /// The size asked for.
        size: u64,
        /// The leaves the tree holds.
        available: u64,
    },
    /// The proof does not hold the number of hashes its sizes call for.
    #[error("proof holds {actual} hashes where {expected} are expected")]
    WrongLength {
        /// What the sizes call for.
        expected: usize,
        /// What the proof holds.
        actual: usize,
    },
    /// The proof, applied to the leaf or the first root, does not give the
    /// expected root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
    /// An encoded proof that is not in the documented layout.
    #[error("encoded proof is malformed: {reason}")]
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl From<ProofError> for docaiche_core::Error {
    fn from(error: ProofError) -> Self {
        Self::invalid_input(error.to_string())
    }
}

/// The number of hashes in the inclusion proof of leaf `index` in the tree
/// of `size` leaves.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`] unless `index < size`.
pub const fn inclusion_proof_len(index: u64, size: u64) -> Result<usize, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Below the level where the paths to `index` and to the last leaf part,
    // one sibling per level; above it, one per left turn of the border.
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = match index.checked_shr(inner) {
        Some(rest) => rest.count_ones(),
        None => 0,
    };
    Ok((inner + border) as usize)
}

/// The number of hashes in the consistency proof from the tree of `first`
/// leaves to the tree of `second` leaves (0 when the sizes are equal).
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`] if `first > second`,
/// [`ProofError::EmptyFirstTree`] if `first` is 0.
pub const fn consistency_proof_len(first: u64, second: u64) -> Result<usize, ProofError> {
    if first > second {
        return Err(ProofError::SizesOutOfOrder { first, second });
    }
    if first == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if first == second {
        return Ok(0);
    }
    // The inclusion proof of the old tree's last leaf in the new tree, less
    // the levels inside the old tree's last perfect subtree, plus that
    // subtree's root unless it is the whole old tree (then the verifier
    // has it already: it is the old root).
    let fork = 64 - ((first - 1) ^ (second - 1)).leading_zeros();
    let border = match (first - 1).checked_shr(fork) {
        Some(rest) => rest.count_ones(),
        None => 0,
    };
    let shift = first.trailing_zeros();
    let seed = if first.is_power_of_two() { 0 } else { 1 };
    Ok((seed + fork - shift + border) as usize)
}

/// Verify that `leaf` (a [`leaf_hash`](super::leaf_hash)) is at `index` in
/// the tree of `size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
///
/// Every input may come from an attacker; none makes this panic. Take
/// `size` and `root` from one signed tree head: the proof binds the leaf
/// to the root, not the root to the size (with the same path, a tree of 3
/// leaves' root also passes as one of 4, where a leaf stands in for a
/// subtree; no real tree of 4 has that root).
///
/// # Errors
/// [`ProofError::IndexOutOfRange`], [`ProofError::WrongLength`] for a
/// malformed proof, [`ProofError::RootMismatch`] for one that does not hold.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    path: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion(index, size, leaf, path)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2, steps 1 to 4).
fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    path: &[Hash],
) -> Result<Hash, ProofError> {
    let expected = inclusion_proof_len(index, size)?;
    if path.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            actual: path.len(),
        });
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::RootMismatch);
    }
    Ok(r)
}

/// Verify that the tree of `second` leaves with root `second_root` extends
/// the tree of `first` leaves with root `first_root` (RFC 9162 §2.1.4.2).
/// Equal sizes need an empty proof and equal roots.
///
/// Every input may come from an attacker; none makes this panic. As with
/// [`verify_inclusion`], each size must come from the signed tree head
/// that gave its root.
///
/// # Errors
/// [`ProofError::SizesOutOfOrder`], [`ProofError::EmptyFirstTree`] and
/// [`ProofError::WrongLength`] for a malformed proof,
/// [`ProofError::RootMismatch`] for one that does not hold.
pub fn verify_consistency(
    first: u64,
    second: u64,
    path: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    let expected = consistency_proof_len(first, second)?;
    if path.len() != expected {
        return Err(ProofError::WrongLength {
            expected,
            actual: path.len(),
        });
    }
    if first == second {
        return if first_root == second_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    // Step 2: a perfect old tree is its own last subtree; the proof leaves
    // its root out.
    let (seed, rest) = if first.is_power_of_two() {
        (*first_root, path)
    } else {
        match path.split_first() {
            Some((seed, rest)) => (*seed, rest),
            None => return Err(ProofError::RootMismatch),
        }
    };
    let mut fn_ = first - 1;
    let mut sn = second - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = seed;
    let mut sr = seed;
    for c in rest {
        if sn == 0 {
            return Err(ProofError::RootMismatch);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn == 0 && fr == *first_root && sr == *second_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// That leaf `index` is in the tree of `size` leaves: the sibling hashes
/// from the leaf up to the root (RFC 9162 §2.1.3).
///
/// The binary encoding ([`to_bytes`](Self::to_bytes)) is
/// `size (u64 BE) ‖ index (u64 BE) ‖ count (u8) ‖ count × 32 bytes`: 785
/// bytes at 10⁷ leaves (24 hashes).
///
/// ```
/// use docaiche_compliance::audit::merkle::{InclusionProof, MerkleTree, leaf_hash};
///
/// let tree = MerkleTree::from_leaves((0u32..10).map(|i| leaf_hash(&i.to_be_bytes())));
/// let proof = tree.inclusion_proof(7, 10)?;
/// let sent = proof.to_bytes();
/// let received = InclusionProof::from_bytes(&sent)?;
/// received.verify(&leaf_hash(&7u32.to_be_bytes()), &tree.root())?;
/// # Ok::<(), docaiche_compliance::audit::merkle::ProofError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InclusionProof {
    /// The leaf's index (0-based).
    pub index: u64,
    /// The tree size the proof is for.
    pub size: u64,
    /// Sibling hashes, lowest level first.
    pub path: Vec<Hash>,
}

impl InclusionProof {
    /// A proof from its parts (not checked: see [`verify`](Self::verify)).
    #[must_use]
    pub const fn new(index: u64, size: u64, path: Vec<Hash>) -> Self {
        Self { index, size, path }
    }

    /// Verify that `leaf` is at [`index`](Self::index) in the tree whose
    /// root is `root` (see [`verify_inclusion`]).
    ///
    /// # Errors
    /// As [`verify_inclusion`].
    pub fn verify(&self, leaf: &Hash, root: &Hash) -> Result<(), ProofError> {
        verify_inclusion(self.index, self.size, leaf, &self.path, root)
    }

    /// The encoded proof (layout in the type's docs).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self.size, self.index, &self.path)
    }

    /// Decode [`to_bytes`](Self::to_bytes)' output. Only the layout is
    /// checked here; [`verify`](Self::verify) checks the rest.
    ///
    /// # Errors
    /// [`ProofError::Malformed`] if `bytes` is not in the layout.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        let (size, index, path) = decode(bytes)?;
        Ok(Self { index, size, path })
    }
}

/// That the tree of `second` leaves extends the tree of `first` leaves
/// (RFC 9162 §2.1.4).
///
/// The binary encoding ([`to_bytes`](Self::to_bytes)) is
/// `first (u64 BE) ‖ second (u64 BE) ‖ count (u8) ‖ count × 32 bytes`.
///
/// ```
/// use docaiche_compliance::audit::merkle::{ConsistencyProof, MerkleTree, leaf_hash};
///
/// let tree = MerkleTree::from_leaves((0u32..10).map(|i| leaf_hash(&i.to_be_bytes())));
/// let proof = ConsistencyProof::from_bytes(&tree.consistency_proof(3, 10)?.to_bytes())?;
/// proof.verify(&tree.root_at(3)?, &tree.root())?;
/// # Ok::<(), docaiche_compliance::audit::merkle::ProofError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsistencyProof {
    /// The older tree's size.
    pub first: u64,
    /// The newer tree's size.
    pub second: u64,
    /// The proof's hashes, in RFC 9162 order.
    pub path: Vec<Hash>,
}

impl ConsistencyProof {
    /// A proof from its parts (not checked: see [`verify`](Self::verify)).
    #[must_use]
    pub const fn new(first: u64, second: u64, path: Vec<Hash>) -> Self {
        Self {
            first,
            second,
            path,
        }
    }

    /// Verify that the tree with `second_root` extends the one with
    /// `first_root` (see [`verify_consistency`]).
    ///
    /// # Errors
    /// As [`verify_consistency`].
    pub fn verify(&self, first_root: &Hash, second_root: &Hash) -> Result<(), ProofError> {
        verify_consistency(self.first, self.second, &self.path, first_root, second_root)
    }

    /// The encoded proof (layout in the type's docs).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self.first, self.second, &self.path)
    }

    /// Decode [`to_bytes`](Self::to_bytes)' output. Only the layout is
    /// checked here; [`verify`](Self::verify) checks the rest.
    ///
    /// # Errors
    /// [`ProofError::Malformed`] if `bytes` is not in the layout.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        let (first, second, path) = decode(bytes)?;
        Ok(Self {
            first,
            second,
            path,
        })
    }
}

const HEADER_LEN: usize = 17;

fn encode(a: u64, b: u64, path: &[Hash]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 32 * path.len());
    out.extend_from_slice(&a.to_be_bytes());
    out.extend_from_slice(&b.to_be_bytes());
    // A proof never holds more than MAX_PROOF_HASHES (65) hashes; a longer
    // path is encoded truncated to 255 and will not verify.
    let count = u8::try_from(path.len()).unwrap_or(u8::MAX);
    out.push(count);
    for hash in path.iter().take(usize::from(count)) {
        out.extend_from_slice(hash.as_bytes());
    }
    out
}

fn decode(bytes: &[u8]) -> Result<(u64, u64, Vec<Hash>), ProofError> {
    let malformed = |reason| ProofError::Malformed { reason };
    let header = bytes
        .get(..HEADER_LEN)
        .ok_or(malformed("shorter than its header"))?;
    let (a, rest) = header.split_at(8);
    let (b, count) = rest.split_at(8);
    let a = u64::from_be_bytes(a.try_into().map_err(|_| malformed("header"))?);
    let b = u64::from_be_bytes(b.try_into().map_err(|_| malformed("header"))?);
    let count = usize::from(count[0]);
    if count > MAX_PROOF_HASHES {
        return Err(malformed("more hashes than any proof holds"));
    }
    let body = &bytes[HEADER_LEN..];
    if body.len() != count * 32 {
        return Err(malformed("length does not match the hash count"));
    }
    let path = body
        .chunks_exact(32)
        .map(|chunk| {
            let mut out = [0; 32];
            out.copy_from_slice(chunk);
            Hash::from_bytes(out)
        })
        .collect();
    Ok((a, b, path))
}
