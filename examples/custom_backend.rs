//! A custom backend: implement one store trait of `docaiche-core` and prove
//! it with the same conformance suite the reference backends pass.
//!
//! ```text
//! cargo test --example custom_backend --features conformance
//! ```
//!
//! The backend here keeps token revocations in a `BTreeMap` behind a lock,
//! the shape of a key-value store you would talk to over the network
//! (DynamoDB, etcd, FoundationDB): one record per revoked token id and one
//! per revoked subject, each with the time it may be forgotten. What it
//! must promise is written on the trait (`TokenRevocationStore`): ids are
//! validated and opaque, revocations are idempotent and never shortened,
//! subjects are tenant-scoped, and an outage is an error, never a "no".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use docaiche::core::revocation::{TokenRevocationStore, validate_token_id};
use docaiche::core::{Clock, SystemClock};
use docaiche::{PrincipalId, Result, TenantId};
use time::OffsetDateTime;

/// What the "remote" store holds: key → (forget after, value).
type Table = BTreeMap<String, (OffsetDateTime, OffsetDateTime)>;

/// Token revocations in an ordered key-value table.
#[derive(Debug)]
struct KvRevocations {
    table: Mutex<Table>,
    clock: Arc<dyn Clock>,
}

impl KvRevocations {
    fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            table: Mutex::new(Table::new()),
            clock,
        }
    }

    fn table(&self) -> MutexGuard<'_, Table> {
        self.table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Keep the later of both bounds: a revocation is never shortened.
    fn upsert(&self, key: String, until: OffsetDateTime, value: OffsetDateTime) {
        let mut table = self.table();
        let entry = table.entry(key).or_insert((until, value));
        *entry = (entry.0.max(until), entry.1.max(value));
    }

    /// The value of a live record.
    fn live(&self, key: &str) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        self.table()
            .get(key)
            .filter(|(until, _)| now < *until)
            .map(|&(_, value)| value)
    }
}

/// Tenant and principal ids never contain `/`: the key is unambiguous.
fn subject_key(tenant: &TenantId, subject: &PrincipalId) -> String {
    format!("subject/{tenant}/{subject}")
}

#[async_trait::async_trait]
impl TokenRevocationStore for KvRevocations {
    async fn revoke(&self, token_id: &str, expires_at: OffsetDateTime) -> Result<()> {
        validate_token_id(token_id)?;
        if expires_at > self.clock.now() {
            self.upsert(format!("token/{token_id}"), expires_at, expires_at);
        }
        Ok(())
    }

    async fn is_revoked(&self, token_id: &str) -> Result<bool> {
        validate_token_id(token_id)?;
        Ok(self.live(&format!("token/{token_id}")).is_some())
    }

    async fn revoke_subject(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        through: OffsetDateTime,
        remember_until: OffsetDateTime,
    ) -> Result<()> {
        if remember_until > self.clock.now() {
            self.upsert(subject_key(tenant, subject), remember_until, through);
        }
        Ok(())
    }

    async fn subject_revoked_through(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Option<OffsetDateTime>> {
        Ok(self.live(&subject_key(tenant, subject)))
    }
}

fn main() {
    let store = KvRevocations::new(Arc::new(SystemClock::new()));
    println!("{store:?}: run `cargo test --example custom_backend --features conformance`");
}

#[cfg(test)]
mod tests {
    use docaiche::core::ManualClock;
    use docaiche::store::conformance::{Harness, run_revocation_store};

    use super::*;

    /// Every promise of the contract, on a clock the suite moves by hand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_key_value_store_conforms() {
        let clock = ManualClock::new();
        let store = KvRevocations::new(Arc::new(clock.clone()));
        run_revocation_store(Arc::new(store), &Harness::with_manual_clock(clock)).await;
    }
}
