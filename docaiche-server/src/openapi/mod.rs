//! `GET /openapi.json`: the server's OpenAPI 3.1 document, generated from
//! the route table.
//!
//! [`document`] walks [`route_groups`], the same table the router is built
//! from, so a route cannot exist without an operation. What the code
//! already knows becomes the operation's contract without anyone writing
//! it down:
//!
//! | fact of the route | in the document |
//! |---|---|
//! | protected group | the `bearer` (JWT) and `apiKey` (`X-API-Key`) security schemes, 401 |
//! | required permissions | 403, naming every permission |
//! | `{param}` in the path | a path parameter, 400 (a segment that is not UTF-8), 404 |
//! | a JSON body | 400 (with field `errors`), 413, and 415 when the media type is checked |
//! | every route | 429 (rate limited), 500, 503, 504 |
//!
//! Every error is an `application/problem+json` [`ProblemDoc`]. What the
//! code cannot tell (summary, body and answer schemas, the success status,
//! query parameters, route-specific errors) comes from [`route_doc`], keyed
//! by method and path; the tests fail for a route it does not describe, so
//! a new route must be documented to pass CI. The schemas are
//! [`utoipa::ToSchema`] derives: on the real request types where the
//! handlers parse typed bodies, and here on types mirroring the JSON the
//! handlers build, which the tests parse real answers with (unknown fields
//! refused) so the mirrors cannot drift.
//!
//! **The document and the server agree exactly** (issue 16): a request
//! valid by the document is never refused as invalid, and one it rules out
//! is refused. Text the handlers check carries the same rule as a
//! [`grammar`] pattern (tenant and principal ids, cursors, key names,
//! legal-hold reasons, e-mails), stated once and tested against the
//! checks themselves; bounds that come from the configuration
//! (`auth.api_keys.max_rotation_overlap_secs` and `max_name_len`,
//! `documents.max_batch`) are written into the document from it
//! ([`Limits`], so the document is built per [`AppState`]); integers follow
//! JSON Schema, where `50.0` is an integer (`crate::json::integer`); the
//! two schemas utoipa's types cannot hold (`oneOf` beside `properties`,
//! `null` members) are written as JSON ([`json_schemas`]).
//! `scripts/schemathesis.sh` checks all of it against the running server,
//! and `e2e/contract.rs` the cases the review found over the wire.

use std::borrow::Cow;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_core::Permission;
use docaiche_core::health::HEALTH_JSON;
use docaiche_core::problem::PROBLEM_JSON;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa::openapi::path::{
    HttpMethod, Operation, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Required,
    ResponseBuilder, Schema, header::HeaderBuilder,
};

use crate::app::{Access, AppState, RouteGroup, RouteSpec, route_groups};
use crate::audit::MAX_ACTION_CHARS;
use crate::config::Config;

/// The security scheme of bearer JWTs.
const BEARER: &str = "bearer";
/// The security scheme of API keys.
const API_KEY: &str = "apiKey";

/// `GET /openapi.json`: the document, built with the state; public and
/// cacheable.
pub(crate) async fn serve(State(state): State<AppState>) -> Response {
    let body = Arc::clone(&state.openapi);
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The document for `config`, as served.
pub(crate) fn json(config: &Config) -> String {
    // Serializing strings, maps and numbers cannot fail; a 500 problem
    // would hide the bug less well than this body.
    serde_json::to_string(&document(&Limits::of(config)))
        .unwrap_or_else(|e| format!(r#"{{"error":"cannot serialize: {e}"}}"#))
}

/// The bounds of request fields that come from the configuration; the
/// document states them exactly as the server enforces them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// `auth.api_keys.max_rotation_overlap_secs`.
    pub(crate) max_rotation_overlap_secs: u64,
    /// `auth.api_keys.max_name_len`, in characters.
    pub(crate) max_key_name_chars: usize,
    /// `documents.max_batch`.
    pub(crate) max_batch: usize,
}

impl Limits {
    /// The limits of `config`.
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            max_rotation_overlap_secs: config
                .auth
                .api_keys
                .max_rotation_overlap_secs
                .min(crate::api::MAX_EXPIRES_IN_SECS),
            max_key_name_chars: config.auth.api_keys.max_name_len,
            max_batch: config.documents.max_batch,
        }
    }
}

/// Patterns (ECMA-262, and Python `re` for schemathesis) of the text the
/// server accepts, each stating exactly what the handler's check does.
pub(crate) mod grammar {
    /// A tenant or principal id (`docaiche_core::TenantId`): 1 to 64 ASCII
    /// letters, digits and `. _ - @ +`, starting with a letter or digit.
    pub(crate) const NAME_ID: &str = "^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$";
    /// A key-listing cursor: the UUID of the last key, in any form
    /// `Uuid::parse_str` reads (simple, hyphenated, braced, URN).
    pub(crate) const KEY_CURSOR: &str = concat!(
        "^(?:[0-9A-Fa-f]{32}",
        "|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}",
        "|\\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\\}",
        "|urn:uuid:[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$"
    );
    /// The e-mail of an account as the privacy routes take it: printable
    /// ASCII without spaces, a non-empty local part, `@`, a non-empty
    /// domain without `@` (`AccountEmail` checks the length).
    pub(crate) const EMAIL: &str = "^[!-~]+@[!-?A-~]+$";
    /// A character that is neither a control character (`char::is_control`)
    /// nor white space (`char::is_whitespace`).
    pub(crate) const VISIBLE: &str = "[^\\u0000-\\u0020\\u007F-\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";
    /// White space as `str::trim` removes it (`char::is_whitespace`).
    pub(crate) const SPACE: &str =
        "[\\t-\\r \\u0085\\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000]";
    /// Any character but a control character.
    pub(crate) const NOT_CONTROL: &str = "[^\\u0000-\\u001F\\u007F-\\u009F]";

    /// Text that is, once trimmed, 1 to `max` characters without control
    /// characters (the API key name's and the legal-hold reason's check);
    /// `padded` admits the white space `trim` removes around it.
    pub(crate) fn trimmed_text(max: usize, padded: bool) -> String {
        let inner = max.saturating_sub(2);
        let core = format!("{VISIBLE}(?:{NOT_CONTROL}{{0,{inner}}}{VISIBLE})?");
        if padded {
            format!("^{SPACE}*{core}{SPACE}*$")
        } else {
            format!("^{core}$")
        }
    }
}

/// The OpenAPI document of every route of [`route_groups`], with the
/// bounds of `limits`.
pub(crate) fn document(limits: &Limits) -> serde_json::Value {
    let mut document = serde_json::to_value(typed_document()).unwrap_or_default();
    let schemas = &mut document["components"]["schemas"];
    schemas["RotateKey"]["properties"]["overlap_secs"]["maximum"] =
        limits.max_rotation_overlap_secs.into();
    schemas["CreateKey"]["properties"]["name"]["pattern"] =
        grammar::trimmed_text(limits.max_key_name_chars, true).into();
    schemas["BatchRequest"]["properties"]["documents"]["maxItems"] = limits.max_batch.into();
    for (name, schema) in json_schemas() {
        schemas[name] = schema;
    }
    document
}

/// The schemas written as JSON, by component name: rules utoipa's typed
/// schemas cannot hold (`oneOf` beside `properties`, `null` members,
/// patterns built from [`grammar`]).
fn json_schemas() -> [(&'static str, serde_json::Value); 2] {
    [
        ("SubjectRequest", subject_request_schema()),
        ("PlaceHold", place_hold_schema()),
    ]
}

/// The document, before [`document`] adds the configured bounds.
fn typed_document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    let mut items: Vec<(&'static str, PathItem)> = Vec::new();
    for group in route_groups() {
        for route in documented(&group) {
            let operation = operation(&group, route);
            let method = http_method(&route.method);
            match items.iter_mut().find(|(path, _)| *path == route.path) {
                Some((_, item)) => item.merge_operations(PathItem::new(method, operation)),
                None => items.push((route.path, PathItem::new(method, operation))),
            }
        }
    }
    for (path, item) in items {
        paths = paths.path(path, item);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("DocAIche server")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Document intake behind API keys and JWTs, rate limits and \
                     RBAC. Every error is an RFC 9457 `application/problem+json` \
                     document; every route answers with the `RateLimit` and \
                     `RateLimit-Policy` headers.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components()))
        .build()
}

/// The routes of `group` the document describes: every one, except the
/// test-only `/test/*` routes the unit tests register.
fn documented(group: &RouteGroup) -> impl Iterator<Item = &RouteSpec> {
    group
        .routes
        .iter()
        .filter(|r| !r.path.starts_with("/test/"))
}

/// The utoipa method of `method` (the router accepts no others).
fn http_method(method: &Method) -> HttpMethod {
    match *method {
        Method::POST => HttpMethod::Post,
        Method::PUT => HttpMethod::Put,
        Method::PATCH => HttpMethod::Patch,
        Method::DELETE => HttpMethod::Delete,
        Method::HEAD => HttpMethod::Head,
        Method::OPTIONS => HttpMethod::Options,
        Method::TRACE => HttpMethod::Trace,
        _ => HttpMethod::Get,
    }
}

/// A `$ref` to the component schema of `T` (a function so the route table
/// can hold it).
fn schema_ref<T: ToSchema>() -> RefOr<Schema> {
    Ref::from_schema_name(T::name()).into()
}

/// A schema in the route table: resolved when the document is built.
type SchemaFn = fn() -> RefOr<Schema>;

/// How a route reads its body.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Body {
    /// No body.
    None,
    /// JSON of `schema`, media type checked (`ValidJson`, `from_body`):
    /// 400, 413, 415. `required: false` when an empty body is accepted.
    Json {
        /// The body's schema.
        schema: SchemaFn,
        /// Whether the body must be present.
        required: bool,
    },
    /// Raw bytes of `media` (an upload): 413, 415.
    Raw(&'static str),
}

/// A successful answer's body.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Payload {
    /// No body (204, 101).
    Empty,
    /// `application/json` of the schema.
    Json(SchemaFn),
    /// Another media type, with a schema when it is JSON.
    Media(&'static str, Option<SchemaFn>),
    /// `application/json` of the schema, or a page of this media type
    /// (chosen by the request).
    JsonOr(SchemaFn, &'static str),
}

/// The JSON type of a query parameter. A parameter given with an empty
/// value (`?tenant=`) is given, and must match too.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Param {
    /// Any string.
    Text,
    /// A string of at most this many characters.
    TextUpTo(usize),
    /// A string matching this [`grammar`] pattern.
    Pattern(&'static str),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// An RFC 3339 date-time (`format: date-time`).
    DateTime,
    /// An integer from the first to the second bound, inclusive (JSON
    /// Schema's integers: `50.0` is one).
    Integer(u64, u64),
    /// This one, and the handler refuses a request without it (400).
    Required(&'static Param),
}

impl Param {
    /// Whether the parameter must be given.
    const fn required(self) -> bool {
        matches!(self, Self::Required(_))
    }

    /// The parameter's schema.
    fn schema(self) -> ObjectBuilder {
        let text = ObjectBuilder::new().schema_type(Type::String);
        match self {
            Self::Text => text,
            Self::TextUpTo(max) => text.max_length(Some(max)),
            Self::Pattern(pattern) => text.pattern(Some(pattern)),
            Self::OneOf(values) => text.enum_values(Some(values.iter().copied())),
            Self::DateTime => text.format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            ))),
            Self::Integer(min, max) => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(min))
                .maximum(Some(max)),
            Self::Required(inner) => inner.schema(),
        }
    }
}

/// What the code cannot tell about a route.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteDoc {
    /// One line.
    pub(crate) summary: &'static str,
    /// Longer text, when useful.
    pub(crate) description: Option<&'static str>,
    /// Query parameters: name, JSON type and description (all optional;
    /// the handler validates them, 400).
    pub(crate) query: &'static [(&'static str, Param, &'static str)],
    /// The body.
    pub(crate) body: Body,
    /// The success status.
    pub(crate) status: u16,
    /// The success answer's description.
    pub(crate) answer: &'static str,
    /// The success answer's body.
    pub(crate) payload: Payload,
    /// Errors only this route's handler answers (status, when), beyond the
    /// ones derived from its facts.
    pub(crate) errors: &'static [(u16, &'static str)],
}

impl RouteDoc {
    /// A route answering 200 with `payload`, no body, no query.
    const fn ok(summary: &'static str, answer: &'static str, payload: Payload) -> Self {
        Self {
            summary,
            description: None,
            query: &[],
            body: Body::None,
            status: 200,
            answer,
            payload,
            errors: &[],
        }
    }
}

/// The headers of a WebSocket upgrade (RFC 6455 §4.1), required by the
/// routes answering 101, and the pattern of their values.
const WEBSOCKET_UPGRADE: &[(&str, &str)] = &[
    // A list holding `upgrade` (any case), as axum checks it.
    ("Connection", "[Uu][Pp][Gg][Rr][Aa][Dd][Ee]"),
    ("Upgrade", "^[Ww][Ee][Bb][Ss][Oo][Cc][Kk][Ee][Tt]$"),
    ("Sec-WebSocket-Version", "^13$"),
    ("Sec-WebSocket-Key", "^[A-Za-z0-9+/]{21}[AQgw]==$"),
];

/// Query parameters of key listings.
const PAGE_QUERY: &[(&str, Param, &str)] = &[
    (
        "after",
        Param::Pattern(grammar::KEY_CURSOR),
        "the cursor of the previous page's `next`",
    ),
    (
        "limit",
        Param::Integer(1, docaiche_core::page::MAX_PAGE_SIZE as u64),
        "page size (default 50)",
    ),
];

/// The documentation of `method path`; `None` for a route nobody
/// documented yet (the tests fail on it).
#[allow(clippy::too_many_lines)] // One arm per route reads best as a table.
pub(crate) fn route_doc(method: &Method, path: &str) -> Option<RouteDoc> {
    use Payload::{Empty, Json, Media};
    let doc = match (method.as_str(), path) {
        ("GET", "/health/live") => RouteDoc::ok(
            "Liveness: the process is up",
            "the process is up",
            Media(HEALTH_JSON, Some(schema_ref::<Health>)),
        ),
        ("GET", "/health/ready") => RouteDoc {
            errors: &[(
                503,
                "a required check fails (the health report is the body, `application/health+json`)",
            )],
            ..RouteDoc::ok(
                "Readiness: every registered check",
                "every required check passes (optional ones may `warn`)",
                Media(HEALTH_JSON, Some(schema_ref::<Health>)),
            )
        },
        ("GET", "/.well-known/jwks.json") => RouteDoc::ok(
            "The public keys verifying the server's JWTs (RFC 7517)",
            "the JWK set; HMAC keys never appear",
            Json(schema_ref::<Jwks>),
        ),
        ("GET", "/metrics") => RouteDoc {
            description: Some(
                "OpenMetrics text. When `metrics.token_source` is set the scraper \
                 sends it as `Authorization: Bearer <token>`.",
            ),
            errors: &[
                (
                    401,
                    "`metrics.token_source` is set and the request does not carry it",
                ),
                (404, "metrics are disabled (`metrics.enabled = false`)"),
            ],
            ..RouteDoc::ok(
                "Prometheus metrics",
                "every metric family",
                Media(crate::metrics::OPENMETRICS, None),
            )
        },
        ("GET", "/openapi.json") => RouteDoc::ok(
            "This OpenAPI 3.1 document",
            "the document",
            Media("application/json", None),
        ),
        ("POST", "/v1/auth/token") => RouteDoc {
            body: Body::Json {
                schema: schema_ref::<TokenRequest>,
                required: true,
            },
            errors: &[(
                401,
                "unknown account, wrong password or disabled account (one body for all; OAuth `error: invalid_grant`)",
            )],
            ..RouteDoc::ok(
                "Password login: an access and a refresh token",
                "the token pair (RFC 6749 §5.1), never cached",
                Json(schema_ref::<TokenResponse>),
            )
        },
        ("POST", "/v1/auth/refresh") => RouteDoc {
            description: Some(
                "The refresh token is used up; presenting it again ends the session.",
            ),
            body: Body::Json {
                schema: schema_ref::<RefreshRequest>,
                required: true,
            },
            errors: &[(
                401,
                "an unknown, expired, reused or revoked refresh token (`invalid_grant`)",
            )],
            ..RouteDoc::ok(
                "A new token pair for a refresh token",
                "the new token pair",
                Json(schema_ref::<TokenResponse>),
            )
        },
        ("POST", "/v1/auth/revoke") => RouteDoc {
            body: Body::Json {
                schema: schema_ref::<RevokeRequest>,
                required: true,
            },
            ..RouteDoc::ok(
                "Revoke an access or refresh token (RFC 7009)",
                "done, whether or not the token was valid (RFC 7009 §2.2)",
                Json(schema_ref::<EmptyObject>),
            )
        },
        ("GET", "/v1/whoami") => RouteDoc::ok(
            "The authenticated caller",
            "the caller's principal, tenant, roles and permissions",
            Json(schema_ref::<Whoami>),
        ),
        ("POST", "/v1/keys") => RouteDoc {
            body: Body::Json {
                schema: schema_ref::<crate::api::CreateKey>,
                required: true,
            },
            status: 201,
            ..RouteDoc::ok(
                "Create an API key in the caller's tenant",
                "the key, shown this once (`Location: /v1/keys/{id}`)",
                Json(schema_ref::<CreatedKey>),
            )
        },
        ("GET", "/v1/keys") => RouteDoc {
            query: PAGE_QUERY,
            errors: &[(400, "an invalid `after` cursor or `limit`")],
            ..RouteDoc::ok(
                "The caller's tenant's API keys, a page at a time",
                "a page of keys (never their secrets)",
                Json(schema_ref::<KeyPage>),
            )
        },
        ("POST", "/v1/keys/{id}/rotate") => RouteDoc {
            description: Some("The old key keeps working for the overlap."),
            errors: &[
                (
                    400,
                    "an overlap over `auth.api_keys.max_rotation_overlap_secs`",
                ),
                (
                    409,
                    "the key is revoked, expired or already rotated, or carries scopes \
                     a new key could not",
                ),
            ],
            body: Body::Json {
                schema: schema_ref::<crate::api::RotateKey>,
                required: false,
            },
            status: 201,
            ..RouteDoc::ok(
                "Rotate an API key: a successor key",
                "the successor key, shown this once",
                Json(schema_ref::<CreatedKey>),
            )
        },
        ("DELETE", "/v1/keys/{id}") => RouteDoc {
            status: 204,
            ..RouteDoc::ok("Revoke an API key", "revoked", Empty)
        },
        ("GET", "/v1/admin/tenants/{tenant}/keys") => RouteDoc {
            query: PAGE_QUERY,
            errors: &[(400, "an invalid `after` cursor or `limit`")],
            ..RouteDoc::ok(
                "Any tenant's API keys (cross-tenant administrators)",
                "a page of keys",
                Json(schema_ref::<KeyPage>),
            )
        },
        ("GET", "/v1/admin/audit") => RouteDoc {
            description: Some(
                "Read back from the chained file trail of `[audit]`; `tenant` is \
                 required. Verify the trail itself with `docaiche_compliance::audit::verify`.",
            ),
            query: &[
                (
                    "tenant",
                    Param::Required(&Param::Pattern(grammar::NAME_ID)),
                    "the tenant whose events are read (required)",
                ),
                (
                    "action",
                    Param::TextUpTo(MAX_ACTION_CHARS),
                    "only this action, e.g. `api_key.create`",
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
                (
                    400,
                    "a missing `tenant`, or an invalid filter, cursor or `limit`",
                ),
                (
                    503,
                    "no configured audit sink can be read back (`sink = \"stdout\"`)",
                ),
            ],
            ..RouteDoc::ok(
                "A tenant's audit events (cross-tenant administrators with `audit:read`)",
                "a page of events, oldest first",
                Json(schema_ref::<crate::audit::AuditPage>),
            )
        },
        ("POST", "/v1/admin/legal-holds") => RouteDoc {
            description: Some(
                "A hold on a tenant's data (one subject and/or one kind, or all of                  it) suspends the retention purge and erasure of what it covers.                  Audited (`legal_hold.place`) before it takes effect; refused (503)                  when the trail cannot record it and `[audit]` is fail-closed.",
            ),
            body: Body::Json {
                schema: schema_ref::<crate::routes::admin::PlaceHold>,
                required: true,
            },
            status: 201,
            ..RouteDoc::ok(
                "Place a legal hold (cross-tenant administrators with `admin:access`)",
                "the hold",
                Json(schema_ref::<crate::routes::admin::LegalHoldDoc>),
            )
        },
        ("GET", "/v1/admin/legal-holds") => RouteDoc {
            query: &[
                (
                    "tenant",
                    Param::Required(&Param::Pattern(grammar::NAME_ID)),
                    "the tenant whose holds are listed (required)",
                ),
                (
                    "after",
                    Param::Pattern(grammar::KEY_CURSOR),
                    "the cursor of the previous page's `next`",
                ),
                (
                    "limit",
                    Param::Integer(1, docaiche_core::page::MAX_PAGE_SIZE as u64),
                    "page size (default 100)",
                ),
            ],
            errors: &[(
                400,
                "a missing or invalid `tenant`, an invalid `after` cursor or `limit`",
            )],
            ..RouteDoc::ok(
                "A tenant's legal holds, active and released, a page at a time",
                "a page of holds, oldest first",
                Json(schema_ref::<crate::routes::admin::LegalHoldList>),
            )
        },
        ("DELETE", "/v1/admin/legal-holds/{id}") => RouteDoc {
            description: Some(
                "Audited (`legal_hold.release`) before it takes effect; the released                  hold stays listed.",
            ),
            query: &[(
                "tenant",
                Param::Required(&Param::Pattern(grammar::NAME_ID)),
                "the tenant of the hold (required)",
            )],
            status: 204,
            errors: &[(400, "a missing or invalid `tenant`")],
            ..RouteDoc::ok("Release a legal hold", "released", Empty)
        },
        ("GET", "/v1/admin/compliance/report") => RouteDoc {
            description: Some(
                "Audit coverage and chain verification (bounded: 256 MiB of trail \
                 files or 1000000 rows, 10 s), retention policies, active holds and \
                 the last purge, open data-subject requests, API key and secret ages, \
                 failed logins and lockouts. `format=html` or `Accept: text/html` \
                 answers a self-contained HTML page (`text/html; charset=utf-8`).",
            ),
            query: &[
                (
                    "tenant",
                    Param::Required(&Param::Pattern(grammar::NAME_ID)),
                    "the tenant reported on (required)",
                ),
                (
                    "days",
                    Param::Integer(1, 366),
                    "the period, in days up to now (default 30)",
                ),
                (
                    "format",
                    Param::OneOf(&["json", "html"]),
                    "`json` (default) or `html`",
                ),
            ],
            errors: &[(400, "a missing `tenant`, or an invalid `days` or `format`")],
            ..RouteDoc::ok(
                "A tenant's compliance report (cross-tenant administrators with `audit:read`)",
                "the report",
                Payload::JsonOr(
                    schema_ref::<crate::routes::admin::ComplianceReportDoc>,
                    "text/html; charset=utf-8",
                ),
            )
        },
        ("POST", "/v1/privacy/export") => RouteDoc {
            description: Some(
                "Records an access/portability request (GDPR Art. 15 and 20, CCPA right \
                 to know) with its legal deadline and carries it out: the subject's \
                 account, documents with their text, API keys (never hashes) and audit \
                 entries, as one JSON attachment (`Location: /v1/privacy/requests/{id}`). \
                 Name the subject by `subject` (principal id) or `email` (their account); \
                 another tenant needs `tenants:cross`.",
            ),
            body: Body::Json {
                schema: schema_ref::<crate::privacy::SubjectRequest>,
                required: true,
            },
            errors: &[
                (403, "the principal may not export in that tenant"),
                (404, "no account has that e-mail in the tenant"),
                (
                    409,
                    "the subject holds more documents than one export carries",
                ),
            ],
            ..RouteDoc::ok(
                "Export everything held about a data subject",
                "the export bundle (`Content-Disposition: attachment`), never cached",
                Json(schema_ref::<crate::privacy::SubjectExport>),
            )
        },
        ("POST", "/v1/privacy/erase") => RouteDoc {
            description: Some(
                "Records an erasure request (GDPR Art. 17, CCPA right to delete) and \
                 carries it out: the subject's documents, account and API key records \
                 are deleted, their data key destroyed, and the audit trail keeps a \
                 `privacy.erase` tombstone naming only their pseudonym.",
            ),
            body: Body::Json {
                schema: schema_ref::<crate::privacy::SubjectRequest>,
                required: true,
            },
            errors: &[
                (403, "the principal may not erase in that tenant"),
                (404, "no account has that e-mail in the tenant"),
                (
                    409,
                    "a legal hold covers the subject (the request is `rejected`)",
                ),
            ],
            ..RouteDoc::ok(
                "Erase a data subject",
                "the completed request and what was erased",
                Json(schema_ref::<crate::privacy::Erasure>),
            )
        },
        ("GET", "/v1/privacy/requests") => RouteDoc {
            query: &[
                (
                    "tenant",
                    Param::Pattern(grammar::NAME_ID),
                    "the tenant (default: the caller's; another needs `tenants:cross`)",
                ),
                (
                    "after",
                    Param::Pattern(grammar::KEY_CURSOR),
                    "the cursor of the previous page's `next`",
                ),
                (
                    "limit",
                    Param::Integer(1, docaiche_core::page::MAX_PAGE_SIZE as u64),
                    "page size (default 100)",
                ),
            ],
            errors: &[
                (400, "an invalid `tenant`, `after` cursor or `limit`"),
                (
                    403,
                    "the principal holds neither `privacy:export` nor `privacy:erase` on the tenant",
                ),
            ],
            ..RouteDoc::ok(
                "The tenant's data-subject requests (the DPO's queue), a page at a time",
                "a page of requests, oldest first, with status and deadline",
                Json(schema_ref::<crate::privacy::PrivacyRequestList>),
            )
        },
        ("GET", "/v1/privacy/requests/{id}") => RouteDoc {
            query: &[(
                "tenant",
                Param::Pattern(grammar::NAME_ID),
                "the tenant (default: the caller's; another needs `tenants:cross`)",
            )],
            errors: &[
                (400, "an invalid `tenant`"),
                (
                    403,
                    "the principal holds neither `privacy:export` nor `privacy:erase` on the tenant",
                ),
            ],
            ..RouteDoc::ok(
                "A data-subject request: status, deadline, failure",
                "the request",
                Json(schema_ref::<crate::privacy::PrivacyRequestDoc>),
            )
        },
        ("POST", "/v1/documents") => RouteDoc {
            description: Some(
                "The raw PDF is the body. Up to `documents.inline_max_bytes` it \
                 is extracted in the request (`extraction`); a larger one by a \
                 background job (`job`, poll `/v1/jobs/{id}`).",
            ),
            query: &[(
                "filename",
                Param::Text,
                "the original filename (sanitised before it is stored)",
            )],
            body: Body::Raw("application/pdf"),
            status: 201,
            errors: &[
                (400, "an invalid query"),
                (
                    422,
                    "a PDF refused by validation or extraction (`reason` names why)",
                ),
            ],
            ..RouteDoc::ok(
                "Upload one PDF",
                "stored (`Location: /v1/documents/{id}`)",
                Json(schema_ref::<AcceptedDocument>),
            )
        },
        ("POST", "/v1/documents/batch") => RouteDoc {
            description: Some(
                "One result per document, in order: one bad file never fails the batch.",
            ),
            body: Body::Json {
                schema: schema_ref::<crate::documents::BatchRequest>,
                required: true,
            },
            ..RouteDoc::ok(
                "Upload several documents (base64 in JSON)",
                "one result per document",
                Json(schema_ref::<BatchResponse>),
            )
        },
        ("GET", "/v1/documents/{id}") => RouteDoc::ok(
            "A document's metadata",
            "the metadata",
            Json(schema_ref::<DocumentDoc>),
        ),
        ("GET", "/v1/documents/{id}/text") => RouteDoc {
            description: Some("404 also while a background extraction has not finished."),
            ..RouteDoc::ok(
                "A document's extracted text",
                "one string per page",
                Json(schema_ref::<DocumentTextDoc>),
            )
        },
        ("DELETE", "/v1/documents/{id}") => RouteDoc {
            status: 204,
            ..RouteDoc::ok(
                "Delete a document: content, text and metadata",
                "deleted",
                Empty,
            )
        },
        ("GET", "/v1/jobs/{id}") => RouteDoc::ok(
            "An extraction job: state, progress, attempts, error",
            "the job",
            Json(schema_ref::<JobDoc>),
        ),
        ("DELETE", "/v1/jobs/{id}") => RouteDoc {
            description: Some(
                "A running job's worker stops it at its next heartbeat and \
                 discards its result.",
            ),
            status: 204,
            errors: &[(409, "the job has already ended")],
            ..RouteDoc::ok("Cancel a queued or running job", "cancelled", Empty)
        },
        ("GET", "/v1/events") => RouteDoc {
            description: Some(
                "A server-to-client WebSocket: a `hello` message, then one \
                 JSON text message per event of the caller's tenant. A full \
                 connection cap closes the socket at once with 1013.",
            ),
            status: 101,
            errors: &[(400, "not a WebSocket upgrade request")],
            ..RouteDoc::ok(
                "Live job and document events (WebSocket)",
                "switching to the WebSocket protocol",
                Empty,
            )
        },
        _ => return None,
    };
    Some(doc)
}

/// The operation of `route` in `group`.
fn operation(group: &RouteGroup, route: &RouteSpec) -> Operation {
    let doc = route_doc(&route.method, route.path);
    let mut builder = OperationBuilder::new()
        .operation_id(Some(operation_id(&route.method, route.path)))
        .tag(tag(route.path));
    for name in path_params(route.path) {
        // A tenant is checked (400); an id that does not parse is as
        // missing as any other (404).
        let schema = match name {
            "tenant" => Param::Pattern(grammar::NAME_ID).schema(),
            _ => ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1)),
        };
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema)),
        );
    }
    if group.access == Access::Protected {
        builder = builder
            .security(SecurityRequirement::new::<_, [&str; 0], &str>(BEARER, []))
            .security(SecurityRequirement::new::<_, [&str; 0], &str>(API_KEY, []));
    }
    if let Some(doc) = &doc {
        builder = builder
            .summary(Some(doc.summary))
            .description(doc.description);
        for (name, kind, description) in doc.query {
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(*name)
                    .parameter_in(ParameterIn::Query)
                    .required(if kind.required() {
                        Required::True
                    } else {
                        Required::False
                    })
                    .description(Some(*description))
                    .schema(Some(kind.schema())),
            );
        }
        if doc.status == 101 {
            for (name, pattern) in WEBSOCKET_UPGRADE {
                builder = builder.parameter(
                    ParameterBuilder::new()
                        .name(*name)
                        .parameter_in(ParameterIn::Header)
                        .required(Required::True)
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .pattern(Some(*pattern)),
                        )),
                );
            }
        }
        builder = builder.request_body(request_body(doc.body));
        builder = builder.response(doc.status.to_string(), success(doc));
    }
    for (status, description) in errors(group, route, doc.as_ref()) {
        let mut response = ResponseBuilder::new().description(description).content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(schema_ref::<ProblemDoc>()))
                .build(),
        );
        if matches!(status, 429 | 503) {
            response = response.header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                    .description(Some("seconds until a retry may succeed"))
                    .build(),
            );
        }
        builder = builder.response(status.to_string(), response.build());
    }
    builder.build()
}

/// The request body of `body`.
fn request_body(body: Body) -> Option<utoipa::openapi::request_body::RequestBody> {
    let (media, schema, required) = match body {
        Body::None => return None,
        Body::Json { schema, required } => ("application/json", Some(schema()), required),
        Body::Raw(media) => (
            media,
            Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type(media)
                    .into(),
            ),
            true,
        ),
    };
    Some(
        RequestBodyBuilder::new()
            .required(Some(if required {
                Required::True
            } else {
                Required::False
            }))
            .content(media, ContentBuilder::new().schema(schema).build())
            .build(),
    )
}

/// The success response of `doc`.
fn success(doc: &RouteDoc) -> utoipa::openapi::Response {
    let response = ResponseBuilder::new().description(doc.answer);
    match doc.payload {
        Payload::Empty => response,
        Payload::Json(schema) => response.content(
            "application/json",
            ContentBuilder::new().schema(Some(schema())).build(),
        ),
        Payload::Media(media, schema) => response.content(
            media,
            ContentBuilder::new().schema(schema.map(|s| s())).build(),
        ),
        Payload::JsonOr(schema, media) => response
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(schema())).build(),
            )
            .content(
                media,
                ContentBuilder::new()
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                    .build(),
            ),
    }
    .build()
}

/// Every error status of `route` with its description: derived from the
/// route's facts, then the route's own (which win on a shared status).
pub(crate) fn errors(
    group: &RouteGroup,
    route: &RouteSpec,
    doc: Option<&RouteDoc>,
) -> Vec<(u16, String)> {
    let mut out: Vec<(u16, String)> = derived_errors(group, route, doc.map(|d| d.body))
        .into_iter()
        .collect();
    for (status, description) in doc.map_or(&[][..], |d| d.errors) {
        match out.iter_mut().find(|(s, _)| s == status) {
            Some((_, text)) => *text = format!("{text}; {description}"),
            None => out.push((*status, (*description).to_owned())),
        }
    }
    out.sort_by_key(|(status, _)| *status);
    out
}

/// The error statuses the route's facts imply.
fn derived_errors(group: &RouteGroup, route: &RouteSpec, body: Option<Body>) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let json = matches!(body, Some(Body::Json { .. }));
    if json {
        out.push((
            400,
            "the body is malformed or fails validation; `errors` points at each field".to_owned(),
        ));
    }
    if group.access == Access::Protected {
        out.push((
            401,
            "missing or invalid credentials (`WWW-Authenticate: Bearer`)".to_owned(),
        ));
    }
    if !route.required.is_empty() {
        out.push((
            403,
            format!("the principal lacks {}", permissions(&route.required)),
        ));
    }
    if route.path.contains('{') {
        if !json {
            out.push((400, String::new()));
        }
        let at = out.iter().position(|(s, _)| *s == 400).unwrap_or(0);
        let text = "a path segment that is not UTF-8 once percent-decoded";
        out[at].1 = if out[at].1.is_empty() {
            text.to_owned()
        } else {
            format!("{}; {text}", out[at].1)
        };
        out.push((
            404,
            "not found (another tenant's resource is answered the same)".to_owned(),
        ));
    }
    if matches!(body, Some(Body::Json { .. } | Body::Raw(_))) {
        out.push((413, "the body is over the size limit".to_owned()));
    }
    match body {
        Some(Body::Json { .. }) => out.push((415, "the body is not `application/json`".to_owned())),
        Some(Body::Raw(media)) => out.push((415, format!("the body is not `{media}`"))),
        _ => {}
    }
    out.push((
        429,
        "rate limited (or locked out after failed logins); see `Retry-After` and `RateLimit`"
            .to_owned(),
    ));
    out.push((
        500,
        "internal error; the problem carries a `correlation_id`".to_owned(),
    ));
    out.push((
        503,
        "a dependency is temporarily unavailable; retry later".to_owned(),
    ));
    out.push((504, "the request timed out".to_owned()));
    out
}

/// `required` in words: "`a`", "every one of `a`, `b`".
fn permissions(required: &[Permission]) -> String {
    let names: Vec<String> = required.iter().map(|p| format!("`{p}`")).collect();
    if names.len() == 1 {
        format!("the permission {}", names.join(""))
    } else {
        format!(
            "one of the permissions {} (all are required)",
            names.join(", ")
        )
    }
}

/// The names of the `{param}` segments of `path`.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// A stable operation id: `get_v1_keys_id`.
fn operation_id(method: &Method, path: &str) -> String {
    let mut id = method.as_str().to_ascii_lowercase();
    for word in path.split(|c: char| !c.is_ascii_alphanumeric()) {
        if !word.is_empty() {
            id.push('_');
            id.push_str(word);
        }
    }
    id
}

/// The tag of `path`: its first segment after `/v1`.
fn tag(path: &str) -> String {
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let first = segments.next().unwrap_or_default();
    let name = if first == "v1" {
        segments.next().unwrap_or_default()
    } else {
        first
    };
    name.trim_start_matches('.')
        .split('.')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The components: every schema and the two security schemes.
fn components() -> utoipa::openapi::Components {
    let mut schemas: Vec<(String, RefOr<Schema>)> = Vec::new();
    let mut add = |name: Cow<'static, str>, schema: RefOr<Schema>| {
        schemas.push((name.into_owned(), schema));
    };
    macro_rules! components {
        ($($t:ty),* $(,)?) => {
            $(
                add(<$t as ToSchema>::name(), <$t as utoipa::PartialSchema>::schema());
            )*
        };
    }
    components!(
        PermissionName,
        ProblemDoc,
        FieldErrorDoc,
        Health,
        Jwks,
        TokenRequest,
        RefreshRequest,
        RevokeRequest,
        TokenResponse,
        EmptyObject,
        Whoami,
        crate::api::CreateKey,
        crate::api::RotateKey,
        KeyDoc,
        CreatedKey,
        KeyPage,
        crate::audit::AuditPage,
        crate::audit::AuditItem,
        crate::privacy::SubjectRequest,
        crate::privacy::SubjectExport,
        crate::privacy::Erasure,
        crate::privacy::ErasureReportDoc,
        crate::privacy::PrivacyRequestDoc,
        crate::privacy::PrivacyRequestList,
        crate::routes::admin::PlaceHold,
        crate::routes::admin::LegalHoldDoc,
        crate::routes::admin::LegalHoldList,
        crate::routes::admin::ComplianceReportDoc,
        crate::documents::BatchRequest,
        crate::documents::BatchItem,
        DocumentDoc,
        ExtractionDoc,
        JobDoc,
        AcceptedDocument,
        BatchResult,
        BatchResponse,
        DocumentTextDoc,
    );
    ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        )
        .security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "x-api-key",
                "an API key (also accepted as `Authorization: ApiKey <key>`)",
            ))),
        )
        .build()
}

/// A permission name a client may ask for (the `scopes` of `POST /v1/keys`):
/// a name of the server's `PermissionCatalog`, as `Validate` checks it.
#[derive(Debug)]
pub(crate) struct PermissionName;

impl utoipa::PartialSchema for PermissionName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "a permission of the catalogue (`resource:action`), a wildcard \
                 over one of its resources (`documents:*`), or `*:*`",
            ))
            .max_length(Some(docaiche_core::MAX_PERMISSION_LEN))
            .enum_values(Some(
                docaiche_core::PermissionCatalog::builtin().grant_names(),
            ))
            .into()
    }
}

impl ToSchema for PermissionName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Permission")
    }
}

/// A component whose schema is written as JSON ([`json_schemas`]): a
/// placeholder for utoipa, replaced when the document is built.
fn written_as_json() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).into()
}

/// The schema of `crate::privacy::SubjectRequest`.
fn subject_request_schema() -> serde_json::Value {
    {
        let id = |description: &str| {
            serde_json::json!({
                "type": ["string", "null"],
                "pattern": grammar::NAME_ID,
                "description": description,
            })
        };
        // utoipa's object schema has no `oneOf`: the rule is the second
        // member of an `allOf`.
        let object = serde_json::json!({
            "type": "object",
            "description": "Names the data subject by exactly one of `subject` and `email`.",
            "additionalProperties": false,
            "properties": {
                "subject": id("The data subject's principal id."),
                "email": {
                    "type": ["string", "null"],
                    "pattern": grammar::EMAIL,
                    "minLength": 3,
                    "maxLength": docaiche_core::account::MAX_EMAIL_LEN,
                    "description": "The e-mail of the subject's password account \
                                    (printable ASCII).",
                },
                "tenant": id("The tenant; default: the caller's (another needs `tenants:cross`)."),
                "regulation": {
                    "type": ["string", "null"],
                    "enum": ["gdpr", "ccpa", null],
                    "description": "The law whose deadline applies: `gdpr` (30 days, the \
                                    default) or `ccpa` (45 days).",
                },
            },
        });
        serde_json::json!({ "allOf": [object, {
            "oneOf": [
                {
                    "required": ["subject"],
                    "properties": { "subject": { "type": "string" }, "email": { "type": "null" } },
                },
                {
                    "required": ["email"],
                    "properties": { "email": { "type": "string" }, "subject": { "type": "null" } },
                },
            ],
        }]})
    }
}

impl utoipa::PartialSchema for crate::privacy::SubjectRequest {
    fn schema() -> RefOr<Schema> {
        written_as_json()
    }
}

impl ToSchema for crate::privacy::SubjectRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SubjectRequest")
    }
}

/// The schema of `crate::routes::admin::PlaceHold`.
fn place_hold_schema() -> serde_json::Value {
    {
        use grammar::{NOT_CONTROL, VISIBLE};
        serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["tenant", "reason"],
            "properties": {
                "tenant": {
                    "type": "string",
                    "pattern": grammar::NAME_ID,
                    "description": "The tenant whose data is held.",
                },
                "subject": {
                    "type": ["string", "null"],
                    "pattern": grammar::NAME_ID,
                    "description": "Hold only this data subject's data (default: every subject).",
                },
                "kind": {
                    "type": ["string", "null"],
                    "enum": crate::config::retention::KINDS.iter().map(|k| serde_json::json!(k))
                        .chain([serde_json::Value::Null]).collect::<Vec<_>>(),
                    "description": "Hold only this resource kind (default: every kind).",
                },
                "reason": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": crate::routes::admin::MAX_REASON,
                    "pattern": format!("^{NOT_CONTROL}*{VISIBLE}{NOT_CONTROL}*$"),
                    "description": "Why: a case or matter reference, without control \
                                    characters and not only white space.",
                },
            },
        })
    }
}

impl utoipa::PartialSchema for crate::routes::admin::PlaceHold {
    fn schema() -> RefOr<Schema> {
        written_as_json()
    }
}

impl ToSchema for crate::routes::admin::PlaceHold {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PlaceHold")
    }
}

// The schemas below mirror JSON the handlers build with `serde_json::json!`
// (the request types the handlers parse carry the derive themselves). The
// tests parse real answers into them, unknown fields refused.

/// An RFC 9457 problem document (`docaiche_core::problem::Problem`).
/// Open to further extension members, as RFC 9457 §3.2 has clients ignore
/// the ones they do not know; the tests check every member the server
/// sends is listed.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Problem)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct ProblemDoc {
    /// `https://docaiche.dev/problems/` and the code.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    type_uri: String,
    /// Summary of the problem type.
    title: String,
    /// The HTTP status.
    status: u16,
    /// Client-safe explanation of this occurrence.
    detail: Option<String>,
    /// URI reference of this occurrence.
    instance: Option<String>,
    /// The stable machine-readable code (`invalid-input`, `unauthenticated`, …).
    code: String,
    /// Server errors: the id under which the cause was logged.
    correlation_id: Option<String>,
    /// Field-level validation errors.
    #[serde(default)]
    errors: Option<Vec<FieldErrorDoc>>,
    /// Seconds until a retry may succeed (also `Retry-After`).
    retry_after: Option<u64>,
    /// The token endpoints: the OAuth 2.0 error (`invalid_request`, `invalid_grant`).
    error: Option<String>,
    /// Refused documents: the extractor's reason code.
    reason: Option<String>,
    /// 429: the names of the violated rate limits
    /// (draft-ietf-httpapi-ratelimit-headers).
    #[serde(rename = "violated-policies")]
    #[schema(rename = "violated-policies")]
    violated_policies: Option<Vec<String>>,
}

/// One invalid field.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = FieldError)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct FieldErrorDoc {
    /// JSON pointer (RFC 6901) to the field, e.g. `/email`.
    pointer: String,
    /// What is wrong with it.
    detail: String,
}

/// A health report (`application/health+json`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct Health {
    /// `pass`, `warn` or `fail`.
    status: String,
    /// Each check's results, keyed `name:responseTime` (readiness only).
    #[schema(value_type = Option<Object>)]
    checks: Option<serde_json::Value>,
}

/// A JWK set (RFC 7517).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct Jwks {
    /// The public keys.
    #[schema(value_type = Vec<Object>)]
    keys: Vec<serde_json::Value>,
}

/// `POST /v1/auth/token`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct TokenRequest {
    /// The account's tenant.
    #[schema(pattern = "^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")]
    tenant: String,
    /// The account's email.
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = "^[^\\s\\x00-\\x1f\\x7f-\\x9f]+@[^@\\s\\x00-\\x1f\\x7f-\\x9f]+$"
    )]
    email: String,
    /// The password.
    #[schema(min_length = 1)]
    password: String,
    /// `password` when given.
    #[schema(pattern = "^password$", nullable = false)]
    grant_type: Option<String>,
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct RefreshRequest {
    /// The refresh token of the last pair.
    #[schema(min_length = 1)]
    refresh_token: String,
    /// Ignored (`refresh_token`).
    #[schema(nullable = false)]
    grant_type: Option<String>,
}

/// `POST /v1/auth/revoke` (RFC 7009).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct RevokeRequest {
    /// The token to revoke.
    #[schema(min_length = 1)]
    token: String,
    /// `access_token` or `refresh_token`.
    #[schema(nullable = false)]
    token_type_hint: Option<String>,
}

/// A token pair (RFC 6749 §5.1).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct TokenResponse {
    /// The access token (a JWT).
    access_token: String,
    /// `Bearer`.
    token_type: String,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// The refresh token (single use).
    refresh_token: String,
    /// Seconds until the refresh token expires.
    refresh_token_expires_in: i64,
}

/// An empty JSON object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmptyObject {}

/// `GET /v1/whoami`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct Whoami {
    /// The principal id.
    principal: String,
    /// The tenant.
    tenant: String,
    /// `api_key`, `jwt`, `oidc` or `other`.
    auth_method: String,
    /// The roles.
    roles: Vec<String>,
    /// Every permission held (`resource:action`).
    permissions: Vec<String>,
}

/// An API key record (never its secret or hash).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ApiKey)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct KeyDoc {
    /// The key id.
    id: String,
    /// Its tenant.
    tenant: String,
    /// The principal the key acts as.
    principal: String,
    /// Human label.
    name: String,
    /// The permissions it carries.
    scopes: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339; none for a key that does not expire.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    /// The successor of a rotated key.
    replaced_by: Option<String>,
}

/// A created or rotated key: the record and the key itself, shown once.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct CreatedKey {
    /// The key id.
    id: String,
    /// Its tenant.
    tenant: String,
    /// The principal the key acts as.
    principal: String,
    /// Human label.
    name: String,
    /// The permissions it carries.
    scopes: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: String,
    /// RFC 3339; none for a key that does not expire.
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    revoked_at: Option<String>,
    /// The successor of a rotated key.
    replaced_by: Option<String>,
    /// The key: send it as `X-API-Key`. Shown this once.
    key: String,
}

/// A page of keys.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct KeyPage {
    /// The keys.
    items: Vec<KeyDoc>,
    /// The cursor of the next page (`?after=`); none on the last page.
    next: Option<String>,
}

/// A document's metadata.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Document)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive and the tests.
pub(crate) struct DocumentDoc {
    /// The document id.
    id: String,
    /// The principal that uploaded it.
    owner: String,
    /// The sanitised filename.
    filename: Option<String>,
    /// `application/pdf`.
    content_type: String,
    /// Size in bytes.
    size: u64,
    /// SHA-256 of the content, hex.
    sha256: String,
    /// Whether the extracted text is available.
    has_text: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// Where the text is.
    text_url: String,
}

/// An inline extraction's summary.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Extraction)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct ExtractionDoc {
    /// Number of pages.
    pages: u64,
    /// Title, author, producer, dates, page count, format version.
    #[schema(value_type = Object)]
    info: serde_json::Value,
    /// Active content found (`java_script`, `launch`, …).
    risks: Vec<String>,
}

/// An extraction job.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = Job)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct JobDoc {
    /// The job id.
    id: String,
    /// `extract`.
    kind: String,
    /// `queued`, `running`, `succeeded`, `dead` or `cancelled`.
    state: String,
    /// Percent done.
    progress: u8,
    /// Attempts so far.
    attempts: u32,
    /// Attempts before the job is dead-lettered.
    max_attempts: u32,
    /// Why the last attempt failed.
    last_error: Option<String>,
    /// The document id.
    document: Option<String>,
    /// The job's result.
    #[schema(value_type = Option<Object>)]
    result: Option<serde_json::Value>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    updated_at: Option<String>,
    /// RFC 3339: not run before.
    #[schema(format = DateTime)]
    run_after: Option<String>,
    /// Where to poll it.
    url: String,
}

/// An accepted document: its metadata, and the inline extraction or the
/// background job.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct AcceptedDocument {
    /// The document id.
    id: String,
    /// The principal that uploaded it.
    owner: String,
    /// The sanitised filename.
    filename: Option<String>,
    /// `application/pdf`.
    content_type: String,
    /// Size in bytes.
    size: u64,
    /// SHA-256 of the content, hex.
    sha256: String,
    /// Whether the extracted text is available.
    has_text: bool,
    /// RFC 3339.
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// Where the text is.
    text_url: String,
    /// The inline extraction.
    extraction: Option<ExtractionDoc>,
    /// The background job.
    job: Option<JobDoc>,
}

/// One document's outcome in a batch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct BatchResult {
    /// The document's position in the request.
    index: u32,
    /// 201, or the status its problem would have had alone.
    status: u16,
    /// The accepted document (201).
    document: Option<AcceptedDocument>,
    /// Why it was refused.
    problem: Option<ProblemDoc>,
}

/// `POST /v1/documents/batch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct BatchResponse {
    /// One per document, in order.
    results: Vec<BatchResult>,
}

/// A document's text.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = DocumentText)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive.
pub(crate) struct DocumentTextDoc {
    /// The document id.
    id: String,
    /// One string per page.
    pages: Vec<String>,
}

#[cfg(test)]
#[path = "openapi/tests.rs"]
mod tests;
