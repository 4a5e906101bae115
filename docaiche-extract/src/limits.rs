//! Parsing limits ([`Limits`]) and the cooperative wall-time [`Deadline`].

use std::time::{Duration, Instant};

use crate::error::{ExtractError, Result};

/// Every bound the extractor enforces on one document. All are configurable;
/// [`Limits::default`] suits an API server taking uploads of up to 64 MiB.
///
/// The per-document decompressed budget ([`Limits::max_document_bytes`]) is
/// also the memory cap: decoded streams are the only allocation that is not
/// proportional to the input size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest accepted input, in bytes. Default 64 MiB.
    pub max_input_bytes: u64,
    /// Most indirect objects. Default 1 000 000.
    pub max_objects: usize,
    /// Deepest nesting of arrays and dictionaries, in the file and in
    /// content streams. Default 64 (lopdf itself stops at 100).
    pub max_nesting: usize,
    /// Most bytes one stream may decompress to. Default 64 MiB.
    pub max_stream_bytes: usize,
    /// Most bytes all decoded streams of a document may add up to. Default 256 MiB.
    pub max_document_bytes: usize,
    /// Most pages. Default 10 000.
    pub max_pages: u32,
    /// Most content-stream operators over the whole document. Default 50 000 000.
    pub max_operators: u64,
    /// Wall-time budget for one document, checked cooperatively. Default 30 s.
    pub max_wall_time: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_input_bytes: 64 << 20,
            max_objects: 1_000_000,
            max_nesting: 64,
            max_stream_bytes: 64 << 20,
            max_document_bytes: 256 << 20,
            max_pages: 10_000,
            max_operators: 50_000_000,
            max_wall_time: Duration::from_secs(30),
        }
    }
}

impl Limits {
    /// Tight limits for fuzzing and tests: 1 MiB input, 1 MiB per stream,
    /// 4 MiB per document, 50 pages, 1 s.
    #[must_use]
    pub fn small() -> Self {
        Self {
            max_input_bytes: 1 << 20,
            max_objects: 20_000,
            max_nesting: 32,
            max_stream_bytes: 1 << 20,
            max_document_bytes: 4 << 20,
            max_pages: 50,
            max_operators: 1_000_000,
            max_wall_time: Duration::from_secs(1),
        }
    }
}

/// A wall-time budget checked at loop heads (pages, operators, objects).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline {
    at: Instant,
    budget: Duration,
}

impl Deadline {
    pub(crate) fn new(budget: Duration) -> Self {
        let now = Instant::now();
        Self {
            at: now.checked_add(budget).unwrap_or(now),
            budget,
        }
    }

    pub(crate) fn check(&self) -> Result<()> {
        if Instant::now() >= self.at {
            Err(ExtractError::Timeout { after: self.budget })
        } else {
            Ok(())
        }
    }
}
