//! The trail as a verifiable log: the file sink signs a Merkle tree head
//! per stream at least every interval while the stream grows and every
//! idle interval while it does not, keeps its trees across restarts, and
//! the verifier, given the key, the trail's origin and the heads an auditor
//! kept, detects every alteration of the mutation suite (byte flips,
//! deleted and reordered records, truncated tails, spliced trails, replayed
//! heads, forged signatures).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod audit_common;

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use audit_common::event;
use audit_common::mutation::{Mutation, mutants, tree_heads};
use docaiche_compliance::audit::merkle::MerkleTree;
use docaiche_compliance::audit::record::{ParsedLine, merkle_leaf, parse_line};
use docaiche_compliance::audit::{
    CheckpointKey, CheckpointPolicy, FileSinkConfig, FsyncPolicy, JsonlFileSink, Location,
    TamperKind, TrailLine, TreeHead, TreeHeadPolicy, Verifier, VerifyReport, history_to_text,
    read_lines,
};
use docaiche_core::SecretBytes;
use docaiche_core::audit::AuditSink;
use docaiche_core::clock::{Clock, ManualClock};

const ORIGIN: &str = "audit.test/trail-a";
const TENANTS: [&str; 3] = ["a", "b", "c"];

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("docaiche-audit-log-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn key() -> CheckpointKey {
    CheckpointKey::from_bytes("audit/checkpoint-key", &SecretBytes::from(vec![9u8; 32])).unwrap()
}

fn policy(origin: &str) -> TreeHeadPolicy {
    TreeHeadPolicy::new(key(), origin)
        .unwrap()
        .with_every(Duration::from_secs(1))
        .with_idle(Duration::from_secs(60))
}

fn open(path: &Path, origin: &str, clock: &ManualClock) -> JsonlFileSink {
    JsonlFileSink::open_with_clock(
        FileSinkConfig::new(path)
            .with_fsync(FsyncPolicy::Never)
            .with_checkpoints(CheckpointPolicy::new(key(), NonZeroU64::new(3).unwrap()))
            .with_tree_heads(policy(origin)),
        Arc::new(clock.clone()),
    )
    .unwrap()
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    read_lines(path)
        .unwrap()
        .map(|l| l.unwrap().bytes)
        .collect()
}

fn heads_of(lines: &[Vec<u8>]) -> Vec<TreeHead> {
    tree_heads(lines)
}

fn verifier(history: Vec<TreeHead>) -> Verifier {
    Verifier::new()
        .with_key(key())
        .with_origin(ORIGIN)
        .with_history(history)
}

fn verify_lines(verifier: &Verifier, lines: &[Vec<u8>]) -> VerifyReport {
    verifier
        .verify(lines.iter().enumerate().map(|(i, l)| {
            Ok(TrailLine::complete(
                Location::new("mem", i as u64 + 1),
                l.clone(),
            ))
        }))
        .unwrap()
}

/// A trail of three tenants: 8 events each, 400 ms apart (a head per
/// stream about every third of its records), the last heads signed a
/// second later, an idle minute (idle heads, same sizes, later times), then
/// one more event of `a` and its head. Events are numbered from `offset`,
/// so two trails written with different offsets differ everywhere.
async fn write_log(path: &Path, origin: &str, offset: usize) {
    let clock = ManualClock::new();
    let sink = open(path, origin, &clock);
    for i in 0..24 {
        sink.record(&event(TENANTS[i % 3], offset + i))
            .await
            .unwrap();
        clock.advance(Duration::from_millis(400));
    }
    clock.advance(Duration::from_secs(1));
    sink.flush().await.unwrap();
    clock.advance(Duration::from_secs(61));
    sink.flush().await.unwrap();
    sink.record(&event("a", offset + 24)).await.unwrap();
    clock.advance(Duration::from_secs(1));
    sink.flush().await.unwrap();
}

#[tokio::test]
async fn a_stream_gets_a_signed_head_at_once_then_at_most_one_per_interval() {
    let dir = TempDir::new();
    let path = dir.path("audit.jsonl");
    let clock = ManualClock::new();
    let sink = open(&path, ORIGIN, &clock);
    for i in 0..5 {
        sink.record(&event("a", i)).await.unwrap();
    }
    // The first record is signed with its batch; the next four wait for
    // the interval.
    let heads = heads_of(&lines(&path));
    assert_eq!(heads.iter().map(|h| h.size).collect::<Vec<_>>(), [1]);
    clock.advance(Duration::from_millis(999));
    sink.record(&event("a", 5)).await.unwrap();
    assert_eq!(heads_of(&lines(&path)).len(), 1);
    clock.advance(Duration::from_millis(1));
    sink.record(&event("a", 6)).await.unwrap();
    let heads = heads_of(&lines(&path));
    assert_eq!(heads.iter().map(|h| h.size).collect::<Vec<_>>(), [1, 7]);
    let head = &heads[1];
    assert_eq!((head.stream(), head.trail_origin()), ("a", ORIGIN));
    assert!(head.is_signed_by(&key()));
    assert_eq!(head.time, clock.now());

    // The head's root is the tree over the records' hashes, in order.
    let tree = MerkleTree::from_leaves(lines(&path).iter().filter_map(|l| match parse_line(l) {
        Ok(ParsedLine::Record(r)) => Some(merkle_leaf(&r.hash)),
        _ => None,
    }));
    assert_eq!(head.root, tree.root());
    let report = verifier(heads).verify_path(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.tamper);
    assert_eq!(
        (
            report.tree_heads,
            report.tree_heads_verified,
            report.history_matched
        ),
        (2, 2, 2)
    );
}

#[tokio::test]
async fn the_timer_signs_the_tail_and_quiet_streams_on_its_own() {
    let dir = TempDir::new();
    let path = dir.path("audit.jsonl");
    let clock = ManualClock::new();
    let sink = open(&path, ORIGIN, &clock);
    sink.record(&event("a", 0)).await.unwrap();
    sink.record(&event("a", 1)).await.unwrap();
    assert_eq!(heads_of(&lines(&path)).len(), 1);
    // A second passes with no event: the timer signs record 2.
    let tick = |by: Duration| {
        let clock = clock.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while clock.pending_sleepers() == 0 {
                assert!(Instant::now() < deadline, "the timer never slept");
                tokio::task::yield_now().await;
            }
            clock.advance(by);
            // The timer sends its tick before it sleeps again.
            while clock.pending_sleepers() == 0 {
                assert!(Instant::now() < deadline, "the timer did not come back");
                tokio::task::yield_now().await;
            }
        }
    };
    tick(Duration::from_secs(1)).await;
    sink.flush().await.unwrap();
    let heads = heads_of(&lines(&path));
    assert_eq!(heads.iter().map(|h| h.size).collect::<Vec<_>>(), [1, 2]);
    // A quiet minute: a fresh head of the same size.
    tick(Duration::from_secs(60)).await;
    sink.flush().await.unwrap();
    let heads = heads_of(&lines(&path));
    assert_eq!(heads.iter().map(|h| h.size).collect::<Vec<_>>(), [1, 2, 2]);
    assert!(heads[2].time > heads[1].time);
    assert_eq!(heads[2].root, heads[1].root);
    assert!(verifier(heads).verify_path(&path).unwrap().is_ok());
}

#[tokio::test]
async fn a_reopened_trail_keeps_its_trees_and_never_signs_back_in_time() {
    let dir = TempDir::new();
    let path = dir.path("audit.jsonl");
    write_log(&path, ORIGIN, 0).await;
    let before = heads_of(&lines(&path));
    // Reopened with a clock an hour behind: heads still move forward.
    let clock = ManualClock::starting_at(before.last().unwrap().time - time::Duration::hours(1));
    let sink = open(&path, ORIGIN, &clock);
    sink.record(&event("b", 100)).await.unwrap();
    clock.advance(Duration::from_secs(1));
    sink.flush().await.unwrap();
    drop(sink);
    let all = lines(&path);
    let heads = heads_of(&all);
    let last_b = heads.iter().rev().find(|h| h.stream() == "b").unwrap();
    let previous_b = before.iter().rev().find(|h| h.stream() == "b").unwrap();
    assert_eq!(last_b.size, previous_b.size + 1);
    assert!(last_b.time >= previous_b.time);
    let report = verifier(heads.clone()).verify_path(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.tamper);
    assert_eq!(report.history_matched, heads.len() as u64);
    // The history checks on its own too, and refuses an old head replayed.
    assert!(verifier(Vec::new()).verify_history(&heads).is_ok());
    let mut replayed = heads.clone();
    replayed.push(heads[0].clone());
    let report = verifier(Vec::new()).verify_history(&replayed);
    assert_eq!(report.tamper.unwrap().kind, TamperKind::Replayed);
    let text = history_to_text(&heads);
    assert_eq!(TreeHead::parse_history(&text).unwrap(), heads);
}

#[tokio::test]
async fn an_old_trail_without_heads_keeps_verifying_and_gets_heads_once_reopened() {
    let dir = TempDir::new();
    let path = dir.path("audit.jsonl");
    {
        let sink =
            JsonlFileSink::open(FileSinkConfig::new(&path).with_fsync(FsyncPolicy::Never)).unwrap();
        for i in 0..6 {
            sink.record(&event(TENANTS[i % 3], i)).await.unwrap();
        }
    }
    assert!(Verifier::new().verify_path(&path).unwrap().is_ok());
    let clock = ManualClock::new();
    let sink = open(&path, ORIGIN, &clock);
    sink.flush().await.unwrap();
    drop(sink);
    let heads = heads_of(&lines(&path));
    let sizes: BTreeMap<&str, u64> = heads.iter().map(|h| (h.stream(), h.size)).collect();
    assert_eq!(sizes, BTreeMap::from([("a", 2), ("b", 2), ("c", 2)]));
    let report = verifier(heads).verify_path(&path).unwrap();
    assert!(report.is_ok(), "{:?}", report.tamper);
}

/// Every mutant, verified as lines (the form a table's rows take) and as a
/// file: each must be found.
#[tokio::test]
async fn the_mutation_suite_is_detected_in_full_on_file_trails() {
    let dir = TempDir::new();
    let (a, b, a2) = (
        dir.path("a.jsonl"),
        dir.path("b.jsonl"),
        dir.path("a2.jsonl"),
    );
    write_log(&a, ORIGIN, 0).await;
    write_log(&b, "audit.test/trail-b", 1000).await;
    write_log(&a2, ORIGIN, 2000).await;
    let (lines_a, lines_b, lines_a2) = (lines(&a), lines(&b), lines(&a2));
    let history = heads_of(&lines_a);
    let verifier = verifier(history.clone());
    let untouched = verifier.verify_path(&a).unwrap();
    assert!(untouched.is_ok(), "{:?}", untouched.tamper);
    assert_eq!(untouched.history_matched, history.len() as u64);

    let all = mutants(&lines_a, &lines_b, &lines_a2, 11);
    let mut counts: BTreeMap<Mutation, usize> = BTreeMap::new();
    let file = dir.path("mutant.jsonl");
    let mut missed = Vec::new();
    for mutant in &all {
        *counts.entry(mutant.mutation).or_default() += 1;
        let report = verify_lines(&verifier, &mutant.lines);
        if report.is_ok() {
            missed.push(format!("{:?}: {} (as lines)", mutant.mutation, mutant.what));
        }
        let mut bytes = Vec::new();
        for line in &mutant.lines {
            bytes.extend_from_slice(line);
            bytes.push(b'\n');
        }
        std::fs::write(&file, &bytes).unwrap();
        let report = verifier.verify_path(&file).unwrap();
        if report.is_ok() {
            missed.push(format!(
                "{:?}: {} (as a file)",
                mutant.mutation, mutant.what
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "{} of {} mutants missed:\n{}",
        missed.len(),
        all.len(),
        missed.join("\n")
    );
    for mutation in [
        Mutation::ByteFlip,
        Mutation::DeletedRecord,
        Mutation::ReorderedRecords,
        Mutation::TruncatedTail,
        Mutation::SplicedTrails,
        Mutation::ReplayedCheckpoint,
        Mutation::ForgedCheckpointSignature,
    ] {
        assert!(
            counts.get(&mutation).copied().unwrap_or(0) > 0,
            "no {mutation:?} mutant"
        );
    }
    eprintln!(
        "mutation suite (file): {counts:?}, {} mutants, all detected",
        all.len()
    );
}

/// What only a file has: a tail cut inside a line, and the last newline
/// flipped (both leave a torn last line, which alone is not tampering: the
/// kept heads are what show the loss).
#[tokio::test]
async fn a_tail_cut_inside_a_line_is_detected_with_the_kept_heads() {
    let dir = TempDir::new();
    let path = dir.path("audit.jsonl");
    write_log(&path, ORIGIN, 0).await;
    let bytes = std::fs::read(&path).unwrap();
    let verifier = verifier(heads_of(&lines(&path)));
    let cut = dir.path("cut.jsonl");
    // Every cut in the last 2 KiB (the last records and heads).
    for keep in bytes.len().saturating_sub(2048)..bytes.len() {
        std::fs::write(&cut, &bytes[..keep]).unwrap();
        let report = verifier.verify_path(&cut).unwrap();
        assert!(
            !report.is_ok(),
            "a cut at byte {keep} of {} went unnoticed",
            bytes.len()
        );
    }
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 0x20;
    std::fs::write(&cut, &flipped).unwrap();
    assert!(!verifier.verify_path(&cut).unwrap().is_ok());
    // Without the kept heads, a cut at a line boundary after a head cannot
    // be told from a trail that ended there: that is what the history is for.
    let without = Verifier::new().with_key(key()).with_origin(ORIGIN);
    let last_newline = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    std::fs::write(&cut, &bytes[..=last_newline]).unwrap();
    assert!(without.verify_path(&cut).unwrap().is_ok());
}
