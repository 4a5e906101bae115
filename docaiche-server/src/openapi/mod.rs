//! `GET /openapi.json`: the server's OpenAPI 3.1 document, generated from
//! the routes themselves.
//!
//! Each handler's module states its route as an [`Endpoint`] constant
//! beside the handler: method, path and a [`RouteDoc`] (what
//! `#[utoipa::path]` would hold, as a value). [`RouteGroup::route`] takes
//! that constant, so the router is built from it and a route cannot be
//! registered without its documentation; [`document`] walks
//! [`route_groups`], the same groups the router is built from. The tests
//! walk both ways: every route of the groups is in the document with every
//! error it can answer, and every operation of the document, sent to the
//! real router, reaches a handler (not the unknown-route fallback or a
//! 405). What the code already knows becomes the operation's contract
//! without anyone writing it down:
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
//! query parameters, route-specific errors) is the endpoint's [`RouteDoc`].
//! The schemas are [`utoipa::ToSchema`] derives on the types the handlers
//! really parse and send: the request bodies (`CreateKey`, `RotateKey`,
//! `BatchRequest`, …) and the answers (`Whoami`, `KeyView`, `CreatedKey`,
//! `KeyPage`, `DocumentView`, `AcceptedDocument`, `BatchResponse`,
//! `JobView`, `TokenResponse`, …), each beside its handler. What the server
//! sends but another crate defines and serializes (the problem document,
//! the health report, the JWK set, audit events, legal holds, privacy
//! requests and erasure reports) and the token-endpoint bodies (read field
//! by field, to report every bad field) are described by schema types of
//! their own ([`schemas`] and the admin, audit and privacy route modules).
//! Every kind of answer is checked against the served document itself in
//! the tests (`$ref`, `allOf`, types, required and unlisted members), so
//! no description can drift from what is sent.
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
//! and `tests/e2e/contract.rs` the cases the review found over the wire.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa::openapi::path::{HttpMethod, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref, RefOr, Schema};

use crate::config::Config;
use crate::openapi::operation::{components, operation};
use crate::routes::{Endpoint, RouteGroup, RouteSpec, route_groups};
use crate::state::AppState;

/// The security scheme of bearer JWTs.
const BEARER: &str = "bearer";
/// The security scheme of API keys.
const API_KEY: &str = "apiKey";

/// `GET /openapi.json`: the route of [`serve`] and its documentation.
pub(crate) const SERVE: Endpoint = Endpoint::new(
    Method::GET,
    "/openapi.json",
    RouteDoc::ok(
        "This OpenAPI 3.1 document",
        "the document",
        Payload::Media("application/json", None),
    ),
);

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
#[derive(Debug, Clone, PartialEq, Eq)]
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
                .min(crate::routes::keys::MAX_EXPIRES_IN_SECS),
            max_key_name_chars: config.auth.api_keys.max_name_len,
            max_batch: config.documents.max_batch,
        }
    }
}

/// The `after` parameter of a listing paged by UUIDv7 ids.
pub(crate) const PAGE_AFTER: (&str, Param, &str) = (
    "after",
    Param::Pattern(grammar::KEY_CURSOR),
    "the cursor of the previous page's `next`",
);

/// The `limit` parameter of a listing whose page is 50 by default.
pub(crate) const PAGE_LIMIT_50: (&str, Param, &str) = (
    "limit",
    Param::Integer(1, docaiche_core::page::MAX_PAGE_SIZE as u64),
    "page size (default 50)",
);

/// The `limit` parameter of a listing whose page is 100 by default.
pub(crate) const PAGE_LIMIT_100: (&str, Param, &str) = (
    "limit",
    Param::Integer(1, docaiche_core::page::MAX_PAGE_SIZE as u64),
    "page size (default 100)",
);

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
    // A custom role holds exact permissions of the catalogue, each once.
    schemas["PutRole"]["properties"]["permissions"]["items"] = serde_json::json!({
        "type": "string",
        "enum": docaiche_core::Permission::BUILTIN
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
    });
    schemas["PutRole"]["properties"]["permissions"]["uniqueItems"] = true.into();
    // Per-key overrides are keyed by API key id, as stored and as patched.
    schemas["SettingsBody"]["properties"]["key_rate_limits"]["propertyNames"] =
        serde_json::json!({ "pattern": grammar::KEY_CURSOR });
    // (`type: [object, null]` in the patch body: null clears them.)
    schemas["UpdateTenant"]["properties"]["key_rate_limits"]["propertyNames"] =
        serde_json::json!({ "pattern": grammar::KEY_CURSOR });
    schemas["CreateTenant"]["properties"]["display_name"]["pattern"] =
        grammar::trimmed_text(docaiche_core::tenant::MAX_DISPLAY_NAME_LEN, true).into();
    schemas["SuspendTenant"]["properties"]["reason"]["pattern"] =
        grammar::trimmed_text(docaiche_core::tenant::MAX_SUSPENSION_REASON_LEN, true).into();
    for (name, schema) in json_schemas() {
        schemas[name] = schema;
    }
    if let Some(schemas) = schemas.as_object_mut() {
        merge_flattened(schemas);
    }
    document
}

/// Write each component schema that utoipa made an `allOf` of objects (a
/// `#[serde(flatten)]` field: `CreatedKey` is an `ApiKey` plus `key`) as
/// the one object it is: the members' properties and requirements, closed
/// (`additionalProperties: false`) when a member is. In JSON Schema each
/// `allOf` member judges the whole value alone, so a closed member would
/// refuse the other members' properties.
fn merge_flattened(schemas: &mut serde_json::Map<String, serde_json::Value>) {
    use serde_json::{Map, Value};
    let resolve = |member: &Value, schemas: &Map<String, Value>| -> Value {
        member["$ref"]
            .as_str()
            .and_then(|r| r.strip_prefix("#/components/schemas/"))
            .and_then(|name| schemas.get(name))
            .cloned()
            .unwrap_or_else(|| member.clone())
    };
    let names: Vec<String> = schemas
        .iter()
        .filter(|(_, schema)| schema["allOf"].is_array())
        .map(|(name, _)| name.clone())
        .collect();
    for name in names {
        let members: Vec<Value> = schemas[&name]["allOf"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|member| resolve(member, schemas))
            .collect();
        if !members.iter().all(|m| m["properties"].is_object()) {
            continue;
        }
        let mut properties = Map::new();
        let mut required: Vec<Value> = Vec::new();
        for member in &members {
            for (key, value) in member["properties"].as_object().into_iter().flatten() {
                properties.insert(key.clone(), value.clone());
            }
            for key in member["required"].as_array().into_iter().flatten() {
                if !required.contains(key) {
                    required.push(key.clone());
                }
            }
        }
        let mut merged = Map::new();
        merged.insert("type".into(), "object".into());
        if let Some(description) = schemas[&name].get("description") {
            merged.insert("description".into(), description.clone());
        }
        merged.insert("properties".into(), Value::Object(properties));
        merged.insert("required".into(), Value::Array(required));
        if members.iter().any(|m| m["additionalProperties"] == false) {
            merged.insert("additionalProperties".into(), false.into());
        }
        schemas.insert(name, Value::Object(merged));
    }
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

/// A `$ref` to the component schema of `T` (a function so an endpoint constant
/// can hold it).
pub(crate) fn schema_ref<T: ToSchema>() -> RefOr<Schema> {
    Ref::from_schema_name(T::name()).into()
}

/// A schema in an endpoint constant: resolved when the document is built.
type SchemaFn = fn() -> RefOr<Schema>;

/// How a route reads its body.
#[derive(Debug, Clone, Copy)]
pub(crate) enum RequestBody {
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
    pub(crate) body: RequestBody,
    /// The success status.
    pub(crate) status: u16,
    /// The success answer's description.
    pub(crate) answer: &'static str,
    /// The success answer's body.
    pub(crate) payload: Payload,
    /// A second success status with the same body, and when (a
    /// create-or-replace answering 201 or 200).
    pub(crate) also: Option<(u16, &'static str)>,
    /// Errors only this route's handler answers (status, when), beyond the
    /// ones derived from its facts.
    pub(crate) errors: &'static [(u16, &'static str)],
}

impl RouteDoc {
    /// A route answering 200 with `payload`, no body, no query.
    pub(crate) const fn ok(summary: &'static str, answer: &'static str, payload: Payload) -> Self {
        Self {
            summary,
            description: None,
            query: &[],
            body: RequestBody::None,
            status: 200,
            answer,
            payload,
            also: None,
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

mod operation;
mod schemas;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use self::schemas::*;
