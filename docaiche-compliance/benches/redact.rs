//! Redaction throughput on log text, against copying the same text.
//!
//! `cargo bench -p docaiche-compliance --bench redact`
//!
//! Groups (each with `Throughput::Bytes`, so criterion prints MB/s):
//! - `redact/mixed_lines`: a realistic log mix (about one line in eight
//!   carries personal data or a secret), redacted line by line as the
//!   tracing writer does; baseline `copy_lines` copies each line
//!   (`str::to_owned`), the least any per-line log filter costs.
//! - `redact/clean_lines`: the same without personal data (the common case).
//! - `redact/mixed_blob`: the whole mix as one text (audit details, documents).

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_compliance::redact::Redactor;

const CLEAN: &[&str] = &[
    "2026-11-24T01:15:42.123456Z  INFO request{method=GET uri=/v1/documents request_id=0192f3a4-5b6c-7d8e-9f01-23456789abcd}: docaiche::server: finished in 12.4ms status=200",
    "2026-11-24T01:15:42.223456Z DEBUG docaiche_store::sqlite: query took 0.8ms rows=25 table=documents",
    "2026-11-24T01:15:42.323456Z  INFO docaiche::server::jobs: extraction done job=0192f3a4-0000-7000-8000-000000000001 pages=12 bytes=482113",
    "2026-11-24T01:15:43.001000Z  WARN docaiche_ratelimit: limit reached tenant=acme route_class=upload retry_after_ms=850",
    "2026-11-24T01:15:43.101000Z  INFO docaiche::server: listening addr=0.0.0.0:8080 version=0.1.0 sha256=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "2026-11-24T01:15:43.201000Z ERROR docaiche_core::resilience::circuit_breaker: circuit open dependency=postgres failures=5 window=10s",
    "2026-11-24T01:15:43.301000Z  INFO request{method=POST uri=/v1/documents}: docaiche::server: upload accepted size=1048576 content_type=application/pdf",
];

const DIRTY: &[&str] = &[
    "2026-11-24T01:15:44.000000Z  WARN docaiche_auth: login failed user=alice.smith@example.com client=203.0.113.42 reason=bad_credential",
    "2026-11-24T01:15:44.100000Z ERROR docaiche::server: upstream rejected header=\"Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXZhbHVl\"",
    "2026-11-24T01:15:44.200000Z  INFO billing: card=4111 1111 1111 1111 iban=DE89 3704 0044 0532 0130 00 phone=+44 20 7946 0958",
];

fn corpus(lines: usize, dirty_every: usize) -> Vec<String> {
    (0..lines)
        .map(|i| {
            if dirty_every > 0 && i % dirty_every == dirty_every - 1 {
                DIRTY[i % DIRTY.len()].to_owned()
            } else {
                CLEAN[i % CLEAN.len()].to_owned()
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let redactor = Redactor::new();
    let mut group = c.benchmark_group("redact");
    for (name, lines) in [
        ("mixed_lines", corpus(2000, 8)),
        ("clean_lines", corpus(2000, 0)),
    ] {
        let bytes: usize = lines.iter().map(String::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::new("copy_lines", name), &lines, |b, lines| {
            b.iter(|| {
                for line in lines {
                    black_box(black_box(line.as_str()).to_owned());
                }
            });
        });
        group.bench_with_input(BenchmarkId::new("redactor", name), &lines, |b, lines| {
            b.iter(|| {
                for line in lines {
                    black_box(redactor.redact(black_box(line)));
                }
            });
        });
    }
    let blob = corpus(2000, 8).join("\n");
    group.throughput(Throughput::Bytes(blob.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("copy_blob", "mixed_blob"),
        &blob,
        |b, blob| {
            b.iter(|| black_box(black_box(blob.as_str()).to_owned()));
        },
    );
    group.bench_with_input(
        BenchmarkId::new("redactor", "mixed_blob"),
        &blob,
        |b, blob| {
            b.iter(|| black_box(redactor.redact(black_box(blob))));
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
