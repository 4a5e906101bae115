//! The [`DocumentStore`] contract: tenant-scoped documents and their
//! extracted text.

use std::fmt;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::Result;
use crate::extract::RiskFlag;
use crate::id::{DocumentId, PrincipalId, TenantId};
use crate::page::{Page, PageRequest};

/// A document to store.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewDocument {
    /// Server-generated id.
    pub id: DocumentId,
    /// The data subject / uploader the document belongs to.
    pub owner: PrincipalId,
    /// Sanitised original filename, if any.
    pub filename: Option<String>,
    /// Sniffed media type.
    pub content_type: String,
    /// Lowercase hex SHA-256 of `content`.
    pub sha256: String,
    /// The bytes.
    pub content: Bytes,
}

impl NewDocument {
    /// A new document with a fresh id and the SHA-256 supplied by the caller
    /// (intake computes it once while validating).
    #[must_use]
    pub fn new(
        owner: PrincipalId,
        content_type: impl Into<String>,
        sha256: impl Into<String>,
        content: Bytes,
    ) -> Self {
        Self {
            id: DocumentId::new(),
            owner,
            filename: None,
            content_type: content_type.into(),
            sha256: sha256.into(),
            content,
        }
    }

    /// Set the filename.
    #[must_use]
    pub fn with_filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }
}

/// A stored document's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocumentMeta {
    /// Id.
    pub id: DocumentId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// Owner (data subject / uploader).
    pub owner: PrincipalId,
    /// Sanitised filename.
    pub filename: Option<String>,
    /// Media type.
    pub content_type: String,
    /// Content length in bytes.
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
    /// Whether extracted text is stored.
    pub has_text: bool,
    /// The active content its extraction found, as stored with the text by
    /// [`DocumentStore::put_text`]: canonical (sorted, each flag once; see
    /// [`RiskFlag::canonical`]). Empty until the text is stored, so a
    /// document without `has_text` has none, and empty for a clean one:
    /// `has_text` tells the two apart. Absent in data serialized before
    /// the field existed (empty).
    #[serde(default)]
    pub risks: Vec<RiskFlag>,
    /// When it was stored.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl DocumentMeta {
    /// Metadata with no filename, no text and so no risk flags yet.
    #[must_use]
    pub const fn new(
        id: DocumentId,
        tenant: TenantId,
        owner: PrincipalId,
        content_type: String,
        size: u64,
        sha256: String,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            tenant,
            owner,
            filename: None,
            content_type,
            size,
            sha256,
            has_text: false,
            risks: Vec::new(),
            created_at,
        }
    }
}

/// A stored document with its content.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Document {
    /// Metadata.
    pub meta: DocumentMeta,
    /// The bytes, exactly as stored.
    pub content: Bytes,
}

impl Document {
    /// A document from its metadata and content.
    #[must_use]
    pub const fn new(meta: DocumentMeta, content: Bytes) -> Self {
        Self { meta, content }
    }
}

/// Extracted text, one string per page, with the risk flags the same
/// extraction found: [`DocumentStore::put_text`] stores both, so a
/// document's [`DocumentMeta::risks`] always come from the extraction its
/// text came from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DocumentText {
    /// Page texts in page order.
    pub pages: Vec<String>,
    /// The active content found, canonical (sorted, each flag once) when
    /// built with [`DocumentText::with_risks`]; stores keep the canonical
    /// form whatever they are given. Absent in data serialized before the
    /// field existed (empty).
    #[serde(default)]
    pub risks: Vec<RiskFlag>,
}

impl DocumentText {
    /// Text from page strings, with no risk flags.
    #[must_use]
    pub const fn new(pages: Vec<String>) -> Self {
        Self {
            pages,
            risks: Vec::new(),
        }
    }

    /// Set the risk flags (an extraction's
    /// [`risks`](crate::extract::Extraction::risks)), made canonical.
    #[must_use]
    pub fn with_risks(mut self, risks: impl IntoIterator<Item = RiskFlag>) -> Self {
        self.risks = RiskFlag::canonical(risks);
        self
    }
}

/// How much one tenant stores: what storage quotas are checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageUsage {
    /// Stored documents.
    pub documents: u64,
    /// Their content bytes, as [`DocumentMeta::size`] counts them.
    pub bytes: u64,
}

impl StorageUsage {
    /// `documents` documents of `bytes` bytes in all.
    #[must_use]
    pub const fn new(documents: u64, bytes: u64) -> Self {
        Self { documents, bytes }
    }
}

/// Tenant-scoped document persistence.
///
/// Contract:
/// - Every method takes the caller's tenant; a document of another tenant is
///   indistinguishable from a missing one (`None` / `false`).
/// - Content and text come back byte-for-byte as stored (encrypting stores
///   decrypt transparently; a ciphertext that fails authentication is an
///   `Internal` error, never garbage).
/// - Ids are server-generated UUIDv7 and unique across tenants: `put` with an
///   existing id (in any tenant) is `Err(Conflict)` and changes nothing.
/// - String fields round-trip any valid UTF-8, including quotes, comment
///   markers and NUL: they are data, never SQL.
/// - `delete` removes content, text and metadata and is idempotent.
/// - Lists are ordered by id (creation order); `list_by_owner` serves
///   data-subject export and erasure.
/// - `put_text` stores the text's risk flags with it, replacing any stored
///   before; `head`, `get`, `list`, `list_by_owner` and `get_text` return
///   them canonical (sorted, each once), and a document whose text was
///   never stored has none. Flags are metadata that listings filter on:
///   encrypting stores keep them in the clear, like the content type.
/// - `usage` counts the tenant's documents and content bytes in one cheap
///   aggregate (per-tenant storage quotas call it on every upload); it may
///   lag concurrent writes, never by more than they add.
#[async_trait::async_trait]
pub trait DocumentStore: Send + Sync + fmt::Debug + 'static {
    /// Store a document.
    ///
    /// # Errors
    /// `Conflict` if the id exists; `Unavailable` on outage.
    async fn put(&self, tenant: &TenantId, document: NewDocument) -> Result<DocumentMeta>;

    /// Fetch a document with its content.
    ///
    /// # Errors
    /// `Unavailable` on outage; `Internal` if stored data fails integrity checks.
    async fn get(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<Document>>;

    /// Fetch a document's metadata only.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn head(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentMeta>>;

    /// The tenant's documents, ordered by id.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage.
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<DocumentMeta>>;

    /// The tenant's documents owned by `owner`, ordered by id.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage.
    async fn list_by_owner(
        &self,
        tenant: &TenantId,
        owner: &PrincipalId,
        page: &PageRequest,
    ) -> Result<Page<DocumentMeta>>;

    /// Delete a document and its text. Returns whether it existed.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn delete(&self, tenant: &TenantId, id: &DocumentId) -> Result<bool>;

    /// Store (or replace) the extracted text of a document and its risk
    /// flags ([`DocumentText::risks`], which then become the document's
    /// [`DocumentMeta::risks`]).
    ///
    /// # Errors
    /// `NotFound` if the document does not exist in this tenant;
    /// `Unavailable` on outage.
    async fn put_text(&self, tenant: &TenantId, id: &DocumentId, text: &DocumentText)
    -> Result<()>;

    /// Fetch the extracted text of a document, with its risk flags.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get_text(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentText>>;

    /// How many documents the tenant stores and their content bytes, or
    /// `None` when this store cannot count them (the default, so stores
    /// written before quotas keep compiling; storage quotas are then not
    /// enforced over them).
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn usage(&self, tenant: &TenantId) -> Result<Option<StorageUsage>> {
        let _ = tenant;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_and_text_serialized_before_risk_flags_still_read() {
        let meta = DocumentMeta::new(
            DocumentId::new(),
            TenantId::new("acme").expect("tenant"),
            PrincipalId::new("alice").expect("owner"),
            "application/pdf".to_owned(),
            3,
            "00".to_owned(),
            OffsetDateTime::UNIX_EPOCH,
        );
        let mut old = serde_json::to_value(&meta).expect("serializes");
        old.as_object_mut().expect("object").remove("risks");
        let read: DocumentMeta = serde_json::from_value(old).expect("reads");
        assert_eq!(read, meta);
        let text: DocumentText = serde_json::from_str(r#"{"pages":["a"]}"#).expect("reads");
        assert_eq!(text, DocumentText::new(vec!["a".to_owned()]));
    }

    #[test]
    fn text_risks_are_canonical() {
        let text = DocumentText::default().with_risks([
            RiskFlag::Uri,
            RiskFlag::JavaScript,
            RiskFlag::Uri,
        ]);
        assert_eq!(text.risks, [RiskFlag::JavaScript, RiskFlag::Uri]);
        let json = serde_json::to_value(&text).expect("serializes");
        assert_eq!(json["risks"], serde_json::json!(["java_script", "uri"]));
    }
}
