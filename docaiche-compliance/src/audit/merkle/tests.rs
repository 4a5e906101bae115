//! The tree and the verifiers against a transcription of RFC 9162's
//! recursive definitions (MTH, PATH, PROOF), and every proof altered in
//! every way a proof can be altered.

#![allow(
    clippy::unwrap_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use proptest::prelude::*;

use super::*;

fn leaves(n: u64) -> Vec<Hash> {
    (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
}

/// `MTH(D[n])`, RFC 9162 §2.1.1.
fn mth(d: &[Hash]) -> Hash {
    match d.len() {
        0 => EMPTY_ROOT,
        1 => d[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&mth(&d[..k]), &mth(&d[k..]))
        }
    }
}

/// `PATH(m, D[n])`, RFC 9162 §2.1.3.1.
fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
    let n = d.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split_point(n as u64) as usize;
    if m < k {
        let mut p = path(m, &d[..k]);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = path(m - k, &d[k..]);
        p.push(mth(&d[..k]));
        p
    }
}

/// `SUBPROOF(m, D[n], b)`, RFC 9162 §2.1.4.1.
fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = split_point(n as u64) as usize;
    if m <= k {
        let mut p = subproof(m, &d[..k], b);
        p.push(mth(&d[k..]));
        p
    } else {
        let mut p = subproof(m - k, &d[k..], false);
        p.push(mth(&d[..k]));
        p
    }
}

#[test]
fn trees_proofs_and_lengths_match_the_rfc_definitions_up_to_70_leaves() {
    for n in 0..=70u64 {
        let d = leaves(n);
        let tree = MerkleTree::from_leaves(d.iter().copied());
        let mut frontier = Frontier::new();
        d.iter().for_each(|&leaf| frontier.push(leaf));
        assert_eq!(tree.root(), mth(&d), "root of {n}");
        assert_eq!(frontier.root(), mth(&d), "frontier root of {n}");
        assert_eq!(frontier.size(), n);
        assert_eq!(
            Frontier::from_parts(n, frontier.hashes().to_vec()).unwrap(),
            frontier
        );
        for size in 0..=n {
            assert_eq!(
                tree.root_at(size).unwrap(),
                mth(&d[..size as usize]),
                "root at {size} of {n}"
            );
        }
        for index in 0..n {
            let proof = tree.inclusion_proof(index, n).unwrap();
            assert_eq!(proof.path, path(index as usize, &d), "PATH({index}, {n})");
            assert_eq!(inclusion_proof_len(index, n).unwrap(), proof.path.len());
            proof.verify(&d[index as usize], &tree.root()).unwrap();
        }
        for first in 1..=n {
            let proof = tree.consistency_proof(first, n).unwrap();
            let expected = subproof(first as usize, &d, true);
            assert_eq!(proof.path, expected, "PROOF({first}, {n})");
            assert_eq!(consistency_proof_len(first, n).unwrap(), proof.path.len());
            proof
                .verify(&tree.root_at(first).unwrap(), &tree.root())
                .unwrap();
        }
    }
}

/// Every way of altering an inclusion proof, each of which must fail.
///
/// Not among them: the same path and root under a slightly larger size
/// (`n + 1`). That can verify, since to the verifier a subtree's hash
/// and a leaf's look alike; the size is bound to the root by the signed
/// tree head, never by the proof (see `the_size_is_bound_by_the_tree_head`).
fn inclusion_mutants(
    proof: &InclusionProof,
    leaf: Hash,
    root: Hash,
) -> Vec<(String, u64, u64, Hash, Vec<Hash>, Hash)> {
    let (i, n, p) = (proof.index, proof.size, proof.path.clone());
    let other = leaf_hash(b"some other leaf");
    let mut out = vec![
        (
            "index - 1".to_owned(),
            i.wrapping_sub(1),
            n,
            leaf,
            p.clone(),
            root,
        ),
        ("index + 1".to_owned(), i + 1, n, leaf, p.clone(), root),
        ("index ^ 2".to_owned(), i ^ 2, n, leaf, p.clone(), root),
        ("size * 2".to_owned(), i, n * 2, leaf, p.clone(), root),
        ("size / 2".to_owned(), i, n / 2, leaf, p.clone(), root),
        ("wrong leaf".to_owned(), i, n, other, p.clone(), root),
        ("wrong root".to_owned(), i, n, leaf, p.clone(), other),
        ("empty root".to_owned(), i, n, leaf, p.clone(), EMPTY_ROOT),
        (
            "trailing root".to_owned(),
            i,
            n,
            leaf,
            [&p[..], &[root]].concat(),
            root,
        ),
        (
            "preceding root".to_owned(),
            i,
            n,
            leaf,
            [&[root], &p[..]].concat(),
            root,
        ),
    ];
    for at in 0..p.len() {
        for bit in [0, 7, 100, 255] {
            let mut q = p.clone();
            let mut bytes = *q[at].as_bytes();
            bytes[bit / 8] ^= 1 << (bit % 8);
            q[at] = Hash::from_bytes(bytes);
            out.push((format!("bit {bit} of hash {at}"), i, n, leaf, q, root));
        }
        let mut removed = p.clone();
        removed.remove(at);
        out.push((format!("hash {at} removed"), i, n, leaf, removed, root));
        let mut inserted = p.clone();
        inserted.insert(at, other);
        out.push((format!("hash inserted at {at}"), i, n, leaf, inserted, root));
        if at + 1 < p.len() && p[at] != p[at + 1] {
            let mut swapped = p.clone();
            swapped.swap(at, at + 1);
            out.push((
                format!("hashes {at} and {} swapped", at + 1),
                i,
                n,
                leaf,
                swapped,
                root,
            ));
        }
    }
    out
}

#[test]
fn every_altered_inclusion_proof_fails_up_to_40_leaves() {
    for n in 1..=40u64 {
        let d = leaves(n);
        let tree = MerkleTree::from_leaves(d.iter().copied());
        for index in 0..n {
            let proof = tree.inclusion_proof(index, n).unwrap();
            for (what, i, size, leaf, path, root) in
                inclusion_mutants(&proof, d[index as usize], tree.root())
            {
                // Moving the index to a leaf with the same hash would be a
                // proof of that leaf: the leaves here are all distinct.
                assert!(
                    verify_inclusion(i, size, &leaf, &path, &root).is_err(),
                    "{what}: leaf {index} of {n} still verified"
                );
            }
        }
    }
}

/// As for inclusion proofs, a second size moved by one with the same
/// roots is not among the alterations: the size is the tree head's.
#[test]
fn every_altered_consistency_proof_fails_up_to_40_leaves() {
    let other = leaf_hash(b"some other leaf");
    for n in 1..=40u64 {
        let d = leaves(n);
        let tree = MerkleTree::from_leaves(d.iter().copied());
        for m in 1..=n {
            let proof = tree.consistency_proof(m, n).unwrap();
            let (r1, r2, p) = (tree.root_at(m).unwrap(), tree.root(), proof.path.clone());
            let mut mutants = vec![
                ("first - 1", m - 1, n, p.clone(), r1, r2),
                ("first + 1", m + 1, n, p.clone(), r1, r2),
                ("second * 2", m, n * 2, p.clone(), r1, r2),
                ("wrong first root", m, n, p.clone(), other, r2),
                ("wrong second root", m, n, p.clone(), r1, other),
                ("roots swapped", m, n, p.clone(), r2, r1),
                ("trailing root", m, n, [&p[..], &[r2]].concat(), r1, r2),
                ("preceding root", m, n, [&[r1], &p[..]].concat(), r1, r2),
            ];
            for at in 0..p.len() {
                let mut flipped = p.clone();
                let mut bytes = *flipped[at].as_bytes();
                bytes[0] ^= 8;
                flipped[at] = Hash::from_bytes(bytes);
                mutants.push(("a flipped bit", m, n, flipped, r1, r2));
                let mut removed = p.clone();
                removed.remove(at);
                mutants.push(("a removed hash", m, n, removed, r1, r2));
                let mut inserted = p.clone();
                inserted.insert(at, other);
                mutants.push(("an inserted hash", m, n, inserted, r1, r2));
            }
            for (what, first, second, path, r1, r2) in mutants {
                // Equal sizes with equal roots are consistent whatever the
                // claimed size: not an alteration that can be caught.
                if first == second && r1 == r2 && path.is_empty() {
                    continue;
                }
                // A first root at m - 1 could by chance be right: the roots
                // differ for distinct leaves, so it is not.
                assert!(
                    verify_consistency(first, second, &path, &r1, &r2).is_err(),
                    "{what}: {m} -> {n} still verified"
                );
            }
        }
    }
}

#[test]
fn the_size_is_bound_by_the_tree_head_not_by_the_proof() {
    // A tree of 3 leaves: leaf 2 sits where a size-4 tree has the subtree
    // of leaves 2 and 3, so the size-3 proof also "verifies" for size 4
    // against the size-3 root. No tree of 4 leaves has that root (its
    // right child would be a node hash equal to a leaf hash), so only a
    // checkpoint signing (4, root of 3) could make use of it.
    let d = leaves(3);
    let tree = MerkleTree::from_leaves(d.iter().copied());
    let proof = tree.inclusion_proof(0, 3).unwrap();
    assert!(verify_inclusion(0, 4, &d[0], &proof.path, &tree.root()).is_ok());
    let consistency = tree.consistency_proof(1, 3).unwrap();
    assert!(verify_consistency(1, 4, &consistency.path, &d[0], &tree.root()).is_ok());
}

#[test]
fn malformed_proofs_are_typed_errors_not_panics() {
    let h = leaf_hash(b"x");
    assert_eq!(
        verify_inclusion(0, 0, &h, &[], &EMPTY_ROOT),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        verify_inclusion(u64::MAX, u64::MAX, &h, &[], &h),
        Err(ProofError::IndexOutOfRange {
            index: u64::MAX,
            size: u64::MAX
        })
    );
    assert!(matches!(
        verify_inclusion(u64::MAX - 1, u64::MAX, &h, &[h; 200], &h),
        Err(ProofError::WrongLength { actual: 200, .. })
    ));
    assert_eq!(
        verify_inclusion(0, 1, &h, &[h], &h),
        Err(ProofError::WrongLength {
            expected: 0,
            actual: 1
        })
    );
    assert_eq!(
        verify_consistency(2, 1, &[], &h, &h),
        Err(ProofError::SizesOutOfOrder {
            first: 2,
            second: 1
        })
    );
    assert_eq!(
        verify_consistency(0, 5, &[], &EMPTY_ROOT, &h),
        Err(ProofError::EmptyFirstTree)
    );
    assert_eq!(
        verify_consistency(3, 3, &[h], &h, &h),
        Err(ProofError::WrongLength {
            expected: 0,
            actual: 1
        })
    );
    assert_eq!(
        verify_consistency(3, 3, &[], &h, &EMPTY_ROOT),
        Err(ProofError::RootMismatch)
    );
    // The longest proofs there can be: no overflow at the top of u64.
    assert_eq!(inclusion_proof_len(0, u64::MAX).unwrap(), 64);
    assert_eq!(inclusion_proof_len(u64::MAX - 1, u64::MAX).unwrap(), 63);
    assert!(consistency_proof_len(u64::MAX - 1, u64::MAX).unwrap() <= MAX_PROOF_HASHES);
    assert!(consistency_proof_len(3, u64::MAX).unwrap() <= MAX_PROOF_HASHES);
    assert_eq!(
        verify_consistency(u64::MAX - 1, u64::MAX, &[h; 65], &h, &h).unwrap_err(),
        ProofError::WrongLength {
            expected: consistency_proof_len(u64::MAX - 1, u64::MAX).unwrap(),
            actual: 65
        }
    );

    let tree = MerkleTree::from_leaves(leaves(5));
    assert_eq!(
        tree.inclusion_proof(0, 6),
        Err(ProofError::BeyondTree {
            size: 6,
            available: 5
        })
    );
    assert_eq!(
        tree.inclusion_proof(5, 5),
        Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        tree.consistency_proof(0, 5),
        Err(ProofError::EmptyFirstTree)
    );
    assert_eq!(
        tree.consistency_proof(4, 3),
        Err(ProofError::SizesOutOfOrder {
            first: 4,
            second: 3
        })
    );
    assert!(tree.root_at(6).is_err());
    assert_eq!(tree.leaf(5), None);
    assert_eq!(tree.leaf(u64::MAX), None);
    assert!(Frontier::from_parts(5, vec![h]).is_err());
}

#[test]
fn encodings_round_trip_and_refuse_other_layouts() {
    let tree = MerkleTree::from_leaves(leaves(1000));
    let proof = tree.inclusion_proof(777, 1000).unwrap();
    let bytes = proof.to_bytes();
    assert_eq!(bytes.len(), 17 + 32 * proof.path.len());
    assert_eq!(InclusionProof::from_bytes(&bytes).unwrap(), proof);
    let consistency = tree.consistency_proof(300, 1000).unwrap();
    assert_eq!(
        ConsistencyProof::from_bytes(&consistency.to_bytes()).unwrap(),
        consistency
    );
    for cut in 0..bytes.len() {
        assert!(
            InclusionProof::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(InclusionProof::from_bytes(&longer).is_err());
    let mut too_many = vec![0; 17];
    too_many[16] = 66;
    too_many.extend(std::iter::repeat_n(0, 66 * 32));
    assert!(InclusionProof::from_bytes(&too_many).is_err());
    let error: docaiche_core::Error = ProofError::RootMismatch.into();
    assert_eq!(error.code(), docaiche_core::ErrorCode::InvalidInput);
}

fn flip(hash: Hash, bit: usize) -> Hash {
    let mut bytes = *hash.as_bytes();
    bytes[bit / 8] ^= 1 << (bit % 8);
    Hash::from_bytes(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Larger trees, any index and any older size: the proof verifies, and
    /// one flipped bit anywhere in it, or in the leaf or a root, fails.
    #[test]
    fn proofs_verify_and_any_flipped_bit_fails(
        n in 1u64..3000,
        a in any::<u64>(),
        b in any::<u64>(),
        bit in 0usize..256,
        pick in any::<usize>(),
    ) {
        let tree = MerkleTree::from_leaves(leaves(n));
        let root = tree.root();
        let index = a % n;
        let leaf = tree.leaf(index).unwrap();
        let proof = tree.inclusion_proof(index, n).unwrap();
        prop_assert!(proof.verify(&leaf, &root).is_ok());
        prop_assert!(proof.verify(&flip(leaf, bit), &root).is_err());
        prop_assert!(proof.verify(&leaf, &flip(root, bit)).is_err());
        if !proof.path.is_empty() {
            let mut bad = proof.clone();
            let at = pick % bad.path.len();
            bad.path[at] = flip(bad.path[at], bit);
            prop_assert!(bad.verify(&leaf, &root).is_err());
        }

        let first = b % n + 1;
        let old_root = tree.root_at(first).unwrap();
        let proof = tree.consistency_proof(first, n).unwrap();
        prop_assert!(proof.verify(&old_root, &root).is_ok());
        if first < n {
            prop_assert!(proof.verify(&flip(old_root, bit), &root).is_err());
            prop_assert!(proof.verify(&old_root, &flip(root, bit)).is_err());
            if !proof.path.is_empty() {
                let mut bad = proof.clone();
                let at = pick % bad.path.len();
                bad.path[at] = flip(bad.path[at], bit);
                prop_assert!(bad.verify(&old_root, &root).is_err());
            }
        }
    }

    /// Whatever the numbers and hashes, verification answers (no panic,
    /// no overflow) and never accepts a made-up path.
    #[test]
    fn arbitrary_proofs_never_panic(
        index in any::<u64>(),
        size in any::<u64>(),
        len in 0usize..80,
        seed in any::<u8>(),
    ) {
        let path: Vec<Hash> = (0..len).map(|i| Hash::from_bytes([seed.wrapping_add(i as u8); 32])).collect();
        let h = Hash::from_bytes([seed; 32]);
        prop_assert!(verify_inclusion(index, size, &h, &path, &EMPTY_ROOT).is_err());
        let _ = verify_consistency(index, size, &path, &h, &EMPTY_ROOT);
        let _ = inclusion_proof_len(index, size);
        let _ = consistency_proof_len(index, size);
    }
}
