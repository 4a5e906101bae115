//! `GET /v1/admin/audit`: a tenant's audit events, filtered, a page at a
//! time, read back from the trail (`crate::audit`), with its OpenAPI
//! schemas.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::layer::Authenticated;
use docaiche_core::audit::AuditEvent;
use docaiche_core::{Error, Permission, Principal, TenantId};
use serde::{Deserialize, Serialize};

#[cfg(feature = "postgres")]
use crate::audit::read::scan_table;
use crate::audit::read::{Filter, ListQuery, scan_file};
use crate::audit::{MAX_ACTION_CHARS, ReadBack};
use crate::openapi::{Param, Payload, RouteDoc, grammar, schema_ref};
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Add `GET /v1/admin/audit` to `group` (the protected `default` group):
/// `audit:read` on the caller's own tenant; another tenant's stream also
/// needs `tenants:cross`.
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group.route(LIST_EVENTS, &[Permission::AUDIT_READ], list_events)
}

/// `GET /v1/admin/audit`: the route of [`list_events`] and its documentation.
pub(crate) const LIST_EVENTS: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/admin/audit",
    RouteDoc {
        description: Some(
            "Read back from the chained trail of `[audit]`: the caller's own \
             tenant, or with `tenants:cross` any tenant named by `tenant`. \
             Verify the trail itself with `docaiche_compliance::audit::verify`.",
        ),
        query: &[
            (
                "tenant",
                Param::Pattern(grammar::NAME_ID),
                "the tenant whose events are read (default: the caller's; \
                 another needs `tenants:cross`)",
            ),
            (
                "action",
                Param::TextUpTo(MAX_ACTION_CHARS),
                "only this action, e.g. `api_key.create`",
            ),
            (
                "action_prefix",
                Param::TextUpTo(MAX_ACTION_CHARS),
                "only actions starting with this, e.g. `api_key.`",
            ),
            (
                "actor",
                Param::Pattern(grammar::NAME_ID),
                "only events of this principal",
            ),
            (
                "outcome",
                Param::OneOf(&["success", "failure", "denied"]),
                "only `success`, `failure` or `denied`",
            ),
            (
                "since",
                Param::DateTime,
                "events at or after this RFC 3339 time",
            ),
            ("until", Param::DateTime, "events before this RFC 3339 time"),
            (
                "after",
                Param::Integer(0, u64::MAX),
                "the previous page's `next` (a sequence number)",
            ),
            ("limit", Param::Integer(1, 500), "page size (default 100)"),
        ],
        errors: &[
            (400, "an invalid tenant, filter, cursor or `limit`"),
            (
                404,
                "`tenant` names another tenant and the caller lacks `tenants:cross`",
            ),
            (
                503,
                "no configured audit sink can be read back (`sink = \"stdout\"`)",
            ),
        ],
        ..RouteDoc::ok(
            "A tenant's audit events (administrators with `audit:read`)",
            "a page of events, oldest first",
            Payload::Json(schema_ref::<crate::routes::audit::AuditPage>),
        )
    },
);

/// `GET /v1/admin/audit`: a tenant's audit events, filtered, a page at a
/// time, read back from the file trail.
async fn list_events(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let tenant = readable_tenant(&caller, query.tenant.as_deref())?;
    let filter = Filter::parse(query, &tenant)?;
    let source = state
        .audit
        .as_ref()
        .map_or(ReadBack::None, |trail| trail.source.clone());
    let (items, next) = match source {
        ReadBack::None => {
            return Err(Error::unavailable(
                "audit read-back",
                std::io::Error::other("no configured audit sink can be read back"),
            ));
        }
        ReadBack::File(path) => tokio::task::spawn_blocking(move || scan_file(&path, &filter))
            .await
            .map_err(|e| Error::internal_with("audit read-back task failed", e))??,
        #[cfg(feature = "postgres")]
        ReadBack::Postgres(pool) => scan_table(&pool, &filter).await?,
    };
    let items = items
        .into_iter()
        .map(|(sequence, event)| AuditItem { sequence, event })
        .collect();
    Ok((
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store")],
        Json(AuditPage { items, next }),
    )
        .into_response())
}

/// The tenant whose data `caller` reads: its own when `named` is none, or
/// the named one, which must be its own unless it holds `tenants:cross`.
/// Another tenant is answered 404, as an id of another tenant is: the
/// answer does not tell which tenants exist.
///
/// # Errors
/// 400 for a name that is not a tenant id, 404 as above.
pub(crate) fn readable_tenant(caller: &Principal, named: Option<&str>) -> Result<TenantId, Error> {
    let Some(named) = named else {
        return Ok(caller.tenant.clone());
    };
    let tenant =
        TenantId::new(named).map_err(|_| Error::invalid_input("tenant is not a tenant id"))?;
    if tenant != caller.tenant && !caller.has_permission(&Permission::TENANTS_CROSS) {
        return Err(Error::not_found("tenant"));
    }
    Ok(tenant)
}

/// A page of audit events.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditPage {
    /// The events, oldest first.
    pub(crate) items: Vec<AuditItem>,
    /// The cursor of the next page (`?after=`); none on the last page.
    pub(crate) next: Option<u64>,
}

/// One audit record.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditItem {
    /// Its sequence number in the tenant's chain.
    pub(crate) sequence: u64,
    /// The event: `action`, `outcome`, `time`, `tenant`, `actor`, `resource`, ….
    #[schema(value_type = Object)]
    pub(crate) event: AuditEvent,
}
