//! [`MerkleTree`]: an append-only tree that keeps every perfect subtree's
//! hash, so proofs for any earlier size come without rehashing.

use super::{
    ConsistencyProof, EMPTY_ROOT, Hash, InclusionProof, ProofError, node_hash, split_point,
};

/// An append-only Merkle tree (RFC 9162 §2.1) holding the hash of every
/// perfect subtree: `levels[h][i]` covers leaves `i·2ʰ .. (i+1)·2ʰ`.
///
/// Memory is about two hashes a leaf (64 bytes; 640 MB at 10⁷ leaves).
/// Appending costs one hash per completed subtree (one on average); a root,
/// an inclusion proof or a consistency proof for any size up to
/// [`size`](Self::size) costs `O(log n)` lookups and at most a few dozen
/// hashes (the subtrees on the right border of a smaller tree, which are
/// not perfect, are recombined from the perfect ones below them).
///
/// ```
/// use docaiche_compliance::audit::merkle::{MerkleTree, leaf_hash, verify_inclusion};
///
/// let mut tree = MerkleTree::new();
/// for i in 0u32..100 {
///     tree.push(leaf_hash(&i.to_be_bytes()));
/// }
/// // A proof against the tree as it was at 50 leaves.
/// let proof = tree.inclusion_proof(42, 50)?;
/// verify_inclusion(42, 50, &leaf_hash(&42u32.to_be_bytes()), &proof.path, &tree.root_at(50)?)?;
/// # Ok::<(), docaiche_compliance::audit::merkle::ProofError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct MerkleTree {
    /// `levels[0]` holds the leaf hashes; `levels[h]` the roots of the
    /// perfect subtrees of `2ʰ` leaves, left to right.
    levels: Vec<Vec<Hash>>,
}

impl MerkleTree {
    /// The empty tree.
    #[must_use]
    pub const fn new() -> Self {
        Self { levels: Vec::new() }
    }

    /// An empty tree with room for `leaves` leaves without reallocating
    /// (a tree rebuilt from a trail of known length).
    #[must_use]
    pub fn with_capacity(leaves: usize) -> Self {
        let mut levels = Vec::new();
        let mut width = leaves;
        while width > 0 {
            levels.push(Vec::with_capacity(width));
            width /= 2;
        }
        Self { levels }
    }

    /// A tree of `leaves` (their [`leaf_hash`](super::leaf_hash)es), in
    /// order.
    pub fn from_leaves(leaves: impl IntoIterator<Item = Hash>) -> Self {
        let leaves = leaves.into_iter();
        let mut tree = Self::with_capacity(leaves.size_hint().0);
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// The number of leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the tree has no leaves.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.size() == 0
    }

    /// Append a leaf (its [`leaf_hash`](super::leaf_hash)).
    pub fn push(&mut self, leaf: Hash) {
        let mut hash = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(hash);
            // A row of even length just completed a pair: their parent is
            // a new perfect subtree one level up.
            if row.len() % 2 == 1 {
                return;
            }
            let left = row[row.len() - 2];
            hash = node_hash(&left, &hash);
            level += 1;
        }
    }

    /// The hash of leaf `index`, if the tree has it.
    #[must_use]
    pub fn leaf(&self, index: u64) -> Option<Hash> {
        let index = usize::try_from(index).ok()?;
        self.levels.first()?.get(index).copied()
    }

    /// The root of the whole tree ([`EMPTY_ROOT`] when empty).
    #[must_use]
    pub fn root(&self) -> Hash {
        let size = self.size();
        if size == 0 {
            EMPTY_ROOT
        } else {
            self.range_hash(0, size)
        }
    }

    /// The root the tree had when it held `size` leaves.
    ///
    /// # Errors
    /// [`ProofError::BeyondTree`] if `size` exceeds [`size`](Self::size).
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        self.check_size(size)?;
        Ok(if size == 0 {
            EMPTY_ROOT
        } else {
            self.range_hash(0, size)
        })
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves
    /// (RFC 9162 §2.1.3.1, `PATH(index, D[0..size])`).
    ///
    /// # Errors
    /// [`ProofError::BeyondTree`] if `size` exceeds [`size`](Self::size),
    /// [`ProofError::IndexOutOfRange`] unless `index < size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, ProofError> {
        self.check_size(size)?;
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        // Top down: at each split, the half without the leaf is a sibling.
        // RFC 9162 lists them bottom up.
        let (mut start, mut end) = (0, size);
        let mut path = Vec::with_capacity(64);
        while end - start > 1 {
            let k = split_point(end - start);
            if index < start + k {
                path.push(self.range_hash(start + k, end));
                end = start + k;
            } else {
                path.push(self.range_hash(start, start + k));
                start += k;
            }
        }
        path.reverse();
        Ok(InclusionProof::new(index, size, path))
    }

    /// The consistency proof from the tree of `first` leaves to the tree of
    /// `second` leaves (RFC 9162 §2.1.4.1, `PROOF(first, D[0..second])`).
    ///
    /// # Errors
    /// [`ProofError::BeyondTree`] if `second` exceeds [`size`](Self::size),
    /// [`ProofError::SizesOutOfOrder`] if `first > second`,
    /// [`ProofError::EmptyFirstTree`] if `first` is 0.
    pub fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<ConsistencyProof, ProofError> {
        self.check_size(second)?;
        super::consistency_proof_len(first, second)?;
        // SUBPROOF(m, D[start..end], whole), top down, reversed at the end.
        let (mut start, mut end, mut m) = (0, second, first);
        let mut whole = true;
        let mut path = Vec::with_capacity(65);
        while m != end - start {
            let k = split_point(end - start);
            if m <= k {
                path.push(self.range_hash(start + k, end));
                end = start + k;
            } else {
                path.push(self.range_hash(start, start + k));
                start += k;
                m -= k;
                whole = false;
            }
        }
        if !whole {
            path.push(self.range_hash(start, end));
        }
        path.reverse();
        Ok(ConsistencyProof::new(first, second, path))
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        let available = self.size();
        if size > available {
            return Err(ProofError::BeyondTree { size, available });
        }
        Ok(())
    }

    /// `MTH(D[start..end])` for a range the RFC's recursion produces:
    /// `start` is a multiple of the largest power of two not above
    /// `end - start`, so the range splits into perfect subtrees of
    /// decreasing size, each one stored.
    fn range_hash(&self, start: u64, end: u64) -> Hash {
        debug_assert!(start < end && end <= self.size());
        let mut pieces = [EMPTY_ROOT; 64];
        let mut count = 0;
        let mut at = start;
        let width = end - start;
        for level in (0..64).rev() {
            if (width >> level) & 1 == 1 {
                pieces[count] = self.stored(level, at >> level);
                count += 1;
                at += 1 << level;
            }
        }
        let mut pieces = pieces[..count].iter().rev();
        let Some(&last) = pieces.next() else {
            return EMPTY_ROOT;
        };
        pieces.fold(last, |right, left| node_hash(left, &right))
    }

    /// The stored root of the perfect subtree `index` at `level`.
    ///
    /// Only called for subtrees inside `[0, size)`, which `push` stored
    /// when their last leaf arrived.
    fn stored(&self, level: u32, index: u64) -> Hash {
        let row = &self.levels[level as usize];
        // Invariant: the subtree lies inside the tree (see above).
        row[usize::try_from(index).unwrap_or(usize::MAX)]
    }
}
