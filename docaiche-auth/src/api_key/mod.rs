//! API keys: generation, keyed-hash storage, verification, rotation,
//! revocation and batched last-used tracking.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use docaiche_auth::api_key::{ApiKeyService, NewApiKey, Peppers};
//! use docaiche_core::{AuthMethod, Permission, Principal, PrincipalId, SecretBytes, TenantId};
//! use docaiche_store::memory::MemoryApiKeyStore;
//!
//! let peppers = Peppers::new(1, [(1, SecretBytes::new(vec![7; 32]))])?; // from a SecretProvider
//! let keys = ApiKeyService::new(Arc::new(MemoryApiKeyStore::new()), peppers);
//!
//! let acme = TenantId::new("acme")?;
//! let admin = Principal::new(PrincipalId::new("alice")?, acme.clone(), AuthMethod::Password)
//!     .with_permissions([Permission::KEYS_MANAGE, Permission::DOCUMENTS_READ].into_iter().collect());
//! let scopes = [Permission::DOCUMENTS_READ].into_iter().collect();
//! let created = keys.create(&admin, NewApiKey::new(acme, "ci").with_scopes(scopes)).await?;
//!
//! // Shown to the user once; only its keyed hash is stored.
//! let key = created.key.expose_secret();
//! assert!(key.starts_with("dcx_"));
//! let verified = keys.verify(key).await?;
//! assert!(verified.principal.has_permission(&Permission::DOCUMENTS_READ));
//! assert!(!verified.principal.has_permission(&Permission::KEYS_MANAGE));
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! # Format
//!
//! `dcx_<lookup id>_<secret><checksum>`, GitHub style; see [`mod@format`].
//! Secret scanners find leaked keys by the prefix, and typos fail the CRC32
//! checksum before any store call.
//!
//! # Why HMAC-SHA-256 with a pepper, and not argon2id
//!
//! A password is low-entropy: an attacker holding its hash can try the
//! likely candidates, so password hashes must be slow (argon2id, see
//! [`crate::password`]). An API key is 178 bits from the OS RNG: there is no
//! "likely candidate" to try, and a brute force of 2^178 is impossible
//! whatever the hash costs. A slow hash would buy nothing and would cost
//! tens of milliseconds of CPU on *every request*, turning each API call
//! into a denial-of-service lever.
//!
//! The hash is still *keyed*: HMAC-SHA-256 under a server-side pepper that
//! lives in the [`SecretProvider`](docaiche_core::SecretProvider) (Vault,
//! a secret file), never in the database. A leaked database alone then
//! cannot even confirm a key found elsewhere (in a log, a paste) belongs
//! to this system, and precomputed tables are useless. Each record carries
//! the pepper version that hashed it ([`Peppers`]), so the pepper rotates
//! without invalidating keys.
//!
//! The comparison is constant-time (`hmac`'s `verify_slice`), and it
//! happens before the record's tenant is trusted:
//! [`find_by_lookup`](docaiche_core::ApiKeyStore::find_by_lookup) is the
//! one read not scoped by tenant.
//!
//! # The request path
//!
//! [`ApiKeyService::verify`] parses the key (length, prefix, alphabet,
//! checksum: no I/O), then looks the lookup id up in a bounded cache of
//! verified keys (default 30 s), and only on a miss reads the store. The
//! hash and the expiry are checked on every call, cached or not.
//! Revocation and rotation through the service drop the cache entry at
//! once; on other instances the cache TTL bounds the delay.
//!
//! Last-used timestamps are never written on the request path: each use is
//! noted in a bounded in-memory map, and [`ApiKeyService::spawn_usage_flusher`]
//! writes them in one batch per interval.
//!
//! # Rotation
//!
//! [`ApiKeyService::rotate`] creates a successor with the same name, scopes
//! and lifetime, and shortens the old key's expiry to the end of the
//! overlap window (`mark_rotated`): both keys work during the window, then
//! only the new one.

mod cache;
pub mod format;
mod pepper;
mod service;
mod usage;

pub use format::{ApiKeyFormat, ParsedKey, public_prefix};
pub use pepper::{MIN_PEPPER_LEN, Peppers};
pub use service::{
    ApiKeyConfig, ApiKeyService, CreatedApiKey, INVALIDATION_CHANNEL, InvalidationListener,
    NewApiKey, UsageFlusher, VerifiedApiKey,
};
