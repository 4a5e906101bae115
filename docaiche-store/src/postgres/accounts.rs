//! [`PgAccountStore`]: password accounts in PostgreSQL, and its statements
//! (public for the `EXPLAIN` test, not a stable API).

use std::sync::Arc;
use std::sync::LazyLock;

use docaiche_core::account::{Account, AccountEmail, AccountStore, parse_account_cursor};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use time::OffsetDateTime;

use super::{Scope, Shared, err};
use crate::sql::account::{ACCOUNT_COLUMNS, AccountRow, account_page, roles_json};
use crate::sql::{fetch_limit, is_unique_violation, micros};

/// Create an account.
pub const INSERT: &str = "INSERT INTO accounts (tenant_id, id, email, password_hash, roles, disabled, \
     created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
/// One account by tenant and id.
pub static GET: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = $1 AND id = $2")
});
/// One account by tenant and email.
pub static FIND_BY_EMAIL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = $1 AND email = $2")
});
/// A page of a tenant's accounts after an id.
pub static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = $1 AND id > $2 \
         ORDER BY id LIMIT $3"
    )
});
/// Replace the password hash.
pub const SET_PASSWORD_HASH: &str =
    "UPDATE accounts SET password_hash = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2";
/// Replace the password hash if it is still the expected one (`$4`).
pub const SWAP_PASSWORD_HASH: &str = "UPDATE accounts SET password_hash = $3, updated_at = $5 \
     WHERE tenant_id = $1 AND id = $2 AND password_hash = $4";
/// Replace the roles.
pub const SET_ROLES: &str =
    "UPDATE accounts SET roles = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2";
/// Disable or enable.
pub const SET_DISABLED: &str =
    "UPDATE accounts SET disabled = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2";
/// Delete an account.
pub const DELETE: &str = "DELETE FROM accounts WHERE tenant_id = $1 AND id = $2";

/// The value an update writes.
enum Change<'a> {
    Text(&'a str),
    Flag(bool),
    /// The new text, then the one it must replace.
    Swap(&'a str, &'a str),
}

/// An [`AccountStore`] in PostgreSQL (table `accounts`, keyed by tenant and
/// id, emails unique per tenant, under the `accounts_tenant` row-level
/// security policy when it is on), from
/// [`PgStore::accounts`](super::PgStore::accounts).
#[derive(Debug, Clone)]
pub struct PgAccountStore {
    shared: Arc<Shared>,
}

impl PgAccountStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn update(
        &self,
        sql: &str,
        tenant: &TenantId,
        id: &PrincipalId,
        change: Change<'_>,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let query = sqlx::query(sql).bind(tenant.as_str()).bind(id.as_str());
        let query = match change {
            Change::Text(text) => query.bind(text),
            Change::Flag(flag) => query.bind(flag),
            Change::Swap(new, expected) => query.bind(new).bind(expected),
        };
        let done = query
            .bind(micros(at))
            .execute(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        Ok(done.rows_affected() > 0)
    }

    async fn fetch_one_row(
        &self,
        sql: &str,
        tenant: &TenantId,
        key: &str,
    ) -> Result<Option<Account>> {
        let mut conn = self.shared.read().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let row: Option<AccountRow> = sqlx::query_as(sql)
            .bind(tenant.as_str())
            .bind(key)
            .fetch_optional(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        row.map(AccountRow::into_account).transpose()
    }
}

#[async_trait::async_trait]
impl AccountStore for PgAccountStore {
    async fn create(&self, account: &Account) -> Result<()> {
        let roles = roles_json(&account.roles)?;
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(account.tenant.as_str()))
            .await?;
        let inserted = sqlx::query(INSERT)
            .bind(account.tenant.as_str())
            .bind(account.id.as_str())
            .bind(account.email.as_str())
            .bind(account.password_hash.as_str())
            .bind(roles)
            .bind(account.disabled)
            .bind(micros(account.created_at))
            .bind(micros(account.updated_at))
            .execute(ex.conn())
            .await;
        match inserted {
            Ok(_) => ex.finish().await,
            Err(e) if is_unique_violation(&e) => {
                Err(Error::conflict("account id or email already exists"))
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn get(&self, tenant: &TenantId, id: &PrincipalId) -> Result<Option<Account>> {
        self.fetch_one_row(&GET, tenant, id.as_str()).await
    }

    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &AccountEmail,
    ) -> Result<Option<Account>> {
        self.fetch_one_row(&FIND_BY_EMAIL, tenant, email.as_str())
            .await
    }

    async fn update_password_hash(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.update(
            SET_PASSWORD_HASH,
            tenant,
            id,
            Change::Text(password_hash),
            at,
        )
        .await
    }

    async fn swap_password_hash(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        expected: &str,
        password_hash: &str,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.update(
            SWAP_PASSWORD_HASH,
            tenant,
            id,
            Change::Swap(password_hash, expected),
            at,
        )
        .await
    }

    async fn set_roles(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        roles: &[String],
        at: OffsetDateTime,
    ) -> Result<bool> {
        let roles = roles_json(roles)?;
        self.update(SET_ROLES, tenant, id, Change::Text(&roles), at)
            .await
    }

    async fn set_disabled(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.update(SET_DISABLED, tenant, id, Change::Flag(disabled), at)
            .await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Account>> {
        let after = parse_account_cursor(page.after.as_deref())?;
        let mut conn = self.shared.read().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let rows: Vec<AccountRow> = sqlx::query_as(&LIST)
            .bind(tenant.as_str())
            .bind(after.as_ref().map_or("", PrincipalId::as_str))
            .bind(fetch_limit(page.limit))
            .fetch_all(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        let mut items = rows
            .into_iter()
            .map(AccountRow::into_account)
            .collect::<Result<Vec<_>>>()?;
        Ok(account_page(&mut items, page.limit))
    }

    async fn delete(&self, tenant: &TenantId, id: &PrincipalId) -> Result<bool> {
        let mut conn = self.shared.write().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let done = sqlx::query(DELETE)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        Ok(done.rows_affected() > 0)
    }
}
