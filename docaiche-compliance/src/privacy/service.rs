//! Carrying out data-subject requests over the core store contracts.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use docaiche_core::account::Account;
use docaiche_core::api_key::ApiKeyRecord;
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource, AuditSink};
use docaiche_core::document::{DocumentMeta, DocumentText};
use docaiche_core::page::PageRequest;
use docaiche_core::revocation::TokenRevocationStore;
use docaiche_core::secret::SecretBytes;
use docaiche_core::{
    AccountStore, ApiKeyId, ApiKeyStore, Clock, DocumentStore, Error, Permission, PermissionSet,
    Principal, PrincipalId, RequestContext, Result, TenantId,
};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use time::OffsetDateTime;
use uuid::Uuid;

use super::request::{PrivacyRequest, PrivacyRequestStore, Regulation, RequestKind, RequestStatus};
use crate::retention::{LegalHoldRegistry, resource};

/// The `format` of every export bundle this version writes.
pub const EXPORT_FORMAT: &str = "docaiche.subject-export.v1";

/// Audit resource kind under which privacy events name the subject (by
/// pseudonym, never in clear).
pub const SUBJECT_RESOURCE: &str = "data_subject";

/// Reads the audit entries about a subject, for exports.
///
/// `docaiche_core::AuditSink` only writes; a trail that can be read back
/// (the audit module's trail, a SIEM query) implements this. An event is
/// "about" a subject when [`event_concerns`] says so.
#[async_trait]
pub trait SubjectAuditSource: Send + Sync + fmt::Debug + 'static {
    /// Up to `limit` events of `tenant` about `subject`, oldest first.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn events_about(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        limit: usize,
    ) -> Result<Vec<AuditEvent>>;
}

/// Whether `event` is about `subject`: they acted, or it was done to them
/// (a resource of kind `principal` or `data_subject` with their id).
#[must_use]
pub fn event_concerns(event: &AuditEvent, subject: &PrincipalId) -> bool {
    event.actor.as_ref() == Some(subject)
        || event.resource.as_ref().is_some_and(|r| {
            (r.kind == "principal" || r.kind == SUBJECT_RESOURCE) && r.id == subject.as_str()
        })
}

/// Destroys a subject's data key (crypto-shredding), so that every copy
/// of their encrypted data, backups included, becomes unreadable.
///
/// `docaiche-store`'s `EncryptedDocumentStore::destroy_subject_key` is the
/// reference implementation; wrap it (this crate does not depend on the
/// store crate):
///
/// ```
/// use std::sync::Arc;
/// use docaiche_compliance::privacy::CryptoShredder;
/// use docaiche_core::{PrincipalId, Result, TenantId};
/// # #[derive(Debug)] struct EncryptedDocumentStore;
/// # impl EncryptedDocumentStore {
/// #     async fn destroy_subject_key(&self, _: &TenantId, _: &PrincipalId) -> Result<bool> { Ok(true) }
/// # }
///
/// #[derive(Debug)]
/// struct StoreShredder(Arc<EncryptedDocumentStore>);
///
/// #[async_trait::async_trait]
/// impl CryptoShredder for StoreShredder {
///     async fn destroy_subject_key(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<bool> {
///         self.0.destroy_subject_key(tenant, subject).await
///     }
/// }
/// ```
#[async_trait]
pub trait CryptoShredder: Send + Sync + fmt::Debug + 'static {
    /// Destroy the data key of `subject` in `tenant`. Idempotent; returns
    /// whether there was a key.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    async fn destroy_subject_key(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<bool>;
}

/// One exported document: metadata and extracted text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportedDocument {
    /// Metadata.
    pub meta: DocumentMeta,
    /// Extracted text, when stored.
    pub text: Option<DocumentText>,
}

/// One exported API key: its metadata, never its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportedApiKey {
    /// Record id.
    pub id: ApiKeyId,
    /// Label.
    pub name: String,
    /// Public lookup id.
    pub lookup: String,
    /// Permissions.
    pub scopes: PermissionSet,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Expires.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Last used.
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    /// Revoked.
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
}

impl From<&ApiKeyRecord> for ExportedApiKey {
    fn from(record: &ApiKeyRecord) -> Self {
        Self {
            id: record.id,
            name: record.name.clone(),
            lookup: record.lookup.as_str().to_owned(),
            scopes: record.scopes.clone(),
            created_at: record.created_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            revoked_at: record.revoked_at,
        }
    }
}

/// The subject's password account: its profile, never its password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportedAccount {
    /// The principal id the account signs in as (the request's subject).
    pub id: PrincipalId,
    /// Login e-mail (normalised).
    pub email: String,
    /// Roles held in the tenant.
    pub roles: Vec<String>,
    /// Whether sign-in is disabled.
    pub disabled: bool,
    /// Created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change (password, roles, disabled).
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl From<&Account> for ExportedAccount {
    fn from(account: &Account) -> Self {
        Self {
            id: account.id.clone(),
            email: account.email.as_str().to_owned(),
            roles: account.roles.clone(),
            disabled: account.disabled,
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}

/// Everything held about a subject, as one machine-readable JSON document
/// (GDPR Art. 15 and 20).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportBundle {
    /// [`EXPORT_FORMAT`].
    pub format: String,
    /// The request this answers.
    pub request_id: Uuid,
    /// Tenant.
    pub tenant: TenantId,
    /// Subject.
    pub subject: PrincipalId,
    /// When the bundle was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The subject's password account, when an [`AccountStore`] is
    /// configured ([`SubjectRightsService::with_accounts`]) and holds one
    /// with the subject's id.
    #[serde(default)]
    pub account: Option<ExportedAccount>,
    /// Documents owned by the subject.
    pub documents: Vec<ExportedDocument>,
    /// API keys acting as the subject.
    pub api_keys: Vec<ExportedApiKey>,
    /// Audit entries about the subject (empty when no
    /// [`SubjectAuditSource`] is configured).
    pub audit_events: Vec<AuditEvent>,
    /// The subject's privacy requests.
    pub privacy_requests: Vec<PrivacyRequest>,
}

/// What an erasure did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ErasureReport {
    /// The pseudonym that replaces the subject in the request record and
    /// the audit tombstone.
    pub pseudonym: String,
    /// Documents deleted.
    pub documents_deleted: u64,
    /// API keys revoked (those not revoked before): the first step, so
    /// that an erasure interrupted before the deletion still leaves no
    /// usable key.
    pub api_keys_revoked: u64,
    /// API key records deleted ([`ApiKeyStore::delete`]), keys revoked
    /// before the erasure included: their names and usage are gone.
    #[serde(default)]
    pub api_keys_deleted: u64,
    /// Whether a data key was destroyed (crypto-shredding).
    pub data_key_destroyed: bool,
    /// Whether the subject's password account was deleted (false when
    /// there was none, or no [`AccountStore`] is configured).
    #[serde(default)]
    pub account_deleted: bool,
    /// Whether every token of the subject issued before the erasure was
    /// revoked on the shared revocation store (see
    /// [`SubjectRightsService::with_revocations`]).
    #[serde(default)]
    pub credentials_revoked: bool,
}

/// Carries out data-subject requests: records them with their legal
/// deadline, exports everything held about a subject, erases a subject.
///
/// Authorization is checked here, not only at the route: submitting or
/// running an export needs [`Permission::PRIVACY_EXPORT`], an erasure
/// [`Permission::PRIVACY_ERASE`], both on the request's tenant.
///
/// Every step is audited with the subject named by a keyed pseudonym
/// (HMAC-SHA-256 of tenant and subject under the pseudonym key), so the
/// trail proves what was done without keeping who it was done to: the
/// erasure leaves exactly that tombstone (`privacy.erase`).
#[derive(Debug)]
pub struct SubjectRightsService {
    documents: Arc<dyn DocumentStore>,
    api_keys: Arc<dyn ApiKeyStore>,
    accounts: Option<Arc<dyn AccountStore>>,
    requests: Arc<dyn PrivacyRequestStore>,
    audit: Arc<dyn AuditSink>,
    clock: Arc<dyn Clock>,
    audit_source: Option<Arc<dyn SubjectAuditSource>>,
    shredder: Option<Arc<dyn CryptoShredder>>,
    holds: Option<Arc<dyn LegalHoldRegistry>>,
    revocations: Option<(Arc<dyn TokenRevocationStore>, Duration)>,
    pseudonyms: Pseudonymizer,
    max_documents: usize,
}

struct Pseudonymizer(Hmac<Sha256>);

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer([REDACTED])")
    }
}

impl Pseudonymizer {
    fn pseudonym(&self, tenant: &TenantId, subject: &PrincipalId) -> String {
        let mut mac = self.0.clone();
        mac.update(tenant.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(subject.as_str().as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::from("erased-");
        for b in &digest[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }
}

impl SubjectRightsService {
    /// Default bound on documents in one export bundle.
    pub const DEFAULT_MAX_DOCUMENTS: usize = 10_000;

    /// A service over the given stores. `pseudonym_key` (at least 32
    /// bytes, secret, stable across restarts) keys the pseudonyms.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the key is shorter than 32 bytes.
    pub fn new(
        documents: Arc<dyn DocumentStore>,
        api_keys: Arc<dyn ApiKeyStore>,
        requests: Arc<dyn PrivacyRequestStore>,
        audit: Arc<dyn AuditSink>,
        clock: Arc<dyn Clock>,
        pseudonym_key: &SecretBytes,
    ) -> Result<Self> {
        if pseudonym_key.len() < 32 {
            return Err(Error::misconfigured(
                "privacy.pseudonym_key",
                "must be at least 32 bytes",
            ));
        }
        let mac = Hmac::<Sha256>::new_from_slice(pseudonym_key.expose_secret())
            .map_err(|_| Error::misconfigured("privacy.pseudonym_key", "invalid key"))?;
        Ok(Self {
            documents,
            api_keys,
            accounts: None,
            requests,
            audit,
            clock,
            audit_source: None,
            shredder: None,
            holds: None,
            revocations: None,
            pseudonyms: Pseudonymizer(mac),
            max_documents: Self::DEFAULT_MAX_DOCUMENTS,
        })
    }

    /// End every bearer credential of an erased subject at once, on every
    /// instance sharing `revocations`: the erasure's first step revokes the
    /// subject ([`TokenRevocationStore::revoke_subject`]) through the
    /// erasure's start, remembered for `remember_for`: set it to at least
    /// the longest lifetime of an access token. Without it, an erased
    /// subject's access tokens work until they expire, and one of them
    /// could create a key after the erasure ran.
    #[must_use]
    pub fn with_revocations(
        mut self,
        revocations: Arc<dyn TokenRevocationStore>,
        remember_for: Duration,
    ) -> Self {
        self.revocations = Some((revocations, remember_for));
        self
    }

    /// Include the subject's password account (the one whose id is the
    /// subject) in exports, without its password hash, and delete it on
    /// erasure.
    #[must_use]
    pub fn with_accounts(mut self, accounts: Arc<dyn AccountStore>) -> Self {
        self.accounts = Some(accounts);
        self
    }

    /// Include audit entries about the subject in exports.
    #[must_use]
    pub fn with_audit_source(mut self, source: Arc<dyn SubjectAuditSource>) -> Self {
        self.audit_source = Some(source);
        self
    }

    /// Destroy the subject's data key on erasure.
    #[must_use]
    pub fn with_shredder(mut self, shredder: Arc<dyn CryptoShredder>) -> Self {
        self.shredder = Some(shredder);
        self
    }

    /// Refuse erasure of subjects under a legal hold: one on the subject
    /// or on every subject, covering documents or every kind.
    #[must_use]
    pub fn with_legal_holds(mut self, holds: Arc<dyn LegalHoldRegistry>) -> Self {
        self.holds = Some(holds);
        self
    }

    /// Set the bound on documents per export.
    #[must_use]
    pub fn with_max_documents(mut self, max: usize) -> Self {
        self.max_documents = max.max(1);
        self
    }

    /// The pseudonym of `subject` in `tenant` (what the audit trail and an
    /// erased request record carry).
    #[must_use]
    pub fn pseudonym(&self, tenant: &TenantId, subject: &PrincipalId) -> String {
        self.pseudonyms.pseudonym(tenant, subject)
    }

    /// Record a new request.
    ///
    /// # Errors
    /// `Forbidden` without the permission for `kind` on `tenant`;
    /// `Unavailable` if the store or the audit sink is down.
    pub async fn submit(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        subject: PrincipalId,
        kind: RequestKind,
        regulation: Regulation,
        context: &RequestContext,
    ) -> Result<PrivacyRequest> {
        actor.authorize_tenant(tenant, &permission_for(kind))?;
        let request = PrivacyRequest::new(
            tenant.clone(),
            subject,
            kind,
            regulation,
            actor.id.clone(),
            self.clock.now(),
        );
        let event = self
            .event(
                "privacy.request",
                AuditOutcome::Success,
                &request,
                actor,
                context,
            )
            .with_detail(
                "deadline",
                request
                    .deadline
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default()
                    .into(),
            );
        self.audit.record(&event).await?;
        self.requests.insert(&request).await?;
        Ok(request)
    }

    /// A request of `tenant`.
    ///
    /// # Errors
    /// `Forbidden` unless `actor` may export or erase on `tenant`;
    /// `NotFound` if there is no such request in `tenant`.
    pub async fn get(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        id: &Uuid,
    ) -> Result<PrivacyRequest> {
        authorize_any(actor, tenant)?;
        self.requests
            .get(tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("privacy_request"))
    }

    /// Every request of `tenant` (for the compliance report and the
    /// operator's queue).
    ///
    /// # Errors
    /// As [`SubjectRightsService::get`].
    pub async fn list(&self, actor: &Principal, tenant: &TenantId) -> Result<Vec<PrivacyRequest>> {
        authorize_any(actor, tenant)?;
        self.requests.list(tenant).await
    }

    /// Carry out an export request: everything held about the subject.
    ///
    /// # Errors
    /// `Forbidden` without [`Permission::PRIVACY_EXPORT`]; `NotFound` for
    /// an unknown request; `Conflict` if the request is not an open export
    /// or the subject holds more than the per-export document bound;
    /// `Unavailable` on outage (the request is marked failed, retryable).
    pub async fn export(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        id: &Uuid,
        context: &RequestContext,
    ) -> Result<ExportBundle> {
        actor.authorize_tenant(tenant, &Permission::PRIVACY_EXPORT)?;
        let mut request = self.open_request(tenant, id, RequestKind::Export).await?;
        self.set_status(&mut request, RequestStatus::InProgress, None)
            .await?;
        match self.collect(&request).await {
            Ok(bundle) => {
                let event = self
                    .event(
                        "privacy.export",
                        AuditOutcome::Success,
                        &request,
                        actor,
                        context,
                    )
                    .with_detail("accounts", usize::from(bundle.account.is_some()).into())
                    .with_detail("documents", bundle.documents.len().into())
                    .with_detail("api_keys", bundle.api_keys.len().into())
                    .with_detail("audit_events", bundle.audit_events.len().into());
                self.audit.record(&event).await?;
                self.set_status(&mut request, RequestStatus::Completed, None)
                    .await?;
                Ok(bundle)
            }
            Err(error) => Err(self
                .fail(&mut request, actor, context, "privacy.export", error)
                .await),
        }
    }

    /// Carry out an erasure request: revoke every token of the subject
    /// (with [`SubjectRightsService::with_revocations`]), delete the
    /// subject's documents, revoke their API keys then delete the keys'
    /// records, delete their password account (with
    /// [`SubjectRightsService::with_accounts`]), destroy their data key,
    /// look again for keys stored meanwhile, replace the subject by their
    /// pseudonym in the request record, and leave a `privacy.erase`
    /// tombstone on the audit trail.
    ///
    /// Every step is idempotent: a failed erasure (status `failed`) is
    /// simply run again.
    ///
    /// # Errors
    /// `Forbidden` without [`Permission::PRIVACY_ERASE`]; `NotFound` for an
    /// unknown request; `Conflict` if the request is not an open erasure, or
    /// a legal hold covers the subject (the request is then `rejected`);
    /// `Unavailable` on outage (the request is marked failed).
    pub async fn erase(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        id: &Uuid,
        context: &RequestContext,
    ) -> Result<ErasureReport> {
        actor.authorize_tenant(tenant, &Permission::PRIVACY_ERASE)?;
        let mut request = self.open_request(tenant, id, RequestKind::Erase).await?;
        if let Some(holds) = &self.holds {
            let held = holds
                .active(tenant)
                .await?
                .iter()
                .any(|h| h.covers(tenant, resource::DOCUMENTS, Some(&request.subject)));
            if held {
                let event = self
                    .event(
                        "privacy.erase",
                        AuditOutcome::Denied,
                        &request,
                        actor,
                        context,
                    )
                    .because("legal_hold");
                self.audit.record(&event).await?;
                self.set_status(&mut request, RequestStatus::Rejected, Some("legal_hold"))
                    .await?;
                return Err(Error::conflict("a legal hold covers this subject"));
            }
        }
        self.set_status(&mut request, RequestStatus::InProgress, None)
            .await?;
        let mut report = match self.wipe(&request).await {
            Ok(report) => report,
            Err(error) => {
                return Err(self
                    .fail(&mut request, actor, context, "privacy.erase", error)
                    .await);
            }
        };
        report.pseudonym = self.pseudonym(tenant, &request.subject);
        let tombstone = self
            .event(
                "privacy.erase",
                AuditOutcome::Success,
                &request,
                actor,
                context,
            )
            .with_detail("documents_deleted", report.documents_deleted.into())
            .with_detail("api_keys_revoked", report.api_keys_revoked.into())
            .with_detail("api_keys_deleted", report.api_keys_deleted.into())
            .with_detail("account_deleted", report.account_deleted.into())
            .with_detail("credentials_revoked", report.credentials_revoked.into())
            .with_detail("data_key_destroyed", report.data_key_destroyed.into());
        self.audit.record(&tombstone).await?;
        // From here on the subject's request records name the pseudonym only.
        let pseudonym = PrincipalId::new(report.pseudonym.clone())?;
        for mut earlier in self.requests.list(tenant).await? {
            if earlier.subject == request.subject && earlier.id != request.id {
                earlier.subject = pseudonym.clone();
                self.requests.update(&earlier).await?;
            }
        }
        request.subject = pseudonym;
        self.set_status(&mut request, RequestStatus::Completed, None)
            .await?;
        Ok(report)
    }

    async fn open_request(
        &self,
        tenant: &TenantId,
        id: &Uuid,
        kind: RequestKind,
    ) -> Result<PrivacyRequest> {
        let request = self
            .requests
            .get(tenant, id)
            .await?
            .ok_or_else(|| Error::not_found("privacy_request"))?;
        if request.kind != kind {
            return Err(Error::conflict(format!(
                "privacy request is not an {} request",
                kind.as_str()
            )));
        }
        if !request.is_open() {
            return Err(Error::conflict(format!(
                "privacy request is already {}",
                request.status.as_str()
            )));
        }
        Ok(request)
    }

    async fn collect(&self, request: &PrivacyRequest) -> Result<ExportBundle> {
        let tenant = &request.tenant;
        let subject = &request.subject;
        let mut documents = Vec::new();
        let mut page = PageRequest::first(100)?;
        loop {
            let listed = self.documents.list_by_owner(tenant, subject, &page).await?;
            for meta in listed.items {
                if documents.len() >= self.max_documents {
                    return Err(Error::conflict(
                        "the subject holds more documents than one export carries",
                    ));
                }
                let text = self.documents.get_text(tenant, &meta.id).await?;
                documents.push(ExportedDocument { meta, text });
            }
            match listed.next {
                Some(next) => page = PageRequest::new(Some(next), 100)?,
                None => break,
            }
        }
        let account = match &self.accounts {
            Some(accounts) => accounts
                .get(tenant, subject)
                .await?
                .as_ref()
                .map(ExportedAccount::from),
            None => None,
        };
        let api_keys = self
            .subject_keys(tenant, subject)
            .await?
            .iter()
            .map(ExportedApiKey::from)
            .collect();
        let audit_events = match &self.audit_source {
            Some(source) => source.events_about(tenant, subject, 100_000).await?,
            None => Vec::new(),
        };
        let privacy_requests = self
            .requests
            .list(tenant)
            .await?
            .into_iter()
            .filter(|r| &r.subject == subject)
            .collect();
        Ok(ExportBundle {
            format: EXPORT_FORMAT.to_owned(),
            request_id: request.id,
            tenant: tenant.clone(),
            subject: subject.clone(),
            generated_at: self.clock.now(),
            account,
            documents,
            api_keys,
            audit_events,
            privacy_requests,
        })
    }

    async fn wipe(&self, request: &PrivacyRequest) -> Result<ErasureReport> {
        let tenant = &request.tenant;
        let subject = &request.subject;
        let mut report = ErasureReport::default();
        // First: no credential of the subject works from here on, so none
        // can create anything while the rest runs.
        if let Some((revocations, remember_for)) = &self.revocations {
            let now = self.clock.now();
            revocations
                .revoke_subject(tenant, subject, now, now + *remember_for)
                .await?;
            report.credentials_revoked = true;
        }
        // Always the first page: what we delete drops out of the listing.
        // Bounded: a store that does not drop deleted documents from its
        // listing must not loop forever.
        let first = PageRequest::first(100)?;
        for _ in 0..1_000_000 {
            let listed = self
                .documents
                .list_by_owner(tenant, subject, &first)
                .await?;
            if listed.items.is_empty() {
                break;
            }
            let mut progressed = false;
            for meta in listed.items {
                if self.documents.delete(tenant, &meta.id).await? {
                    report.documents_deleted += 1;
                    progressed = true;
                }
            }
            if !progressed {
                return Err(Error::internal(
                    "document store lists documents it cannot delete",
                ));
            }
        }
        self.end_subject_keys(tenant, subject, &mut report).await?;
        if let Some(accounts) = &self.accounts {
            report.account_deleted = accounts.delete(tenant, subject).await?;
        }
        if let Some(shredder) = &self.shredder {
            report.data_key_destroyed = shredder.destroy_subject_key(tenant, subject).await?;
        }
        // A key created by a request that was authenticated just before the
        // subject revocation and stored after the listing above.
        self.end_subject_keys(tenant, subject, &mut report).await?;
        Ok(report)
    }

    /// Revoke every key of `subject`, then delete their records: if the
    /// deletion is interrupted, no key of the subject is left usable (and a
    /// re-run finishes the job).
    async fn end_subject_keys(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        report: &mut ErasureReport,
    ) -> Result<()> {
        let now = self.clock.now();
        let keys = self.subject_keys(tenant, subject).await?;
        for key in &keys {
            if key.revoked_at.is_none() && self.api_keys.revoke(tenant, &key.id, now).await? {
                report.api_keys_revoked += 1;
            }
        }
        for key in &keys {
            if self.api_keys.delete(tenant, &key.id).await? {
                report.api_keys_deleted += 1;
            }
        }
        Ok(())
    }

    async fn subject_keys(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Vec<ApiKeyRecord>> {
        let mut keys = Vec::new();
        let mut page = PageRequest::first(1000)?;
        loop {
            let listed = self.api_keys.list(tenant, &page).await?;
            keys.extend(listed.items.into_iter().filter(|k| &k.principal == subject));
            match listed.next {
                Some(next) => page = PageRequest::new(Some(next), 1000)?,
                None => return Ok(keys),
            }
        }
    }

    async fn set_status(
        &self,
        request: &mut PrivacyRequest,
        status: RequestStatus,
        failure: Option<&str>,
    ) -> Result<()> {
        request.status = status;
        request.failure = failure.map(str::to_owned);
        if matches!(status, RequestStatus::Completed | RequestStatus::Rejected) {
            request.completed_at = Some(self.clock.now());
        }
        if self.requests.update(request).await? {
            Ok(())
        } else {
            Err(Error::not_found("privacy_request"))
        }
    }

    /// Mark the request failed and audit it (best effort: the original
    /// error is what the caller gets).
    async fn fail(
        &self,
        request: &mut PrivacyRequest,
        actor: &Principal,
        context: &RequestContext,
        action: &str,
        error: Error,
    ) -> Error {
        let code = error.code().as_str();
        tracing::warn!(request = %request.id, error = %error.log_chain(), "privacy request failed");
        let event = self
            .event(action, AuditOutcome::Failure, request, actor, context)
            .because(code);
        if let Err(audit_error) = self.audit.record(&event).await {
            tracing::error!(error = %audit_error.log_chain(), "privacy failure not audited");
        }
        if let Err(store_error) = self
            .set_status(request, RequestStatus::Failed, Some(code))
            .await
        {
            tracing::error!(error = %store_error.log_chain(), "privacy request status not updated");
        }
        error
    }

    fn event(
        &self,
        action: &str,
        outcome: AuditOutcome,
        request: &PrivacyRequest,
        actor: &Principal,
        context: &RequestContext,
    ) -> AuditEvent {
        AuditEvent::new(action, outcome, self.clock.now(), context)
            .by(request.tenant.clone(), Some(actor.id.clone()))
            .on(AuditResource::new(
                SUBJECT_RESOURCE,
                self.pseudonym(&request.tenant, &request.subject),
            ))
            .with_detail("request_id", request.id.to_string().into())
            .with_detail("kind", request.kind.as_str().into())
            .with_detail("regulation", request.regulation.as_str().into())
    }
}

const fn permission_for(kind: RequestKind) -> Permission {
    match kind {
        RequestKind::Export => Permission::PRIVACY_EXPORT,
        RequestKind::Erase => Permission::PRIVACY_ERASE,
    }
}

fn authorize_any(actor: &Principal, tenant: &TenantId) -> Result<()> {
    actor
        .authorize_tenant(tenant, &Permission::PRIVACY_EXPORT)
        .or_else(|_| actor.authorize_tenant(tenant, &Permission::PRIVACY_ERASE))
}
