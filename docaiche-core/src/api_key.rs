//! The [`ApiKeyStore`] contract: persisted API key records (never the keys).

use std::fmt;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::id::{ApiKeyId, PrincipalId, TenantId};
use crate::page::{Page, PageRequest};
use crate::permission::PermissionSet;

/// The public, non-secret part of an API key that locates its record (like
/// the first characters of a GitHub token). 8–64 ASCII alphanumerics or `_`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyLookup(String);

impl ApiKeyLookup {
    /// Validate and wrap.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] unless `value` is 8–64 ASCII alphanumerics or `_`.
    pub fn new(value: impl Into<String>) -> Result<Self> {
        let value = value.into();
        let ok = (8..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if ok {
            Ok(Self(value))
        } else {
            Err(Error::invalid_input(
                "api key lookup id must be 8 to 64 alphanumerics",
            ))
        }
    }

    /// As a string slice.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ApiKeyLookup {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Self::new(value)
    }
}

impl From<ApiKeyLookup> for String {
    fn from(value: ApiKeyLookup) -> Self {
        value.0
    }
}

impl fmt::Debug for ApiKeyLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeyLookup({:?})", self.0)
    }
}

impl fmt::Display for ApiKeyLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A stored API key record. The key itself is never stored: only a keyed
/// hash of it (`hash`, computed by the auth crate with a server-side pepper
/// identified by `hash_version`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ApiKeyRecord {
    /// Record id.
    pub id: ApiKeyId,
    /// Owning tenant.
    pub tenant: TenantId,
    /// The principal the key acts as (its creator, or a service account).
    pub principal: PrincipalId,
    /// Human label, unique per tenant is *not* required.
    pub name: String,
    /// Globally unique lookup id embedded in the key.
    pub lookup: ApiKeyLookup,
    /// Keyed hash of the full key.
    pub hash: Vec<u8>,
    /// Which pepper/algorithm produced `hash`.
    pub hash_version: u16,
    /// Permissions the key carries (a subset of its creator's, at most
    /// [`MAX_SCOPES`](crate::MAX_SCOPES) of them as read back from a store).
    pub scopes: PermissionSet,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expiry, if any. After rotation, the end of the overlap window.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Last successful use (written asynchronously, may lag).
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// When the key was revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The key that replaced this one on rotation.
    pub replaced_by: Option<ApiKeyId>,
}

impl ApiKeyRecord {
    /// A new, unexpired, unrevoked record with no name, no scopes and an
    /// empty hash; set the rest with the `with_*` methods.
    #[must_use]
    pub fn new(
        id: ApiKeyId,
        tenant: TenantId,
        principal: PrincipalId,
        lookup: ApiKeyLookup,
        created_at: OffsetDateTime,
    ) -> Self {
        Self {
            id,
            tenant,
            principal,
            name: String::new(),
            lookup,
            hash: Vec::new(),
            hash_version: 0,
            scopes: PermissionSet::new(),
            created_at,
            expires_at: None,
            last_used_at: None,
            revoked_at: None,
            replaced_by: None,
        }
    }

    /// Set the keyed hash and the pepper/algorithm version that produced it.
    #[must_use]
    pub fn with_hash(mut self, hash_version: u16, hash: Vec<u8>) -> Self {
        self.hash_version = hash_version;
        self.hash = hash;
        self
    }

    /// Set the human label.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Set the scopes.
    #[must_use]
    pub fn with_scopes(mut self, scopes: PermissionSet) -> Self {
        self.scopes = scopes;
        self
    }

    /// Set the expiry.
    #[must_use]
    pub const fn with_expiry(mut self, expires_at: OffsetDateTime) -> Self {
        self.expires_at = Some(expires_at);
        self
    }

    /// Whether the key may be used at `now`: not revoked, not expired.
    #[must_use]
    pub fn is_usable_at(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// One last-used timestamp to record (see [`ApiKeyStore::record_usage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiKeyUsage {
    /// Tenant of the key.
    pub tenant: TenantId,
    /// The key.
    pub id: ApiKeyId,
    /// When it was used.
    pub used_at: OffsetDateTime,
}

impl ApiKeyUsage {
    /// A usage record.
    #[must_use]
    pub const fn new(tenant: TenantId, id: ApiKeyId, used_at: OffsetDateTime) -> Self {
        Self {
            tenant,
            id,
            used_at,
        }
    }
}

/// Persistence of API key records.
///
/// Contract:
/// - Every method but [`ApiKeyStore::find_by_lookup`] is scoped by the
///   caller's tenant: a record of another tenant is invisible (`None`,
///   `false`, absent from lists), never an error that reveals it exists.
/// - `find_by_lookup` is the one unscoped read, because the tenant is not
///   known until the key is verified; the auth crate compares the keyed hash
///   in constant time before trusting the returned record's tenant.
/// - `lookup` and `id` are unique: inserting a duplicate is
///   `Err(Error::Conflict)` and changes nothing.
/// - `revoke`, `mark_rotated` and `delete` are idempotent; `record_usage`
///   only ever moves `last_used_at` forward, so batches may arrive out of
///   order.
/// - `delete` removes the record entirely (its name is personal data, so an
///   erasure must not leave it behind as a revoked record): afterwards `get`
///   is `None`, `list` omits it and `find_by_lookup` no longer finds it.
/// - Lists are ordered by `id` (creation order).
/// - Reads (`get`, `find_by_lookup`, `list`) return at most
///   [`MAX_SCOPES`](crate::MAX_SCOPES) grants of a record's scopes, the
///   first in order, however many were stored (by a version before the
///   bound, or by a direct write), and load no more than that of them
///   ([`PermissionSet::from_json_bounded`] over a bounded prefix of a
///   stored array): a record can never make a read, a listing or an export
///   slow or large. Dropping grants only takes permissions away.
#[async_trait::async_trait]
pub trait ApiKeyStore: Send + Sync + fmt::Debug + 'static {
    /// Store a new record.
    ///
    /// # Errors
    /// [`Error::Conflict`] if the id or lookup exists; `Unavailable` on outage.
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()>;

    /// Find a record by its lookup id, across tenants (see the trait docs).
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn find_by_lookup(&self, lookup: &ApiKeyLookup) -> Result<Option<ApiKeyRecord>>;

    /// A record of `tenant` by id.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn get(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>>;

    /// The tenant's records, ordered by id.
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage.
    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApiKeyRecord>>;

    /// Revoke at `at`. Returns whether the record exists in this tenant;
    /// revoking twice keeps the first revocation time.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn revoke(&self, tenant: &TenantId, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool>;

    /// Delete the record of `tenant` with this id, permanently. Returns
    /// whether it existed in this tenant: deleting twice, or deleting another
    /// tenant's key, is `Ok(false)` and changes nothing.
    ///
    /// Use it to erase a key's personal data (its name, principal, usage);
    /// [`ApiKeyStore::revoke`] is the way to stop a key while keeping its
    /// history. Callers that cache verified keys (the auth crate's
    /// `ApiKeyService::delete`) must evict the key too.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool>;

    /// Record that `id` was replaced by `replaced_by` and stays usable until
    /// `valid_until` (the rotation overlap window; the earlier of this and
    /// any existing expiry wins). Returns whether the record exists.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn mark_rotated(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        replaced_by: &ApiKeyId,
        valid_until: OffsetDateTime,
    ) -> Result<bool>;

    /// Apply a batch of last-used timestamps (unknown ids are ignored).
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn record_usage(&self, usage: &[ApiKeyUsage]) -> Result<()>;
}
