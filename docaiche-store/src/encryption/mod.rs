//! Encryption at rest: envelope encryption of document content and
//! extracted text, with per-subject data keys that can be destroyed.
//!
//! ```
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use docaiche_core::{DocumentStore, PrincipalId, TenantId};
//! use docaiche_core::document::NewDocument;
//! use docaiche_store::encryption::{EncryptedDocumentStore, MemoryDataKeyStore};
//! use docaiche_store::key_wrapper::LocalKeyWrapper;
//! use docaiche_store::memory::MemoryDocumentStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docaiche_core::Result<()> {
//! let plain = Arc::new(MemoryDocumentStore::new());
//! let store = EncryptedDocumentStore::new(
//!     plain.clone(),
//!     Arc::new(MemoryDataKeyStore::new()),
//!     Arc::new(LocalKeyWrapper::generate()),
//! );
//! let tenant = TenantId::new("acme")?;
//! let alice = PrincipalId::new("alice")?;
//! let doc = NewDocument::new(alice.clone(), "application/pdf", "00", Bytes::from_static(b"%PDF-1.7"));
//! let meta = store.put(&tenant, doc).await?;
//! // The wrapped store holds only ciphertext…
//! let raw = plain.get(&tenant, &meta.id).await?.expect("stored");
//! assert_ne!(raw.content, Bytes::from_static(b"%PDF-1.7"));
//! // …and the encrypting store gives the bytes back.
//! let back = store.get(&tenant, &meta.id).await?.expect("stored");
//! assert_eq!(back.content, Bytes::from_static(b"%PDF-1.7"));
//! // Erasing the subject destroys its key: its documents are unreadable,
//! // in this store and in every backup of it.
//! store.destroy_subject_key(&tenant, &alice).await?;
//! assert!(store.get(&tenant, &meta.id).await.is_err());
//! # Ok(()) }
//! ```
//!
//! ## The scheme
//!
//! * **One data key per data subject** (tenant + owner of the document):
//!   256 bits from [`KeyWrapper::generate_data_key`](docaiche_core::KeyWrapper::generate_data_key), stored only wrapped,
//!   in a [`DataKeyStore`], under the key-encryption key of the wrapper (a
//!   local key file by default, Vault Transit in production). The wrapping
//!   context is the tenant and the subject, so a wrapped key moved to
//!   another row does not unwrap.
//! * **AES-256-GCM per value**, a fresh 96-bit random nonce each time, the
//!   associated data binding the ciphertext to its tenant, its document id
//!   and what it is (`content` or `text`): a ciphertext copied to another
//!   document, another tenant, or from content to text fails
//!   authentication and reads as an `Internal` error, never as garbage.
//!   Stored form: `DCE1` ‖ nonce ‖ ciphertext ‖ tag (32 bytes of overhead);
//!   text is stored as one page `dce1:` + base64 of the same.
//! * **Rotation**: after the KEK rotates, [`EncryptedDocumentStore::rewrap_all`]
//!   re-wraps every stored data key under the latest KEK version (Vault
//!   does it without the plaintext leaving Transit). Documents are not
//!   touched: only the small key table is rewritten. Run it after each
//!   rotation, or periodically from a background task:
//!
//!   ```no_run
//!   # use std::time::Duration;
//!   # fn run(store: docaiche_store::encryption::EncryptedDocumentStore) {
//!   tokio::spawn(async move {
//!       let mut ticks = tokio::time::interval(Duration::from_secs(3600));
//!       loop {
//!           ticks.tick().await;
//!           if let Err(error) = store.rewrap_all().await {
//!               tracing::warn!(error = %error.log_chain(), "rewrap failed; next pass retries");
//!           }
//!       }
//!   });
//!   # }
//!   ```
//! * **Crypto-shredding**: [`EncryptedDocumentStore::destroy_subject_key`]
//!   deletes a subject's wrapped key; every document and text of that
//!   subject, including copies in backups, can no longer be decrypted. The
//!   compliance crate's erasure calls it after deleting the documents.
//!
//! What stays in clear: metadata (filename, content type, SHA-256 of the
//! plaintext for deduplication, sizes, owner, times, the risk flags of the
//! extraction, which listings filter on). A deployment that
//! must hide filenames stores them elsewhere or hashes them before `put`.
//!
//! Why per subject rather than per document or per tenant: per document
//! would make erasure need every document's key, and per tenant could not
//! erase one subject without re-encrypting the tenant. Per subject is what
//! crypto-shredding for data-subject requests needs.
//!
//! ## Where the data keys live, and the key cache
//!
//! The [`DataKeyStore`] must be as durable as the documents and shared by
//! every process that reads them: [`MemoryDataKeyStore`] beside a memory
//! document store, `SqliteStore::data_keys` beside SQLite (feature
//! `sqlite`), `PgStore::data_keys` beside PostgreSQL (feature `postgres`;
//! tenant-scoped statements, row-level security like the other tables).
//! Every backend passes `conformance::run_data_key_store`.
//!
//! Each read and write looks the subject's *wrapped* key up in the
//! [`DataKeyStore`], then takes the plaintext key from a bounded in-memory
//! cache when it holds the key unwrapped from exactly those wrapped bytes
//! (1024 subjects, 5 minutes idle by default:
//! [`EncryptedDocumentStore::with_key_cache`]). So a Vault Transit wrapper
//! costs one round trip per subject, not per document, while destroying or
//! rewrapping a key, from any process, takes effect on the next call. The
//! cost: cached plaintext keys live in process memory (zeroized when
//! evicted); `with_key_cache(0, …)` turns the cache off.

mod cache;
mod document;
mod keys;
#[cfg(test)]
mod tests;

#[cfg(test)]
use document::OVERHEAD_FOR_TESTS;
pub use document::{EncryptedDocumentStore, RewrapReport};
pub use keys::{DataKeyStore, MemoryDataKeyStore, SubjectKey};
