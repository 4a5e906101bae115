//! The compliance report of a tenant: its audit events read back, privacy
//! requests, API keys, secret ages and the audit chain check, each read
//! under a cap (the route is `crate::routes::admin`).

use std::time::Duration;

use docaiche_compliance::audit::{CheckpointKey, Verifier};
use docaiche_compliance::privacy::PrivacyRequest;
use docaiche_compliance::report::{ChainStatus, ComplianceReport};
use docaiche_compliance::retention::{RetentionPolicies, RetentionSource};
use docaiche_core::page::PageRequest;
use docaiche_core::{Error, Principal, TenantId};
use time::OffsetDateTime;

use crate::audit::ReadBack;
use crate::compliance::{AuditRetention, ROTATION_DAYS, audit_retention};
use crate::state::AppState;

/// Largest number of audit events a report reads back.
const MAX_REPORT_EVENTS: usize = 100_000;
/// Largest trail (bytes of every file segment) a report verifies.
const MAX_VERIFY_BYTES: u64 = 256 * 1024 * 1024;
/// Largest `audit_trail` table (rows) a report verifies.
#[cfg(feature = "postgres")]
const MAX_VERIFY_ROWS: i64 = 1_000_000;
/// Longest a chain verification may take.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest number of API key records a report lists.
const MAX_REPORT_KEYS: usize = 10_000;
/// Default report period, in days.
pub(crate) const DEFAULT_DAYS: u32 = 30;
/// Longest report period, in days.
pub(crate) const MAX_DAYS: u32 = 366;

/// The report of `tenant` over the last `days`, and notes on what it could
/// not cover.
pub(crate) async fn build_report(
    state: &AppState,
    caller: &Principal,
    tenant: &TenantId,
    days: u32,
) -> Result<(ComplianceReport, Vec<String>), Error> {
    let compliance = &state.compliance;
    let now = compliance.clock.now();
    let since = now - time::Duration::days(i64::from(days));
    let mut notes = Vec::new();
    let source = state
        .audit
        .as_ref()
        .map_or(ReadBack::None, |trail| trail.source.clone());

    let events = match crate::audit::read_back(&source, tenant, since, now, MAX_REPORT_EVENTS)
        .await?
    {
        Some((events, more)) => {
            if more {
                notes.push(format!(
                    "only the first {MAX_REPORT_EVENTS} audit events of the period were read"
                ));
            }
            events
        }
        None => {
            notes.push("no configured audit sink can be read back: no audit figures".to_owned());
            Vec::new()
        }
    };
    let anchor_key = state
        .audit
        .as_ref()
        .and_then(|trail| trail.anchor_key.clone());
    let chain = verify_chain(&source, anchor_key, &mut notes).await;
    if let Some(trail) = &state.audit
        && let AuditRetention::NotApplied(why) =
            audit_retention(compliance.purger.policies(), trail)
    {
        notes.push(format!(
            "audit retention is configured but not applied: {why}"
        ));
    }

    let holds = compliance.holds.all(tenant).await?;
    let last_purge = compliance.purger.last_report().map(|mut purge| {
        purge.tenants.retain(|t, _| t == tenant);
        purge.failures.retain(|t, _| t == tenant);
        purge
    });

    let keys = api_keys(state, tenant, &mut notes).await?;
    let requests = privacy_requests(state, caller, tenant, &mut notes).await?;

    let mut builder = ComplianceReport::builder(now)
        .tenant(tenant.clone())
        .audit_events(&events)
        .chain_status(chain)
        .retention(
            tenant_policies(compliance, tenant, &mut notes).await,
            holds,
            last_purge,
        )
        .api_key_rotation_days(ROTATION_DAYS)
        .api_keys(&keys)
        .privacy_requests(&requests);
    let mut unknown = Vec::new();
    for secret in &compliance.secrets {
        match modified(&secret.path) {
            Some(at) => builder = builder.secret(secret.name, at, ROTATION_DAYS),
            None => unknown.push(secret.name),
        }
    }
    if compliance.secrets.is_empty() || !unknown.is_empty() {
        notes.push(
            "secret ages are known only for secrets kept in files (a `file:` source or \
             generated development secrets); env and Vault sources carry no creation time"
                .to_owned(),
        );
    }
    Ok((builder.build(), notes))
}

/// The policies as they apply to `tenant`: the configured defaults, and as
/// `tenant`'s own entry every period in force for it, its stored
/// `retention_days` included (other tenants' entries are left out: a
/// tenant's report does not name other tenants). When the registry cannot
/// be read, the configured policies, and a note saying so.
async fn tenant_policies(
    compliance: &crate::compliance::Compliance,
    tenant: &TenantId,
    notes: &mut Vec<String>,
) -> RetentionPolicies {
    let mut policies = compliance.retention.policies().clone();
    policies.tenants.retain(|t, _| t == tenant);
    match compliance.retention.periods(tenant).await {
        Ok(periods) if periods.is_empty() => {}
        Ok(periods) => {
            policies.tenants.insert(tenant.clone(), periods);
        }
        Err(error) => {
            tracing::warn!(%tenant, error = %error.log_chain(), "tenant retention setting unreadable");
            notes.push(
                "retention: the tenant's stored retention setting could not be read; \
                 the configured periods are shown"
                    .to_owned(),
            );
        }
    }
    policies
}

/// `tenant`'s data-subject requests through the privacy service, with the
/// caller's own rights (`privacy:export` or `privacy:erase`): without
/// them, or without the service, none are listed and a note says so.
async fn privacy_requests(
    state: &AppState,
    caller: &Principal,
    tenant: &TenantId,
    notes: &mut Vec<String>,
) -> Result<Vec<PrivacyRequest>, Error> {
    let Some(privacy) = &state.privacy else {
        notes.push("privacy requests: no privacy service is configured; none listed".to_owned());
        return Ok(Vec::new());
    };
    match privacy.service.list(caller, tenant).await {
        Ok(requests) => Ok(requests),
        Err(Error::Forbidden { .. }) => {
            notes.push(
                "privacy requests: not listed, the caller holds neither privacy:export nor \
                 privacy:erase"
                    .to_owned(),
            );
            Ok(Vec::new())
        }
        Err(error) => Err(error),
    }
}

/// When the file at `path` was last written.
fn modified(path: &std::path::Path) -> Option<OffsetDateTime> {
    let at = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(OffsetDateTime::from(at))
}

/// Up to [`MAX_REPORT_KEYS`] of `tenant`'s API key records.
async fn api_keys(
    state: &AppState,
    tenant: &TenantId,
    notes: &mut Vec<String>,
) -> Result<Vec<docaiche_core::api_key::ApiKeyRecord>, Error> {
    let store = &state.auth.stores.api_keys;
    let mut records = Vec::new();
    let mut page = PageRequest::first(docaiche_core::page::MAX_PAGE_SIZE)?;
    loop {
        let listed = store.list(tenant, &page).await?;
        records.extend(listed.items);
        if records.len() >= MAX_REPORT_KEYS {
            records.truncate(MAX_REPORT_KEYS);
            notes.push(format!(
                "only the first {MAX_REPORT_KEYS} API keys are listed"
            ));
            return Ok(records);
        }
        match listed.next {
            Some(next) => page = PageRequest::new(Some(next), docaiche_core::page::MAX_PAGE_SIZE)?,
            None => return Ok(records),
        }
    }
}

/// Verify the whole trail (every tenant's stream), within bounds: at most
/// [`MAX_VERIFY_BYTES`] of file segments or `MAX_VERIFY_ROWS` rows, and
/// [`VERIFY_TIMEOUT`]; beyond them the chain is `not_checked` and a note
/// says why. Checkpoint MACs are not checked here (no key at request time).
async fn verify_chain(
    source: &ReadBack,
    anchor_key: Option<CheckpointKey>,
    notes: &mut Vec<String>,
) -> ChainStatus {
    let verified = match source {
        ReadBack::None => return ChainStatus::NotChecked,
        ReadBack::File(path) => {
            let path = path.clone();
            let task = tokio::task::spawn_blocking(move || {
                let size: u64 = docaiche_compliance::audit::trail_segments(&path)?
                    .iter()
                    .filter_map(|segment| std::fs::metadata(segment).ok())
                    .map(|meta| meta.len())
                    .sum();
                if size > MAX_VERIFY_BYTES {
                    return Ok(None);
                }
                // A retention anchor counts only if the checkpoint key
                // signed it; checkpoint MACs themselves stay unchecked.
                let mut verifier = Verifier::new();
                if let Some(key) = anchor_key
                    && let Some(anchor) = docaiche_compliance::audit::Anchor::load(&path)?
                {
                    verifier = verifier.with_anchor_key(key).with_anchor(anchor);
                }
                verifier.verify_path(&path).map(Some)
            });
            match tokio::time::timeout(VERIFY_TIMEOUT, task).await {
                Ok(Ok(result)) => result,
                Ok(Err(e)) => Err(Error::internal_with("chain verification task failed", e)),
                Err(_) => Ok(None),
            }
        }
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => {
            let verify = async {
                let (rows,): (i64,) =
                    docaiche_store::postgres::sqlx::query_as("SELECT count(*) FROM audit_trail")
                        .fetch_one(pool)
                        .await
                        .map_err(|e| Error::unavailable("audit trail (postgres)", e))?;
                if rows > MAX_VERIFY_ROWS {
                    return Ok(None);
                }
                // Retention anchors count only if the checkpoint key
                // signed them; checkpoint MACs themselves stay unchecked.
                let verifier = match anchor_key {
                    Some(key) => Verifier::new().with_anchor_key(key),
                    None => Verifier::new(),
                };
                docaiche_compliance::audit::PgAuditTrail::existing(pool.clone())
                    .verify(&verifier)
                    .await
                    .map(Some)
            };
            tokio::time::timeout(VERIFY_TIMEOUT, verify)
                .await
                .unwrap_or(Ok(None))
        }
    };
    match verified {
        Ok(Some(report)) => match report.tamper {
            None => ChainStatus::Verified {
                events: report.records,
            },
            Some(tamper) => ChainStatus::Broken {
                at_sequence: tamper.seq,
                detail: format!("{}: {}", tamper.kind, tamper.detail),
            },
        },
        Ok(None) => {
            notes.push(
                "the audit chain was not verified: the trail is over the report's bound \
                 (256 MiB of files or 1000000 rows, 10 s); run `verify` offline"
                    .to_owned(),
            );
            ChainStatus::NotChecked
        }
        Err(error) => {
            tracing::warn!(error = %error.log_chain(), "audit chain verification failed");
            notes.push("the audit chain could not be read for verification".to_owned());
            ChainStatus::NotChecked
        }
    }
}
