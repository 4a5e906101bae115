//! The `extract` span around each [`Extractor::extract`] call (see
//! "Tracing" in the crate docs).
//!
//! [`Extractor::extract`]: docaiche_core::Extractor::extract

use std::future::Future;

use tracing::{Instrument as _, Span};

/// Await `call`, an extraction by the extractor of `version`, in an
/// `internal` span `extract`; a failure sets the span's status to error
/// and `error.type` to the error's stable code.
pub(crate) async fn extract<T>(
    version: &str,
    call: impl Future<Output = docaiche_core::Result<T>>,
) -> docaiche_core::Result<T> {
    let span = tracing::info_span!(
        "extract",
        otel.name = "extract",
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        extractor.version = version,
        error.r#type = tracing::field::Empty,
    );
    if span.is_disabled() {
        return call.await;
    }
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        record_error(&span, e);
    }
    result
}

fn record_error(span: &Span, e: &docaiche_core::Error) {
    span.record("otel.status_code", "ERROR");
    span.record("error.type", e.code().as_str());
}

#[cfg(test)]
#[path = "../../tests/common/spans.rs"]
mod spans;

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;
    use std::sync::Arc;

    use bytes::Bytes;
    use docaiche_core::Extractor as _;
    use docaiche_core::extract::{ExtractInput, ExtractOptions};
    use tracing::Instrument as _;

    use crate::{CachedExtractor, Limits, PdfExtractor};

    use super::spans;

    /// A one-page PDF saying `Hello` in Helvetica.
    fn hello_pdf() -> Bytes {
        let content = b"BT /F1 12 Tf 72 720 Td (Hello) Tj ET";
        let stream = format!(
            "<< /Length {} >>\nstream\n{}\nendstream",
            content.len(),
            String::from_utf8_lossy(content)
        );
        let objects = [
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
             /Resources << /Font << /F1 5 0 R >> >> >>",
            &stream,
            "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ];
        let mut out = String::from("%PDF-1.7\n");
        let mut offsets = Vec::new();
        for (i, body) in objects.iter().enumerate() {
            offsets.push(out.len());
            let _ = write!(out, "{} 0 obj\n{body}\nendobj\n", i + 1);
        }
        let xref = out.len();
        let _ = write!(out, "xref\n0 6\n0000000000 65535 f \n");
        for offset in offsets {
            let _ = writeln!(out, "{offset:010} 00000 n ");
        }
        let _ = write!(
            out,
            "trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
        );
        Bytes::from(out)
    }

    #[tokio::test]
    async fn an_extraction_runs_in_a_child_span_and_a_refusal_records_its_code() {
        let (spans, _guard) = spans::capture();
        let extractor = PdfExtractor::new(Limits::default());
        let request = tracing::info_span!("request");
        let refused = extractor
            .extract(
                ExtractInput::new(Bytes::from_static(b"not a pdf")),
                &ExtractOptions::default(),
            )
            .instrument(request)
            .await
            .expect_err("garbage is refused");
        let span = spans.one("extract");
        assert_eq!(span.name, "extract");
        assert_eq!(span.field("otel.kind"), Some("internal"));
        assert_eq!(span.field("extractor.version"), Some(crate::VERSION));
        assert_eq!(span.field("otel.status_code"), Some("ERROR"));
        assert_eq!(span.field("error.type"), Some(refused.code().as_str()));
        let parent = span.parent.expect("a parent");
        assert_eq!(spans.all()[parent].name, "request");
    }

    #[tokio::test]
    async fn a_cached_extractor_spans_each_call_and_the_extraction_only_on_a_miss() {
        let (spans, _guard) = spans::capture();
        let cached = CachedExtractor::new(
            Arc::new(PdfExtractor::new(Limits::default())),
            Arc::new(docaiche_store::memory::MemoryCacheStore::new()),
        );
        let pdf = hello_pdf();
        for _ in 0..2 {
            let extraction = cached
                .extract(ExtractInput::new(pdf.clone()), &ExtractOptions::default())
                .await
                .expect("extracts");
            assert!(extraction.pages.concat().contains("Hello"));
        }
        let all = spans.all();
        let versions: Vec<_> = all
            .iter()
            .map(|s| (s.field("extractor.version").unwrap_or("?"), s.parent))
            .collect();
        let outer = cached.version();
        assert_eq!(
            versions,
            [(outer, None), (crate::VERSION, Some(0)), (outer, None)],
            "miss: the cache's span, the extraction inside; hit: the cache's only"
        );
        assert!(all.iter().all(|s| s.field("error.type").is_none()));
    }
}
