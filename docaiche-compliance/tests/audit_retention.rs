//! Audit retention on the file trail: whole expired segments go behind a
//! signed anchor, the verifier accepts the anchored start and nothing else,
//! legal holds keep segments, and the purge is recorded on the trail.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_common;

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use audit_common::event;
use docaiche_compliance::audit::{
    Anchor, CheckpointKey, CheckpointPolicy, FileSinkConfig, FileTrailRetention, FsyncPolicy,
    JsonlFileSink, TamperKind, Verifier, VerifyReport, read_lines, trail_segments,
};
use docaiche_compliance::retention::{
    LegalHold, LegalHoldRegistry, MemoryLegalHoldRegistry, Purger, RetentionPolicies,
    TrailRetention, resource,
};
use docaiche_core::audit::{AuditEvent, AuditSink};
use docaiche_core::{ManualClock, PrincipalId, SecretBytes, TenantId};
use time::OffsetDateTime;

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("docaiche-audit-ret-{}", uuid::Uuid::new_v4()));
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

fn other_key() -> CheckpointKey {
    CheckpointKey::from_bytes("audit/checkpoint-key", &SecretBytes::from(vec![8u8; 32])).unwrap()
}

fn open(path: &Path) -> JsonlFileSink {
    JsonlFileSink::open(
        FileSinkConfig::new(path)
            .with_fsync(FsyncPolicy::Never)
            .with_rotation(NonZeroU64::new(1200))
            .with_checkpoints(CheckpointPolicy::new(key(), NonZeroU64::new(5).unwrap())),
    )
    .unwrap()
}

fn at(event: AuditEvent, time: OffsetDateTime) -> AuditEvent {
    let mut event = event;
    event.time = time;
    event
}

/// `old` events (2023) then `young` ones (now), alternating tenants `a`
/// and `b` when `shared`, all of `a` otherwise.
async fn write(sink: &JsonlFileSink, old: usize, young: usize, shared: bool) {
    for i in 0..old + young {
        let tenant = if shared && i % 2 == 1 { "b" } else { "a" };
        let mut e = event(tenant, i);
        if i >= old {
            e = at(e, OffsetDateTime::now_utc());
        }
        sink.record(&e).await.unwrap();
    }
    sink.flush().await.unwrap();
}

fn policies() -> RetentionPolicies {
    RetentionPolicies::new().with_default(resource::AUDIT, 365)
}

fn verify_anchored(path: &Path) -> VerifyReport {
    let mut verifier = Verifier::new().with_key(key());
    if let Some(anchor) = Anchor::load(path).unwrap() {
        verifier = verifier.with_anchor(anchor);
    }
    verifier.verify_path(path).unwrap()
}

fn rotated(path: &Path) -> Vec<PathBuf> {
    trail_segments(path)
        .unwrap()
        .into_iter()
        .filter(|s| s != path)
        .collect()
}

fn actions(path: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for segment in trail_segments(path).unwrap() {
        for line in read_lines(&segment).unwrap() {
            if let Ok(e) = docaiche_compliance::audit::record::event_of(&line.unwrap().bytes) {
                out.push(e.action);
            }
        }
    }
    out
}

async fn purge(
    path: &Path,
    holds: &MemoryLegalHoldRegistry,
    sink: &JsonlFileSink,
) -> std::collections::BTreeMap<TenantId, docaiche_compliance::retention::KindPurge> {
    let out = FileTrailRetention::new(path, key())
        .purge_trail(&policies(), holds, sink, OffsetDateTime::now_utc())
        .await
        .unwrap();
    sink.flush().await.unwrap();
    out
}

#[tokio::test]
async fn expired_segments_go_behind_a_signed_anchor_and_the_trail_still_verifies() {
    let dir = TempDir::new();
    let path = dir.trail();
    let sink = open(&path);
    write(&sink, 30, 6, true).await;
    let before = rotated(&path);
    assert!(before.len() > 4, "{before:?}");
    assert!(verify_anchored(&path).is_ok());

    let outcome = purge(&path, &MemoryLegalHoldRegistry::new(), &sink).await;
    let a = TenantId::new("a").unwrap();
    assert!(outcome[&a].purged > 0, "{outcome:?}");
    assert_eq!(outcome[&a].retention_days, 365);
    // (The purge's own events may have rotated a new segment.)
    let gone = before.iter().filter(|s| !s.exists()).count();
    assert!(gone > 0);
    let anchor = Anchor::load(&path).unwrap().expect("an anchor");
    assert!(anchor.is_signed_by(&key()));
    assert_eq!(anchor.segments.len(), gone);
    assert!(anchor.streams["a"].seq >= outcome[&a].purged);

    // With the anchor and its key: verified, from the anchored start.
    let report = verify_anchored(&path);
    assert!(report.is_ok(), "{:?}", report.tamper);
    assert!(report.anchored);
    // Without it, or without the key to trust it: the missing start shows.
    let plain = Verifier::new().with_key(key()).verify_path(&path).unwrap();
    assert_eq!(plain.tamper.unwrap().kind, TamperKind::Removed);
    let keyless = Verifier::new()
        .with_anchor(anchor.clone())
        .verify_path(&path)
        .unwrap();
    assert_eq!(keyless.tamper.unwrap().kind, TamperKind::Removed);
    assert!(!keyless.anchored);

    // The purge is on the trail itself.
    assert!(actions(&path).iter().any(|a| a == "retention.purge"));

    // A restart continues the streams after the anchor; a second run with
    // nothing expired changes nothing.
    drop(sink);
    let sink = open(&path);
    write(&sink, 0, 3, true).await;
    let report = verify_anchored(&path);
    assert!(report.is_ok(), "{:?}", report.tamper);
    let again = purge(&path, &MemoryLegalHoldRegistry::new(), &sink).await;
    assert!(again.values().all(|k| k.purged == 0), "{again:?}");
    assert!(verify_anchored(&path).is_ok());
}

#[tokio::test]
async fn removing_one_more_record_or_forging_the_anchor_is_detected() {
    let dir = TempDir::new();
    let path = dir.trail();
    let sink = open(&path);
    write(&sink, 30, 6, true).await;
    purge(&path, &MemoryLegalHoldRegistry::new(), &sink).await;
    drop(sink);
    assert!(verify_anchored(&path).is_ok());
    let anchor = Anchor::load(&path).unwrap().unwrap();

    // One more record gone, after the anchor: removal at the next record.
    let first = rotated(&path)[0].clone();
    let text = std::fs::read(&first).unwrap();
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    let victim = lines
        .iter()
        .position(|l| l.starts_with(b"{\"v\":1,\"stream\":\"a\""))
        .unwrap();
    lines.remove(victim);
    std::fs::write(&first, lines.join(&b'\n')).unwrap();
    let report = verify_anchored(&path);
    let tamper = report.tamper.expect("removal detected");
    assert_eq!(tamper.kind, TamperKind::Removed);
    assert_eq!(tamper.stream.as_deref(), Some("a"));
    // The next record (or the checkpoint after the removed one) is where
    // the gap shows.
    let start = anchor.streams["a"].seq;
    assert!(
        matches!(tamper.seq, Some(s) if s == start + 1 || s == start + 2),
        "{tamper}"
    );
    std::fs::write(&first, &text).unwrap();
    assert!(verify_anchored(&path).is_ok());

    // A forged anchor hiding the deletion of the next segment: its MAC
    // does not verify, so the walk starts at genesis and reports removal.
    let mut streams = anchor.streams.clone();
    for head in streams.values_mut() {
        head.seq += 100;
    }
    let forged = Anchor::sign(
        &other_key(),
        streams,
        anchor.segments.clone(),
        anchor.removed_through,
        anchor.time,
    )
    .unwrap();
    forged.store(&path).unwrap();
    let report = verify_anchored(&path);
    assert!(!report.anchored);
    assert_eq!(report.tamper.unwrap().kind, TamperKind::Removed);
    // Edited by hand: not signed either.
    let edited = String::from_utf8(anchor.to_line())
        .unwrap()
        .replacen("\"seq\":", "\"seq\":1", 1);
    std::fs::write(Anchor::path_for(&path), edited).unwrap();
    let report = verify_anchored(&path);
    assert!(!report.anchored);
    assert_eq!(report.tamper.unwrap().kind, TamperKind::Removed);

    // And a purge refuses to run on a trail whose anchor does not verify.
    let sink = open(&path);
    let refused = FileTrailRetention::new(&path, key())
        .purge_trail(
            &policies(),
            &MemoryLegalHoldRegistry::new(),
            &sink,
            OffsetDateTime::now_utc(),
        )
        .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn a_segment_with_a_record_younger_than_the_cutoff_is_kept_whole() {
    let dir = TempDir::new();
    let path = dir.trail();
    let sink = open(&path);
    write(&sink, 14, 14, false).await;
    let boundary = rotated(&path)
        .into_iter()
        .find(|segment| {
            let text = std::fs::read_to_string(segment).unwrap();
            text.contains("\"seq\":14,") && text.contains("\"seq\":15,")
        })
        .or_else(|| {
            // The old/young boundary fell on a segment edge: pick the
            // segment holding the first young record.
            rotated(&path)
                .into_iter()
                .find(|s| std::fs::read_to_string(s).unwrap().contains("\"seq\":15,"))
        })
        .expect("the first young record is in a rotated segment");
    purge(&path, &MemoryLegalHoldRegistry::new(), &sink).await;
    assert!(boundary.exists(), "the segment with a young record stays");
    let anchor = Anchor::load(&path).unwrap().expect("older segments went");
    assert!(anchor.streams["a"].seq < 15);
    for removed in &anchor.segments {
        assert!(!dir.0.join(removed).exists());
    }
    assert!(verify_anchored(&path).is_ok());
}

#[tokio::test]
async fn a_legal_hold_on_audit_keeps_every_segment_holding_the_tenant() {
    let dir = TempDir::new();
    let path = dir.trail();
    let sink = open(&path);
    write(&sink, 30, 6, true).await;
    let before = rotated(&path);
    let holds = MemoryLegalHoldRegistry::new();
    let b = TenantId::new("b").unwrap();
    let counsel = PrincipalId::new("counsel").unwrap();
    // A hold on another kind does not count; one on audit does.
    holds
        .place(
            LegalHold::new(
                b.clone(),
                "case 1",
                counsel.clone(),
                OffsetDateTime::now_utc(),
            )
            .on_kind(resource::DOCUMENTS),
        )
        .await
        .unwrap();
    holds
        .place(
            LegalHold::new(b.clone(), "case 2", counsel, OffsetDateTime::now_utc())
                .on_kind(resource::AUDIT),
        )
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::starting_at(OffsetDateTime::now_utc()));
    let holds: Arc<dyn LegalHoldRegistry> = Arc::new(holds);
    let purger = Purger::new(
        policies(),
        Arc::clone(&holds),
        Vec::new(),
        Arc::new(sink.clone()),
        clock,
    )
    .unwrap()
    .with_trail(Arc::new(FileTrailRetention::new(&path, key())));
    let report = purger.run(&[]).await;
    sink.flush().await.unwrap();
    assert_eq!(report.trail_failure, None);
    let kept = &report.tenants[&b][resource::AUDIT];
    assert!(kept.suspended_by_hold);
    assert!(kept.held > 0);
    assert_eq!(report.purged(), 0);
    // Every segment mixes a and b: none went.
    assert!(before.iter().all(|s| s.exists()));
    assert!(Anchor::load(&path).unwrap().is_none());
    assert!(actions(&path).iter().any(|a| a == "retention.suspended"));
    assert!(verify_anchored(&path).is_ok());

    // Released: the purge proceeds.
    for hold in holds.active(&b).await.unwrap() {
        holds
            .release(&b, &hold.id, OffsetDateTime::now_utc())
            .await
            .unwrap();
    }
    let report = purger.run(&[]).await;
    sink.flush().await.unwrap();
    assert!(report.purged() > 0, "{report:?}");
    assert!(before.iter().any(|s| !s.exists()));
    assert!(verify_anchored(&path).is_ok());
}
