//! [`SqliteAccountStore`]: password accounts in SQLite.

use std::sync::Arc;
use std::sync::LazyLock;

use docaiche_core::account::{Account, AccountEmail, AccountStore, parse_account_cursor};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::{Error, PrincipalId, Result, TenantId};
use time::OffsetDateTime;

use super::{Shared, err};
use crate::sql::account::{ACCOUNT_COLUMNS, AccountRow, account_page, roles_json};
use crate::sql::{fetch_limit, is_unique_violation, micros};

const INSERT: &str = "INSERT INTO accounts (tenant_id, id, email, password_hash, roles, disabled, \
     created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
static GET: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = ?1 AND id = ?2")
});
static FIND_BY_EMAIL: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = ?1 AND email = ?2")
});
static LIST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE tenant_id = ?1 AND id > ?2 \
         ORDER BY id LIMIT ?3"
    )
});
const SET_PASSWORD_HASH: &str =
    "UPDATE accounts SET password_hash = ?3, updated_at = ?4 WHERE tenant_id = ?1 AND id = ?2";
/// `?3` the new hash, `?4` the expected one, `?5` the time.
const SWAP_PASSWORD_HASH: &str = "UPDATE accounts SET password_hash = ?3, updated_at = ?5 \
     WHERE tenant_id = ?1 AND id = ?2 AND password_hash = ?4";
const SET_ROLES: &str =
    "UPDATE accounts SET roles = ?3, updated_at = ?4 WHERE tenant_id = ?1 AND id = ?2";
const SET_DISABLED: &str =
    "UPDATE accounts SET disabled = ?3, updated_at = ?4 WHERE tenant_id = ?1 AND id = ?2";
const DELETE: &str = "DELETE FROM accounts WHERE tenant_id = ?1 AND id = ?2";

/// An [`AccountStore`] in SQLite (table `accounts`, keyed by tenant and
/// id, emails unique per tenant), from
/// [`SqliteStore::accounts`](super::SqliteStore::accounts).
#[derive(Debug, Clone)]
pub struct SqliteAccountStore {
    shared: Arc<Shared>,
}

impl SqliteAccountStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn update<'q>(
        &self,
        sql: &'q str,
        tenant: &'q TenantId,
        id: &'q PrincipalId,
        bind: impl FnOnce(
            sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        )
            -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let mut conn = self.shared.conn().await?;
        let query = bind(sqlx::query(sql).bind(tenant.as_str()).bind(id.as_str()));
        let done = query
            .bind(micros(at))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait::async_trait]
impl AccountStore for SqliteAccountStore {
    async fn create(&self, account: &Account) -> Result<()> {
        let roles = roles_json(&account.roles)?;
        let mut conn = self.shared.conn().await?;
        let inserted = sqlx::query(INSERT)
            .bind(account.tenant.as_str())
            .bind(account.id.as_str())
            .bind(account.email.as_str())
            .bind(account.password_hash.as_str())
            .bind(roles)
            .bind(account.disabled)
            .bind(micros(account.created_at))
            .bind(micros(account.updated_at))
            .execute(&mut *conn)
            .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(Error::conflict("account id or email already exists"))
            }
            Err(e) => Err(err(e)),
        }
    }

    async fn get(&self, tenant: &TenantId, id: &PrincipalId) -> Result<Option<Account>> {
        let mut conn = self.shared.conn().await?;
        let row: Option<AccountRow> = sqlx::query_as(&GET)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(err)?;
        row.map(AccountRow::into_account).transpose()
    }

    async fn find_by_email(
        &self,
        tenant: &TenantId,
        email: &AccountEmail,
    ) -> Result<Option<Account>> {
        let mut conn = self.shared.conn().await?;
        let row: Option<AccountRow> = sqlx::query_as(&FIND_BY_EMAIL)
            .bind(tenant.as_str())
            .bind(email.as_str())
            .fetch_optional(&mut *conn)
            .await
            .map_err(err)?;
        row.map(AccountRow::into_account).transpose()
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
            |q| q.bind(password_hash.to_owned()),
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
            |q| q.bind(password_hash.to_owned()).bind(expected.to_owned()),
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
        self.update(SET_ROLES, tenant, id, |q| q.bind(roles), at)
            .await
    }

    async fn set_disabled(
        &self,
        tenant: &TenantId,
        id: &PrincipalId,
        disabled: bool,
        at: OffsetDateTime,
    ) -> Result<bool> {
        self.update(SET_DISABLED, tenant, id, |q| q.bind(disabled), at)
            .await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<Account>> {
        let after = parse_account_cursor(page.after.as_deref())?;
        let mut conn = self.shared.conn().await?;
        let rows: Vec<AccountRow> = sqlx::query_as(&LIST)
            .bind(tenant.as_str())
            .bind(after.as_ref().map_or("", PrincipalId::as_str))
            .bind(fetch_limit(page.limit))
            .fetch_all(&mut *conn)
            .await
            .map_err(err)?;
        let mut items = rows
            .into_iter()
            .map(AccountRow::into_account)
            .collect::<Result<Vec<_>>>()?;
        Ok(account_page(&mut items, page.limit))
    }

    async fn delete(&self, tenant: &TenantId, id: &PrincipalId) -> Result<bool> {
        let mut conn = self.shared.conn().await?;
        let done = sqlx::query(DELETE)
            .bind(tenant.as_str())
            .bind(id.as_str())
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }
}
