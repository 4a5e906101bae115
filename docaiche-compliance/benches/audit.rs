//! Audit appends per second: the chained file sink against plain,
//! unchained JSON lines written the same way (one writer thread, the same
//! batching, one `fdatasync` per batch), in the same run.
//!
//! ```text
//! cargo bench -p docaiche-compliance --bench audit
//! ```
//!
//! Each iteration records 256 events from 256 concurrent callers, so both
//! writers see the same batches. The `fsync` group measures what a caller
//! waits for under `FsyncPolicy::EveryBatch`; the `no_fsync` group takes the
//! disk out to show the CPU cost of chaining alone. `chained_merkle_sink`
//! is the chained sink keeping each stream's Merkle tree and signing its
//! head at least once a second (`TreeHeadPolicy`, as in production): the
//! target is at least 0.6× `plain_lines` in the same run.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation
)]

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_compliance::audit::{
    CheckpointKey, FileSinkConfig, FsyncPolicy, JsonlFileSink, TreeHeadPolicy,
};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource, AuditSink};
use docaiche_core::{PrincipalId, RequestContext, TenantId};
use tokio::sync::{mpsc, oneshot};

const CALLERS: usize = 256;
const MAX_BATCH: usize = 512;

fn event(i: usize) -> AuditEvent {
    let context = RequestContext::new()
        .with_request_id(format!("req-{i}"))
        .with_user_agent("bench/1.0");
    AuditEvent::new(
        "document.read",
        AuditOutcome::Success,
        time::OffsetDateTime::now_utc(),
        &context,
    )
    .by(
        TenantId::new(["acme", "globex", "initech", "umbrella"][i % 4]).unwrap(),
        Some(PrincipalId::new("alice").unwrap()),
    )
    .on(AuditResource::new("document", format!("doc-{i}")))
}

/// The baseline: the same queue, writer thread, batching and fsync, with
/// plain `serde_json` lines and no chain.
#[derive(Clone)]
struct PlainLines {
    tx: mpsc::Sender<(Vec<u8>, oneshot::Sender<()>)>,
}

impl PlainLines {
    fn open(path: &Path, fsync: bool) -> Self {
        let mut file: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        let (tx, mut rx) = mpsc::channel::<(Vec<u8>, oneshot::Sender<()>)>(4096);
        std::thread::spawn(move || {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while let Some(first) = rx.blocking_recv() {
                batch.push(first);
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => batch.push(r),
                        Err(_) => break,
                    }
                }
                let mut buf = Vec::new();
                for (line, _) in &batch {
                    buf.extend_from_slice(line);
                    buf.push(b'\n');
                }
                file.write_all(&buf).unwrap();
                if fsync {
                    file.sync_data().unwrap();
                }
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(());
                }
            }
        });
        Self { tx }
    }

    async fn record(&self, event: &AuditEvent) {
        let line = serde_json::to_vec(event).unwrap();
        let (reply, done) = oneshot::channel();
        self.tx.send((line, reply)).await.unwrap();
        done.await.unwrap();
    }
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("docaiche-audit-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn appends(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = temp_dir();
    let events: Arc<Vec<AuditEvent>> = Arc::new((0..CALLERS).map(event).collect());
    for (group_name, fsync) in [
        ("audit_append/fsync", true),
        ("audit_append/no_fsync", false),
    ] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(CALLERS as u64));
        let policy = if fsync {
            FsyncPolicy::EveryBatch
        } else {
            FsyncPolicy::Never
        };
        let chained = {
            let _guard = runtime.enter();
            Arc::new(
                JsonlFileSink::open(
                    FileSinkConfig::new(dir.join(format!("chained-{fsync}.jsonl")))
                        .with_fsync(policy)
                        .with_rotation(None),
                )
                .unwrap(),
            )
        };
        let merkle = {
            let _guard = runtime.enter();
            let key =
                CheckpointKey::from_bytes(CheckpointKey::DEFAULT_SECRET, &vec![7u8; 32].into())
                    .unwrap();
            Arc::new(
                JsonlFileSink::open(
                    FileSinkConfig::new(dir.join(format!("merkle-{fsync}.jsonl")))
                        .with_fsync(policy)
                        .with_rotation(None)
                        .with_tree_heads(TreeHeadPolicy::new(key, "bench.example/audit").unwrap()),
                )
                .unwrap(),
            )
        };
        let plain = PlainLines::open(&dir.join(format!("plain-{fsync}.jsonl")), fsync);
        group.bench_function(BenchmarkId::new("plain_lines", CALLERS), |b| {
            b.to_async(&runtime).iter(|| {
                let (plain, events) = (plain.clone(), events.clone());
                async move {
                    let calls = (0..CALLERS).map(|i| {
                        let (plain, events) = (plain.clone(), events.clone());
                        tokio::spawn(async move { plain.record(&events[i]).await })
                    });
                    for call in futures_util::future::join_all(calls).await {
                        call.unwrap();
                    }
                }
            });
        });
        group.bench_function(BenchmarkId::new("chained_file_sink", CALLERS), |b| {
            b.to_async(&runtime).iter(|| {
                let (chained, events) = (chained.clone(), events.clone());
                async move {
                    let calls = (0..CALLERS).map(|i| {
                        let (chained, events) = (chained.clone(), events.clone());
                        tokio::spawn(
                            async move { black_box(chained.record(&events[i]).await.unwrap()) },
                        )
                    });
                    for call in futures_util::future::join_all(calls).await {
                        call.unwrap();
                    }
                }
            });
        });
        group.bench_function(BenchmarkId::new("chained_merkle_sink", CALLERS), |b| {
            b.to_async(&runtime).iter(|| {
                let (merkle, events) = (merkle.clone(), events.clone());
                async move {
                    let calls = (0..CALLERS).map(|i| {
                        let (merkle, events) = (merkle.clone(), events.clone());
                        tokio::spawn(
                            async move { black_box(merkle.record(&events[i]).await.unwrap()) },
                        )
                    });
                    for call in futures_util::future::join_all(calls).await {
                        call.unwrap();
                    }
                }
            });
        });
        group.finish();
    }
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, appends);
criterion_main!(benches);
