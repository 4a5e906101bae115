//! The usage recorder's hot path against a bare atomic increment.
//!
//! `cargo bench -p docaiche-core --bench usage`

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use docaiche_core::usage::{RouteClass, UsageOutcome, UsageRecorder, UsageSubject};
use docaiche_core::{ApiKeyId, PrincipalId, TenantId};

fn record(c: &mut Criterion) {
    let mut group = c.benchmark_group("usage_record");
    group.throughput(Throughput::Elements(1));
    let counter = AtomicU64::new(0);
    group.bench_function("baseline_atomic_increment", |b| {
        b.iter(|| counter.fetch_add(1, Ordering::Relaxed));
    });
    let recorder = UsageRecorder::new();
    let tenant = TenantId::new("acme-corporation").unwrap();
    let route = RouteClass::new("documents").unwrap();
    // 1 000 known series, as a busy interval would hold.
    let subjects: Vec<UsageSubject> = (0..1_000)
        .map(|i| {
            UsageSubject::for_key_of(
                ApiKeyId::new(),
                PrincipalId::new(format!("svc-{i}@acme.example")).unwrap(),
            )
        })
        .collect();
    for s in &subjects {
        recorder.record(&tenant, s, &route, UsageOutcome::Allowed);
    }
    let mut i = 0;
    group.bench_function("recorder_known_series", |b| {
        b.iter(|| {
            i = (i + 1) % subjects.len();
            recorder.record(
                black_box(&tenant),
                black_box(&subjects[i]),
                black_box(&route),
                UsageOutcome::Allowed,
            );
        });
    });
    group.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);
