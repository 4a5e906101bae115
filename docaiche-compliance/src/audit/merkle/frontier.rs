//! [`Frontier`]: the right edge of an append-only tree, enough to append
//! and to compute the root.

use super::{EMPTY_ROOT, Hash, ProofError, node_hash};

/// The roots of the perfect subtrees a tree of `size` leaves is made of,
/// largest (leftmost) first: one per set bit of `size`, so at most 64
/// hashes whatever the size (a "compact range" over `[0, size)`).
///
/// Appending costs one hash per trailing one bit of the old size (one on
/// average); [`root`](Self::root) costs one hash per set bit but the first.
///
/// ```
/// use docaiche_compliance::audit::merkle::{Frontier, MerkleTree, leaf_hash};
///
/// let mut frontier = Frontier::new();
/// let mut tree = MerkleTree::new();
/// for i in 0u32..1000 {
///     frontier.push(leaf_hash(&i.to_be_bytes()));
///     tree.push(leaf_hash(&i.to_be_bytes()));
/// }
/// assert_eq!(frontier.root(), tree.root());
/// assert_eq!(frontier.hashes().len(), 1000u32.count_ones() as usize);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            size: 0,
            hashes: Vec::new(),
        }
    }

    /// A frontier from its parts, as [`size`](Self::size) and
    /// [`hashes`](Self::hashes) gave them (a writer resuming a stream).
    ///
    /// # Errors
    /// [`ProofError::WrongLength`] unless there is one hash per set bit of
    /// `size`.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, ProofError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(ProofError::WrongLength {
                expected,
                actual: hashes.len(),
            });
        }
        Ok(Self { size, hashes })
    }

    /// The number of leaves.
    #[must_use]
    pub const fn size(&self) -> u64 {
        self.size
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// The perfect subtrees' roots, largest first.
    #[must_use]
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Append a leaf (its [`leaf_hash`](super::leaf_hash)).
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves.
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut size = self.size;
        // Each trailing one bit is a perfect subtree as big as the one just
        // built: merge them, smallest first.
        while size & 1 == 1 {
            if let Some(left) = self.hashes.pop() {
                hash = node_hash(&left, &hash);
            }
            size >>= 1;
        }
        self.hashes.push(hash);
        self.size = self
            .size
            .checked_add(1)
            .expect("a Merkle tree holds fewer than 2^64 leaves");
    }

    /// The tree's root ([`EMPTY_ROOT`] when empty).
    #[must_use]
    pub fn root(&self) -> Hash {
        let mut hashes = self.hashes.iter().rev();
        let Some(&last) = hashes.next() else {
            return EMPTY_ROOT;
        };
        hashes.fold(last, |right, left| node_hash(left, &right))
    }
}
