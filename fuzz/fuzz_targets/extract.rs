//! PDF intake end to end with small limits: validation, loading, the page
//! walk, content-stream interpretation, risk scanning and sanitising. No
//! input may panic, hang (libFuzzer's -timeout) or blow memory
//! (-rss_limit_mb). `extract_blocking` contains panics with `catch_unwind`;
//! libfuzzer-sys's panic hook aborts first, so a contained panic is still
//! reported here as the bug it is.

#![no_main]

use docaiche_extract::contracts::ExtractOptions;
use docaiche_extract::{Limits, extract_blocking, validate};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::small();
    let validated = validate(
        data,
        Some("application/pdf"),
        Some("../x\u{0}.pdf"),
        &limits,
    );
    if let Ok(v) = &validated {
        assert_eq!(v.sha256.len(), 64);
        assert!(
            v.filename
                .as_deref()
                .is_none_or(|f| !f.contains('/') && !f.contains('\0'))
        );
    }
    let mut options = ExtractOptions::default();
    // Sanitise one input in four (it re-serialises the document).
    options.sanitize = data.len() % 4 == 0;
    match extract_blocking(data, None, None, &options, &limits) {
        Ok(extraction) => {
            assert!(
                validated.is_ok(),
                "extracted an input that validation refuses"
            );
            assert!(extraction.pages.len() <= 50);
            if let Some(clean) = extraction.sanitized {
                // The sanitised copy is itself clean.
                if let Ok(again) =
                    extract_blocking(&clean, None, None, &ExtractOptions::default(), &limits)
                {
                    assert!(
                        again.risks.is_empty(),
                        "sanitised copy still has {:?}",
                        again.risks
                    );
                }
            }
        }
        Err(e) => assert!(!e.reason().is_empty()),
    }
});
