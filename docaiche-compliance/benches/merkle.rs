//! Merkle proofs over a trail of 10⁷ records: proof size, verification and
//! generation time, and the cost of appending.
//!
//! ```text
//! cargo bench -p docaiche-compliance --bench merkle
//! DOCAICHE_MERKLE_BENCH_LEAVES=100000 cargo bench -p docaiche-compliance --bench merkle
//! ```
//!
//! The tree is built once (about 2·10⁷ hashes and 640 MB at 10⁷ leaves);
//! the proofs measured are for 1024 leaves spread over it, taken in turn,
//! so no single lucky path decides the figure. Verification includes
//! hashing the record itself (a 400-byte line), as an auditor holding the
//! record does; the `leaf_hash` row is that hash alone, the baseline the
//! path's hashes add to. Sizes are printed before the measurements.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_compliance::audit::merkle::{
    Frontier, Hash, InclusionProof, MerkleTree, inclusion_proof_len, leaf_hash, verify_consistency,
    verify_inclusion,
};

const DEFAULT_LEAVES: u64 = 10_000_000;
const PROBES: u64 = 1024;

fn leaves() -> u64 {
    std::env::var("DOCAICHE_MERKLE_BENCH_LEAVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 2)
        .unwrap_or(DEFAULT_LEAVES)
}

/// A record of about the size the trail writes (400 bytes), distinct per
/// index.
fn record(i: u64) -> Vec<u8> {
    let mut line = format!(
        "{{\"v\":1,\"stream\":\"acme\",\"seq\":{},\"prev\":\"{}\",\"event\":{{",
        i + 1,
        "0".repeat(64)
    )
    .into_bytes();
    line.resize(400 - 80, b'x');
    line.extend_from_slice(format!("}},\"hash\":\"{:064x}\"}}", i).as_bytes());
    line
}

/// Leaf indices spread over `[0, n)` (a fixed LCG: the same every run).
fn probes(n: u64) -> Vec<u64> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..PROBES)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 11) % n
        })
        .collect()
}

fn merkle(c: &mut Criterion) {
    let n = leaves();
    let started = Instant::now();
    let tree = MerkleTree::from_leaves((0..n).map(|i| leaf_hash(&record(i))));
    let root = tree.root();
    println!(
        "merkle: built a tree of {n} leaves in {:.1?}",
        started.elapsed()
    );

    let indices = probes(n);
    let proofs: Vec<(Vec<u8>, InclusionProof)> = indices
        .iter()
        .map(|&i| (record(i), tree.inclusion_proof(i, n).unwrap()))
        .collect();
    // The longest path of a tree is leaf 0's: ceil(log2 n) hashes.
    let longest = inclusion_proof_len(0, n).unwrap();
    let longest_bytes = proofs
        .iter()
        .map(|(_, p)| p.to_bytes().len())
        .max()
        .unwrap();
    println!(
        "merkle: inclusion proof at {n} leaves: at most {longest} hashes = {} bytes of hashes; \
         binary encoding at most {} bytes (measured over {PROBES} proofs: {longest_bytes})",
        longest * 32,
        17 + longest * 32,
    );
    let first = n / 3;
    let old_root = tree.root_at(first).unwrap();
    let consistency = tree.consistency_proof(first, n).unwrap();
    println!(
        "merkle: consistency proof {first} -> {n}: {} hashes, {} bytes encoded",
        consistency.path.len(),
        consistency.to_bytes().len()
    );

    let mut group = c.benchmark_group("merkle_verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("leaf_hash", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % proofs.len();
            black_box(leaf_hash(black_box(&proofs[at].0)))
        });
    });
    group.bench_function(BenchmarkId::new("inclusion", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % proofs.len();
            let (record, proof) = &proofs[at];
            verify_inclusion(
                proof.index,
                proof.size,
                &leaf_hash(black_box(record)),
                black_box(&proof.path),
                &root,
            )
            .unwrap();
        });
    });
    group.bench_function(BenchmarkId::new("consistency", n), |b| {
        b.iter(|| {
            verify_consistency(first, n, black_box(&consistency.path), &old_root, &root).unwrap();
        });
    });
    group.finish();

    let mut group = c.benchmark_group("merkle_prove");
    group.throughput(Throughput::Elements(1));
    group.bench_function(BenchmarkId::new("inclusion", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % indices.len();
            black_box(tree.inclusion_proof(indices[at], n).unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("consistency", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % indices.len();
            black_box(tree.consistency_proof(indices[at].max(1), n).unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("root_at", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % indices.len();
            black_box(tree.root_at(indices[at]).unwrap())
        });
    });
    group.finish();

    // Appending: what the writer pays per record on top of the chain.
    let hashes: Vec<Hash> = (0..4096).map(|i| leaf_hash(&record(i))).collect();
    let mut group = c.benchmark_group("merkle_append");
    group.throughput(Throughput::Elements(hashes.len() as u64));
    group.bench_function(BenchmarkId::new("frontier", hashes.len()), |b| {
        b.iter(|| {
            let mut frontier = Frontier::new();
            for &h in &hashes {
                frontier.push(h);
            }
            black_box(frontier.root())
        });
    });
    group.bench_function(BenchmarkId::new("tree", hashes.len()), |b| {
        b.iter(|| {
            let mut tree = MerkleTree::with_capacity(hashes.len());
            for &h in &hashes {
                tree.push(h);
            }
            black_box(tree.root())
        });
    });
    group.finish();
}

criterion_group!(benches, merkle);
criterion_main!(benches);
