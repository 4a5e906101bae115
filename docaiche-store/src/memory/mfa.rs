//! [`MemoryMfaStore`].

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Mutex;

use docaiche_core::mfa::{
    MfaEnrolment, MfaState, MfaStore, NewMfaEnrolment, validate_recovery_code_hash,
    validate_sealed_secret, validate_step,
};
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use time::OffsetDateTime;

use super::{capacity_exceeded, lock};

const STORE: &str = "memory mfa store";

/// Second-factor enrolments in memory.
///
/// Holds at most `max_enrolments` enrolments (default 100 000); beginning
/// one more is refused with `Unavailable`
/// ([`CapacityExceeded`](super::CapacityExceeded)). Every call takes one
/// lock, so the compare-and-set calls are atomic.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use docaiche_core::mfa::{MfaStore, NewMfaEnrolment};
/// use docaiche_core::{PrincipalId, TenantId};
/// use docaiche_store::memory::MemoryMfaStore;
///
/// let store = MemoryMfaStore::new();
/// let (acme, alice) = (TenantId::new("acme")?, PrincipalId::new("alice")?);
/// let sealed = vec![1; 60];
/// let at = time::OffsetDateTime::UNIX_EPOCH;
/// store.begin(&NewMfaEnrolment::new(acme.clone(), alice.clone(), sealed.clone(), vec![vec![9; 32]], at)?).await?;
/// assert!(store.confirm(&acme, &alice, &sealed, 100, at).await?);
/// assert!(store.accept_step(&acme, &alice, &sealed, 101).await?);
/// assert!(!store.accept_step(&acme, &alice, &sealed, 101).await?, "a step is accepted once");
/// assert!(store.use_recovery_code(&acme, &alice, &[9; 32], at).await?);
/// assert!(!store.use_recovery_code(&acme, &alice, &[9; 32], at).await?, "a code is used once");
/// # Ok::<(), docaiche_core::Error>(()) }).unwrap();
/// ```
#[derive(Debug)]
pub struct MemoryMfaStore {
    max_enrolments: usize,
    enrolments: Mutex<HashMap<(TenantId, PrincipalId), Stored>>,
}

#[derive(Debug)]
struct Stored {
    enrolment: MfaEnrolment,
    /// Each code's hash and whether it was used.
    recovery_codes: Vec<(Vec<u8>, bool)>,
}

impl MemoryMfaStore {
    /// Default bound on the number of enrolments.
    pub const DEFAULT_MAX_ENROLMENTS: usize = 100_000;

    /// An empty store holding up to [`Self::DEFAULT_MAX_ENROLMENTS`]
    /// enrolments.
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_enrolments: Self::DEFAULT_MAX_ENROLMENTS,
            enrolments: Mutex::new(HashMap::new()),
        }
    }

    /// Set the bound on the number of enrolments.
    #[must_use]
    pub fn with_max_enrolments(mut self, max_enrolments: NonZeroUsize) -> Self {
        self.max_enrolments = max_enrolments.get();
        self
    }
}

impl Default for MemoryMfaStore {
    fn default() -> Self {
        Self::new()
    }
}

fn key(tenant: &TenantId, account: &PrincipalId) -> (TenantId, PrincipalId) {
    (tenant.clone(), account.clone())
}

#[async_trait::async_trait]
impl MfaStore for MemoryMfaStore {
    async fn begin(&self, enrolment: &NewMfaEnrolment) -> Result<()> {
        enrolment.validate()?;
        let mut enrolments = lock(&self.enrolments);
        let id = key(&enrolment.tenant, &enrolment.account);
        match enrolments.get(&id) {
            Some(existing) if existing.enrolment.state != MfaState::Pending => {
                return Err(Error::conflict("the account has an active second factor"));
            }
            Some(_) => {}
            None if enrolments.len() >= self.max_enrolments => {
                return Err(capacity_exceeded(STORE, self.max_enrolments, "enrolments"));
            }
            None => {}
        }
        let stored = Stored {
            enrolment: MfaEnrolment::pending(enrolment),
            recovery_codes: enrolment
                .recovery_codes
                .iter()
                .map(|hash| (hash.clone(), false))
                .collect(),
        };
        enrolments.insert(id, stored);
        Ok(())
    }

    async fn get(&self, tenant: &TenantId, account: &PrincipalId) -> Result<Option<MfaEnrolment>> {
        Ok(lock(&self.enrolments)
            .get(&key(tenant, account))
            .map(|stored| {
                let mut enrolment = stored.enrolment.clone();
                enrolment.recovery_codes_remaining = stored
                    .recovery_codes
                    .iter()
                    .filter(|(_, used)| !used)
                    .count();
                enrolment
            }))
    }

    async fn confirm(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed_secret: &[u8],
        step: u64,
        at: OffsetDateTime,
    ) -> Result<bool> {
        validate_sealed_secret(sealed_secret)?;
        validate_step(step)?;
        let mut enrolments = lock(&self.enrolments);
        let Some(stored) = enrolments.get_mut(&key(tenant, account)) else {
            return Ok(false);
        };
        let enrolment = &mut stored.enrolment;
        if enrolment.state != MfaState::Pending || enrolment.sealed_secret != sealed_secret {
            return Ok(false);
        }
        enrolment.state = MfaState::Active;
        enrolment.last_step = Some(step);
        enrolment.confirmed_at = Some(at);
        Ok(true)
    }

    async fn accept_step(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed_secret: &[u8],
        step: u64,
    ) -> Result<bool> {
        validate_sealed_secret(sealed_secret)?;
        validate_step(step)?;
        let mut enrolments = lock(&self.enrolments);
        let Some(stored) = enrolments.get_mut(&key(tenant, account)) else {
            return Ok(false);
        };
        let enrolment = &mut stored.enrolment;
        if enrolment.state != MfaState::Active
            || enrolment.sealed_secret != sealed_secret
            || enrolment.last_step.is_some_and(|last| last >= step)
        {
            return Ok(false);
        }
        enrolment.last_step = Some(step);
        Ok(true)
    }

    async fn use_recovery_code(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        code_hash: &[u8],
        _at: OffsetDateTime,
    ) -> Result<bool> {
        validate_recovery_code_hash(code_hash)?;
        let mut enrolments = lock(&self.enrolments);
        let Some(stored) = enrolments.get_mut(&key(tenant, account)) else {
            return Ok(false);
        };
        if stored.enrolment.state != MfaState::Active {
            return Ok(false);
        }
        match stored
            .recovery_codes
            .iter_mut()
            .find(|(hash, used)| !used && hash.as_slice() == code_hash)
        {
            Some((_, used)) => {
                *used = true;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn delete(&self, tenant: &TenantId, account: &PrincipalId) -> Result<bool> {
        Ok(lock(&self.enrolments)
            .remove(&key(tenant, account))
            .is_some())
    }
}

#[cfg(all(test, feature = "conformance"))]
mod tests {
    use std::sync::Arc;

    use super::MemoryMfaStore;
    use crate::conformance::{Harness, run_mfa_store};

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn memory_mfa_store_conforms() {
        run_mfa_store(Arc::new(MemoryMfaStore::new()), &Harness::without_time()).await;
    }
}
