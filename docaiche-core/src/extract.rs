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

impl RiskFlag {
    /// Every flag, in their order (the order of [`Ord`], so of a sorted
    /// list of flags).
    pub const ALL: [Self; 8] = [
        Self::JavaScript,
        Self::OpenAction,
        Self::AdditionalActions,
        Self::Launch,
        Self::Uri,
        Self::EmbeddedFiles,
        Self::RichMedia,
        Self::Xfa,
    ];

    /// The snake-case name, as serde writes it (`java_script`).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::JavaScript => "java_script",
            Self::OpenAction => "open_action",
            Self::AdditionalActions => "additional_actions",
            Self::Launch => "launch",
            Self::Uri => "uri",
            Self::EmbeddedFiles => "embedded_files",
            Self::RichMedia => "rich_media",
            Self::Xfa => "xfa",
        }
    }

    /// The flag named `name` (its [`as_str`](Self::as_str)), if any. Names
    /// are case-sensitive: `JavaScript` is none.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|flag| flag.as_str() == name)
    }

    /// `flags` in the canonical form stores keep and return: sorted (in the
    /// order of [`RiskFlag::ALL`]), each flag once.
    #[must_use]
    pub fn canonical(flags: impl IntoIterator<Item = Self>) -> Vec<Self> {
        let mut flags: Vec<Self> = flags.into_iter().collect();
        flags.sort_unstable();
        flags.dedup();
        flags
    }
}

impl fmt::Display for RiskFlag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_flag_names_round_trip_and_match_serde() {
        for flag in RiskFlag::ALL {
            assert_eq!(RiskFlag::from_name(flag.as_str()), Some(flag));
            let json = serde_json::to_value(flag).expect("serializes");
            assert_eq!(json, flag.as_str());
            assert_eq!(flag.to_string(), flag.as_str());
        }
        for unknown in ["", "JavaScript", "javascript", "java_script ", "any"] {
            assert_eq!(RiskFlag::from_name(unknown), None, "{unknown:?}");
        }
    }

    #[test]
    fn all_is_in_order_and_canonical_sorts_and_deduplicates() {
        assert!(RiskFlag::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(
            RiskFlag::canonical([RiskFlag::Xfa, RiskFlag::JavaScript, RiskFlag::Xfa]),
            [RiskFlag::JavaScript, RiskFlag::Xfa]
        );
        assert_eq!(RiskFlag::canonical([]), []);
    }
}
