//! The file trail: tampering is found at the right record, crashes and
//! restarts keep the chain, rotation, the sink contract, buffer, fan-out
//! and fail-closed behaviour.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod audit_common;

use std::num::{NonZeroU64, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use audit_common::{event, fields, find, flip_byte, forge};
use docaiche_compliance::audit::record::Head;
use docaiche_compliance::audit::{
    Auditor, BufferConfig, BufferedSink, CheckpointKey, CheckpointPolicy, Criticality,
    DROPPED_ACTION, FanOutPolicy, FanOutSink, FileSinkConfig, FsyncPolicy, JsonlFileSink,
    TamperKind, Verifier, VerifyReport, read_lines, trail_segments,
};
use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::{Error, Result, SecretBytes, TenantId};
use docaiche_store::conformance::{self, AuditReadBack, Harness};
use docaiche_store::memory::MemoryAuditSink;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("docaiche-audit-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn trail(&self) -> PathBuf {
        self.0.join("audit.jsonl")
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

/// 20 records alternating between tenants `a` and `b`, fsynced.
async fn write_trail(path: &Path, checkpoints: bool) {
    let mut config = FileSinkConfig::new(path);
    if checkpoints {
        config = config.with_checkpoints(CheckpointPolicy::new(key(), NonZeroU64::new(5).unwrap()));
    }
    let sink = JsonlFileSink::open(config).unwrap();
    for i in 0..20 {
        let tenant = if i % 2 == 0 { "a" } else { "b" };
        let receipt = sink.record(&event(tenant, i)).await.unwrap();
        assert_eq!(receipt.sequence, Some(i as u64 / 2 + 1));
    }
    sink.flush().await.unwrap();
}

fn lines(path: &Path) -> Vec<Vec<u8>> {
    read_lines(path)
        .unwrap()
        .map(|l| l.unwrap().bytes)
        .collect()
}

fn rewrite(path: &Path, lines: &[Vec<u8>]) {
    let mut out = Vec::new();
    for line in lines {
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    std::fs::write(path, out).unwrap();
}

fn verify(path: &Path) -> VerifyReport {
    Verifier::new().with_key(key()).verify_path(path).unwrap()
}

/// The 1-based line number and kind of the reported tampering.
fn found(report: &VerifyReport) -> (TamperKind, u64) {
    let tamper = report.tamper.as_ref().expect("tampering detected");
    (tamper.kind, tamper.location.line)
}

#[tokio::test]
async fn an_untouched_trail_verifies() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), true).await;
    let report = verify(&dir.trail());
    assert!(report.is_ok(), "{:?}", report.tamper);
    assert_eq!(report.records, 20);
    assert_eq!(report.checkpoints, 4);
    assert_eq!(report.checkpoints_verified, 4);
    assert_eq!(report.heads["a"].seq, 10);
    assert!(report.torn_tail.is_none());
}

#[tokio::test]
async fn flipping_one_byte_is_found_as_modified_at_that_record() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), false).await;
    let mut trail = lines(&dir.trail());
    flip_byte(&mut trail, 7);
    rewrite(&dir.trail(), &trail);
    assert_eq!(found(&verify(&dir.trail())), (TamperKind::Modified, 8));
}

#[tokio::test]
async fn deleting_a_record_is_found_as_removed_at_the_next_of_its_stream() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), false).await;
    let mut trail = lines(&dir.trail());
    let at = find(&trail, "a", 4);
    trail.remove(at);
    rewrite(&dir.trail(), &trail);
    // The next record of stream `a` (seq 5) is now one line further on
    // (line at + 2, 1-based, since `b`'s record sits between).
    let report = verify(&dir.trail());
    assert_eq!(found(&report), (TamperKind::Removed, at as u64 + 2));
    assert_eq!(report.tamper.unwrap().seq, Some(5));
}

#[tokio::test]
async fn a_copied_record_inserted_is_found_as_inserted_at_the_copy() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), false).await;
    let mut trail = lines(&dir.trail());
    let copy = trail[2].clone();
    trail.insert(11, copy);
    rewrite(&dir.trail(), &trail);
    assert_eq!(found(&verify(&dir.trail())), (TamperKind::Inserted, 12));
}

#[tokio::test]
async fn a_forged_record_beside_the_genuine_one_is_found_as_inserted() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), false).await;
    let mut trail = lines(&dir.trail());
    let before = fields(&trail[find(&trail, "a", 3)]);
    let at = find(&trail, "a", 4);
    let forged = forge("a", Head::new(before.seq, before.hash), 999);
    trail.insert(at, forged);
    rewrite(&dir.trail(), &trail);
    assert_eq!(
        found(&verify(&dir.trail())),
        (TamperKind::Inserted, at as u64 + 1)
    );
}

#[tokio::test]
async fn swapping_two_records_is_found_as_reordered_at_the_first() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), false).await;
    let mut trail = lines(&dir.trail());
    let (x, y) = (find(&trail, "b", 3), find(&trail, "b", 4));
    trail.swap(x, y);
    rewrite(&dir.trail(), &trail);
    assert_eq!(
        found(&verify(&dir.trail())),
        (TamperKind::Reordered, x as u64 + 1)
    );
}

#[tokio::test]
async fn a_rewritten_chain_is_caught_by_the_signed_checkpoint() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), true).await;
    // The attacker changes `a`'s record 2 and recomputes every hash of
    // stream `a` after it, but cannot re-sign the checkpoints.
    let trail = lines(&dir.trail());
    let mut head = Head::EMPTY;
    let mut rewritten = Vec::new();
    for line in trail {
        match docaiche_compliance::audit::record::parse_line(&line) {
            Ok(docaiche_compliance::audit::record::ParsedLine::Record(r)) if r.stream == "a" => {
                let i = if r.seq == 2 {
                    777
                } else {
                    (r.seq as usize - 1) * 2
                };
                let forged = forge("a", head, i);
                let f = fields(&forged);
                head = Head::new(f.seq, f.hash);
                rewritten.push(forged);
            }
            _ => rewritten.push(line),
        }
    }
    rewrite(&dir.trail(), &rewritten);
    let report = verify(&dir.trail());
    let tamper = report.tamper.expect("caught");
    assert_eq!(tamper.kind, TamperKind::Modified);
    assert_eq!(tamper.stream.as_deref(), Some("a"));
    assert_eq!(tamper.seq, Some(5), "the first checkpoint of stream a");
    // Without the key the MACs are not checked, but the chain still has to
    // agree with them, so the rewrite shows all the same.
    assert!(!Verifier::new().verify_path(&dir.trail()).unwrap().is_ok());
}

#[tokio::test]
async fn a_forged_checkpoint_fails_its_mac() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), true).await;
    let other =
        CheckpointKey::from_bytes("audit/checkpoint-key", &SecretBytes::from(vec![1u8; 32]))
            .unwrap();
    let report = Verifier::new()
        .with_key(other)
        .verify_path(&dir.trail())
        .unwrap();
    assert_eq!(report.tamper.unwrap().kind, TamperKind::BadCheckpoint);
}

#[tokio::test]
async fn a_torn_last_line_is_not_tampering_and_is_cut_on_reopen() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), false).await;
    let mut bytes = std::fs::read(dir.trail()).unwrap();
    let full_len = bytes.len();
    bytes.extend_from_slice(b"{\"v\":1,\"stream\":\"a\",\"seq\":11,\"prev\":\"00");
    std::fs::write(dir.trail(), &bytes).unwrap();
    let report = verify(&dir.trail());
    assert!(report.is_ok(), "{:?}", report.tamper);
    assert_eq!(report.torn_tail.unwrap().line, 21);

    let sink = JsonlFileSink::open(FileSinkConfig::new(dir.trail())).unwrap();
    assert_eq!(
        std::fs::metadata(dir.trail()).unwrap().len(),
        full_len as u64
    );
    let receipt = sink.record(&event("a", 100)).await.unwrap();
    assert_eq!(
        receipt.sequence,
        Some(11),
        "the chain continues after restart"
    );
    sink.flush().await.unwrap();
    let report = verify(&dir.trail());
    assert!(report.is_ok() && report.torn_tail.is_none(), "{report:?}");
}

#[tokio::test]
async fn a_torn_line_that_is_not_last_is_tampering() {
    let dir = TempDir::new();
    write_trail(&dir.trail(), false).await;
    let mut trail = lines(&dir.trail());
    let cut = trail[4].len() / 2;
    trail[4].truncate(cut);
    rewrite(&dir.trail(), &trail);
    assert_eq!(found(&verify(&dir.trail())), (TamperKind::Modified, 5));
}

#[tokio::test]
async fn rotation_keeps_one_chain_across_segments() {
    let dir = TempDir::new();
    let config = FileSinkConfig::new(dir.trail())
        .with_rotation(NonZeroU64::new(2_000))
        .with_checkpoints(CheckpointPolicy::new(key(), NonZeroU64::new(7).unwrap()));
    let sink = JsonlFileSink::open(config.clone()).unwrap();
    for i in 0..60 {
        sink.record(&event(if i % 3 == 0 { "a" } else { "b" }, i))
            .await
            .unwrap();
    }
    sink.flush().await.unwrap();
    drop(sink);
    let segments = trail_segments(&dir.trail()).unwrap();
    assert!(segments.len() > 3, "{segments:?}");
    let report = verify(&dir.trail());
    assert!(report.is_ok(), "{:?}", report.tamper);
    assert_eq!(report.records, 60);

    // Reopen: the heads come back from the segments.
    let sink = JsonlFileSink::open(config).unwrap();
    assert_eq!(
        sink.record(&event("a", 1000)).await.unwrap().sequence,
        Some(21)
    );
    sink.flush().await.unwrap();
    assert!(verify(&dir.trail()).is_ok());

    // Removing the oldest segment is caught, unless pruning is allowed.
    std::fs::remove_file(&segments[0]).unwrap();
    assert_eq!(
        verify(&dir.trail()).tamper.unwrap().kind,
        TamperKind::Removed
    );
    let pruned = Verifier::new()
        .allow_pruned_start(true)
        .verify_path(&dir.trail())
        .unwrap();
    assert!(pruned.is_ok(), "{:?}", pruned.tamper);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_share_fsyncs_and_get_distinct_sequences() {
    let dir = TempDir::new();
    let sink = Arc::new(
        JsonlFileSink::open(FileSinkConfig::new(dir.trail()).with_fsync(FsyncPolicy::EveryBatch))
            .unwrap(),
    );
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let sink = sink.clone();
            tokio::spawn(async move { sink.record(&event("a", i)).await.unwrap().sequence })
        })
        .collect();
    let mut seqs: Vec<u64> = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    assert!(verify(&dir.trail()).is_ok());
}

/// Reads a file trail back for the conformance suite.
#[derive(Debug)]
struct FileReadBack(PathBuf);

#[async_trait::async_trait]
impl AuditReadBack for FileReadBack {
    async fn events(&self, tenant: &TenantId) -> Result<Vec<AuditEvent>> {
        let mut out = Vec::new();
        for segment in trail_segments(&self.0)? {
            for line in read_lines(&segment)? {
                let line = line?;
                if let Ok(docaiche_compliance::audit::record::ParsedLine::Record(r)) =
                    docaiche_compliance::audit::record::parse_line(&line.bytes)
                    && r.stream == tenant.as_str()
                {
                    out.push(docaiche_compliance::audit::record::event_of(&line.bytes)?);
                }
            }
        }
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_file_sink_conforms() {
    let dir = TempDir::new();
    let sink = Arc::new(JsonlFileSink::open(FileSinkConfig::new(dir.trail())).unwrap());
    conformance::run_audit_sink_with_read_back(
        sink.clone(),
        &FileReadBack(dir.trail()),
        &Harness::real_time(),
    )
    .await;
    // And through the buffer in front of it.
    let buffered = Arc::new(BufferedSink::new(sink, BufferConfig::default()));
    conformance::run_audit_sink_with_read_back(
        buffered,
        &FileReadBack(dir.trail()),
        &Harness::real_time(),
    )
    .await;
    assert!(verify(&dir.trail()).is_ok());
}

/// A sink that fails on demand, or waits until released.
#[derive(Debug)]
struct Flaky {
    failing: AtomicBool,
    gate: tokio::sync::Semaphore,
    inner: MemoryAuditSink,
}

impl Flaky {
    /// Gate closed: `record` waits until permits are added.
    fn closed() -> Self {
        Self {
            failing: AtomicBool::new(false),
            gate: tokio::sync::Semaphore::new(0),
            inner: MemoryAuditSink::new(),
        }
    }

    fn open() -> Self {
        let flaky = Self::closed();
        flaky.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS);
        flaky
    }
}

#[async_trait::async_trait]
impl AuditSink for Flaky {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let _permit = self.gate.acquire().await.expect("gate open");
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                "flaky",
                std::io::Error::other("down on purpose"),
            ));
        }
        self.inner.record(event).await
    }
}

#[tokio::test]
async fn dropped_events_are_counted_and_raised_as_an_alert_event() {
    let flaky = Arc::new(Flaky::closed()); // the worker blocks
    let buffer = BufferedSink::new(
        flaky.clone(),
        BufferConfig::default().with_capacity(NonZeroUsize::new(4).unwrap()),
    );
    let mut dropped = 0;
    for i in 0..50 {
        if buffer.submit(event("a", i)).is_err() {
            dropped += 1;
        }
        tokio::task::yield_now().await;
    }
    assert!(dropped > 0);
    assert_eq!(buffer.dropped(), dropped);
    flaky.gate.add_permits(tokio::sync::Semaphore::MAX_PERMITS);
    buffer.flush().await.unwrap();
    // The alert comes after the batch that saw the drops; a second flush
    // makes sure it was handed over.
    buffer.flush().await.unwrap();
    let alerts: Vec<AuditEvent> = flaky.inner.events_without_tenant();
    let alert = alerts
        .iter()
        .find(|e| e.action == DROPPED_ACTION)
        .expect("an alert event");
    assert_eq!(alert.details["dropped_total"], serde_json::json!(dropped));
    let recorded = flaky.inner.events(&TenantId::new("a").unwrap()).len() as u64;
    assert_eq!(recorded + dropped, 50, "every event is recorded or counted");
}

#[tokio::test]
async fn record_refuses_when_the_sink_is_stuck_instead_of_hanging() {
    let flaky = Arc::new(Flaky::closed());
    let buffer = BufferedSink::new(
        flaky.clone(),
        BufferConfig::default()
            .with_capacity(NonZeroUsize::new(1).unwrap())
            .with_timeout(Duration::from_millis(50)),
    );
    for i in 0..300 {
        let _ = buffer.submit(event("a", i));
    }
    let refused = buffer.record(&event("a", 999)).await.unwrap_err();
    assert_eq!(refused.code(), docaiche_core::ErrorCode::Unavailable);
}

#[tokio::test]
async fn fail_closed_refuses_administrative_actions_that_cannot_be_audited() {
    let flaky = Arc::new(Flaky::open());
    flaky.failing.store(true, Ordering::SeqCst);
    let buffer = BufferedSink::new(flaky.clone(), BufferConfig::default());
    let closed = Auditor::new(buffer.clone(), true);
    let open = Auditor::new(buffer, false);
    assert!(
        closed
            .audit(event("a", 1), Criticality::Administrative)
            .await
            .is_err()
    );
    assert_eq!(
        open.audit(event("a", 2), Criticality::Administrative)
            .await
            .unwrap(),
        None
    );
    flaky.failing.store(false, Ordering::SeqCst);
    assert!(
        closed
            .audit(event("a", 3), Criticality::Administrative)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn fan_out_needs_all_or_any_one_sink_by_policy() {
    let dir = TempDir::new();
    let file: Arc<dyn AuditSink> =
        Arc::new(JsonlFileSink::open(FileSinkConfig::new(dir.trail())).unwrap());
    let down = Arc::new(Flaky::open());
    down.failing.store(true, Ordering::SeqCst);
    let any = FanOutSink::new(vec![file.clone(), down.clone()], FanOutPolicy::AnyOne).unwrap();
    assert_eq!(any.record(&event("a", 1)).await.unwrap().sequence, Some(1));
    assert_eq!(any.failures(), 1);
    let all = FanOutSink::new(vec![file, down.clone()], FanOutPolicy::All).unwrap();
    assert!(all.record(&event("a", 2)).await.is_err());
    let none = FanOutSink::new(vec![down.clone(), down], FanOutPolicy::AnyOne).unwrap();
    assert!(
        none.record(&event("a", 3)).await.is_err(),
        "no sink recorded: refused"
    );
    assert!(FanOutSink::new(Vec::new(), FanOutPolicy::All).is_err());
}
