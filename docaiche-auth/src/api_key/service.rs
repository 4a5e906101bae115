//! [`ApiKeyService`]: create, verify, rotate, revoke and list API keys.

use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyStore};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::invalidation::{Invalidation, InvalidationBus};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::secret::SecretString;
use docaiche_core::{
    ApiKeyId, AuditSink, AuthFailure, AuthMethod, Authenticator, Clock, Credential, Error, Grant,
    Permission, PermissionCatalog, PermissionSet, Principal, PrincipalId, RequestContext, Result,
    SystemClock, TenantId,
};
use serde::Deserialize;
use time::OffsetDateTime;

use super::cache::TtlCache;
use super::format::{ApiKeyFormat, DEFAULT_PREFIX, MAX_KEY_LEN};
use super::pepper::Peppers;
use super::usage::UsageRecorder;

/// Settings of an [`ApiKeyService`], deserializable from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ApiKeyConfig {
    /// Type prefix of generated keys (default `dcx_`).
    pub prefix: String,
    /// How long a verified key is trusted without reading the store, in
    /// seconds (default 30). This bounds how long a revocation made on
    /// *another* instance takes to apply here; revocations through this
    /// service apply at once. 0 disables the cache.
    pub cache_ttl_secs: u64,
    /// How many verified keys are cached (default 10 000).
    pub cache_capacity: usize,
    /// How often last-used timestamps are written, in seconds (default 10).
    pub usage_flush_interval_secs: u64,
    /// How many keys' last-used timestamps may wait for a flush (default
    /// 10 000).
    pub usage_capacity: usize,
    /// The longest rotation overlap accepted, in seconds (default 7 days).
    pub max_rotation_overlap_secs: u64,
    /// The longest key name accepted, in characters (default 100).
    pub max_name_len: usize,
}

impl Default for ApiKeyConfig {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            cache_ttl_secs: 30,
            cache_capacity: 10_000,
            usage_flush_interval_secs: 10,
            usage_capacity: 10_000,
            max_rotation_overlap_secs: 7 * 24 * 3600,
            max_name_len: 100,
        }
    }
}

/// What to create: see [`ApiKeyService::create`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewApiKey {
    /// The tenant the key belongs to.
    pub tenant: TenantId,
    /// Human label.
    pub name: String,
    /// The permissions the key carries: a subset of the creator's, at most
    /// [`MAX_SCOPES`](docaiche_core::MAX_SCOPES), each known to the
    /// service's [`PermissionCatalog`].
    pub scopes: PermissionSet,
    /// When the key stops working, if ever.
    pub expires_at: Option<OffsetDateTime>,
    /// The principal the key acts as; the creator when `None`.
    pub principal: Option<PrincipalId>,
}

impl NewApiKey {
    /// A key named `name` in `tenant`, with no scopes and no expiry.
    pub fn new(tenant: TenantId, name: impl Into<String>) -> Self {
        Self {
            tenant,
            name: name.into(),
            scopes: PermissionSet::new(),
            expires_at: None,
            principal: None,
        }
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

    /// Make the key act as `principal` (a service account) instead of its
    /// creator.
    #[must_use]
    pub fn acting_as(mut self, principal: PrincipalId) -> Self {
        self.principal = Some(principal);
        self
    }
}

/// A key just created: the only time the key itself is available.
#[derive(Debug)]
#[non_exhaustive]
pub struct CreatedApiKey {
    /// The key, to show the user once. Never stored.
    pub key: SecretString,
    /// The stored record (hash only).
    pub record: ApiKeyRecord,
}

/// A verified key: its record and the principal it authenticates as.
#[derive(Debug)]
#[non_exhaustive]
pub struct VerifiedApiKey {
    /// The key's record as last read from the store.
    pub record: ApiKeyRecord,
    /// The principal, with the key's scopes as its permissions; shared, so
    /// that every request authenticated from the cache uses it uncopied.
    pub principal: Arc<Principal>,
}

/// API keys: generation, keyed-hash storage, verification with a short
/// cache, rotation with an overlap window, revocation, deletion, listing, and batched
/// last-used tracking. Implements [`Authenticator`] for
/// [`Credential::ApiKey`].
///
/// Scopes are checked against a [`PermissionCatalog`] (default: the
/// built-in permissions; [`Self::with_catalog`] to add an embedder's own):
/// at most [`MAX_SCOPES`](docaiche_core::MAX_SCOPES) grants, each a known
/// permission, a wildcard over a known resource (`documents:*`) or `*:*`,
/// and never more than the creator holds.
///
/// Management methods take the calling [`Principal`] and check
/// `keys:manage` on the target tenant ([`Principal::authorize_tenant`]), so
/// a key of tenant A cannot list, rotate, revoke or delete tenant B's keys without
/// the explicit cross-tenant permission.
pub struct ApiKeyService {
    store: Arc<dyn ApiKeyStore>,
    peppers: Peppers,
    format: ApiKeyFormat,
    clock: Arc<dyn Clock>,
    audit: Option<Arc<dyn AuditSink>>,
    config: ApiKeyConfig,
    cache: TtlCache<Arc<VerifiedApiKey>>,
    usage: UsageRecorder,
    invalidations: Option<Arc<dyn InvalidationBus>>,
    catalog: PermissionCatalog,
}

/// The [`InvalidationBus`] channel on which an [`ApiKeyService`] announces
/// the lookup id of a key that was revoked, deleted or rotated.
pub const INVALIDATION_CHANNEL: &str = "api_keys";

impl ApiKeyService {
    /// A service over `store`, hashing with `peppers`, with the default
    /// [`ApiKeyConfig`] and the system clock.
    #[must_use]
    pub fn new(store: Arc<dyn ApiKeyStore>, peppers: Peppers) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
        let config = ApiKeyConfig::default();
        Self {
            cache: TtlCache::new(
                Duration::from_secs(config.cache_ttl_secs),
                config.cache_capacity,
                Arc::clone(&clock),
            ),
            usage: UsageRecorder::new(config.usage_capacity),
            store,
            peppers,
            format: ApiKeyFormat::default(),
            clock,
            audit: None,
            config,
            invalidations: None,
            catalog: PermissionCatalog::builtin(),
        }
    }

    /// Check scopes against `catalog` instead of the built-in permissions
    /// (an embedder whose roles grant permissions of its own).
    #[must_use]
    pub fn with_catalog(mut self, catalog: PermissionCatalog) -> Self {
        self.catalog = catalog;
        self
    }

    /// The catalogue scopes are checked against.
    #[must_use]
    pub const fn catalog(&self) -> &PermissionCatalog {
        &self.catalog
    }

    /// Use `config`.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for an invalid prefix.
    pub fn with_config(mut self, config: ApiKeyConfig) -> Result<Self> {
        self.format = ApiKeyFormat::new(&config.prefix)?;
        self.config = config;
        self.rebuild();
        Ok(self)
    }

    /// Read time from `clock` (a `ManualClock` in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self.rebuild();
        self
    }

    /// Record creations, rotations, revocations and refused creations on
    /// `sink`.
    #[must_use]
    pub fn with_audit(mut self, sink: Arc<dyn AuditSink>) -> Self {
        self.audit = Some(sink);
        self
    }

    /// Announce every revocation, deletion and rotation on `bus`, so that
    /// other instances drop the key from their caches at once rather than
    /// when their cache TTL ends. The instances listen with
    /// [`Self::spawn_invalidation_listener`].
    ///
    /// Only the key's lookup id travels on the bus: its public part, which
    /// verifies nothing on its own.
    #[must_use]
    pub fn with_invalidations(mut self, bus: Arc<dyn InvalidationBus>) -> Self {
        self.invalidations = Some(bus);
        self
    }

    fn rebuild(&mut self) {
        self.cache = TtlCache::new(
            Duration::from_secs(self.config.cache_ttl_secs),
            self.config.cache_capacity,
            Arc::clone(&self.clock),
        );
        self.usage = UsageRecorder::new(self.config.usage_capacity);
    }

    /// The key format (prefix) in use.
    #[must_use]
    pub const fn format(&self) -> &ApiKeyFormat {
        &self.format
    }

    /// Create a key in `request.tenant` for `creator`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] if `creator` lacks `keys:manage` on the tenant
    /// or asks for a scope it does not hold itself (scope escalation);
    /// [`Error::InvalidInput`] for an empty or overlong name, an expiry in
    /// the past, or scopes that are more than
    /// [`MAX_SCOPES`](docaiche_core::MAX_SCOPES) or not in the catalogue
    /// (a field error at `/scopes`); the store's error otherwise.
    pub async fn create(&self, creator: &Principal, request: NewApiKey) -> Result<CreatedApiKey> {
        creator.authorize_tenant(&request.tenant, &Permission::KEYS_MANAGE)?;
        self.catalog.check_scopes(&request.scopes, "/scopes")?;
        if let Err(error) = require_subset(creator, &request.scopes) {
            self.audit(
                creator,
                &request.tenant,
                "api_key.create",
                AuditOutcome::Denied,
                None,
                Some("scope_escalation"),
            )
            .await;
            return Err(error);
        }
        let name = validate_name(&request.name, self.config.max_name_len)?;
        let now = self.clock.now();
        if request.expires_at.is_some_and(|at| at <= now) {
            return Err(Error::invalid_input("api key expiry must be in the future"));
        }
        let principal = request.principal.unwrap_or_else(|| creator.id.clone());
        let created = self
            .insert_new(
                &request.tenant,
                principal,
                name,
                request.scopes,
                request.expires_at,
                now,
            )
            .await?;
        self.audit(
            creator,
            &request.tenant,
            "api_key.create",
            AuditOutcome::Success,
            Some(created.record.id),
            None,
        )
        .await;
        Ok(created)
    }

    async fn insert_new(
        &self,
        tenant: &TenantId,
        principal: PrincipalId,
        name: String,
        scopes: PermissionSet,
        expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<CreatedApiKey> {
        // A lookup collision (71 random bits) is astronomically unlikely;
        // retry a few times rather than fail on one.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (lookup, key) = self.format.generate()?;
            let (version, hash) = self.peppers.hash_current(key.expose_secret());
            let mut record = ApiKeyRecord::new(
                ApiKeyId::new(),
                tenant.clone(),
                principal.clone(),
                lookup,
                now,
            )
            .with_hash(version, hash)
            .with_name(name.clone())
            .with_scopes(scopes.clone());
            record.expires_at = expires_at;
            match self.store.insert(&record).await {
                Ok(()) => return Ok(CreatedApiKey { key, record }),
                Err(Error::Conflict { .. }) if attempts < 3 => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Verify a presented key. The hot path: shape and checksum first (no
    /// I/O), then the cache, then the store.
    ///
    /// A cached key still has its hash compared (HMAC-SHA-256, constant
    /// time) and its expiry checked on every call; only the store read is
    /// skipped.
    ///
    /// An unknown lookup id is answered without computing the HMAC, so it
    /// is a little faster than a known id with a wrong secret: lookup ids
    /// are public parts of keys (71 random bits), so this reveals nothing
    /// an attacker could use to guess a secret.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] with `Malformed` (shape or checksum,
    /// without a store call), `BadCredential` (unknown lookup or hash
    /// mismatch), `Revoked` or `Expired`; the store's `Unavailable`.
    pub async fn verify(&self, raw: &str) -> Result<Arc<VerifiedApiKey>> {
        if raw.len() > MAX_KEY_LEN {
            return Err(Error::unauthenticated(AuthFailure::Malformed));
        }
        let parsed = self.format.parse(raw)?;
        let now = self.clock.now();
        if let Some(verified) = self.cache.get(parsed.lookup()) {
            return self.accept_cached(raw, verified, now);
        }

        let generation = self.cache.generation();
        let lookup = ApiKeyLookup::new(parsed.lookup())?;
        let Some(record) = self.store.find_by_lookup(&lookup).await? else {
            return Err(Error::unauthenticated(AuthFailure::BadCredential));
        };
        // Constant-time comparison before anything of the record (its
        // tenant above all) is trusted.
        if record.lookup != lookup || !self.peppers.verify(record.hash_version, raw, &record.hash) {
            return Err(Error::unauthenticated(AuthFailure::BadCredential));
        }
        check_usable(&record, now)?;
        let mut principal = Principal::new(
            record.principal.clone(),
            record.tenant.clone(),
            AuthMethod::ApiKey { key_id: record.id },
        )
        .with_permissions(record.scopes.clone());
        principal.expires_at = record.expires_at;
        self.usage.record(&record.tenant, record.id, now);
        let verified = Arc::new(VerifiedApiKey {
            record,
            principal: Arc::new(principal),
        });
        self.cache
            .insert(parsed.lookup(), Arc::clone(&verified), generation);
        Ok(verified)
    }

    /// [`ApiKeyService::verify`] when it needs no store read (a malformed
    /// key, or one in the cache): `None` otherwise.
    fn verify_now(&self, raw: &str) -> Option<Result<Arc<VerifiedApiKey>>> {
        if raw.len() > MAX_KEY_LEN {
            return Some(Err(Error::unauthenticated(AuthFailure::Malformed)));
        }
        let parsed = match self.format.parse(raw) {
            Ok(parsed) => parsed,
            Err(error) => return Some(Err(error)),
        };
        let now = self.clock.now();
        let verified = self.cache.get(parsed.lookup())?;
        Some(self.accept_cached(raw, verified, now))
    }

    /// A cached key: its hash is compared again (constant time) and its
    /// expiry and revocation checked; only the store read is skipped.
    fn accept_cached(
        &self,
        raw: &str,
        verified: Arc<VerifiedApiKey>,
        now: OffsetDateTime,
    ) -> Result<Arc<VerifiedApiKey>> {
        let record = &verified.record;
        if !self.peppers.verify(record.hash_version, raw, &record.hash) {
            return Err(Error::unauthenticated(AuthFailure::BadCredential));
        }
        check_usable(record, now)?;
        self.usage.record(&record.tenant, record.id, now);
        Ok(verified)
    }

    /// The keys of `tenant`, in creation order.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `keys:manage` on `tenant`; the store's
    /// error otherwise.
    pub async fn list(
        &self,
        caller: &Principal,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> Result<Page<ApiKeyRecord>> {
        caller.authorize_tenant(tenant, &Permission::KEYS_MANAGE)?;
        self.store.list(tenant, page).await
    }

    /// Key `id` of `tenant`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `keys:manage` on `tenant`;
    /// [`Error::NotFound`] if the tenant has no such key; the store's error.
    pub async fn get(
        &self,
        caller: &Principal,
        tenant: &TenantId,
        id: &ApiKeyId,
    ) -> Result<ApiKeyRecord> {
        caller.authorize_tenant(tenant, &Permission::KEYS_MANAGE)?;
        self.store
            .get(tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("api_key"))
    }

    /// Revoke key `id` of `tenant`. Takes effect at once for every request
    /// served by this service (the cache entry is dropped); other instances
    /// stop accepting it within their cache TTL, or at once with an
    /// [`InvalidationBus`] ([`Self::with_invalidations`]).
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `keys:manage` on `tenant`;
    /// [`Error::NotFound`] if the tenant has no such key; the store's error.
    pub async fn revoke(&self, caller: &Principal, tenant: &TenantId, id: &ApiKeyId) -> Result<()> {
        caller.authorize_tenant(tenant, &Permission::KEYS_MANAGE)?;
        let record = self
            .store
            .get(tenant, id)
            .await?
            .ok_or(Error::not_found("api_key"))?;
        // Invalidate before and after the write: a verification racing the
        // revocation can then never re-cache the old state.
        self.cache.invalidate(record.lookup.as_str());
        let found = self.store.revoke(tenant, id, self.clock.now()).await?;
        self.cache.invalidate(record.lookup.as_str());
        self.announce(&record.lookup).await;
        if !found {
            return Err(Error::not_found("api_key"));
        }
        self.audit(
            caller,
            tenant,
            "api_key.revoke",
            AuditOutcome::Success,
            Some(*id),
            None,
        )
        .await;
        Ok(())
    }

    /// Delete key `id` of `tenant` and its record (name, principal, usage)
    /// from the store: for erasing personal data, where [`Self::revoke`]
    /// would keep the record. Takes effect at once for every request served
    /// by this service (the cache entry is dropped); other instances stop
    /// accepting it within their cache TTL, or at once with an
    /// [`InvalidationBus`] ([`Self::with_invalidations`]). Audited as
    /// `api_key.delete`.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `keys:manage` on `tenant`;
    /// [`Error::NotFound`] if the tenant has no such key (so also when it
    /// was already deleted); the store's error.
    pub async fn delete(&self, caller: &Principal, tenant: &TenantId, id: &ApiKeyId) -> Result<()> {
        caller.authorize_tenant(tenant, &Permission::KEYS_MANAGE)?;
        let record = self
            .store
            .get(tenant, id)
            .await?
            .ok_or(Error::not_found("api_key"))?;
        // Invalidate before and after the write, as `revoke` does: a
        // verification racing the deletion can never re-cache the key.
        self.cache.invalidate(record.lookup.as_str());
        let found = self.store.delete(tenant, id).await?;
        self.cache.invalidate(record.lookup.as_str());
        self.announce(&record.lookup).await;
        if !found {
            return Err(Error::not_found("api_key"));
        }
        self.audit(
            caller,
            tenant,
            "api_key.delete",
            AuditOutcome::Success,
            Some(*id),
            None,
        )
        .await;
        Ok(())
    }

    /// Replace key `id` of `tenant` with a new key of the same name, scopes
    /// and lifetime. The old key keeps working for `overlap` (so clients
    /// can be redeployed), then stops.
    ///
    /// # Errors
    /// [`Error::Forbidden`] without `keys:manage` on `tenant`, or if the
    /// key carries scopes the caller does not hold; [`Error::NotFound`];
    /// [`Error::Conflict`] if the key is revoked, expired or already
    /// rotated, or carries scopes a new key could not (stored by a version
    /// that did not check them); [`Error::InvalidInput`] if `overlap`
    /// exceeds the configured maximum.
    pub async fn rotate(
        &self,
        caller: &Principal,
        tenant: &TenantId,
        id: &ApiKeyId,
        overlap: Duration,
    ) -> Result<CreatedApiKey> {
        caller.authorize_tenant(tenant, &Permission::KEYS_MANAGE)?;
        if overlap > Duration::from_secs(self.config.max_rotation_overlap_secs) {
            return Err(Error::invalid_input(
                "rotation overlap exceeds the configured maximum",
            ));
        }
        let old = self
            .store
            .get(tenant, id)
            .await?
            .ok_or(Error::not_found("api_key"))?;
        require_subset(caller, &old.scopes)?;
        if self.catalog.check_scopes(&old.scopes, "/scopes").is_err() {
            return Err(Error::conflict(
                "this key's scopes are not valid for a new key; create one instead",
            ));
        }
        let now = self.clock.now();
        if !old.is_usable_at(now) {
            return Err(Error::conflict(
                "a revoked or expired api key cannot be rotated",
            ));
        }
        if old.replaced_by.is_some() {
            return Err(Error::conflict("api key was already rotated"));
        }
        let lifetime = old.expires_at.map(|at| at - old.created_at);
        let created = self
            .insert_new(
                tenant,
                old.principal.clone(),
                old.name.clone(),
                old.scopes.clone(),
                lifetime.map(|l| now + l),
                now,
            )
            .await?;
        let overlap = time::Duration::try_from(overlap)
            .map_err(|_| Error::invalid_input("rotation overlap is too long"))?;
        self.cache.invalidate(old.lookup.as_str());
        self.store
            .mark_rotated(tenant, id, &created.record.id, now + overlap)
            .await?;
        self.cache.invalidate(old.lookup.as_str());
        self.announce(&old.lookup).await;
        self.audit(
            caller,
            tenant,
            "api_key.rotate",
            AuditOutcome::Success,
            Some(*id),
            None,
        )
        .await;
        Ok(created)
    }

    /// Write the pending last-used timestamps in one batch. Returns how
    /// many were written. Called by the [`UsageFlusher`]; call it at
    /// shutdown too.
    ///
    /// # Errors
    /// The store's error; the batch is kept for the next flush.
    pub async fn flush_usage(&self) -> Result<usize> {
        let batch = self.usage.take();
        if batch.is_empty() {
            return Ok(0);
        }
        match self.store.record_usage(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(e) => {
                self.usage.restore(batch);
                Err(e)
            }
        }
    }

    /// Start the background task that calls [`ApiKeyService::flush_usage`]
    /// every `usage_flush_interval_secs` on the service's clock. It stops
    /// when the returned handle is dropped or the service is dropped.
    /// Needs a tokio runtime.
    #[must_use = "the flusher stops when its handle is dropped"]
    pub fn spawn_usage_flusher(self: &Arc<Self>) -> UsageFlusher {
        let weak: Weak<Self> = Arc::downgrade(self);
        let clock = Arc::clone(&self.clock);
        let interval = Duration::from_secs(self.config.usage_flush_interval_secs.max(1));
        let task = tokio::spawn(async move {
            loop {
                clock.sleep(interval).await;
                let Some(service) = weak.upgrade() else { break };
                if let Err(error) = service.flush_usage().await {
                    tracing::warn!(error = %error.log_chain(), "api key last-used flush failed");
                }
            }
        });
        UsageFlusher { task }
    }

    /// Start the background task that drops keys from this service's
    /// cache as other instances announce them on the bus given to
    /// [`Self::with_invalidations`] (and clears the cache whenever the bus
    /// says messages may have been missed). It stops when the returned
    /// handle is dropped or the service is dropped. `None` without a bus.
    /// Needs a tokio runtime.
    ///
    /// While the bus is down, a key revoked elsewhere is still refused
    /// here once this cache's TTL (`cache_ttl_secs`) ends: the bus
    /// narrows that window, it does not replace it.
    #[must_use = "the listener stops when its handle is dropped"]
    pub fn spawn_invalidation_listener(self: &Arc<Self>) -> Option<InvalidationListener> {
        use futures_util::StreamExt as _;

        let bus = self.invalidations.as_ref()?;
        let mut stale = match bus.subscribe(INVALIDATION_CHANNEL) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::error!(error = %error.log_chain(), "api key invalidations not subscribed");
                return None;
            }
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let (live, subscribed) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Some(message) = stale.next().await {
                let Some(service) = weak.upgrade() else { break };
                match message {
                    Invalidation::Key(lookup) => service.cache.invalidate(&lookup),
                    // `Invalidation` may grow: anything else is a gap too.
                    _ => {
                        service.cache.clear();
                        live.send_replace(true);
                    }
                }
            }
        });
        Some(InvalidationListener { task, subscribed })
    }

    /// Tell the other instances that the key under `lookup` changed.
    async fn announce(&self, lookup: &ApiKeyLookup) {
        let Some(bus) = &self.invalidations else {
            return;
        };
        if let Err(error) = bus.publish(INVALIDATION_CHANNEL, lookup.as_str()).await {
            // The change is in the store; the other instances now learn it
            // when their cache entries expire.
            tracing::warn!(
                error = %error.log_chain(),
                "api key change not announced; other instances drop it at their cache TTL"
            );
        }
    }

    async fn audit(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        action: &str,
        outcome: AuditOutcome,
        key: Option<ApiKeyId>,
        reason: Option<&str>,
    ) {
        let Some(sink) = &self.audit else { return };
        let mut event = AuditEvent::new(action, outcome, self.clock.now(), &RequestContext::new())
            .by(tenant.clone(), Some(actor.id.clone()));
        if let Some(key) = key {
            event = event.on(AuditResource::new("api_key", key.to_string()));
        }
        if let Some(reason) = reason {
            event = event.because(reason);
        }
        if let Err(error) = sink.record(&event).await {
            tracing::warn!(action, error = %error.log_chain(), "audit event not recorded");
        }
    }
}

impl fmt::Debug for ApiKeyService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyService")
            .field("store", &self.store)
            .field("peppers", &self.peppers)
            .field("format", &self.format)
            .field("config", &self.config)
            .field("cached", &self.cache.len())
            .field("invalidations", &self.invalidations)
            .field("catalog", &self.catalog)
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Authenticator for ApiKeyService {
    async fn authenticate(
        &self,
        credential: &Credential,
        _context: &RequestContext,
    ) -> Result<Principal> {
        match credential {
            Credential::ApiKey(key) => Ok(Principal::clone(
                &self.verify(key.expose_secret()).await?.principal,
            )),
            _ => Err(Error::unauthenticated(AuthFailure::Malformed)),
        }
    }

    fn authenticate_now(
        &self,
        credential: &Credential,
        _context: &RequestContext,
    ) -> Option<Result<Arc<Principal>>> {
        match credential {
            Credential::ApiKey(key) => self
                .verify_now(key.expose_secret())
                .map(|verified| verified.map(|v| Arc::clone(&v.principal))),
            _ => Some(Err(Error::unauthenticated(AuthFailure::Malformed))),
        }
    }
}

/// The background invalidation listener of an [`ApiKeyService`], from
/// [`ApiKeyService::spawn_invalidation_listener`]; stops when dropped.
#[derive(Debug)]
pub struct InvalidationListener {
    task: tokio::task::JoinHandle<()>,
    subscribed: tokio::sync::watch::Receiver<bool>,
}

impl InvalidationListener {
    /// Wait until the subscription is first live: from then on, a key
    /// announced by another instance is dropped here. Returns at once
    /// after that; never returns if the bus is never reached (bound it
    /// with a timeout).
    pub async fn subscribed(&self) {
        let mut subscribed = self.subscribed.clone();
        // An error means the task ended (the service is gone): nothing is
        // cached to go stale then.
        let _ = subscribed.wait_for(|live| *live).await;
    }
}

impl Drop for InvalidationListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The background last-used flusher of an [`ApiKeyService`]; stops when
/// dropped.
#[derive(Debug)]
pub struct UsageFlusher {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for UsageFlusher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn check_usable(record: &ApiKeyRecord, now: OffsetDateTime) -> Result<()> {
    if record.revoked_at.is_some() {
        return Err(Error::unauthenticated(AuthFailure::Revoked));
    }
    if record.expires_at.is_some_and(|at| now >= at) {
        return Err(Error::unauthenticated(AuthFailure::Expired));
    }
    Ok(())
}

fn require_subset(holder: &Principal, scopes: &PermissionSet) -> Result<()> {
    if holder.permissions.contains_all(scopes) {
        return Ok(());
    }
    let missing = scopes.iter().find_map(|g| match g {
        Grant::Exact(p) if !holder.permissions.allows(p) => Some(p.clone()),
        _ => None,
    });
    Err(Error::Forbidden {
        permission: missing,
    })
}

fn validate_name(name: &str, max_chars: usize) -> Result<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > max_chars {
        return Err(Error::invalid_input(format!(
            "api key name must be 1 to {max_chars} characters"
        )));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid_input(
            "api key name must not contain control characters",
        ));
    }
    Ok(trimmed.to_owned())
}
