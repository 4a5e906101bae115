//! Extraction throughput against poppler's `pdftotext`, same documents, same
//! group, so results read as ratios. Documents come from the shared corpus
//! (`$DOCAICHE_PDF_CORPUS`, default `/work/shared/corpus`); the baseline runs
//! only where `pdftotext` is installed. Throughput is in pages.
//!
//! `cargo bench -p docaiche-extract --bench extract`; `scripts/bench-extract.sh`
//! measures the whole corpus, process per document, with peak RSS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_extract::contracts::ExtractOptions;
use docaiche_extract::{Limits, extract_blocking};

const DOCS: [&str; 3] = [
    "siscone__refman.pdf",
    "latex-base__hyperref-doc.pdf",
    "amc__auto-multiple-choice.ja.pdf",
];

fn bench(c: &mut Criterion) {
    let root = std::env::var_os("DOCAICHE_PDF_CORPUS")
        .map_or_else(|| PathBuf::from("/work/shared/corpus"), PathBuf::from)
        .join("pdf");
    let has_pdftotext = Command::new("pdftotext").arg("-v").output().is_ok();
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let limits = Limits::default();
    let options = ExtractOptions::default();
    let mut group = c.benchmark_group("extract");
    group.sample_size(10);
    for name in DOCS {
        let path = root.join(name);
        let Ok(content) = std::fs::read(&path) else {
            eprintln!("{}: missing, skipped", path.display());
            continue;
        };
        let pages = extract_blocking(&content, None, None, &options, &limits)
            .unwrap()
            .info
            .page_count;
        group.throughput(Throughput::Elements(u64::from(pages)));
        group.bench_with_input(
            BenchmarkId::new("docaiche-1-thread", name),
            &content,
            |b, content| {
                b.iter(|| {
                    one_thread.install(|| {
                        extract_blocking(content, None, None, &options, &limits).unwrap()
                    })
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("docaiche-all-cores", name),
            &content,
            |b, content| {
                b.iter(|| extract_blocking(content, None, None, &options, &limits).unwrap());
            },
        );
        if has_pdftotext {
            group.bench_with_input(BenchmarkId::new("pdftotext", name), &path, |b, path| {
                b.iter(|| {
                    let out = Command::new("pdftotext")
                        .args(["-enc", "UTF-8"])
                        .arg(path)
                        .arg("-")
                        .output()
                        .unwrap();
                    assert!(out.status.success());
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
