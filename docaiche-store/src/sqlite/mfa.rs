//! [`SqliteMfaStore`]: second-factor enrolments in SQLite.

use std::sync::Arc;
use std::sync::LazyLock;

use docaiche_core::mfa::{MfaEnrolment, MfaStore, NewMfaEnrolment, validate_recovery_code_hash};
use docaiche_core::{PrincipalId, Result, TenantId};
use sqlx::Connection;
use time::OffsetDateTime;

use super::{Shared, err};
use crate::sql::mfa::{MFA_COLUMNS, MfaRow, already_active, checked_step};
use crate::sql::micros;

/// Create a pending enrolment, or replace a pending one (not an active one).
const BEGIN: &str = "INSERT INTO mfa_enrolments (tenant_id, account_id, sealed_secret, state, \
     last_step, created_at, confirmed_at) VALUES (?1, ?2, ?3, 'pending', NULL, ?4, NULL) \
     ON CONFLICT (tenant_id, account_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
     last_step = NULL, created_at = excluded.created_at, confirmed_at = NULL \
     WHERE mfa_enrolments.state = 'pending'";
const DELETE_CODES: &str =
    "DELETE FROM mfa_recovery_codes WHERE tenant_id = ?1 AND account_id = ?2";
const INSERT_CODE: &str = "INSERT INTO mfa_recovery_codes (tenant_id, account_id, code_hash, \
     used_at) VALUES (?1, ?2, ?3, NULL)";
static GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MFA_COLUMNS} FROM mfa_enrolments e WHERE e.tenant_id = ?1 AND e.account_id = ?2"
    )
});
const CONFIRM: &str = "UPDATE mfa_enrolments SET state = 'active', last_step = ?4, \
     confirmed_at = ?5 WHERE tenant_id = ?1 AND account_id = ?2 AND sealed_secret = ?3 \
     AND state = 'pending'";
const ACCEPT_STEP: &str = "UPDATE mfa_enrolments SET last_step = ?4 WHERE tenant_id = ?1 \
     AND account_id = ?2 AND sealed_secret = ?3 AND state = 'active' \
     AND (last_step IS NULL OR last_step < ?4)";
const USE_CODE: &str = "UPDATE mfa_recovery_codes SET used_at = ?4 WHERE tenant_id = ?1 \
     AND account_id = ?2 AND code_hash = ?3 AND used_at IS NULL AND EXISTS (SELECT 1 FROM \
     mfa_enrolments e WHERE e.tenant_id = ?1 AND e.account_id = ?2 AND e.state = 'active')";
const DELETE: &str = "DELETE FROM mfa_enrolments WHERE tenant_id = ?1 AND account_id = ?2";

/// An [`MfaStore`] in SQLite (tables `mfa_enrolments` and
/// `mfa_recovery_codes`, keyed by tenant and account), from
/// [`SqliteStore::mfa`](super::SqliteStore::mfa).
///
/// `begin` and `delete` are one `BEGIN IMMEDIATE` transaction over both
/// tables; the compare-and-set calls are single conditional `UPDATE`s,
/// which SQLite runs under its one writer lock.
#[derive(Debug, Clone)]
pub struct SqliteMfaStore {
    shared: Arc<Shared>,
}

impl SqliteMfaStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl MfaStore for SqliteMfaStore {
    async fn begin(&self, enrolment: &NewMfaEnrolment) -> Result<()> {
        enrolment.validate()?;
        let (tenant, account) = (enrolment.tenant.as_str(), enrolment.account.as_str());
        let mut conn = self.shared.conn().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        let written = sqlx::query(BEGIN)
            .bind(tenant)
            .bind(account)
            .bind(enrolment.sealed_secret.as_slice())
            .bind(micros(enrolment.created_at))
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        if written.rows_affected() == 0 {
            return Err(already_active());
        }
        sqlx::query(DELETE_CODES)
            .bind(tenant)
            .bind(account)
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        for hash in &enrolment.recovery_codes {
            sqlx::query(INSERT_CODE)
                .bind(tenant)
                .bind(account)
                .bind(hash.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn get(&self, tenant: &TenantId, account: &PrincipalId) -> Result<Option<MfaEnrolment>> {
        let mut conn = self.shared.conn().await?;
        let row: Option<MfaRow> = sqlx::query_as(&GET)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(err)?;
        row.map(MfaRow::into_enrolment).transpose()
    }

    async fn confirm(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed_secret: &[u8],
        step: u64,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let step = checked_step(sealed_secret, step)?;
        let mut conn = self.shared.conn().await?;
        let done = sqlx::query(CONFIRM)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .bind(sealed_secret)
            .bind(step)
            .bind(micros(at))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn accept_step(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed_secret: &[u8],
        step: u64,
    ) -> Result<bool> {
        let step = checked_step(sealed_secret, step)?;
        let mut conn = self.shared.conn().await?;
        let done = sqlx::query(ACCEPT_STEP)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .bind(sealed_secret)
            .bind(step)
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn use_recovery_code(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        code_hash: &[u8],
        at: OffsetDateTime,
    ) -> Result<bool> {
        validate_recovery_code_hash(code_hash)?;
        let mut conn = self.shared.conn().await?;
        let done = sqlx::query(USE_CODE)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .bind(code_hash)
            .bind(micros(at))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete(&self, tenant: &TenantId, account: &PrincipalId) -> Result<bool> {
        let mut conn = self.shared.conn().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(err)?;
        sqlx::query(DELETE_CODES)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        let done = sqlx::query(DELETE)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .execute(&mut *tx)
            .await
            .map_err(err)?;
        tx.commit().await.map_err(err)?;
        Ok(done.rows_affected() > 0)
    }
}
