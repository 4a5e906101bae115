//! The schemas of the document: hand-written ones where a type checks more
//! than its derive can say, and the `*Doc` types describing JSON answers
//! built by hand in the handlers.

use std::borrow::Cow;

use serde::Deserialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::openapi::grammar;

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

/// A risk flag of a document (`docaiche_core::extract::RiskFlag`): the
/// enum of its snake_case names.
#[derive(Debug)]
pub(crate) struct RiskFlagName;

impl utoipa::PartialSchema for RiskFlagName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "active content found in a PDF: `java_script`, `open_action`, \
                 `additional_actions` (`/AA`), `launch`, `uri`, `embedded_files`, \
                 `rich_media` or `xfa`",
            ))
            .enum_values(Some(
                docaiche_core::extract::RiskFlag::ALL.map(docaiche_core::extract::RiskFlag::as_str),
            ))
            .into()
    }
}

impl ToSchema for RiskFlagName {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RiskFlag")
    }
}

/// A component whose schema is written as JSON ([`json_schemas`]): a
/// placeholder for utoipa, replaced when the document is built.
pub(super) fn written_as_json() -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::Object).into()
}

/// The schema of `crate::routes::privacy::SubjectRequest`.
pub(super) fn subject_request_schema() -> serde_json::Value {
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

impl utoipa::PartialSchema for crate::routes::privacy::SubjectRequest {
    fn schema() -> RefOr<Schema> {
        written_as_json()
    }
}

impl ToSchema for crate::routes::privacy::SubjectRequest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("SubjectRequest")
    }
}

/// The schema of `crate::routes::admin::PlaceHold`.
pub(super) fn place_hold_schema() -> serde_json::Value {
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
    /// `tenant-quota-exceeded`: which quota (`documents`, `storage_bytes`).
    quota: Option<String>,
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

/// The body of `POST /v1/auth/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Read by the schema derive; the handler reads the fields itself.
pub(crate) struct SetPasswordRequest {
    /// The invitation or password-reset token an administrator handed on.
    #[schema(min_length = 1)]
    token: String,
    /// The new password: at least 12 characters, not among the most common
    /// breached passwords.
    #[schema(min_length = 12)]
    password: String,
}

/// An empty JSON object.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmptyObject {}
