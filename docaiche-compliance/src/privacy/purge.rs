//! Retention of data-subject request records: the `privacy_requests`
//! purge target.

use std::sync::Arc;

use async_trait::async_trait;
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{Error, Result, TenantId};
use time::OffsetDateTime;
use uuid::Uuid;

use super::request::{PrivacyRequest, PrivacyRequestStore, RequestStatus};
use crate::retention::{PurgeCandidate, Purgeable, resource};

/// [`Purgeable`] over any [`PrivacyRequestStore`]: the retention of
/// data-subject request records (kind
/// [`resource::PRIVACY_REQUESTS`]).
///
/// Which requests expire:
/// - only **closed** ones: `completed` or `rejected`. Open requests
///   (`received`, `in_progress`, and `failed`, which is retryable and so
///   still open) are never candidates: they carry a legal deadline and
///   their record is the proof of how it was met;
/// - whose **closing** (`completed_at`) is strictly before the cutoff: the
///   retention period runs from the answer, not from receipt, so a request
///   answered late is still kept for the full period after its answer. A
///   closed request without a closing time (not written by this crate)
///   counts from its receipt.
///
/// A candidate's `created_at` is the request's receipt time and its
/// `subject` the request's subject (the pseudonym after an erasure), so a
/// legal hold on that subject, or on the whole `privacy_requests` kind,
/// keeps it. [`Purgeable::purge`] reads the request again and leaves it in
/// place (`Ok(false)`) if it is open, whatever the caller asks.
///
/// Paging: the store's contract lists a tenant's requests in one bounded
/// call (100 000 by default), so each page lists them all, orders them by
/// id (UUIDv7: receipt order) and returns up to `page.limit` expired ones
/// after the cursor, the last returned id (keyset: deleting returned
/// requests does not disturb it). A purge over `n` requests of a tenant
/// thus reads `n` records per page of `page.limit` candidates: fine at
/// the sizes privacy requests come in, and bounded by the store's bound.
#[derive(Debug, Clone)]
pub struct PrivacyRequestPurgeTarget {
    store: Arc<dyn PrivacyRequestStore>,
}

impl PrivacyRequestPurgeTarget {
    /// Purge from `store`.
    #[must_use]
    pub fn new(store: Arc<dyn PrivacyRequestStore>) -> Self {
        Self { store }
    }

    /// Whether `request` is closed and was closed before `cutoff`.
    fn expired_at(request: &PrivacyRequest, cutoff: OffsetDateTime) -> bool {
        matches!(
            request.status,
            RequestStatus::Completed | RequestStatus::Rejected
        ) && request.completed_at.unwrap_or(request.received_at) < cutoff
    }
}

fn request_id(text: &str) -> Result<Uuid> {
    text.parse()
        .map_err(|_| Error::invalid_input("malformed privacy request id"))
}

#[async_trait]
impl Purgeable for PrivacyRequestPurgeTarget {
    fn resource_kind(&self) -> &str {
        resource::PRIVACY_REQUESTS
    }

    async fn expired(
        &self,
        tenant: &TenantId,
        cutoff: OffsetDateTime,
        page: &PageRequest,
    ) -> Result<Page<PurgeCandidate>> {
        let after = page.after.as_deref().map(request_id).transpose()?;
        let mut requests = self.store.list(tenant).await?;
        requests.sort_unstable_by_key(|r| r.id);
        let limit = usize::try_from(page.limit).unwrap_or(usize::MAX);
        let mut expired = requests
            .into_iter()
            .filter(|r| after.is_none_or(|after| r.id > after) && Self::expired_at(r, cutoff));
        let found: Vec<PrivacyRequest> = expired.by_ref().take(limit).collect();
        let next = match (expired.next(), found.last()) {
            (Some(_), Some(last)) => Some(last.id.to_string()),
            _ => None,
        };
        let items = found
            .into_iter()
            .map(|r| PurgeCandidate::new(r.id.to_string(), Some(r.subject), r.received_at))
            .collect();
        Ok(Page::new(items, next))
    }

    async fn purge(&self, tenant: &TenantId, id: &str) -> Result<bool> {
        let id = request_id(id)?;
        match self.store.get(tenant, &id).await? {
            None => Ok(false),
            Some(request) if request.is_open() => {
                tracing::warn!(%tenant, request = %id, "an open privacy request is never purged");
                Ok(false)
            }
            Some(_) => self.store.delete(tenant, &id).await,
        }
    }
}
