//! The async surface: the result cache and the batch API, over the real
//! extractor and the real in-memory cache.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use docaiche_core::extract::{ExtractInput, ExtractOptions, Extraction, Extractor};
use docaiche_extract::{CachedExtractor, Limits, PdfExtractor, extract_batch};
use docaiche_store::memory::MemoryCacheStore;

/// Counts how often, and how concurrently, the real extractor runs.
#[derive(Debug)]
struct Counting {
    inner: PdfExtractor,
    runs: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl Counting {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: PdfExtractor::new(Limits::small()),
            runs: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        })
    }
}

#[async_trait::async_trait]
impl Extractor for Counting {
    fn version(&self) -> &str {
        self.inner.version()
    }

    async fn extract(
        &self,
        input: ExtractInput,
        options: &ExtractOptions,
    ) -> docaiche_core::Result<Extraction> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // Let other tasks in, so that concurrency shows.
        tokio::task::yield_now().await;
        let result = self.inner.extract(input, options).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }
}

fn page_pdf(text: &str) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 700 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.push_str(&format!("{} 0 obj\n{o}\nendobj\n", i + 1));
    }
    let xref = out.len();
    out.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for off in offsets {
        out.push_str(&format!("{off:010} 00000 n \n"));
    }
    out.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    out.into_bytes()
}

#[tokio::test]
async fn an_unchanged_document_is_extracted_once() {
    let counting = Counting::new();
    let cache = Arc::new(MemoryCacheStore::new());
    let cached = CachedExtractor::new(counting.clone(), cache.clone());
    let pdf = page_pdf("Cached once");
    let options = ExtractOptions::default();
    let first = cached
        .extract(ExtractInput::new(pdf.clone().into()), &options)
        .await
        .unwrap();
    let second = cached
        .extract(ExtractInput::new(pdf.clone().into()), &options)
        .await
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(first.pages, vec!["Cached once\n".to_owned()]);
    assert_eq!(counting.runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.len(), 1);

    // Other options are another result.
    let mut sanitize = ExtractOptions::default();
    sanitize.sanitize = true;
    let s1 = cached
        .extract(ExtractInput::new(pdf.clone().into()), &sanitize)
        .await
        .unwrap();
    let s2 = cached
        .extract(ExtractInput::new(pdf.clone().into()), &sanitize)
        .await
        .unwrap();
    assert_eq!(counting.runs.load(Ordering::SeqCst), 2);
    assert!(s1.sanitized.is_some());
    assert_eq!(
        s1.sanitized, s2.sanitized,
        "the sanitised copy is cached too"
    );

    // Other content is another result.
    cached
        .extract(ExtractInput::new(page_pdf("Changed").into()), &options)
        .await
        .unwrap();
    assert_eq!(counting.runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn refusals_are_not_cached_and_types_are_checked_before_the_cache() {
    let counting = Counting::new();
    let cached = CachedExtractor::new(counting.clone(), Arc::new(MemoryCacheStore::new()));
    let options = ExtractOptions::default();
    for _ in 0..2 {
        let bad = ExtractInput::new(b"%PDF-1.4 but nothing else".to_vec().into());
        assert!(cached.extract(bad, &options).await.is_err());
    }
    assert_eq!(counting.runs.load(Ordering::SeqCst), 2);

    let pdf = page_pdf("Typed");
    cached
        .extract(ExtractInput::new(pdf.clone().into()), &options)
        .await
        .unwrap();
    let mut as_png = ExtractInput::new(pdf.into());
    as_png.declared_content_type = Some("image/png".into());
    let err = cached.extract(as_png, &options).await.unwrap_err();
    assert_eq!(err.code(), docaiche_core::ErrorCode::UnsupportedMediaType);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_keeps_order_bounds_concurrency_and_survives_bad_files() {
    let counting = Counting::new();
    let mut inputs = Vec::new();
    for i in 0..12 {
        let content = if i == 5 {
            b"PK\x03\x04 not a pdf".to_vec()
        } else {
            page_pdf(&format!("Document {i}"))
        };
        inputs.push(ExtractInput::new(content.into()));
    }
    let results = extract_batch(counting.clone(), inputs, &ExtractOptions::default(), 3).await;
    assert_eq!(results.len(), 12);
    for (i, r) in results.iter().enumerate() {
        if i == 5 {
            assert_eq!(
                r.as_ref().unwrap_err().code(),
                docaiche_core::ErrorCode::UnsupportedMediaType
            );
        } else {
            assert_eq!(r.as_ref().unwrap().pages, vec![format!("Document {i}\n")]);
        }
    }
    let max = counting.max_in_flight.load(Ordering::SeqCst);
    assert!((1..=3).contains(&max), "max in flight {max}");
}
