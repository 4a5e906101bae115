//! The [`Extractor`] contract: untrusted document bytes in, text, metadata
//! and risk flags out.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;

/// A document to extract, as received.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExtractInput {
    /// The bytes (shared, not copied).
    pub content: Bytes,
    /// The media type the client declared, checked against the sniffed one.
    pub declared_content_type: Option<String>,
    /// The filename the client sent (unsanitised; extractors sanitise).
    pub filename: Option<String>,
}

impl ExtractInput {
    /// Input with no declared type or filename.
    #[must_use]
    pub const fn new(content: Bytes) -> Self {
        Self {
            content,
            declared_content_type: None,
            filename: None,
        }
    }
}

/// Options that change the result (and so are part of its cache key).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExtractOptions {
    /// Extract at most this many pages (from the first).
    pub max_pages: Option<u32>,
    /// Also produce a sanitised copy with active content removed.
    pub sanitize: bool,
}

/// Active or risky content found in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RiskFlag {
    /// `/JavaScript` or `/JS`.
    JavaScript,
    /// A document-level `/OpenAction`.
    OpenAction,
    /// Additional actions (`/AA`).
    AdditionalActions,
    /// A `/Launch` action (runs a program).
    Launch,
    /// A `/URI` action.
    Uri,
    /// Embedded files.
    EmbeddedFiles,
    /// `/RichMedia` (Flash, video).
    RichMedia,
    /// An XFA form.
    Xfa,
}

/// Document metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocumentInfo {
    /// Title.
    pub title: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Producer.
    pub producer: Option<String>,
    /// Creation date.
    #[serde(with = "time::serde::rfc3339::option")]
    pub created: Option<OffsetDateTime>,
    /// Modification date.
    #[serde(with = "time::serde::rfc3339::option")]
    pub modified: Option<OffsetDateTime>,
    /// Number of pages.
    pub page_count: u32,
    /// Format version, e.g. `1.7`.
    pub format_version: Option<String>,
}

/// The result of an extraction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Extraction {
    /// Text per page, in page order (reading order within a page).
    pub pages: Vec<String>,
    /// Metadata.
    pub info: DocumentInfo,
    /// Risky content found.
    pub risks: Vec<RiskFlag>,
    /// Lowercase hex SHA-256 of the input.
    pub sha256: String,
    /// The sanitised copy, when asked for.
    #[serde(skip)]
    pub sanitized: Option<Bytes>,
}

/// Extracts text and metadata from untrusted documents.
///
/// Contract:
/// - Every input byte is hostile. An implementation enforces its configured
///   limits (size, objects, nesting, decompressed bytes, pages, wall time)
///   and rejects with `Err(DocumentRejected { reason, .. })`, a stable
///   reason code. It never panics, hangs or allocates without bound.
/// - CPU-heavy work runs off the async runtime's worker threads.
/// - The same input, options and [`Extractor::version`] give the same
///   result, so results may be cached under that triple.
#[async_trait::async_trait]
pub trait Extractor: Send + Sync + fmt::Debug + 'static {
    /// Identifies the implementation and its version; part of cache keys.
    fn version(&self) -> &str;

    /// Validate and extract.
    ///
    /// # Errors
    /// `DocumentRejected`, `PayloadTooLarge` or `UnsupportedMediaType` for
    /// bad input; `Timeout` if the wall-time limit is hit.
    async fn extract(&self, input: ExtractInput, options: &ExtractOptions) -> Result<Extraction>;
}
