//! The `accounts` row shared by the SQLite and PostgreSQL account adapters.

use docaiche_core::account::{Account, AccountEmail};
use docaiche_core::page::Page;
use docaiche_core::{Error, PrincipalId, Result, TenantId};

use super::{from_micros, to_json};

/// The columns of `accounts`, in [`AccountRow`] order.
pub(crate) const ACCOUNT_COLUMNS: &str =
    "tenant_id, id, email, password_hash, roles, disabled, created_at, updated_at";

/// One `accounts` row.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct AccountRow {
    tenant_id: String,
    id: String,
    email: String,
    password_hash: String,
    roles: String,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
}

impl AccountRow {
    /// The account, or `Internal` for a row no adapter writes.
    pub(crate) fn into_account(self) -> Result<Account> {
        let corrupt = |what: &'static str| move |e: Error| Error::internal_with(what, e);
        let tenant =
            TenantId::new(self.tenant_id).map_err(corrupt("stored tenant id is invalid"))?;
        let id = PrincipalId::new(self.id).map_err(corrupt("stored account id is invalid"))?;
        let email = AccountEmail::new(self.email).map_err(corrupt("stored email is invalid"))?;
        let roles: Vec<String> = serde_json::from_str(&self.roles)
            .map_err(|e| Error::internal_with("stored account roles are invalid", e))?;
        let mut account = Account::new(
            tenant,
            id,
            email,
            self.password_hash,
            from_micros(self.created_at)?,
        )
        .with_roles(roles)
        .with_disabled(self.disabled);
        account.updated_at = from_micros(self.updated_at)?;
        Ok(account)
    }
}

/// The roles column of `roles`.
pub(crate) fn roles_json(roles: &[String]) -> Result<String> {
    to_json(roles)
}

/// One page from rows fetched with `fetch_limit`, the cursor the last id.
pub(crate) fn account_page(items: &mut Vec<Account>, limit: u32) -> Page<Account> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|a| a.id.to_string())
    } else {
        None
    };
    Page::new(std::mem::take(items), next)
}
