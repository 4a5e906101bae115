//! `pdftotext`-style CLI over [`docaiche_extract::extract_blocking`], used by
//! `scripts/bench-extract.sh` (it builds without the rest of the workspace):
//!
//! ```text
//! cargo run -p docaiche-extract --release --example pdftext -- FILE.pdf [FILE.pdf …]
//! ```
//!
//! Prints each document's pages separated by form feeds; a refusal goes to
//! stderr with its reason code and makes the exit status 1.

use std::io::Write as _;
use std::process::ExitCode;

use docaiche_extract::contracts::ExtractOptions;
use docaiche_extract::{Limits, extract_blocking};

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).collect();
    if files.is_empty() {
        eprintln!("usage: pdftext FILE.pdf [FILE.pdf ...]");
        return ExitCode::from(2);
    }
    let limits = Limits::default();
    let mut status = ExitCode::SUCCESS;
    let mut out = std::io::stdout().lock();
    for file in &files {
        let content = match std::fs::read(file) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{file}: cannot read: {e}");
                status = ExitCode::FAILURE;
                continue;
            }
        };
        match extract_blocking(
            &content,
            None,
            Some(file),
            &ExtractOptions::default(),
            &limits,
        ) {
            Ok(extraction) => {
                for page in &extraction.pages {
                    if write!(out, "{page}\u{c}").is_err() {
                        return ExitCode::FAILURE;
                    }
                }
            }
            Err(e) => {
                eprintln!("{file}: rejected ({}): {e}", e.reason());
                status = ExitCode::FAILURE;
            }
        }
    }
    if out.flush().is_err() {
        return ExitCode::FAILURE;
    }
    status
}
