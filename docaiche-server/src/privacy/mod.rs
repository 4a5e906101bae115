//! Data-subject requests over HTTP (GDPR Art. 15, 17, 20; CCPA), carried
//! out by `docaiche_compliance::privacy::SubjectRightsService`:
//!
//! | route | permission | what |
//! |---|---|---|
//! | `POST /v1/privacy/export` | `privacy:export` | everything held about a subject, as one JSON bundle |
//! | `POST /v1/privacy/erase` | `privacy:erase` | erase a subject; a pseudonymised tombstone stays on the audit trail |
//! | `GET /v1/privacy/requests` | `privacy:export` or `privacy:erase` | the tenant's requests (the DPO's queue), a page at a time (`after`, `limit`) |
//! | `GET /v1/privacy/requests/{id}` | `privacy:export` or `privacy:erase` | one request: status, deadline, failure |
//!
//! Both `POST` bodies name the subject by principal id or by the e-mail of
//! their password account (exactly one), optionally the tenant (default:
//! the caller's; another tenant needs `tenants:cross`) and the regulation
//! whose deadline applies (`gdpr`, the default, 30 days; `ccpa`, 45 days):
//!
//! ```json
//! {"email": "alice@example.com", "regulation": "gdpr"}
//! ```
//!
//! The service checks the permission on the request's tenant itself (the
//! route guard only checks it is held at all), records every request with
//! its deadline (in the `[store]` database), and audits every step naming
//! the subject by a keyed pseudonym. The pseudonym key is the secret
//! `privacy/pseudonym-key`; without it, a key derived from the audit
//! checkpoint key `audit/checkpoint-key`; in development without either, a
//! key generated under `<data_dir>/keys` when no secret source is
//! configured, else an ephemeral one (production refuses to start).
//!
//! Erasure first revokes the subject on the token revocation store
//! (`[revocation]`): every access token issued to them up to the erasure
//! is refused from then on, on every instance sharing that store (Redis
//! for several instances), so no credential of theirs can create anything
//! while the rest runs. It then deletes the subject's documents, password
//! account (which ends their refresh tokens: a refresh re-reads the
//! account) and API key records (the library revokes the keys, then
//! deletes their records; both through the server's API key service, so
//! the keys stop working at once on this instance and, with
//! `[revocation] announce_api_keys = "redis"`, on every other), destroys
//! their data key (crypto-shredding), looks once more for keys stored
//! meanwhile, and replaces them by their pseudonym in the request records.
//! A legal hold covering the subject refuses it (409).

use std::sync::Arc;

use async_trait::async_trait;
use docaiche_auth::api_key::ApiKeyService;
use docaiche_compliance::privacy::{
    CryptoShredder, PrivacyRequestStore, SubjectAuditSource, SubjectRightsService, event_concerns,
};
use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyUsage};
use docaiche_core::audit::AuditEvent;
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{
    AccountStore, ApiKeyId, ApiKeyStore, AuthMethod, Error, Permission, Principal, PrincipalId,
    SecretBytes, TenantId,
};
use docaiche_store::encryption::EncryptedDocumentStore;
use time::OffsetDateTime;

use crate::audit::{AuditTrail, ReadBack};
use crate::config::{Config, Environment};
use crate::state::{AppState, Backends};
use crate::wiring::{Secrets, StorePool};

/// The secret keying the pseudonyms.
pub(crate) const PSEUDONYM_SECRET: &str = "privacy/pseudonym-key";

/// The secrets the privacy routes read through the chain (the `env`
/// source snapshots their variables too).
pub(crate) const SECRET_NAMES: &[&str] = &[PSEUDONYM_SECRET];

/// The label deriving the pseudonym key from the audit checkpoint key.
const DERIVATION_LABEL: &str = "docaiche/privacy-pseudonym/v1";

/// Most audit records read back for one export.
const MAX_SCANNED: usize = 1_000_000;

/// Records read back per page.
const SCAN_PAGE: usize = 5_000;

/// The privacy services of the server.
#[derive(Debug)]
pub(crate) struct PrivacyServices {
    /// The library service.
    pub(crate) service: SubjectRightsService,
    /// The service's request store (the `privacy_requests` retention
    /// purges it).
    pub(crate) requests: Arc<dyn PrivacyRequestStore>,
    /// Password accounts, for subjects named by e-mail.
    pub(crate) accounts: Arc<dyn AccountStore>,
}

impl PrivacyServices {
    /// The services over the backends of `config`, for `state`: its
    /// encrypted document store (data keys are shredded on erasure), its
    /// legal holds (a hold on a subject refuses their erasure) and its API
    /// key service (revocations and deletions take effect at once).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for a missing or short pseudonym key in
    /// production; the store's error when its tables cannot be migrated.
    pub(crate) async fn open(
        config: &Config,
        backends: &Backends,
        state: &AppState,
    ) -> Result<Self, Error> {
        let documents = Arc::clone(&state.documents);
        let stores = &backends.stores;
        let key = pseudonym_key(config, &backends.secrets).await?;
        let requests = request_store(&stores.sql).await?;
        let mut service = SubjectRightsService::new(
            Arc::clone(&documents) as Arc<dyn docaiche_core::DocumentStore>,
            Arc::new(RevokingKeyStore {
                store: Arc::clone(&stores.api_keys),
                service: Arc::clone(&state.auth.api_keys),
            }),
            Arc::clone(&requests),
            backends.audit.sink(),
            Arc::new(docaiche_core::SystemClock::new()),
            &key,
        )?
        .with_shredder(Arc::new(StoreShredder(documents)))
        .with_legal_holds(Arc::clone(&state.compliance.holds))
        .with_accounts(Arc::clone(&stores.accounts))
        .with_revocations(
            Arc::clone(&state.auth.stores.revocations),
            SUBJECT_REVOCATION_KEPT,
        );
        if !matches!(backends.audit.source, ReadBack::None) {
            service = service.with_audit_source(Arc::new(TrailSource(backends.audit.clone())));
        }
        Ok(Self {
            service,
            requests,
            accounts: Arc::clone(&stores.accounts),
        })
    }
}

/// How long an erased subject's revocation is remembered: past the
/// longest life of anything issued to them before (a session lasts at most
/// 30 days; access tokens, ours or an external issuer's, far less).
const SUBJECT_REVOCATION_KEPT: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 3600);

/// Where the privacy requests are kept: beside the other tables of the
/// `[store]` database.
async fn request_store(pool: &StorePool) -> Result<Arc<dyn PrivacyRequestStore>, Error> {
    use docaiche_compliance::privacy::sql;
    Ok(match pool {
        StorePool::Sqlite(store) => {
            Arc::new(sql::SqliteComplianceStore::new(store.pool().clone()).await?)
        }
        #[cfg(feature = "postgres")]
        StorePool::Postgres(pool) => Arc::new(sql::PgComplianceStore::new(pool.clone()).await?),
    })
}

/// The pseudonym key: the secret `privacy/pseudonym-key`; else derived
/// from the audit checkpoint key; in production without either, a
/// refusal; in development, a key generated under `<data_dir>/keys` when
/// no secret source is configured (like the other development secrets),
/// else an ephemeral one.
async fn pseudonym_key(config: &Config, secrets: &Secrets) -> Result<SecretBytes, Error> {
    if let Some(chain) = secrets.chain() {
        if let Some(found) = chain.get(PSEUDONYM_SECRET).await? {
            if found.value.len() < 32 {
                return Err(Error::misconfigured(
                    "privacy",
                    format!("the secret `{PSEUDONYM_SECRET}` must be at least 32 bytes"),
                ));
            }
            return Ok(found.value);
        }
        let checkpoint = docaiche_compliance::audit::CheckpointKey::DEFAULT_SECRET;
        if let Some(found) = chain.get(checkpoint).await? {
            return Ok(crate::audit::derived_key(&found.value, DERIVATION_LABEL));
        }
    }
    if config.environment == Environment::Production {
        let variable = docaiche_store::EnvSecretProvider::new()
            .variable_name(PSEUDONYM_SECRET)
            .unwrap_or_else(|_| PSEUDONYM_SECRET.to_owned());
        return Err(Error::misconfigured(
            "privacy",
            format!(
                "the secret `{PSEUDONYM_SECRET}` (at least 32 random bytes), or the audit \
                 checkpoint key it can be derived from, is in none of the configured secret \
                 sources; set {variable}"
            ),
        ));
    }
    if secrets.chain().is_some() {
        // Sources are configured but lack the key: nothing is written
        // beside them.
        tracing::warn!(
            secret = PSEUDONYM_SECRET,
            "pseudonym key not configured: using an ephemeral key for this process; \
             pseudonyms will differ after a restart (development only)"
        );
        let key = crate::keys::random_key()
            .map_err(|e| Error::internal_with("cannot generate an ephemeral pseudonym key", e))?;
        return Ok(SecretBytes::from(key.to_vec()));
    }
    let path = config
        .storage
        .data_dir
        .join("keys")
        .join("privacy-pseudonym-key");
    let (key, created) =
        crate::keys::generated_secret(&path, || crate::keys::random_key().map(|k| k.to_vec()))
            .map_err(|e| {
                Error::internal_with(
                    format!("cannot create the development secret {}", path.display()),
                    e,
                )
            })?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "using a generated development pseudonym key; set the secret \
             `privacy/pseudonym-key` before serving real users"
        );
    }
    Ok(key)
}

/// The API key store of the service, revoking and deleting through the
/// server's API key service so that an erased subject's key stops working
/// at once (the service caches verified keys).
#[derive(Debug)]
struct RevokingKeyStore {
    store: Arc<dyn ApiKeyStore>,
    service: Arc<ApiKeyService>,
}

#[async_trait]
impl ApiKeyStore for RevokingKeyStore {
    async fn insert(&self, record: &ApiKeyRecord) -> docaiche_core::Result<()> {
        self.store.insert(record).await
    }

    async fn find_by_lookup(
        &self,
        lookup: &ApiKeyLookup,
    ) -> docaiche_core::Result<Option<ApiKeyRecord>> {
        self.store.find_by_lookup(lookup).await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
    ) -> docaiche_core::Result<Option<ApiKeyRecord>> {
        self.store.get(tenant, id).await
    }

    async fn list(
        &self,
        tenant: &TenantId,
        page: &PageRequest,
    ) -> docaiche_core::Result<Page<ApiKeyRecord>> {
        self.store.list(tenant, page).await
    }

    async fn revoke(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        _at: OffsetDateTime,
    ) -> docaiche_core::Result<bool> {
        found(self.service.revoke(&eraser(tenant)?, tenant, id).await)
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> docaiche_core::Result<bool> {
        found(self.service.delete(&eraser(tenant)?, tenant, id).await)
    }

    async fn mark_rotated(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        successor: &ApiKeyId,
        old_expires_at: OffsetDateTime,
    ) -> docaiche_core::Result<bool> {
        self.store
            .mark_rotated(tenant, id, successor, old_expires_at)
            .await
    }

    async fn record_usage(&self, usage: &[ApiKeyUsage]) -> docaiche_core::Result<()> {
        self.store.record_usage(usage).await
    }
}

/// The internal principal the erasure acts through (audited as
/// `api_key.revoke` and `api_key.delete` by it), in the request's tenant
/// only.
fn eraser(tenant: &TenantId) -> docaiche_core::Result<Principal> {
    Ok(Principal::new(
        PrincipalId::new("privacy-erasure")?,
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions([Permission::KEYS_MANAGE].into_iter().collect()))
}

/// The store contract's answer for an API key service call: `NotFound` is
/// `false` (the key is not, or no longer, in the tenant).
fn found(result: docaiche_core::Result<()>) -> docaiche_core::Result<bool> {
    match result {
        Ok(()) => Ok(true),
        Err(Error::NotFound { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Crypto-shredding through the encrypted document store.
#[derive(Debug)]
struct StoreShredder(Arc<EncryptedDocumentStore>);

#[async_trait]
impl CryptoShredder for StoreShredder {
    async fn destroy_subject_key(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> docaiche_core::Result<bool> {
        self.0.destroy_subject_key(tenant, subject).await
    }
}

/// The audit entries about a subject, read back from the server's trail
/// (the file trail or the `audit_trail` table), bounded by
/// [`MAX_SCANNED`] records.
#[derive(Debug)]
struct TrailSource(AuditTrail);

#[async_trait]
impl SubjectAuditSource for TrailSource {
    async fn events_about(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        limit: usize,
    ) -> docaiche_core::Result<Vec<AuditEvent>> {
        // What is still buffered belongs in the export too.
        docaiche_core::AuditSink::flush(&self.0.buffer).await?;
        let mut found = Vec::new();
        let mut after = 0;
        let mut scanned = 0;
        loop {
            let Some((items, next)) =
                crate::audit::read_page(&self.0.source, tenant, after, SCAN_PAGE).await?
            else {
                return Ok(found);
            };
            scanned += items.len();
            found.extend(
                items
                    .into_iter()
                    .map(|(_, event)| event)
                    .filter(|event| event_concerns(event, subject)),
            );
            found.truncate(limit);
            match next {
                Some(next) if found.len() < limit && scanned < MAX_SCANNED => after = next,
                Some(_) if scanned >= MAX_SCANNED => {
                    tracing::warn!(
                        scanned,
                        "audit read-back for a subject export stopped at its bound"
                    );
                    return Ok(found);
                }
                _ => return Ok(found),
            }
        }
    }
}

#[cfg(test)]
mod tests;
