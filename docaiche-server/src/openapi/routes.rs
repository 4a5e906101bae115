//! The documentation of every route: one declarative arm per method and
//! path (summary, body, answer, parameters), read by [`super::document`].

use axum::http::Method;
use docaiche_core::health::HEALTH_JSON;

use crate::audit::MAX_ACTION_CHARS;
use crate::openapi::{
    AcceptedDocument, BatchResponse, Body, CreatedKey, DocumentDoc, DocumentTextDoc, EmptyObject,
    Health, JobDoc, Jwks, KeyPage, PAGE_QUERY, Param, Payload, RefreshRequest, RevokeRequest,
    RouteDoc, TokenRequest, TokenResponse, Whoami, grammar, schema_ref,
};

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
                schema: schema_ref::<crate::routes::keys::CreateKey>,
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
                schema: schema_ref::<crate::routes::keys::RotateKey>,
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
                Json(schema_ref::<crate::routes::audit::AuditPage>),
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
                schema: schema_ref::<crate::routes::privacy::SubjectRequest>,
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
                Json(schema_ref::<crate::routes::privacy::SubjectExport>),
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
                schema: schema_ref::<crate::routes::privacy::SubjectRequest>,
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
                Json(schema_ref::<crate::routes::privacy::Erasure>),
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
                Json(schema_ref::<crate::routes::privacy::PrivacyRequestList>),
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
                Json(schema_ref::<crate::routes::privacy::PrivacyRequestDoc>),
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
                schema: schema_ref::<crate::routes::documents::BatchRequest>,
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
