//! The PostgreSQL adapters, one per trait (the job queue in [`super::jobs`]). The SQL lives in [`super::queries`].

use std::collections::BTreeMap;
use std::sync::Arc;

use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyStore, ApiKeyUsage};
use docaiche_core::audit::{AuditEvent, AuditReceipt, AuditSink};
use docaiche_core::document::{Document, DocumentMeta, DocumentStore, DocumentText, NewDocument};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::revocation::{IssuedToken, TokenRevocationStore, validate_token_id};
use docaiche_core::{ApiKeyId, DocumentId, Error, PrincipalId, Result, TenantId};
use sqlx::{Connection, FromRow, Row};
use time::OffsetDateTime;

use super::queries as q;
use super::{Scope, Shared, err, set_scope};
use crate::sql::{
    ApiKeyRow, AuditRow, DocumentRow, audit_cursor, audit_outcome, audit_page, cursor_or_start,
    fetch_limit, from_micros, is_unique_violation, micros, micros_ceil, page_of, parse_cursor,
    risks_column, signed, text_from_columns, to_json, truncate,
};
use crate::trace::traced;

adapter!(
    /// [`DocumentStore`] in PostgreSQL (table `documents`).
    PgDocumentStore
);
adapter!(
    /// [`ApiKeyStore`] in PostgreSQL (table `api_keys`).
    PgApiKeyStore
);
adapter!(
    /// [`TokenRevocationStore`] in PostgreSQL (table `token_revocations`).
    PgRevocationStore
);
adapter!(
    /// [`AuditSink`] in PostgreSQL (table `audit_events`, sequenced by an
    /// identity column). `Ok` means committed.
    PgAuditSink
);

#[async_trait::async_trait]
impl DocumentStore for PgDocumentStore {
    async fn usage(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<docaiche_core::document::StorageUsage>> {
        traced!("postgresql", "documents", "usage", async move {
            // The primary: a quota must not read a lagging count.
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let (documents, bytes): (i64, i64) = sqlx::query_as(q::DOCUMENT_USAGE)
                .bind(tenant.as_str())
                .fetch_one(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            Ok(Some(crate::sql::storage_usage(documents, bytes)))
        })
        .await
    }

    async fn put(&self, tenant: &TenantId, document: NewDocument) -> Result<DocumentMeta> {
        traced!("postgresql", "documents", "put", async move {
            let now = truncate(self.shared.clock.now());
            let size = u64::try_from(document.content.len()).unwrap_or(u64::MAX);
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let inserted = sqlx::query(q::DOCUMENT_INSERT)
                .bind(tenant.as_str())
                .bind(document.id.as_uuid())
                .bind(document.owner.as_str())
                .bind(document.filename.as_deref().map(str::as_bytes))
                .bind(document.content_type.as_bytes())
                .bind(signed(size))
                .bind(document.sha256.as_bytes())
                .bind(document.content.as_ref())
                .bind(micros(now))
                .execute(ex.conn())
                .await;
            match inserted {
                Ok(_) => ex.finish().await?,
                Err(e) if is_unique_violation(&e) => {
                    return Err(Error::conflict("document id already exists"));
                }
                Err(e) => return Err(err(e)),
            }
            let mut meta = DocumentMeta::new(
                document.id,
                tenant.clone(),
                document.owner,
                document.content_type,
                size,
                document.sha256,
                now,
            );
            meta.filename = document.filename;
            Ok(meta)
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<Document>> {
        traced!("postgresql", "documents", "get", async move {
            let mut conn = self.shared.read().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let row = sqlx::query(&q::DOCUMENT_GET)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            let Some(row) = row else { return Ok(None) };
            let content: Vec<u8> = row.try_get("content").map_err(err)?;
            let meta = DocumentRow::from_row(&row).map_err(err)?.into_meta()?;
            Ok(Some(Document::new(meta, content.into())))
        })
        .await
    }

    async fn head(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentMeta>> {
        traced!("postgresql", "documents", "head", async move {
            let mut conn = self.shared.read().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let row: Option<DocumentRow> = sqlx::query_as(&q::DOCUMENT_HEAD)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            row.map(DocumentRow::into_meta).transpose()
        })
        .await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<DocumentMeta>> {
        traced!("postgresql", "documents", "list", async move {
            let after = cursor_or_start(parse_cursor(page.after.as_deref())?);
            let mut conn = self.shared.read().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let rows: Vec<DocumentRow> = sqlx::query_as(&q::DOCUMENT_LIST)
                .bind(tenant.as_str())
                .bind(after)
                .bind(fetch_limit(page.limit))
                .fetch_all(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            let items = rows
                .into_iter()
                .map(DocumentRow::into_meta)
                .collect::<Result<Vec<_>>>()?;
            Ok(page_of(items, page.limit, |m| *m.id.as_uuid()))
        })
        .await
    }

    async fn list_by_owner(
        &self,
        tenant: &TenantId,
        owner: &PrincipalId,
        page: &PageRequest,
    ) -> Result<Page<DocumentMeta>> {
        traced!("postgresql", "documents", "list_by_owner", async move {
            let after = cursor_or_start(parse_cursor(page.after.as_deref())?);
            let mut conn = self.shared.read().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let rows: Vec<DocumentRow> = sqlx::query_as(&q::DOCUMENT_LIST_BY_OWNER)
                .bind(tenant.as_str())
                .bind(owner.as_str())
                .bind(after)
                .bind(fetch_limit(page.limit))
                .fetch_all(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            let items = rows
                .into_iter()
                .map(DocumentRow::into_meta)
                .collect::<Result<Vec<_>>>()?;
            Ok(page_of(items, page.limit, |m| *m.id.as_uuid()))
        })
        .await
    }

    async fn delete(&self, tenant: &TenantId, id: &DocumentId) -> Result<bool> {
        traced!("postgresql", "documents", "delete", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let done = sqlx::query(q::DOCUMENT_DELETE)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .execute(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn put_text(
        &self,
        tenant: &TenantId,
        id: &DocumentId,
        text: &DocumentText,
    ) -> Result<()> {
        traced!("postgresql", "document_texts", "put", async move {
            let json = to_json(&text.pages)?;
            let risks = risks_column(&text.risks);
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let done = sqlx::query(q::DOCUMENT_PUT_TEXT)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .bind(json)
                .bind(risks)
                .execute(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            if done.rows_affected() == 0 {
                return Err(Error::not_found("document"));
            }
            Ok(())
        })
        .await
    }

    async fn get_text(&self, tenant: &TenantId, id: &DocumentId) -> Result<Option<DocumentText>> {
        traced!("postgresql", "document_texts", "get", async move {
            let mut conn = self.shared.read().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let row: Option<(Option<String>, String)> = sqlx::query_as(q::DOCUMENT_GET_TEXT)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            row.and_then(|(text, risks)| text.map(|t| text_from_columns(&t, &risks)))
                .transpose()
        })
        .await
    }
}

#[async_trait::async_trait]
impl ApiKeyStore for PgApiKeyStore {
    async fn insert(&self, record: &ApiKeyRecord) -> Result<()> {
        traced!("postgresql", "api_keys", "insert", async move {
            let scopes = to_json(&record.scopes)?;
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(record.tenant.as_str()))
                .await?;
            let inserted = sqlx::query(&q::API_KEY_INSERT)
                .bind(record.tenant.as_str())
                .bind(record.id.as_uuid())
                .bind(record.principal.as_str())
                .bind(record.name.as_bytes())
                .bind(record.lookup.as_str())
                .bind(&record.hash)
                .bind(i64::from(record.hash_version))
                .bind(scopes)
                .bind(micros(record.created_at))
                .bind(record.expires_at.map(micros))
                .bind(record.last_used_at.map(micros))
                .bind(record.revoked_at.map(micros))
                .bind(record.replaced_by.map(|id| *id.as_uuid()))
                .execute(ex.conn())
                .await;
            match inserted {
                Ok(_) => ex.finish().await,
                Err(e) if is_unique_violation(&e) => {
                    Err(Error::conflict("api key id or lookup already exists"))
                }
                Err(e) => Err(err(e)),
            }
        })
        .await
    }

    async fn find_by_lookup(&self, lookup: &ApiKeyLookup) -> Result<Option<ApiKeyRecord>> {
        traced!("postgresql", "api_keys", "find_by_lookup", async move {
            let mut conn = self.shared.read().await?;
            // The one unscoped read of the contract; under RLS it may see only
            // the row whose lookup id it names.
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Lookup(lookup.as_str()))
                .await?;
            let row: Option<ApiKeyRow> = sqlx::query_as(&q::API_KEY_FIND_BY_LOOKUP)
                .bind(lookup.as_str())
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            row.map(ApiKeyRow::into_record).transpose()
        })
        .await
    }

    async fn get(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        traced!("postgresql", "api_keys", "get", async move {
            let mut conn = self.shared.read().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let row: Option<ApiKeyRow> = sqlx::query_as(&q::API_KEY_GET)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            row.map(ApiKeyRow::into_record).transpose()
        })
        .await
    }

    async fn list(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<ApiKeyRecord>> {
        traced!("postgresql", "api_keys", "list", async move {
            let after = cursor_or_start(parse_cursor(page.after.as_deref())?);
            let mut conn = self.shared.read().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let rows: Vec<ApiKeyRow> = sqlx::query_as(&q::API_KEY_LIST)
                .bind(tenant.as_str())
                .bind(after)
                .bind(fetch_limit(page.limit))
                .fetch_all(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            let items = rows
                .into_iter()
                .map(ApiKeyRow::into_record)
                .collect::<Result<Vec<_>>>()?;
            Ok(page_of(items, page.limit, |r| *r.id.as_uuid()))
        })
        .await
    }

    async fn revoke(&self, tenant: &TenantId, id: &ApiKeyId, at: OffsetDateTime) -> Result<bool> {
        traced!("postgresql", "api_keys", "revoke", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let done = sqlx::query(q::API_KEY_REVOKE)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .bind(micros(at))
                .execute(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn delete(&self, tenant: &TenantId, id: &ApiKeyId) -> Result<bool> {
        traced!("postgresql", "api_keys", "delete", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let done = sqlx::query(q::API_KEY_DELETE)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .execute(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn mark_rotated(
        &self,
        tenant: &TenantId,
        id: &ApiKeyId,
        replaced_by: &ApiKeyId,
        valid_until: OffsetDateTime,
    ) -> Result<bool> {
        traced!("postgresql", "api_keys", "mark_rotated", async move {
            let mut conn = self.shared.write().await?;
            let mut ex = self
                .shared
                .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
                .await?;
            let done = sqlx::query(q::API_KEY_MARK_ROTATED)
                .bind(tenant.as_str())
                .bind(id.as_uuid())
                .bind(replaced_by.as_uuid())
                .bind(micros(valid_until))
                .execute(ex.conn())
                .await
                .map_err(err)?;
            ex.finish().await?;
            Ok(done.rows_affected() > 0)
        })
        .await
    }

    async fn record_usage(&self, usage: &[ApiKeyUsage]) -> Result<()> {
        traced!("postgresql", "api_keys", "record_usage", async move {
            // The latest use per key, grouped by tenant: one statement per
            // tenant, all in one transaction.
            let mut latest: BTreeMap<&str, BTreeMap<uuid::Uuid, i64>> = BTreeMap::new();
            for u in usage {
                let at = micros(u.used_at);
                let slot = latest
                    .entry(u.tenant.as_str())
                    .or_default()
                    .entry(*u.id.as_uuid())
                    .or_insert(at);
                *slot = (*slot).max(at);
            }
            if latest.is_empty() {
                return Ok(());
            }
            let mut conn = self.shared.write().await?;
            let mut tx = conn.begin().await.map_err(err)?;
            for (tenant, keys) in latest {
                if self.shared.rls {
                    set_scope(&mut tx, Scope::Tenant(tenant)).await?;
                }
                let (ids, times): (Vec<uuid::Uuid>, Vec<i64>) = keys.into_iter().unzip();
                sqlx::query(q::API_KEY_RECORD_USAGE)
                    .bind(tenant)
                    .bind(ids)
                    .bind(times)
                    .execute(&mut *tx)
                    .await
                    .map_err(err)?;
            }
            tx.commit().await.map_err(err)
        })
        .await
    }
}

#[async_trait::async_trait]
impl TokenRevocationStore for PgRevocationStore {
    async fn revoke(&self, token_id: &str, expires_at: OffsetDateTime) -> Result<()> {
        traced!("postgresql", "revoked_tokens", "revoke", async move {
            validate_token_id(token_id)?;
            if expires_at <= self.shared.clock.now() {
                // Already unusable: nothing to remember.
                return Ok(());
            }
            let mut conn = self.shared.write().await?;
            sqlx::query(q::REVOCATION_UPSERT)
                .bind(token_id)
                .bind(micros_ceil(expires_at))
                .execute(&mut *conn)
                .await
                .map_err(err)?;
            Ok(())
        })
        .await
    }

    async fn is_revoked(&self, token_id: &str) -> Result<bool> {
        traced!("postgresql", "revoked_tokens", "is_revoked", async move {
            validate_token_id(token_id)?;
            let now = micros(self.shared.clock.now());
            let mut conn = self.shared.read().await?;
            let found: Option<i64> = sqlx::query_scalar(q::REVOCATION_CHECK)
                .bind(token_id)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await
                .map_err(err)?;
            Ok(found.is_some())
        })
        .await
    }

    async fn revoke_subject(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
        through: OffsetDateTime,
        remember_until: OffsetDateTime,
    ) -> Result<()> {
        traced!(
            "postgresql",
            "revoked_subjects",
            "revoke_subject",
            async move {
                if remember_until <= self.shared.clock.now() {
                    // Nothing issued through `through` can still be valid.
                    return Ok(());
                }
                let mut conn = self.shared.write().await?;
                sqlx::query(q::SUBJECT_REVOCATION_UPSERT)
                    .bind(tenant.as_str())
                    .bind(subject.as_str())
                    .bind(micros_ceil(through))
                    .bind(micros_ceil(remember_until))
                    .execute(&mut *conn)
                    .await
                    .map_err(err)?;
                Ok(())
            }
        )
        .await
    }

    async fn subject_revoked_through(
        &self,
        tenant: &TenantId,
        subject: &PrincipalId,
    ) -> Result<Option<OffsetDateTime>> {
        traced!(
            "postgresql",
            "revoked_subjects",
            "subject_revoked_through",
            async move {
                let now = micros(self.shared.clock.now());
                let mut conn = self.shared.read().await?;
                let through: Option<i64> = sqlx::query_scalar(q::SUBJECT_REVOCATION_CHECK)
                    .bind(tenant.as_str())
                    .bind(subject.as_str())
                    .bind(now)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(err)?;
                through.map(from_micros).transpose()
            }
        )
        .await
    }

    async fn is_token_revoked(&self, token: &IssuedToken<'_>) -> Result<bool> {
        traced!(
            "postgresql",
            "revoked_tokens",
            "is_token_revoked",
            async move {
                validate_token_id(token.token_id)?;
                // `issued_within`: the token's `iat` second is at or before the
                // revocation's, that is `through` (µs) >= the start of that second.
                let issued_second = token.issued_at.unix_timestamp().saturating_mul(1_000_000);
                let mut conn = self.shared.read().await?;
                let revoked: bool = sqlx::query_scalar(q::TOKEN_OR_SUBJECT_REVOKED)
                    .bind(token.token_id)
                    .bind(token.tenant.as_str())
                    .bind(token.subject.as_str())
                    .bind(micros(self.shared.clock.now()))
                    .bind(issued_second)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(err)?;
                Ok(revoked)
            }
        )
        .await
    }
}

impl PgRevocationStore {
    /// Forget revocations whose tokens have expired. Returns how many were
    /// removed. Run it now and then; expired rows are never consulted.
    ///
    /// # Errors
    /// `Unavailable` on outage.
    pub async fn purge_expired(&self) -> Result<u64> {
        let now = micros(self.shared.clock.now());
        let mut conn = self.shared.write().await?;
        let done = sqlx::query(q::REVOCATION_PURGE)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        let subjects = sqlx::query(q::SUBJECT_REVOCATION_PURGE)
            .bind(now)
            .execute(&mut *conn)
            .await
            .map_err(err)?;
        Ok(done.rows_affected() + subjects.rows_affected())
    }
}

#[async_trait::async_trait]
impl AuditSink for PgAuditSink {
    async fn record(&self, event: &AuditEvent) -> Result<AuditReceipt> {
        let json = to_json(event)?;
        let outcome = audit_outcome(event)?;
        let tenant = event.tenant.as_ref().map(TenantId::as_str);
        let scope = tenant.map_or(Scope::NoTenant, Scope::Tenant);
        let mut conn = self.shared.write().await?;
        let mut ex = self.shared.scoped(&mut conn, scope).await?;
        let seq: Option<i64> = sqlx::query_scalar(q::AUDIT_INSERT)
            .bind(tenant)
            .bind(event.id)
            .bind(micros(event.time))
            .bind(event.action.as_bytes())
            .bind(outcome)
            .bind(json)
            .fetch_optional(ex.conn())
            .await
            .map_err(err)?;
        let seq = match seq {
            Some(seq) => seq,
            // Recorded before (a retry after an ambiguous failure): stored
            // once, and the receipt is the original one.
            None => sqlx::query_scalar(q::AUDIT_SEQ_OF)
                .bind(tenant)
                .bind(event.id)
                .fetch_optional(ex.conn())
                .await
                .map_err(err)?
                .ok_or_else(|| Error::conflict("audit event id already recorded elsewhere"))?,
        };
        ex.finish().await?;
        Ok(AuditReceipt::new(u64::try_from(seq).ok()))
    }
}

impl PgAuditSink {
    /// The events of `tenant`, in recorded order, one page at a time (the
    /// cursor is the sequence number of the last event of the page).
    ///
    /// # Errors
    /// `InvalidInput` for a malformed cursor; `Unavailable` on outage;
    /// `Internal` if a stored event does not decode.
    pub async fn events(&self, tenant: &TenantId, page: &PageRequest) -> Result<Page<AuditEvent>> {
        let after = audit_cursor(page.after.as_deref())?;
        let mut conn = self.shared.read().await?;
        let mut ex = self
            .shared
            .scoped(&mut conn, Scope::Tenant(tenant.as_str()))
            .await?;
        let rows: Vec<AuditRow> = sqlx::query_as(q::AUDIT_EVENTS)
            .bind(tenant.as_str())
            .bind(after)
            .bind(fetch_limit(page.limit))
            .fetch_all(ex.conn())
            .await
            .map_err(err)?;
        ex.finish().await?;
        audit_page(rows, page.limit)
    }
}

#[cfg(feature = "conformance")]
#[async_trait::async_trait]
impl crate::conformance::AuditReadBack for PgAuditSink {
    async fn events(&self, tenant: &TenantId) -> Result<Vec<AuditEvent>> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(docaiche_core::page::MAX_PAGE_SIZE)?;
        loop {
            let got = Self::events(self, tenant, &page).await?;
            all.extend(got.items);
            match got.next {
                Some(next) => page = PageRequest::new(Some(next), page.limit)?,
                None => return Ok(all),
            }
        }
    }
}
