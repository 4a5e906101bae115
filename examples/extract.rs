//! Extracts text from PDF files with `docaiche::extract`.
//!
//! ```text
//! cargo run --release --example extract -- FILE.pdf [FILE.pdf …]
//! cargo run --release --example extract -- --json FILE.pdf
//! ```
//!
//! Prints each document's text to stdout (pages separated by a form feed,
//! like `pdftotext`), or with `--json` one JSON object per document with its
//! metadata, risk flags and per-page text. Refusals go to stderr with their
//! reason code; the exit status is 1 if any file was refused, 2 on bad usage.

use std::io::Write as _;
use std::process::ExitCode;

use docaiche::extract::contracts::{ExtractInput, ExtractOptions, Extractor as _};
use docaiche::extract::{Limits, PdfExtractor};

#[tokio::main]
async fn main() -> ExitCode {
    let mut json = false;
    let mut files = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--json" => json = true,
            "-h" | "--help" => {
                eprintln!("usage: extract [--json] FILE.pdf [FILE.pdf ...]");
                return ExitCode::SUCCESS;
            }
            _ => files.push(arg),
        }
    }
    if files.is_empty() {
        eprintln!("usage: extract [--json] FILE.pdf [FILE.pdf ...]");
        return ExitCode::from(2);
    }
    let extractor = PdfExtractor::new(Limits::default());
    let options = ExtractOptions::default();
    let mut failed = false;
    let stdout = std::io::stdout();
    for file in files {
        let content = match std::fs::read(&file) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                failed = true;
                continue;
            }
        };
        let mut input = ExtractInput::new(content.into());
        input.filename = Some(file.clone());
        match extractor.extract(input, &options).await {
            Ok(extraction) => {
                let mut out = stdout.lock();
                let written = if json {
                    serde_json::to_writer(&mut out, &extraction)
                        .map_err(std::io::Error::other)
                        .and_then(|()| writeln!(out))
                } else {
                    extraction
                        .pages
                        .iter()
                        .try_for_each(|page| write!(out, "{page}\u{c}"))
                };
                if let Err(e) = written.and_then(|()| out.flush()) {
                    eprintln!("{file}: cannot write output: {e}");
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                let reason = match &e {
                    docaiche::core::Error::DocumentRejected { reason, .. } => reason,
                    _ => e.code().as_str(),
                };
                eprintln!("{file}: rejected ({reason}): {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
