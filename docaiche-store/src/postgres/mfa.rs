//! [`PgMfaStore`]: second-factor enrolments in PostgreSQL, and its
//! statements (public for the `EXPLAIN` test, not a stable API).

use std::sync::Arc;
use std::sync::LazyLock;

use docaiche_core::mfa::{MfaEnrolment, MfaStore, NewMfaEnrolment, validate_recovery_code_hash};
use docaiche_core::{PrincipalId, Result, TenantId};
use sqlx::Connection;
use time::OffsetDateTime;

use super::{Scope, Shared, err, set_scope};
use crate::sql::mfa::{MFA_COLUMNS, MfaRow, already_active, checked_step};
use crate::sql::micros;

/// Create a pending enrolment, or replace a pending one (not an active
/// one): tenant, account, sealed secret, created at. The upsert locks the
/// row, so concurrent `begin`s of one account run one after the other.
pub const BEGIN: &str = "INSERT INTO mfa_enrolments (tenant_id, account_id, sealed_secret, state, \
     last_step, created_at, confirmed_at) VALUES ($1, $2, $3, 'pending', NULL, $4, NULL) \
     ON CONFLICT (tenant_id, account_id) DO UPDATE SET sealed_secret = excluded.sealed_secret, \
     last_step = NULL, created_at = excluded.created_at, confirmed_at = NULL \
     WHERE mfa_enrolments.state = 'pending'";
/// Delete an enrolment's recovery codes: tenant, account.
pub const DELETE_CODES: &str =
    "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND account_id = $2";
/// Every recovery code in one statement: tenant, account, hashes.
pub const INSERT_CODES: &str = "INSERT INTO mfa_recovery_codes (tenant_id, account_id, code_hash, \
     used_at) SELECT $1, $2, hash, NULL FROM UNNEST($3::BYTEA[]) AS hash";
/// An enrolment with its count of unused codes: tenant, account.
pub static GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {MFA_COLUMNS} FROM mfa_enrolments e WHERE e.tenant_id = $1 AND e.account_id = $2"
    )
});
/// Pending to active: tenant, account, sealed secret, step, at.
pub const CONFIRM: &str = "UPDATE mfa_enrolments SET state = 'active', last_step = $4, \
     confirmed_at = $5 WHERE tenant_id = $1 AND account_id = $2 AND sealed_secret = $3 \
     AND state = 'pending'";
/// Accept a step: tenant, account, sealed secret, step.
///
/// Under READ COMMITTED a concurrent update of the row makes this one wait
/// and then re-check its `WHERE` against the new row: of two calls with
/// one step, the second finds `last_step < $4` false.
pub const ACCEPT_STEP: &str = "UPDATE mfa_enrolments SET last_step = $4 WHERE tenant_id = $1 \
     AND account_id = $2 AND sealed_secret = $3 AND state = 'active' \
     AND (last_step IS NULL OR last_step < $4)";
/// Use a recovery code: tenant, account, hash, at.
pub const USE_CODE: &str = "UPDATE mfa_recovery_codes SET used_at = $4 WHERE tenant_id = $1 \
     AND account_id = $2 AND code_hash = $3 AND used_at IS NULL AND EXISTS (SELECT 1 FROM \
     mfa_enrolments e WHERE e.tenant_id = $1 AND e.account_id = $2 AND e.state = 'active')";
/// Delete an enrolment: tenant, account.
pub const DELETE: &str = "DELETE FROM mfa_enrolments WHERE tenant_id = $1 AND account_id = $2";

/// An [`MfaStore`] in PostgreSQL (tables `mfa_enrolments` and
/// `mfa_recovery_codes`, keyed by tenant and account, under the
/// `mfa_enrolments_tenant` and `mfa_recovery_codes_tenant` row-level
/// security policies when they are on), from
/// [`PgStore::mfa`](super::PgStore::mfa).
///
/// `begin` and `delete` are one transaction over both tables; the
/// compare-and-set calls are single conditional `UPDATE`s, atomic across
/// instances. Reads go to the primary, never the replica: a confirmation
/// must see the enrolment begun a moment before, and a verification the
/// last step accepted.
#[derive(Debug, Clone)]
pub struct PgMfaStore {
    shared: Arc<Shared>,
}

impl PgMfaStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Run one statement on the primary, scoped to `tenant`; rows affected.
    async fn execute(
        &self,
        tenant: &TenantId,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> Result<u64> {
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let done = query.execute(ex.conn()).await.map_err(err)?;
        ex.finish().await?;
        Ok(done.rows_affected())
    }
}

#[async_trait::async_trait]
impl MfaStore for PgMfaStore {
    async fn begin(&self, enrolment: &NewMfaEnrolment) -> Result<()> {
        enrolment.validate()?;
        let (tenant, account) = (enrolment.tenant.as_str(), enrolment.account.as_str());
        let mut conn = self.shared.write().await?;
        let mut tx = conn.begin().await.map_err(err)?;
        if self.shared.rls {
            set_scope(&mut tx, Scope::Tenant(tenant)).await?;
        }
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
        if !enrolment.recovery_codes.is_empty() {
            sqlx::query(INSERT_CODES)
                .bind(tenant)
                .bind(account)
                .bind(&enrolment.recovery_codes)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
        }
        tx.commit().await.map_err(err)
    }

    async fn get(&self, tenant: &TenantId, account: &PrincipalId) -> Result<Option<MfaEnrolment>> {
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let row: Option<MfaRow> = sqlx::query_as(&GET)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .fetch_optional(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
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
        let query = sqlx::query(CONFIRM)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .bind(sealed_secret)
            .bind(step)
            .bind(micros(at));
        Ok(self.execute(tenant, query).await? > 0)
    }

    async fn accept_step(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        sealed_secret: &[u8],
        step: u64,
    ) -> Result<bool> {
        let step = checked_step(sealed_secret, step)?;
        let query = sqlx::query(ACCEPT_STEP)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .bind(sealed_secret)
            .bind(step);
        Ok(self.execute(tenant, query).await? > 0)
    }

    async fn use_recovery_code(
        &self,
        tenant: &TenantId,
        account: &PrincipalId,
        code_hash: &[u8],
        at: OffsetDateTime,
    ) -> Result<bool> {
        validate_recovery_code_hash(code_hash)?;
        let query = sqlx::query(USE_CODE)
            .bind(tenant.as_str())
            .bind(account.as_str())
            .bind(code_hash)
            .bind(micros(at));
        Ok(self.execute(tenant, query).await? > 0)
    }

    async fn delete(&self, tenant: &TenantId, account: &PrincipalId) -> Result<bool> {
        let mut conn = self.shared.write().await?;
        let mut tx = conn.begin().await.map_err(err)?;
        if self.shared.rls {
            set_scope(&mut tx, Scope::Tenant(tenant.as_str())).await?;
        }
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
