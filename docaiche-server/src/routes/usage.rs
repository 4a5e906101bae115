//! The usage routes: `GET /v1/usage` (a key's or the whole tenant's
//! request counts per bucket) and `GET /v1/usage/top` (the busiest keys),
//! read back from the store's usage rollups (`crate::usage`).
//!
//! Both need `keys:manage`: whoever creates, rotates and revokes a
//! tenant's keys is who needs to see which are used, refused or abused
//! (a narrower grant than `admin:access`). Both read the caller's own
//! tenant, or with `tenants:cross` the one named by `?tenant=`; another
//! tenant, and a key of another tenant, is answered 404.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use docaiche_auth::layer::Authenticated;
use docaiche_core::usage::{
    Bucket, KeyUsage, MAX_SERIES_BUCKETS, MAX_TOP_N, TopBy, TopQuery, UsageCounts, UsageFilter,
    UsagePoint, UsageQuery,
};
use docaiche_core::{ApiKeyId, Error, Permission};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::documents::{no_store, rfc3339};
use crate::openapi::{Param, Payload, RouteDoc, grammar, schema_ref};
use crate::routes::audit::readable_tenant;
use crate::routes::{Endpoint, RouteGroup};
use crate::state::AppState;

/// Add the usage routes to `group` (the protected `default` group):
/// `keys:manage`.
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    let manage = [Permission::KEYS_MANAGE];
    group
        .route(SERIES, &manage, series)
        .route(TOP, &manage, top)
}

/// The `tenant` parameter of both routes.
const TENANT: (&str, Param, &str) = (
    "tenant",
    Param::Pattern(grammar::NAME_ID),
    "the tenant whose usage is read (default: the caller's; another needs `tenants:cross`)",
);
/// The `from` parameter of both routes.
const FROM: (&str, Param, &str) = (
    "from",
    Param::DateTime,
    "buckets starting at or after this RFC 3339 time (default: `to` minus 60 buckets of a \
     minute, 24 of an hour, 30 of a day; for `/v1/usage/top`, one day)",
);
/// The `to` parameter of both routes.
const TO: (&str, Param, &str) = (
    "to",
    Param::DateTime,
    "buckets starting before this RFC 3339 time (default: now)",
);

/// `GET /v1/usage`: the route of [`series`] and its documentation.
pub(crate) const SERIES: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/usage",
    RouteDoc {
        description: Some(
            "Counted per bucket and route class (`default`, `documents`, …) by outcome: \
             `allowed`, `rate_limited` (429), `denied` (403 from authorization) and \
             `invalid_credential` (401 to a presented API key naming a stored key). Counts \
             reach the store once per `usage.flush_interval_secs`.",
        ),
        query: &[
            (
                "key",
                Param::Pattern(grammar::KEY_CURSOR),
                "the API key id (default: every key and account of the tenant)",
            ),
            TENANT,
            FROM,
            TO,
            (
                "bucket",
                Param::OneOf(&["minute", "hour", "day"]),
                "the bucket size (default `hour`)",
            ),
        ],
        errors: &[
            (
                400,
                "an invalid key id, tenant, time, range (`from` not before `to`, more than \
                 10080 buckets) or bucket",
            ),
            (
                404,
                "`key` is not a key of the tenant, or `tenant` names another tenant and the \
                 caller lacks `tenants:cross`",
            ),
        ],
        ..RouteDoc::ok(
            "A key's or the tenant's request counts over time (`keys:manage`)",
            "the series, ordered by bucket start then route class",
            Payload::Json(schema_ref::<UsageSeries>),
        )
    },
);

/// `GET /v1/usage/top`: the route of [`top`] and its documentation.
pub(crate) const TOP: Endpoint = Endpoint::new(
    Method::GET,
    "/v1/usage/top",
    RouteDoc {
        query: &[
            (
                "by",
                Param::OneOf(&["requests", "limited"]),
                "rank by every request (`requests`, the default) or by rate-limited ones",
            ),
            (
                "n",
                Param::Integer(1, MAX_TOP_N as u64),
                "how many keys (default 10)",
            ),
            TENANT,
            FROM,
            TO,
        ],
        errors: &[
            (
                400,
                "an invalid `by`, `n`, tenant, time or range (`from` not before `to`, more \
                 than 400 days)",
            ),
            (
                404,
                "`tenant` names another tenant and the caller lacks `tenants:cross`",
            ),
        ],
        ..RouteDoc::ok(
            "The tenant's busiest API keys over a range (`keys:manage`)",
            "the keys, highest metric first (keys with none left out)",
            Payload::Json(schema_ref::<TopKeys>),
        )
    },
);

/// The query of `GET /v1/usage`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    key: Option<String>,
    tenant: Option<String>,
    from: Option<String>,
    to: Option<String>,
    bucket: Option<String>,
}

/// The query of `GET /v1/usage/top`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TopKeysQuery {
    by: Option<String>,
    #[serde(default, deserialize_with = "crate::json::integer::query")]
    n: Option<u32>,
    tenant: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// Request counts by outcome.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Counts {
    /// Every request, whatever its outcome.
    pub(crate) requests: u64,
    /// Authenticated, within the rate limit and authorized.
    pub(crate) allowed: u64,
    /// Refused by a rate limit (429).
    pub(crate) rate_limited: u64,
    /// Refused by authorization (403).
    pub(crate) denied: u64,
    /// A presented API key that named a stored key but was refused (401).
    pub(crate) invalid_credential: u64,
}

impl From<UsageCounts> for Counts {
    fn from(c: UsageCounts) -> Self {
        Self {
            requests: c.requests(),
            allowed: c.allowed,
            rate_limited: c.rate_limited,
            denied: c.denied,
            invalid_credential: c.invalid_credential,
        }
    }
}

/// One point of a usage series.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsagePointView {
    /// Start of the bucket (RFC 3339, UTC).
    pub(crate) start: String,
    /// The route class (the rate-limit class of the routes: `default`,
    /// `documents`, …).
    pub(crate) route_class: String,
    /// The bucket's counts.
    pub(crate) counts: Counts,
}

/// `GET /v1/usage`'s answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageSeries {
    /// The tenant read.
    pub(crate) tenant: String,
    /// The key read; none for the whole tenant.
    pub(crate) key: Option<String>,
    /// The bucket size: `minute`, `hour` or `day`.
    pub(crate) bucket: String,
    /// The range's start (inclusive).
    pub(crate) from: String,
    /// The range's end (exclusive).
    pub(crate) to: String,
    /// The points, by bucket start then route class (buckets without
    /// requests left out).
    pub(crate) points: Vec<UsagePointView>,
    /// The sum of every point.
    pub(crate) total: Counts,
}

/// One key of `GET /v1/usage/top`.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyUsageView {
    /// The API key id.
    pub(crate) key: String,
    /// Its counts over the range.
    pub(crate) counts: Counts,
}

/// `GET /v1/usage/top`'s answer.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TopKeys {
    /// The tenant read.
    pub(crate) tenant: String,
    /// The metric ranked by: `requests` or `limited`.
    pub(crate) by: String,
    /// The range's start (inclusive).
    pub(crate) from: String,
    /// The range's end (exclusive).
    pub(crate) to: String,
    /// The keys, highest metric first, then by key id.
    pub(crate) items: Vec<KeyUsageView>,
}

/// `from` and `to` of a query: `to` defaults to now, `from` to `to` minus
/// `default_span`.
fn range(
    now: OffsetDateTime,
    from: Option<&str>,
    to: Option<&str>,
    default_span: time::Duration,
) -> Result<(OffsetDateTime, OffsetDateTime), Error> {
    let to = crate::rejection::rfc3339("to", to)?.unwrap_or(now);
    let from = match crate::rejection::rfc3339("from", from)? {
        Some(from) => from,
        None => to
            .checked_sub(default_span)
            .ok_or_else(|| Error::invalid_input("to is too early"))?,
    };
    Ok((from, to))
}

/// A time of an answer (RFC 3339).
fn text(t: OffsetDateTime) -> String {
    rfc3339(t).unwrap_or_default()
}

/// `GET /v1/usage`: the series of a key of the tenant, or of the whole
/// tenant, read in one query of the usage store.
async fn series(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let tenant = readable_tenant(&caller, query.tenant.as_deref())?;
    let bucket = query
        .bucket
        .as_deref()
        .map_or(Ok(Bucket::Hour), str::parse::<Bucket>)?;
    let default_span = bucket.duration()
        * match bucket {
            Bucket::Minute => 60,
            Bucket::Hour => 24,
            _ => 30,
        };
    let (from, to) = range(
        state.auth.clock.now(),
        query.from.as_deref(),
        query.to.as_deref(),
        default_span,
    )?;
    let filter = match query.key.as_deref() {
        None => UsageFilter::Tenant,
        Some(key) => {
            let key: ApiKeyId = key
                .parse()
                .map_err(|_| Error::invalid_input("key is not an API key id"))?;
            // A key of another tenant is not found, as an unknown one.
            state
                .auth
                .stores
                .api_keys
                .get(&tenant, &key)
                .await?
                .ok_or_else(|| Error::not_found("api key"))?;
            UsageFilter::Key(key)
        }
    };
    let key = match &filter {
        UsageFilter::Key(key) => Some(key.to_string()),
        _ => None,
    };
    let usage_query = UsageQuery::new(filter, from, to, bucket).map_err(|e| match e {
        Error::InvalidInput { .. } => Error::invalid_input(format!(
            "usage range must have from before to and hold at most {MAX_SERIES_BUCKETS} buckets"
        )),
        other => other,
    })?;
    let points = state.usage.store.series(&tenant, &usage_query).await?;
    let mut total = UsageCounts::default();
    let points = points
        .into_iter()
        .map(|p: UsagePoint| {
            total.merge(&p.counts);
            UsagePointView {
                start: text(p.start),
                route_class: p.route_class.as_str().to_owned(),
                counts: p.counts.into(),
            }
        })
        .collect();
    Ok(no_store(&UsageSeries {
        tenant: tenant.as_str().to_owned(),
        key,
        bucket: bucket.as_str().to_owned(),
        from: text(from),
        to: text(to),
        points,
        total: total.into(),
    }))
}

/// `GET /v1/usage/top`: the tenant's busiest keys, read in one query of
/// the usage store.
async fn top(
    State(state): State<AppState>,
    Authenticated(caller): Authenticated,
    query: Result<Query<TopKeysQuery>, QueryRejection>,
) -> Result<Response, Error> {
    let query = crate::rejection::query(query)?;
    let tenant = readable_tenant(&caller, query.tenant.as_deref())?;
    let by = query
        .by
        .as_deref()
        .map_or(Ok(TopBy::Requests), str::parse::<TopBy>)?;
    let (from, to) = range(
        state.auth.clock.now(),
        query.from.as_deref(),
        query.to.as_deref(),
        time::Duration::DAY,
    )?;
    let top_query = TopQuery::new(from, to, by, query.n.unwrap_or(10))?;
    let keys = state.usage.store.top_keys(&tenant, &top_query).await?;
    Ok(no_store(&TopKeys {
        tenant: tenant.as_str().to_owned(),
        by: match by {
            TopBy::RateLimited => "limited",
            _ => "requests",
        }
        .to_owned(),
        from: text(from),
        to: text(to),
        items: keys
            .into_iter()
            .map(|k: KeyUsage| KeyUsageView {
                key: k.key.to_string(),
                counts: k.counts.into(),
            })
            .collect(),
    }))
}
