//! The tenant registry on the request path: [`TenantDirectory`], a short
//! TTL cache over the configured [`TenantStore`], and [`SuspensionCheck`],
//! the service between authentication and the rate limit that refuses every
//! request of a suspended tenant's principals, and hands the rate limit the
//! tenant's overrides (per tenant, and per API key) as a
//! [`QuotaOverride`] extension.
//!
//! # Suspension within seconds, on every instance
//!
//! Every instance reads the tenant's record through its own directory,
//! which keeps it for [`TenantDirectory::DEFAULT_TTL`] (2 s): a suspension
//! made on one instance is in force on that instance at once (the route
//! drops the cached record) and on every other within the TTL, with no bus
//! to configure. The cost is one indexed read per tenant and TTL per
//! instance.
//!
//! A tenant the registry does not hold is active with default settings
//! (tenants predate the registry). Platform principals (`tenants:cross`)
//! pass whatever their own tenant's status, so a suspended platform
//! tenant cannot lock its operators out of `resume`.
//!
//! When the store cannot answer, the last record read (however old) is
//! used; with none, the request is refused with the store's error (503):
//! fail closed, as for every other security decision.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::principal_of;
use docaiche_core::rate_limit::Quota;
use docaiche_core::tenant::{RateLimitOverride, Tenant, TenantStore};
use docaiche_core::{AuthMethod, Error, Permission, Principal, TenantId};
use docaiche_ratelimit::policy::QuotaOverride;
use futures_util::future::{BoxFuture, Either, Ready};
use tokio::time::Instant;
use tower::{Layer, Service};

/// One cached read of the registry.
#[derive(Debug, Clone)]
struct Entry {
    /// When it was read.
    read_at: Instant,
    /// The record (`None`: not registered).
    tenant: Option<Arc<Tenant>>,
}

/// The registry behind a per-instance TTL cache; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct TenantDirectory {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn TenantStore>,
    ttl: Duration,
    max_entries: usize,
    entries: RwLock<HashMap<TenantId, Entry>>,
}

impl TenantDirectory {
    /// How long a record read is trusted: the delay before a change made
    /// on another instance takes effect here.
    pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(2);
    /// Most tenants cached at once; past it, the cache starts over.
    pub(crate) const MAX_ENTRIES: usize = 100_000;

    /// A directory over `store`, with the default TTL.
    pub(crate) fn new(store: Arc<dyn TenantStore>) -> Self {
        Self::with_ttl(store, Self::DEFAULT_TTL)
    }

    /// A directory over `store`, trusting a read for `ttl`.
    pub(crate) fn with_ttl(store: Arc<dyn TenantStore>, ttl: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                ttl,
                max_entries: Self::MAX_ENTRIES,
                entries: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The registry itself (the `/v1/tenants` routes write through it).
    pub(crate) fn store(&self) -> &Arc<dyn TenantStore> {
        &self.inner.store
    }

    /// The cached record of `id` while it is fresh: `Some(None)` for a
    /// tenant known not to be registered, `None` when it must be read.
    pub(crate) fn cached(&self, id: &TenantId) -> Option<Option<Arc<Tenant>>> {
        let entries = self
            .inner
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(id)
            .filter(|e| e.read_at.elapsed() < self.inner.ttl)
            .map(|e| e.tenant.clone())
    }

    /// The record of `id`: cached while fresh, else read (and cached).
    ///
    /// # Errors
    /// The store's, when it cannot answer and nothing was ever read for
    /// `id`.
    pub(crate) async fn lookup(&self, id: &TenantId) -> Result<Option<Arc<Tenant>>, Error> {
        if let Some(hit) = self.cached(id) {
            return Ok(hit);
        }
        match self.inner.store.get(id).await {
            Ok(tenant) => {
                let tenant = tenant.map(Arc::new);
                self.remember(id, tenant.clone());
                Ok(tenant)
            }
            Err(error) => {
                let entries = self
                    .inner
                    .entries
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match entries.get(id) {
                    Some(stale) => {
                        tracing::warn!(
                            tenant = %id,
                            error = %error.log_chain(),
                            "tenant registry unavailable; using the last record read"
                        );
                        Ok(stale.tenant.clone())
                    }
                    None => Err(error),
                }
            }
        }
    }

    /// Forget `id` here, so the next request reads it again (after a
    /// change made through this instance).
    pub(crate) fn invalidate(&self, id: &TenantId) {
        self.inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    fn remember(&self, id: &TenantId, tenant: Option<Arc<Tenant>>) {
        let mut entries = self
            .inner
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.inner.max_entries && !entries.contains_key(id) {
            let ttl = self.inner.ttl;
            entries.retain(|_, e| e.read_at.elapsed() < ttl);
            if entries.len() >= self.inner.max_entries {
                entries.clear();
            }
        }
        entries.insert(
            id.clone(),
            Entry {
                read_at: Instant::now(),
                tenant,
            },
        );
    }
}

/// Refuse storing `size` more bytes for `tenant` when that would break
/// one of its storage quotas (`PATCH /v1/tenants/{tenant}`).
///
/// A check before the write, not a reservation: uploads racing each other
/// can overshoot a quota by what they store at once. A document store that
/// cannot count (`usage` is `None`) leaves quotas unenforced, with a
/// warning.
///
/// # Errors
/// [`Error::TenantQuotaExceeded`] naming `documents` (checked first) or
/// `storage_bytes`; the registry's or the store's error.
pub(crate) async fn check_quotas(
    directory: &TenantDirectory,
    documents: &dyn docaiche_core::DocumentStore,
    tenant: &TenantId,
    size: u64,
) -> Result<(), Error> {
    let Some(record) = directory.lookup(tenant).await? else {
        return Ok(());
    };
    let quotas = record.settings.quotas;
    if quotas.max_documents.is_none() && quotas.max_storage_bytes.is_none() {
        return Ok(());
    }
    let Some(usage) = documents.usage(tenant).await? else {
        tracing::warn!(
            tenant = %tenant,
            "the document store cannot count usage: storage quotas are not enforced"
        );
        return Ok(());
    };
    if let Some(limit) = quotas.max_documents
        && usage.documents.saturating_add(1) > limit
    {
        return Err(Error::TenantQuotaExceeded {
            quota: "documents",
            limit,
        });
    }
    if let Some(limit) = quotas.max_storage_bytes
        && usage.bytes.saturating_add(size) > limit
    {
        return Err(Error::TenantQuotaExceeded {
            quota: "storage_bytes",
            limit,
        });
    }
    Ok(())
}

/// The rate-limit overrides of `tenant`'s settings for a request of
/// `principal` (the per-key one when it authenticated with that key).
fn quota_override(tenant: &Tenant, principal: &Principal) -> Option<QuotaOverride> {
    let settings = &tenant.settings;
    let key = match &principal.auth_method {
        AuthMethod::ApiKey { key_id } => settings.key_rate_limits.get(key_id),
        _ => None,
    };
    if settings.rate_limit.is_none() && key.is_none() {
        return None;
    }
    let quota = |o: &RateLimitOverride| {
        Quota::new(
            o.requests,
            Duration::from_secs(u64::from(o.period_secs.get())),
        )
        .ok()
    };
    Some(QuotaOverride::new(
        settings.rate_limit.as_ref().and_then(quota),
        key.and_then(quota),
    ))
}

/// Serve `request`, with its tenant's rate-limit overrides if any.
fn with_overrides(mut request: Request, tenant: Option<&Tenant>) -> Request {
    if let Some(tenant) = tenant
        && let Some(principal) = principal_of(request.extensions())
        && let Some(overrides) = quota_override(tenant, principal)
    {
        request.extensions_mut().insert(overrides);
    }
    request
}

/// What the check decides for a request, when it can without I/O.
enum Verdict {
    /// Serve it, with the tenant's overrides (its record, if registered).
    Pass(Option<Arc<Tenant>>),
    /// Refuse it: the tenant is suspended.
    Suspended,
    /// Read the registry first.
    Lookup(TenantId),
}

fn verdict(directory: &TenantDirectory, request: &Request) -> Verdict {
    let Some(principal) = principal_of(request.extensions()) else {
        // Only authenticated requests reach this service; without a
        // principal there is no tenant to check.
        return Verdict::Pass(None);
    };
    if principal.has_permission(&Permission::TENANTS_CROSS) {
        return Verdict::Pass(None);
    }
    match directory.cached(&principal.tenant) {
        Some(Some(tenant)) if tenant.is_suspended() => Verdict::Suspended,
        Some(tenant) => Verdict::Pass(tenant),
        None => Verdict::Lookup(principal.tenant.clone()),
    }
}

/// Wraps a service with [`SuspensionCheck`].
#[derive(Debug, Clone)]
pub(crate) struct SuspensionCheckLayer {
    directory: TenantDirectory,
}

impl SuspensionCheckLayer {
    /// Check against `directory`.
    pub(crate) const fn new(directory: TenantDirectory) -> Self {
        Self { directory }
    }
}

impl<S> Layer<S> for SuspensionCheckLayer {
    type Service = SuspensionCheck<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SuspensionCheck {
            inner,
            directory: self.directory.clone(),
        }
    }
}

/// Refuses (403 `tenant-suspended`) every authenticated request whose
/// principal's tenant is suspended, unless the principal holds
/// `tenants:cross`; see the module docs. A cached answer costs no
/// allocation; a registry read boxes the call.
#[derive(Debug, Clone)]
pub(crate) struct SuspensionCheck<S> {
    inner: S,
    directory: TenantDirectory,
}

impl<S> Service<Request> for SuspensionCheck<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<
        Either<S::Future, Ready<Result<Response, Infallible>>>,
        BoxFuture<'static, Result<Response, Infallible>>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match verdict(&self.directory, &request) {
            Verdict::Pass(tenant) => Either::Left(Either::Left(
                self.inner.call(with_overrides(request, tenant.as_deref())),
            )),
            Verdict::Suspended => Either::Left(Either::Right(futures_util::future::ready(Ok(
                Error::TenantSuspended.into_response(),
            )))),
            Verdict::Lookup(tenant) => {
                // The instance driven to readiness goes into the future; a
                // fresh clone stays for the next call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let directory = self.directory.clone();
                Either::Right(Box::pin(async move {
                    match directory.lookup(&tenant).await {
                        Ok(Some(t)) if t.is_suspended() => {
                            Ok(Error::TenantSuspended.into_response())
                        }
                        Ok(tenant) => inner.call(with_overrides(request, tenant.as_deref())).await,
                        Err(error) => Ok(error.into_response()),
                    }
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use docaiche_core::tenant::StatusChange;
    use docaiche_store::memory::MemoryTenantStore;
    use time::OffsetDateTime;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_change_elsewhere_is_seen_once_the_ttl_passes() {
        let store = Arc::new(MemoryTenantStore::new());
        let acme = TenantId::new("acme").expect("id");
        let at = OffsetDateTime::UNIX_EPOCH;
        store
            .create(&Tenant::new(acme.clone(), "Acme", at))
            .await
            .expect("create");
        let here = TenantDirectory::with_ttl(store.clone(), Duration::from_secs(2));
        assert!(
            !here
                .lookup(&acme)
                .await
                .expect("read")
                .expect("registered")
                .is_suspended()
        );
        // Another instance suspends it, straight in the store.
        store
            .set_status(&acme, StatusChange::Suspend { reason: "x" }, at)
            .await
            .expect("suspend");
        let cached = here.cached(&acme).expect("fresh").expect("registered");
        assert!(!cached.is_suspended(), "still the cached record");
        tokio::time::advance(Duration::from_millis(2001)).await;
        assert!(here.cached(&acme).is_none(), "expired");
        assert!(
            here.lookup(&acme)
                .await
                .expect("read")
                .expect("registered")
                .is_suspended()
        );
        // A change through this instance is seen at once.
        store
            .set_status(&acme, StatusChange::Resume, at)
            .await
            .expect("resume");
        here.invalidate(&acme);
        assert!(
            !here
                .lookup(&acme)
                .await
                .expect("read")
                .expect("registered")
                .is_suspended()
        );
        // Unknown tenants are cached as unregistered.
        let unknown = TenantId::new("nobody").expect("id");
        assert!(here.lookup(&unknown).await.expect("read").is_none());
        assert_eq!(here.cached(&unknown).map(|t| t.is_none()), Some(true));
    }
}
