//! `[documents]`: upload limits, the inline/background extraction
//! threshold, batch size, job attempts and the extraction cache (what they
//! drive is `crate::documents`).

use serde::Deserialize;

/// `[documents]`: upload limits, the inline/background threshold, the
/// worker and the result cache.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct DocumentsSection {
    /// Largest accepted document, in bytes (also capped by
    /// `server.body_limit_bytes`). Default 16 MiB.
    pub(crate) max_upload_bytes: u64,
    /// Documents up to this size are extracted in the request; larger ones
    /// by a background job. Default 1 MiB.
    pub(crate) inline_max_bytes: u64,
    /// Most documents in one batch. Default 16.
    pub(crate) max_batch: usize,
    /// Extraction jobs run at once by this instance's worker. Default 2.
    pub(crate) workers: usize,
    /// Attempts of an extraction job before it is dead-lettered. Default 3.
    pub(crate) job_attempts: u32,
    /// Extraction results kept in the in-process cache; 0 disables it.
    /// Default 256.
    pub(crate) cache_entries: usize,
}

impl Default for DocumentsSection {
    fn default() -> Self {
        Self {
            max_upload_bytes: 16 * 1024 * 1024,
            inline_max_bytes: 1024 * 1024,
            max_batch: 16,
            workers: 2,
            job_attempts: 3,
            cache_entries: 256,
        }
    }
}

impl DocumentsSection {
    /// What is wrong with these settings: `(setting, reason)` pairs.
    pub(crate) fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.max_upload_bytes == 0 {
            out.push(("documents.max_upload_bytes", "must be at least 1 byte"));
        }
        if self.max_batch == 0 || self.max_batch > 1000 {
            out.push(("documents.max_batch", "must be between 1 and 1000"));
        }
        if self.workers == 0 || self.workers > 256 {
            out.push(("documents.workers", "must be between 1 and 256"));
        }
        if self.job_attempts == 0 || self.job_attempts > 100 {
            out.push(("documents.job_attempts", "must be between 1 and 100"));
        }
        out
    }
}
