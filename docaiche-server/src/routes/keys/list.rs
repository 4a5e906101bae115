//! `GET /v1/keys` and `GET /v1/admin/tenants/{tenant}/keys`: a tenant's API
//! keys, oldest first, a page at a time, filtered by status, expiry and
//! use.
//!
//! The filters are applied to what the key service lists
//! ([`crate::page::filtered`]: at most 8 of its pages per request, so a
//! page of a narrow filter can hold fewer than `limit` keys, even none,
//! with a `next` cursor to go on from; only a page without `next` is the
//! last).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_core::api_key::ApiKeyRecord;
use docaiche_core::page::PageRequest;
use docaiche_core::{Error, Principal, TenantId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{KeyView, no_store};
use crate::openapi::{Param, Payload, RouteDoc, schema_ref};
use crate::rejection::Path;
use crate::routes::Endpoint;
use crate::state::AppState;

/// Default page size of key listings.
const DEFAULT_PAGE: u32 = 50;
/// Largest `expiring_within_days` and `unused_for_days`: ten years.
const MAX_DAYS: u64 = 3650;

/// The query parameters of both key listings.
const LIST_QUERY: &[(&str, Param, &str)] = &[
    (
        "status",
        Param::OneOf(&["active", "expired", "revoked"]),
        "only keys that are usable now (`active`), past their expiry and not \
         revoked (`expired`), or revoked (`revoked`)",
    ),
    (
        "expiring_within_days",
        Param::Integer(0, MAX_DAYS),
        "only unrevoked keys whose expiry falls within this many days from now",
    ),
    (
        "unused_for_days",
        Param::Integer(0, MAX_DAYS),
        "only keys not used for at least this many days (never used ones included)",
    ),
    crate::openapi::PAGE_AFTER,
    crate::openapi::PAGE_LIMIT_50,
];

/// What the listings say of their paging.
const LIST_DESCRIPTION: &str = "Oldest first. The filters are applied to at most 8 pages \
     of keys per request: a page may hold fewer than `limit` keys, even none; follow \
     `next` until it is absent.";

/// `GET /v1/keys`: the route of [`list_keys`] and its documentation.
pub(crate) const LIST_KEYS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/keys",
    RouteDoc {
        description: Some(LIST_DESCRIPTION),
        query: LIST_QUERY,
        errors: &[(400, "an invalid filter, `after` cursor or `limit`")],
        ..RouteDoc::ok(
            "The caller's tenant's API keys, a page at a time",
            "a page of keys (never their secrets)",
            Payload::Json(schema_ref::<KeyPage>),
        )
    },
);

/// `GET /v1/keys`: the caller's tenant's keys, a page at a time.
pub(super) async fn list_keys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let tenant = caller.tenant.clone();
    list(&state, &caller, &tenant, query).await
}

/// `GET /v1/admin/tenants/{tenant}/keys`: the route of [`admin_list_keys`]
/// and its documentation.
pub(crate) const ADMIN_LIST_KEYS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/admin/tenants/{tenant}/keys",
    RouteDoc {
        description: Some(LIST_DESCRIPTION),
        query: LIST_QUERY,
        errors: &[(400, "an invalid filter, `after` cursor or `limit`")],
        ..RouteDoc::ok(
            "Any tenant's API keys (cross-tenant administrators)",
            "a page of keys",
            Payload::Json(schema_ref::<KeyPage>),
        )
    },
);

/// `GET /v1/admin/tenants/{tenant}/keys`: any tenant's keys (cross-tenant
/// administrators only).
pub(super) async fn admin_list_keys(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    Path(tenant): Path<String>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let tenant = TenantId::new(tenant).map_err(|_| Error::not_found("tenant"))?;
    list(&state, &caller, &tenant, query).await
}

/// The query of key listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ListQuery {
    /// `active`, `expired` or `revoked`.
    status: Option<String>,
    /// Unrevoked keys expiring within this many days.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    expiring_within_days: Option<u64>,
    /// Keys unused for at least this many days.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    unused_for_days: Option<u64>,
    /// The cursor of the previous page's `next`.
    after: Option<String>,
    /// Page size.
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    limit: Option<u32>,
}

/// A key's status at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Usable: not revoked, not expired.
    Active,
    /// Past its expiry, not revoked.
    Expired,
    /// Revoked.
    Revoked,
}

impl Status {
    /// The status of `key` at `now`.
    fn of(key: &ApiKeyRecord, now: OffsetDateTime) -> Self {
        if key.revoked_at.is_some() {
            Self::Revoked
        } else if key.expires_at.is_some_and(|at| at <= now) {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

/// The checked filters of a [`ListQuery`], at `now`.
#[derive(Debug)]
struct Filter {
    now: OffsetDateTime,
    status: Option<Status>,
    expiring_by: Option<OffsetDateTime>,
    unused_since: Option<OffsetDateTime>,
}

impl Filter {
    /// Check the filters of `query` at `now`.
    fn parse(query: &ListQuery, now: OffsetDateTime) -> Result<Self, Error> {
        let status = match query.status.as_deref() {
            None => None,
            Some("active") => Some(Status::Active),
            Some("expired") => Some(Status::Expired),
            Some("revoked") => Some(Status::Revoked),
            Some(_) => {
                return Err(Error::invalid_input(
                    "status must be active, expired or revoked",
                ));
            }
        };
        let days = |name: &str, value: Option<u64>| match value {
            Some(days) if days > MAX_DAYS => Err(Error::invalid_input(format!(
                "{name} must be at most {MAX_DAYS}"
            ))),
            Some(days) => Ok(Some(time::Duration::days(
                i64::try_from(days).unwrap_or(i64::MAX),
            ))),
            None => Ok(None),
        };
        Ok(Self {
            now,
            status,
            expiring_by: days("expiring_within_days", query.expiring_within_days)?.map(|d| now + d),
            unused_since: days("unused_for_days", query.unused_for_days)?.map(|d| now - d),
        })
    }

    /// Whether `key` passes.
    fn admits(&self, key: &ApiKeyRecord) -> bool {
        self.status.is_none_or(|s| Status::of(key, self.now) == s)
            && self.expiring_by.is_none_or(|by| {
                key.revoked_at.is_none()
                    && key.expires_at.is_some_and(|at| at > self.now && at <= by)
            })
            && self
                .unused_since
                .is_none_or(|since| key.last_used_at.is_none_or(|used| used <= since))
    }
}

/// A page of keys.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyPage {
    /// The keys.
    items: Vec<KeyView>,
    /// The cursor of the next page (`?after=`); none on the last page.
    next: Option<String>,
}

/// A page of `tenant`'s keys for `caller`.
async fn list(
    state: &AppState,
    caller: &Principal,
    tenant: &TenantId,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let filter = Filter::parse(&query, state.auth.clock.now())?;
    let request = PageRequest::new(query.after, query.limit.unwrap_or(DEFAULT_PAGE))?;
    let keys = &state.auth.api_keys;
    let (found, next) = crate::page::filtered(
        request,
        |page| async move { keys.list(caller, tenant, &page).await },
        |key| filter.admits(key),
        |key| key.id.to_string(),
    )
    .await?;
    let items = found.iter().map(KeyView::from).collect();
    Ok(no_store(StatusCode::OK, &KeyPage { items, next }))
}

#[cfg(test)]
mod tests;
