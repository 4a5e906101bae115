//! [`PgWebSessionStore`]: browser sessions in PostgreSQL.

use std::sync::Arc;
use std::sync::LazyLock;

use docaiche_core::web_session::{WebSession, WebSessionKey, WebSessionStore};
use docaiche_core::{PrincipalId, Result, TenantId};
use time::OffsetDateTime;

use super::{Shared, err};
use crate::sql::web_session::{WEB_SESSION_COLUMNS, WebSessionRow, duplicate};
use crate::sql::{is_unique_violation, micros};

static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO web_sessions ({WEB_SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)")
});
static GET: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {WEB_SESSION_COLUMNS} FROM web_sessions WHERE session_key = $1")
});
/// Last-seen only moves later: a slower instance's touch cannot undo a
/// newer one.
const TOUCH: &str =
    "UPDATE web_sessions SET last_seen_at = GREATEST(last_seen_at, $2) WHERE session_key = $1";
const DELETE: &str = "DELETE FROM web_sessions WHERE session_key = $1";
const DELETE_SUBJECT: &str = "DELETE FROM web_sessions WHERE tenant_id = $1 AND principal_id = $2";
const PURGE: &str = "DELETE FROM web_sessions WHERE last_seen_at < $1 OR created_at < $2";

/// A [`WebSessionStore`] in PostgreSQL (table `web_sessions`, keyed by the
/// SHA-256 of the cookie value, indexed by subject and by both times),
/// from [`PgStore::web_sessions`](super::PgStore::web_sessions).
///
/// Every method is one statement on the primary: never the replica, whose
/// lag could hide a session started a moment ago on another instance, or
/// keep showing one just ended. Times are kept in microseconds.
///
/// The table has no row-level security policy, whatever
/// [`PgConfig::row_level_security`](super::PgConfig::row_level_security)
/// says: a session is found by its key before any tenant is known (the key
/// is the credential), and the purge spans every tenant. `remove_subject`
/// names its tenant in the statement.
#[derive(Debug, Clone)]
pub struct PgWebSessionStore {
    shared: Arc<Shared>,
}

impl PgWebSessionStore {
    pub(crate) const fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait::async_trait]
impl WebSessionStore for PgWebSessionStore {
    async fn insert(&self, session: &WebSession) -> Result<()> {
        let mut conn = self.shared.write().await?;
        let done = sqlx::query(&INSERT)
            .bind(session.key.as_bytes().as_slice())
            .bind(session.tenant.as_str())
            .bind(session.subject.as_str())
            .bind(micros(session.created_at))
            .bind(micros(session.last_seen_at))
            .bind(session.second_factor.as_str())
            .execute(&mut *conn)
            .await;
        match done {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => Err(duplicate()),
            Err(e) => Err(err(e)),
        }
    }

    async fn get(&self, key: &WebSessionKey) -> Result<Option<WebSession>> {
        let mut conn = self.shared.write().await?;
        let row: Option<WebSessionRow> = sqlx::query_as(&GET)
            .bind(key.as_bytes().as_slice())
            .fetch_optional(&mut *conn)
            .await
            .map_err(err)?;
        row.map(WebSessionRow::into_session).transpose()
    }

    async fn touch(&self, key: &WebSessionKey, at: OffsetDateTime) -> Result<bool> {
        let mut conn = self.shared.write().await?;
        let done = sqlx::query(TOUCH)
            .bind(key.as_bytes().as_slice())
            .bind(micros(at))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove(&self, key: &WebSessionKey) -> Result<bool> {
        let mut conn = self.shared.write().await?;
        let done = sqlx::query(DELETE)
            .bind(key.as_bytes().as_slice())
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() > 0)
    }

    async fn remove_subject(&self, tenant: &TenantId, subject: &PrincipalId) -> Result<u64> {
        let mut conn = self.shared.write().await?;
        let done = sqlx::query(DELETE_SUBJECT)
            .bind(tenant.as_str())
            .bind(subject.as_str())
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected())
    }

    async fn purge(
        &self,
        idle_before: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> Result<u64> {
        let mut conn = self.shared.write().await?;
        let done = sqlx::query(PURGE)
            .bind(micros(idle_before))
            .bind(micros(created_before))
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected())
    }
}
