//! Reading the trail back: the filter of `GET /v1/admin/audit`, a page of
//! the file trail or of the PostgreSQL `audit_trail` table, and the
//! read-backs of the compliance report and subject exports.

use docaiche_compliance::audit::record::{ParsedLine, event_of, parse_line};
use docaiche_compliance::audit::{read_lines, trail_segments};
use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::{Error, PrincipalId, TenantId};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::audit::ReadBack;

/// Largest page of `GET /v1/admin/audit`.
const MAX_PAGE: u32 = 500;
/// Default page of `GET /v1/admin/audit`.
const DEFAULT_PAGE: u32 = 100;

/// Longest `action` filter of the audit listing, in characters.
pub(crate) const MAX_ACTION_CHARS: usize = 128;

/// The query of `GET /v1/admin/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// The tenant whose stream is read; default: the caller's.
    pub(crate) tenant: Option<String>,
    /// Only this action.
    action: Option<String>,
    /// Only actions starting with this (`api_key.` for every key event).
    action_prefix: Option<String>,
    /// Only events of this actor (a principal id).
    actor: Option<String>,
    /// Only this outcome (`success`, `failure`, `denied`).
    outcome: Option<String>,
    /// Events at or after this time (RFC 3339).
    since: Option<String>,
    /// Events before this time (RFC 3339).
    until: Option<String>,
    /// The `next` of the previous page: a sequence number.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    after: Option<u64>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    limit: Option<u32>,
}

/// The parsed filter of [`ListQuery`].
#[derive(Debug)]
pub(crate) struct Filter {
    tenant: String,
    action: Option<String>,
    action_prefix: Option<String>,
    actor: Option<PrincipalId>,
    outcome: Option<AuditOutcome>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    after: u64,
    limit: usize,
}

impl Filter {
    /// Check and parse `query`, over the stream of `tenant` (the caller
    /// checked it may read it).
    pub(crate) fn parse(query: ListQuery, tenant: &TenantId) -> Result<Self, Error> {
        let outcome = match query.outcome.as_deref() {
            None => None,
            Some("success") => Some(AuditOutcome::Success),
            Some("failure") => Some(AuditOutcome::Failure),
            Some("denied") => Some(AuditOutcome::Denied),
            Some(_) => {
                return Err(Error::invalid_input(
                    "outcome must be success, failure or denied",
                ));
            }
        };
        let limit = query.limit.unwrap_or(DEFAULT_PAGE);
        if limit == 0 || limit > MAX_PAGE {
            return Err(Error::invalid_input(format!(
                "limit must be between 1 and {MAX_PAGE}"
            )));
        }
        for (name, value) in [
            ("action", &query.action),
            ("action_prefix", &query.action_prefix),
        ] {
            if value
                .as_ref()
                .is_some_and(|a| a.chars().count() > MAX_ACTION_CHARS)
            {
                return Err(Error::invalid_input(format!("{name} is too long")));
            }
        }
        let actor = query
            .actor
            .map(PrincipalId::new)
            .transpose()
            .map_err(|_| Error::invalid_input("actor is not a principal id"))?;
        Ok(Self {
            tenant: tenant.as_str().to_owned(),
            action: query.action,
            action_prefix: query.action_prefix,
            actor,
            outcome,
            since: crate::rejection::rfc3339("since", query.since.as_deref())?,
            until: crate::rejection::rfc3339("until", query.until.as_deref())?,
            after: query.after.unwrap_or(0),
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        })
    }

    /// Whether `event` passes the filter (the stream and cursor aside).
    fn admits(&self, event: &AuditEvent) -> bool {
        self.action.as_ref().is_none_or(|a| *a == event.action)
            && (self.action_prefix.as_ref()).is_none_or(|p| event.action.starts_with(p.as_str()))
            && (self.actor.as_ref()).is_none_or(|a| event.actor.as_ref() == Some(a))
            && self.outcome.is_none_or(|o| o == event.outcome)
            && self.since.is_none_or(|t| event.time >= t)
            && self.until.is_none_or(|t| event.time < t)
    }
}

/// A page of records: (sequence, event) pairs, and the cursor of the next
/// page.
pub(crate) type Page = (Vec<(u64, AuditEvent)>, Option<u64>);

/// One page of the file trail at `path`: the matching records of the
/// tenant's stream after the cursor, oldest first.
pub(crate) fn scan_file(path: &std::path::Path, filter: &Filter) -> Result<Page, Error> {
    let mut items = Vec::new();
    for segment in trail_segments(path)? {
        for line in read_lines(&segment)? {
            let line = line?;
            if !line.complete || line.too_long {
                continue;
            }
            // Lines failing their own hash are skipped here; `verify` reports them.
            let Ok(ParsedLine::Record(fields)) = parse_line(&line.bytes) else {
                continue;
            };
            if fields.stream != filter.tenant || fields.seq <= filter.after {
                continue;
            }
            let event = event_of(&line.bytes)?;
            if !filter.admits(&event) {
                continue;
            }
            if items.len() == filter.limit {
                let next = items.last().map(|(seq, _): &(u64, AuditEvent)| *seq);
                return Ok((items, next));
            }
            items.push((fields.seq, event));
        }
    }
    Ok((items, None))
}

/// One page of the `audit_trail` table: the tenant's records after the
/// cursor, by the `(stream, seq)` index, filtered here.
#[cfg(feature = "postgres")]
pub(crate) async fn scan_table(
    pool: &docaiche_store::postgres::sqlx::PgPool,
    filter: &Filter,
) -> Result<Page, Error> {
    const BATCH: i64 = 500;
    const QUERY: &str = "SELECT seq, line FROM audit_trail \
         WHERE stream = $1 AND kind = 'record' AND seq > $2 ORDER BY seq LIMIT $3";
    let mut after =
        i64::try_from(filter.after).map_err(|_| Error::invalid_input("after is out of range"))?;
    let mut items: Vec<(u64, AuditEvent)> = Vec::new();
    loop {
        let rows: Vec<(i64, String)> = docaiche_store::postgres::sqlx::query_as(QUERY)
            .bind(&filter.tenant)
            .bind(after)
            .bind(BATCH)
            .fetch_all(pool)
            .await
            .map_err(|e| Error::unavailable("audit trail (postgres)", e))?;
        let exhausted = i64::try_from(rows.len()).unwrap_or(i64::MAX) < BATCH;
        for (seq, line) in rows {
            after = seq;
            let event = event_of(line.as_bytes())?;
            if !filter.admits(&event) {
                continue;
            }
            if items.len() == filter.limit {
                let next = items.last().map(|(seq, _)| *seq);
                return Ok((items, next));
            }
            items.push((u64::try_from(seq).unwrap_or(0), event));
        }
        if exhausted {
            return Ok((items, None));
        }
    }
}

/// `tenant`'s events of `[since, until)`, oldest first, at most `limit`,
/// read back from `source` (the compliance report); `None` when no sink
/// can be read back. The flag says whether more events remained.
///
/// # Errors
/// As `GET /v1/admin/audit`: the trail cannot be read.
pub(crate) async fn read_back(
    source: &ReadBack,
    tenant: &TenantId,
    since: OffsetDateTime,
    until: OffsetDateTime,
    limit: usize,
) -> Result<Option<(Vec<AuditEvent>, bool)>, Error> {
    let filter = Filter {
        tenant: tenant.as_str().to_owned(),
        action: None,
        action_prefix: None,
        actor: None,
        outcome: None,
        since: Some(since),
        until: Some(until),
        after: 0,
        limit,
    };
    let (items, next) = match source {
        ReadBack::None => return Ok(None),
        ReadBack::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || scan_file(&path, &filter))
                .await
                .map_err(|e| Error::internal_with("audit read-back task failed", e))??
        }
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => scan_table(pool, &filter).await?,
    };
    let more = next.is_some();
    Ok(Some((items.into_iter().map(|(_, e)| e).collect(), more)))
}

/// One page of `tenant`'s stream: at most `limit` events after the
/// sequence number `after`, oldest first, with the cursor of the next page
/// (subject exports); `None` when no sink can be read back.
///
/// # Errors
/// As `GET /v1/admin/audit`: the trail cannot be read.
pub(crate) async fn read_page(
    source: &ReadBack,
    tenant: &TenantId,
    after: u64,
    limit: usize,
) -> Result<Option<Page>, Error> {
    let filter = Filter {
        tenant: tenant.as_str().to_owned(),
        action: None,
        action_prefix: None,
        actor: None,
        outcome: None,
        since: None,
        until: None,
        after,
        limit,
    };
    Ok(Some(match source {
        ReadBack::None => return Ok(None),
        ReadBack::File(path) => {
            let path = path.clone();
            tokio::task::spawn_blocking(move || scan_file(&path, &filter))
                .await
                .map_err(|e| Error::internal_with("audit read-back task failed", e))??
        }
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => scan_table(pool, &filter).await?,
    }))
}
