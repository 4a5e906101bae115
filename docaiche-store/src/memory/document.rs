//! [`MemoryDocumentStore`].

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use docaiche_core::document::{Document, DocumentMeta, DocumentStore, DocumentText, NewDocument};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{Clock, DocumentId, Error, PrincipalId, Result, TenantId};

use super::{capacity_exceeded, lock, page_of, parse_cursor, system_clock};
use crate::trace::traced;

const STORE: &str = "memory document store";

/// Documents and their extracted text in memory.
///
/// Bounded by the total bytes of content plus text (default 256 MiB); a
/// write that would exceed it is refused with `Unavailable`
/// ([`CapacityExceeded`](super::CapacityExceeded)). Content is held as
/// [`Bytes`], so `get` hands out cheap clones, not copies.
#[derive(Debug)]
pub struct MemoryDocumentStore {
    clock: Arc<dyn Clock>,
    max_bytes: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    tenants: HashMap<TenantId, BTreeMap<DocumentId, Entry>>,
    /// Every id, across tenants (ids are globally unique).
    ids: HashMap<DocumentId, TenantId>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    meta: DocumentMeta,
    content: Bytes,
    text: Option<DocumentText>,
}

impl Entry {
    fn bytes(&self) -> usize {
        self.content.len() + self.text.as_ref().map_or(0, text_bytes)
    }
}

fn text_bytes(text: &DocumentText) -> usize {
    text.pages.iter().map(String::len).sum()
}

impl MemoryDocumentStore {
    /// Default bound on stored bytes (content plus text): 256 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 256 * 1024 * 1024;

    /// An empty store on the system clock.
    #[must_use]
    pub fn new() -> Self {
        Self {
            clock: system_clock(),
            max_bytes: Self::DEFAULT_MAX_BYTES,
            state: Mutex::new(State::default()),
        }
    }

    /// Read time (`created_at`) from `clock`.
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Set the bound on stored bytes (content plus text).
    #[must_use]
    pub fn with_max_bytes(mut self, max_bytes: NonZeroUsize) -> Self {
        self.max_bytes = max_bytes.get();
        self
    }

    /// Bytes currently stored (content plus text).
    #[must_use]
    pub fn bytes_used(&self) -> usize {
        lock(&self.state).bytes
    }

    fn list_where(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
        keep: impl Fn(&DocumentMeta) -> bool,
    ) -> Result<Page<DocumentMeta>> {
        let after = parse_cursor(page.after.as_deref())?.map(DocumentId::from_uuid);
        let state = lock(&self.state);
        let Some(docs) = state.tenants.get(tenant) else {
            return Ok(Page::new(Vec::new(), None));
        };
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(page_of(
            docs.range((lower, Bound::Unbounded))
                .map(|(_, e)| &e.meta)
                .filter(|m| keep(m))
                .cloned(),
            page.limit,
            |m| *m.id.as_uuid(),
        ))
    }
}

impl Default for MemoryDocumentStore {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl DocumentStore for MemoryDocumentStore {
    async fn usage(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<docaiche_core::document::StorageUsage>> {
        let state = lock(&self.state);
        let (documents, bytes) = state.tenants.get(tenant).map_or((0, 0), |docs| {
            let bytes = docs
                .values()
                .map(|e| e.meta.size)
                .fold(0u64, u64::saturating_add);
            (u64::try_from(docs.len()).unwrap_or(u64::MAX), bytes)
        });
        Ok(Some(docaiche_core::document::StorageUsage::new(
            documents, bytes,
        )))
    }

    async fn put(&self, tenant: &TenantId, document: NewDocument) -> Result<DocumentMeta> {
        traced!("memory", "documents", "put", async move {
            let size = document.content.len();
            let mut meta = DocumentMeta::new(
                document.id,
                tenant.clone(),
                document.owner,
                document.content_type,
                u64::try_from(size).unwrap_or(u64::MAX),
                document.sha256,
                self.clock.now(),
            );
            meta.filename = document.filename;
            let mut state = lock(&self.state);
            if state.ids.contains_key(&document.id) {
                return Err(Error::conflict("document id already exists"));
            }
            if state.bytes.saturating_add(size) > self.max_bytes {
                return Err(capacity_exceeded(STORE, self.max_bytes, "bytes"));
            }
            state.bytes += size;
            state.ids.insert(document.id, tenant.clone());
            state.tenants.entry(tenant.clone()).or_default().insert(
                document.id,
                Entry {
                    meta: meta.clone(),
                    content: document.content,
                    text: None,
                },
            );
            Ok(meta)
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<Document>> {
        traced!("memory", "documents", "get", async move {
            let found = {
                let state = lock(&self.state);
                state
                    .tenants
                    .get(tenant)
                    .and_then(|docs| docs.get(id))
                    .map(|e| (e.meta.clone(), e.content.clone()))
            };
            Ok(found.map(|(meta, content)| Document::new(meta, content)))
        })
        .await
    }

    async fn head(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentMeta>> {
        traced!("memory", "documents", "head", async move {
            let state = lock(&self.state);
            Ok(state
                .tenants
                .get(tenant)
                .and_then(|docs| docs.get(id))
                .map(|e| e.meta.clone()))
        })
        .await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<DocumentMeta>> {
        traced!("memory", "documents", "list", async move {
            self.list_where(tenant, page, |_| true)
        })
        .await
    }

    async fn list_by_owner(
        &self,
        tenant: &TenantId,
        owner: &PrincipalId,
        page: &PageRequest,
    ) -> Result<Page<DocumentMeta>> {
        traced!("memory", "documents", "list_by_owner", async move {
            self.list_where(tenant, page, |m| &m.owner == owner)
        })
        .await
    }

    async fn delete(&self, tenant: &TenantId, id: &DocumentId) -> Result<bool> {
        traced!("memory", "documents", "delete", async move {
            let mut state = lock(&self.state);
            let Some(entry) = state
                .tenants
                .get_mut(tenant)
                .and_then(|docs| docs.remove(id))
            else {
                return Ok(false);
            };
            state.bytes -= entry.bytes();
            state.ids.remove(id);
            if state.tenants.get(tenant).is_some_and(BTreeMap::is_empty) {
                state.tenants.remove(tenant);
            }
            Ok(true)
        })
        .await
    }

    async fn put_text(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        text: &DocumentText,
    ) -> Result<()> {
        traced!("memory", "document_texts", "put", async move {
            let mut state = lock(&self.state);
            let used = state.bytes;
            let Some(entry) = state
                .tenants
                .get_mut(tenant)
                .and_then(|docs| docs.get_mut(id))
            else {
                return Err(Error::not_found("document"));
            };
            let old = entry.text.as_ref().map_or(0, text_bytes);
            let new = text_bytes(text);
            let after = (used - old).saturating_add(new);
            if after > self.max_bytes {
                return Err(capacity_exceeded(STORE, self.max_bytes, "bytes"));
            }
            let text = text.clone().with_risks(text.risks.iter().copied());
            entry.meta.risks.clone_from(&text.risks);
            entry.meta.has_text = true;
            entry.text = Some(text);
            state.bytes = after;
            Ok(())
        })
        .await
    }

    async fn get_text(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentText>> {
        traced!("memory", "document_texts", "get", async move {
            let state = lock(&self.state);
            Ok(state
                .tenants
                .get(tenant)
                .and_then(|docs| docs.get(id))
                .and_then(|e| e.text.clone()))
        })
        .await
    }
}
