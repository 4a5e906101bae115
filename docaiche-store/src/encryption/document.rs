//! [`EncryptedDocumentStore`]: any [`DocumentStore`], encrypted.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use aes_gcm::aead::OsRng;
use aes_gcm::aead::rand_core::RngCore;
use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD as BASE64;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use docaiche_core::document::{Document, DocumentMeta, DocumentStore, DocumentText, NewDocument};
use docaiche_core::error::{Error, Result};
use docaiche_core::id::{DocumentId, PrincipalId, TenantId};
use docaiche_core::key_wrapper::{KeyWrapper, WrappedKey};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::secret::SecretBytes;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use super::cache::KeyCache;
use super::keys::DataKeyStore;

/// The first bytes of an encrypted value.
const MAGIC: &[u8; 4] = b"DCE1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes an encrypted value has beyond its plaintext.
const OVERHEAD: usize = MAGIC.len() + NONCE_LEN + TAG_LEN;
/// The prefix of the one page that holds encrypted text.
const TEXT_PREFIX: &str = "dce1:";
#[cfg(test)]
pub(super) const OVERHEAD_FOR_TESTS: usize = OVERHEAD;
/// Keys per page when rewrapping.
const REWRAP_PAGE: usize = 256;
/// Default bound of the unwrapped-key cache (subjects).
const KEY_CACHE_CAPACITY: usize = 1024;
/// Default time a cached key may go unused before it is dropped.
const KEY_CACHE_IDLE: Duration = Duration::from_secs(300);

/// What a value is, bound into its associated data.
#[derive(Debug, Clone, Copy)]
enum Part {
    Content,
    Text,
}

impl Part {
    const fn as_str(self) -> &'static str {
        match self {
            Self::Content => "content",
            Self::Text => "text",
        }
    }
}

/// A [`DocumentStore`] that encrypts content and text before they reach
/// the store it wraps; see the [module docs](super).
#[derive(Clone)]
pub struct EncryptedDocumentStore {
    inner: Arc<dyn DocumentStore>,
    keys: Arc<dyn DataKeyStore>,
    wrapper: Arc<dyn KeyWrapper>,
    cache: Arc<KeyCache>,
}

/// What [`EncryptedDocumentStore::rewrap_all`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Keys re-wrapped under the latest KEK version.
    pub rewrapped: u64,
    /// Keys that changed underneath (destroyed or rewrapped concurrently).
    pub skipped: u64,
}

impl EncryptedDocumentStore {
    /// Encrypt into `inner`, with data keys kept (wrapped) in `keys` and
    /// wrapped by `wrapper`; unwrapped keys are cached (up to 1024
    /// subjects, each for 5 minutes without use; see
    /// [`EncryptedDocumentStore::with_key_cache`]).
    #[must_use]
    pub fn new(
        inner: Arc<dyn DocumentStore>,
        keys: Arc<dyn DataKeyStore>,
        wrapper: Arc<dyn KeyWrapper>,
    ) -> Self {
        Self {
            inner,
            keys,
            wrapper,
            cache: Arc::new(KeyCache::new(KEY_CACHE_CAPACITY, KEY_CACHE_IDLE)),
        }
    }

    /// Cache the unwrapped data keys of up to `capacity` subjects, each
    /// refused after `idle` without use and dropped, and zeroized, within
    /// another `idle` while the store is in use; `capacity` 0 turns the
    /// cache off. A full cache evicts in constant time, a key cached and
    /// not used again before keys in steady use (`quick_cache`'s CLOCK-Pro
    /// policy, which a scan of one-off subjects cannot flush).
    ///
    /// The cache spares the *unwrap* (with Vault Transit, an HTTPS round
    /// trip per document read or write), not the read of the wrapped key
    /// from the [`DataKeyStore`]: a cached key is used only while the store
    /// still holds the wrapped key it came from, so crypto-shredding and
    /// rewrapping by any process take effect on the next call everywhere.
    /// The cost: up to `capacity` plaintext data keys (32 bytes each) live
    /// in this process's memory.
    #[must_use]
    pub fn with_key_cache(mut self, capacity: usize, idle: Duration) -> Self {
        self.cache = Arc::new(KeyCache::new(capacity, idle));
        self
    }

    /// Destroy the data key of `subject` in `tenant` (crypto-shredding):
    /// every document and text of theirs becomes undecryptable, backups
    /// included. Returns whether there was a key. Irreversible.
    ///
    /// # Errors
    /// `Unavailable` when the key store is down.
    pub async fn destroy_subject_key(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<bool> {
        let destroyed = self.keys.destroy(tenant, subject).await;
        self.cache.remove(tenant, subject);
        let destroyed = destroyed?;
        if destroyed {
            tracing::info!(%tenant, "data key of a subject destroyed (crypto-shredding)");
        }
        Ok(destroyed)
    }

    /// Re-wrap every stored data key under the wrapper's latest KEK version
    /// (after a KEK rotation). Documents are not read or rewritten.
    ///
    /// # Errors
    /// The first error of the key store or the wrapper; keys rewrapped
    /// before it stay rewrapped, and running again continues.
    pub async fn rewrap_all(&self) -> Result<RewrapReport> {
        let mut report = RewrapReport::default();
        let mut after: Option<(TenantId, PrincipalId)> = None;
        loop {
            let page = self
                .keys
                .list(after.as_ref().map(|(t, s)| (t, s)), REWRAP_PAGE)
                .await?;
            let Some(last) = page.last() else {
                return Ok(report);
            };
            after = Some((last.tenant.clone(), last.subject.clone()));
            for key in page {
                let context = key_context(&key.tenant, &key.subject);
                let new = self.wrapper.rewrap(&key.wrapped, &context).await?;
                // Already under the latest version (a wrapper may still
                // return fresh bytes, e.g. a new nonce): nothing to store.
                if new.kek_id == key.wrapped.kek_id && new.kek_version == key.wrapped.kek_version {
                    continue;
                }
                if self
                    .keys
                    .replace(&key.tenant, &key.subject, &key.wrapped, new)
                    .await?
                {
                    report.rewrapped += 1;
                } else {
                    report.skipped += 1;
                }
            }
        }
    }

    /// The plaintext data key of `subject`, creating it on first use.
    async fn key_for_writing(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Arc<SecretBytes>> {
        if let Some(wrapped) = self.keys.get(tenant, subject).await? {
            return self.unwrap_cached(tenant, subject, wrapped).await;
        }
        let context = key_context(tenant, subject);
        let fresh = self.wrapper.generate_data_key(&context).await?;
        let stored = self
            .keys
            .insert_if_absent(tenant, subject, fresh.wrapped.clone())
            .await?;
        if stored == fresh.wrapped {
            let key = Arc::new(fresh.plaintext);
            self.cache.insert(tenant, subject, stored, key.clone());
            Ok(key)
        } else {
            // Another writer created the subject's key first: use theirs.
            self.unwrap_cached(tenant, subject, stored).await
        }
    }

    /// The plaintext data key of `subject`, which must exist.
    async fn key_for_reading(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Arc<SecretBytes>> {
        let Some(wrapped) = self.keys.get(tenant, subject).await? else {
            // Destroyed here or elsewhere: drop any cached plaintext now.
            self.cache.remove(tenant, subject);
            return Err(Error::internal(
                "the document's data key does not exist (destroyed by an erasure, or never created)",
            ));
        };
        self.unwrap_cached(tenant, subject, wrapped).await
    }

    /// `wrapped` unwrapped, from the cache when it holds this very wrapped
    /// key for the subject.
    async fn unwrap_cached(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        wrapped: WrappedKey,
    ) -> Result<Arc<SecretBytes>> {
        if let Some(key) = self.cache.get(tenant, subject, &wrapped) {
            return Ok(key);
        }
        let key = Arc::new(
            self.wrapper
                .unwrap_key(&wrapped, &key_context(tenant, subject))
                .await?,
        );
        self.cache.insert(tenant, subject, wrapped, key.clone());
        Ok(key)
    }

    /// How many unwrapped data keys the cache holds (for metrics and tests).
    #[must_use]
    pub fn cached_keys(&self) -> usize {
        self.cache.len()
    }

    /// Metadata as callers see it: the plaintext size.
    fn plain_meta(mut meta: DocumentMeta) -> DocumentMeta {
        meta.size = meta.size.saturating_sub(OVERHEAD as u64);
        meta
    }
}

/// The wrapping context of a subject's key.
fn key_context(tenant: &TenantId, subject: &PrincipalId) -> Vec<u8> {
    let mut context = Vec::with_capacity(32 + tenant.as_str().len() + subject.as_str().len());
    context.extend_from_slice(b"docaiche/subject-key/v1\0");
    context.extend_from_slice(tenant.as_str().as_bytes());
    context.push(0);
    context.extend_from_slice(subject.as_str().as_bytes());
    context
}

/// The associated data of one value. Ids hold no NUL, so the separators
/// make the encoding unambiguous.
fn associated_data(tenant: &TenantId, id: &DocumentId, part: Part) -> Vec<u8> {
    format!("docaiche/document/v1\0{}\0{tenant}\0{id}", part.as_str()).into_bytes()
}

/// The AES-256-GCM key of a data key. ring rather than the RustCrypto
/// `aes-gcm` crate for the bulk data: its assembly (AES-NI, PCLMULQDQ, AVX
/// on x86-64; ARMv8 crypto extensions) runs about three times as fast on a
/// megabyte, which is what keeps encryption at rest within 10 % of a
/// SQLite write (see `benches/encryption.rs`). Same algorithm, nonce and
/// tag sizes, so the stored format is unchanged.
fn cipher(key: &SecretBytes) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, key.expose_secret())
        .map(LessSafeKey::new)
        .map_err(|_| Error::internal("a data key is not 256 bits"))
}

fn seal(key: &SecretBytes, aad: &[u8], plaintext: &[u8]) -> Result<Bytes> {
    let mut nonce = [0_u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    // One buffer, encrypted in place: the plaintext is copied once, into
    // the value that is stored.
    let mut out = BytesMut::with_capacity(OVERHEAD + plaintext.len());
    out.put_slice(MAGIC);
    out.put_slice(&nonce);
    out.put_slice(plaintext);
    let body = MAGIC.len() + NONCE_LEN;
    let tag = cipher(key)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[body..],
        )
        .map_err(|_| Error::internal("encryption failed"))?;
    out.put_slice(tag.as_ref());
    Ok(out.freeze())
}

/// Decrypt `sealed` (`ciphertext ‖ tag`) in place; the plaintext length.
/// On failure the buffer is zeroed: ring may have decrypted into it before
/// the tag check failed.
fn open_in_place(
    key: &SecretBytes,
    nonce: [u8; NONCE_LEN],
    aad: &[u8],
    sealed: &mut [u8],
) -> Result<usize> {
    let opened = cipher(key)?
        .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(aad), sealed)
        .map(|plain| plain.len());
    opened.map_err(|_| {
        sealed.fill(0);
        Error::internal("stored ciphertext failed authentication")
    })
}

/// The nonce of a stored value that passed the length and magic checks.
fn nonce_of(stored: &[u8]) -> Result<[u8; NONCE_LEN]> {
    let failed = || Error::internal("stored ciphertext failed authentication");
    if stored.len() < OVERHEAD || !stored.starts_with(MAGIC) {
        return Err(failed());
    }
    stored[MAGIC.len()..MAGIC.len() + NONCE_LEN]
        .try_into()
        .map_err(|_| failed())
}

/// [`open`] decrypting in the stored buffer itself when this is its only
/// owner (a row just read from a database): no second megabyte-sized
/// buffer, no copy. A shared buffer is copied once, never modified.
fn open_owned(key: &SecretBytes, aad: &[u8], stored: Bytes) -> Result<Bytes> {
    let nonce = nonce_of(&stored)?;
    let mut buf = BytesMut::from(stored);
    let body = MAGIC.len() + NONCE_LEN;
    let len = open_in_place(key, nonce, aad, &mut buf[body..])?;
    buf.truncate(body + len);
    buf.advance(body);
    Ok(buf.freeze())
}

fn open(key: &SecretBytes, aad: &[u8], stored: &[u8]) -> Result<Vec<u8>> {
    let nonce = nonce_of(stored)?;
    let mut buf = stored[MAGIC.len() + NONCE_LEN..].to_vec();
    let len = open_in_place(key, nonce, aad, &mut buf)?;
    buf.truncate(len);
    Ok(buf)
}

#[async_trait]
impl DocumentStore for EncryptedDocumentStore {
    async fn usage(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<docaiche_core::document::StorageUsage>> {
        // The inner store counts ciphertext: each document carries
        // `OVERHEAD` bytes more than its plaintext.
        Ok(self.inner.usage(tenant).await?.map(|u| {
            docaiche_core::document::StorageUsage::new(
                u.documents,
                u.bytes
                    .saturating_sub(u.documents.saturating_mul(OVERHEAD as u64)),
            )
        }))
    }

    async fn put(&self, tenant: &TenantId, mut document: NewDocument) -> Result<DocumentMeta> {
        let key = self.key_for_writing(tenant, &document.owner).await?;
        let aad = associated_data(tenant, &document.id, Part::Content);
        document.content = seal(&key, &aad, &document.content)?;
        self.inner.put(tenant, document).await.map(Self::plain_meta)
    }

    async fn get(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<Document>> {
        let Some(stored) = self.inner.get(tenant, id).await? else {
            return Ok(None);
        };
        let key = self.key_for_reading(tenant, &stored.meta.owner).await?;
        let aad = associated_data(tenant, id, Part::Content);
        let content = open_owned(&key, &aad, stored.content)?;
        Ok(Some(Document::new(Self::plain_meta(stored.meta), content)))
    }

    async fn head(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentMeta>> {
        Ok(self.inner.head(tenant, id).await?.map(Self::plain_meta))
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<DocumentMeta>> {
        let page = self.inner.list(tenant, page).await?;
        Ok(Page::new(
            page.items.into_iter().map(Self::plain_meta).collect(),
            page.next,
        ))
    }

    async fn list_by_owner(
        &self,
        tenant: &TenantId,
        owner: &PrincipalId,
        page: &PageRequest,
    ) -> Result<Page<DocumentMeta>> {
        let page = self.inner.list_by_owner(tenant, owner, page).await?;
        Ok(Page::new(
            page.items.into_iter().map(Self::plain_meta).collect(),
            page.next,
        ))
    }

    async fn delete(&self, tenant: &TenantId, id: &DocumentId) -> Result<bool> {
        self.inner.delete(tenant, id).await
    }

    async fn put_text(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        text: &DocumentText,
    ) -> Result<()> {
        // The owner decides the key: only a document of this tenant has one.
        let Some(meta) = self.inner.head(tenant, id).await? else {
            return Err(Error::not_found("document"));
        };
        let key = self.key_for_writing(tenant, &meta.owner).await?;
        let plain = serde_json::to_vec(&text.pages)
            .map_err(|e| Error::internal_with("text serialization", e))?;
        let sealed = seal(&key, &associated_data(tenant, id, Part::Text), &plain)?;
        let page = format!("{TEXT_PREFIX}{}", BASE64.encode(&sealed));
        // The flags stay in the clear (the contract): listings filter on
        // them, and they say which active content a PDF has, not its text.
        let stored = DocumentText::new(vec![page]).with_risks(text.risks.iter().copied());
        self.inner.put_text(tenant, id, &stored).await
    }

    async fn get_text(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentText>> {
        let Some(stored) = self.inner.get_text(tenant, id).await? else {
            return Ok(None);
        };
        let failed = || Error::internal("stored text is not an encrypted value");
        let [page] = stored.pages.as_slice() else {
            return Err(failed());
        };
        let sealed = page
            .strip_prefix(TEXT_PREFIX)
            .and_then(|b64| BASE64.decode(b64).ok())
            .ok_or_else(failed)?;
        let Some(meta) = self.inner.head(tenant, id).await? else {
            return Ok(None);
        };
        let key = self.key_for_reading(tenant, &meta.owner).await?;
        let plain = open(&key, &associated_data(tenant, id, Part::Text), &sealed)?;
        let pages: Vec<String> = serde_json::from_slice(&plain)
            .map_err(|e| Error::internal_with("decrypted text is not a page list", e))?;
        Ok(Some(DocumentText::new(pages).with_risks(stored.risks)))
    }
}

impl fmt::Debug for EncryptedDocumentStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EncryptedDocumentStore")
            .field("inner", &self.inner)
            .field("keys", &self.keys)
            .field("wrapper", &self.wrapper)
            .finish()
    }
}
