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
//! so no single lucky path decides the figure. Those 1024 leaves are real
//! records (400-byte lines, leaf = `merkle_leaf` of the record's hash); the
//! others are stand-ins, which changes nothing a proof sees.
//!
//! In `merkle_verify`: `inclusion` is the Merkle check alone (leaf hash and
//! path, given the record's hash); `record_proof` is what an auditor runs on
//! a `RecordProof`: the record line checked against its own hash, the tree
//! head's signature (HMAC), then the path; `parse_record` is the first step
//! alone, the baseline (what checking one chained record costs today).
//! Sizes are printed before the measurements.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::hint::black_box;
use std::time::Instant;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::collections::HashMap;

use docaiche_compliance::audit::merkle::{
    Frontier, Hash, MerkleTree, inclusion_proof_len, leaf_hash, verify_consistency,
    verify_inclusion,
};
use docaiche_compliance::audit::record::{self, Head, merkle_leaf};
use docaiche_compliance::audit::{CheckpointKey, RecordProof, TreeHead};

const DEFAULT_LEAVES: u64 = 10_000_000;
const PROBES: u64 = 1024;

fn leaves() -> u64 {
    std::env::var("DOCAICHE_MERKLE_BENCH_LEAVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n >= 2)
        .unwrap_or(DEFAULT_LEAVES)
}

/// Record `index + 1` of stream `acme` (a 400-byte line), as the trail
/// encodes it: its line and hash.
fn record(index: u64) -> (Vec<u8>, Hash) {
    let prev = Head::new(index, leaf_hash(&index.to_be_bytes()));
    let event = format!(
        "{{\"action\":\"document.read\",\"pad\":\"{}\"}}",
        "x".repeat(200)
    );
    let encoded = record::encode_record("acme", prev, event.as_bytes()).unwrap();
    (encoded.line, encoded.hash)
}

/// A stand-in leaf for a record not probed.
fn stand_in(index: u64) -> Hash {
    leaf_hash(&index.to_be_bytes())
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
    let indices = probes(n);
    let records: HashMap<u64, (Vec<u8>, Hash)> = indices.iter().map(|&i| (i, record(i))).collect();
    let started = Instant::now();
    let tree = MerkleTree::from_leaves((0..n).map(|i| match records.get(&i) {
        Some((_, hash)) => merkle_leaf(hash),
        None => stand_in(i),
    }));
    let root = tree.root();
    println!(
        "merkle: built a tree of {n} leaves in {:.1?}",
        started.elapsed()
    );
    let key =
        CheckpointKey::from_bytes(CheckpointKey::DEFAULT_SECRET, &vec![7u8; 32].into()).unwrap();
    let head = TreeHead::sign(
        &key,
        "bench.example/audit/acme",
        n,
        root,
        time::OffsetDateTime::UNIX_EPOCH,
    )
    .unwrap();
    let proofs: Vec<RecordProof> = indices
        .iter()
        .map(|&i| {
            RecordProof::new(
                records[&i].0.clone(),
                tree.inclusion_proof(i, n).unwrap(),
                head.clone(),
            )
        })
        .collect();
    let text_len = proofs.iter().map(|p| p.to_text().len()).max().unwrap();
    // The longest path of a tree is leaf 0's: ceil(log2 n) hashes.
    let longest = inclusion_proof_len(0, n).unwrap();
    let longest_bytes = proofs
        .iter()
        .map(|p| p.proof.to_bytes().len())
        .max()
        .unwrap();
    println!(
        "merkle: inclusion proof at {n} leaves: at most {longest} hashes = {} bytes of hashes; \
         binary encoding at most {} bytes (measured over {PROBES} proofs: {longest_bytes}); \
         as a self-contained tlog-proof text with the record and the signed head: {text_len} bytes",
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
    let hashes: Vec<Hash> = proofs.iter().map(|p| records[&p.proof.index].1).collect();
    group.bench_function(BenchmarkId::new("parse_record", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % proofs.len();
            black_box(record::parse_line(black_box(&proofs[at].record)).unwrap())
        });
    });
    group.bench_function(BenchmarkId::new("inclusion", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % proofs.len();
            let proof = &proofs[at].proof;
            verify_inclusion(
                proof.index,
                proof.size,
                &merkle_leaf(black_box(&hashes[at])),
                black_box(&proof.path),
                &root,
            )
            .unwrap();
        });
    });
    group.bench_function(BenchmarkId::new("record_proof", n), |b| {
        let mut at = 0;
        b.iter(|| {
            at = (at + 1) % proofs.len();
            black_box(
                proofs[at]
                    .verify(&key, Some("bench.example/audit"))
                    .unwrap(),
            )
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
    let hashes: Vec<Hash> = (0..4096).map(stand_in).collect();
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
