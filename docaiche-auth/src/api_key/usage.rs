//! Batched last-used timestamps.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use docaiche_core::api_key::ApiKeyUsage;
use docaiche_core::{ApiKeyId, TenantId};
use time::OffsetDateTime;

/// Last-used timestamps waiting to be written, one per key (the latest),
/// at most `capacity` keys. When full, keys not already pending are
/// skipped until the next flush: last-used is advisory and is written again
/// by the key's next request, whereas unbounded growth is a denial of
/// service.
#[derive(Debug)]
pub(crate) struct UsageRecorder {
    capacity: usize,
    pending: Mutex<Pending>,
}

/// Keyed by verified key ids only (callers cannot choose colliding keys):
/// foldhash (randomly seeded) rather than SipHash on this per-request path.
type Pending = HashMap<ApiKeyId, ApiKeyUsage, foldhash::fast::RandomState>;

impl UsageRecorder {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            pending: Mutex::new(HashMap::default()),
        }
    }

    /// Note that `id` was used at `at`. O(1), never blocks on I/O.
    pub(crate) fn record(&self, tenant: &TenantId, id: ApiKeyId, at: OffsetDateTime) {
        let mut pending = self.lock();
        if let Some(usage) = pending.get_mut(&id) {
            if usage.used_at < at {
                usage.used_at = at;
            }
        } else if pending.len() < self.capacity {
            pending.insert(id, ApiKeyUsage::new(tenant.clone(), id, at));
        }
    }

    /// Everything pending, leaving the recorder empty.
    pub(crate) fn take(&self) -> Vec<ApiKeyUsage> {
        let mut batch: Vec<ApiKeyUsage> = self.lock().drain().map(|(_, u)| u).collect();
        batch.sort_by_key(|u| u.id);
        batch
    }

    /// Put back a batch whose write failed, keeping newer timestamps and
    /// the capacity bound.
    pub(crate) fn restore(&self, batch: Vec<ApiKeyUsage>) {
        for usage in batch {
            self.record(&usage.tenant, usage.id, usage.used_at);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_use_per_key_within_capacity() {
        let recorder = UsageRecorder::new(2);
        let tenant = TenantId::new("acme").expect("valid");
        let (a, b, c) = (ApiKeyId::new(), ApiKeyId::new(), ApiKeyId::new());
        let t0 = OffsetDateTime::UNIX_EPOCH;
        let t1 = t0 + time::Duration::seconds(1);
        recorder.record(&tenant, a, t1);
        recorder.record(&tenant, a, t0);
        recorder.record(&tenant, b, t0);
        recorder.record(&tenant, c, t0);
        let batch = recorder.take();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].id, a);
        assert_eq!(batch[0].used_at, t1);
        assert!(recorder.take().is_empty());
    }
}
