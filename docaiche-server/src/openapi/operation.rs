//! From a route of the table to its OpenAPI operation: request body,
//! success answer, the errors its layers and guards can give, parameters,
//! operation id and tag; and the shared components.

use std::borrow::Cow;

use axum::http::Method;
use docaiche_core::Permission;
use docaiche_core::problem::PROBLEM_JSON;
use utoipa::ToSchema;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ComponentsBuilder, ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, RefOr, Required, ResponseBuilder, Schema};

use crate::openapi::{
    API_KEY, BEARER, EmptyObject, FieldErrorDoc, Health, Jwks, Param, Payload, PermissionName,
    ProblemDoc, RefreshRequest, RequestBody, RevokeRequest, RiskFlagName, RouteDoc,
    SetPasswordRequest, TokenRequest, WEBSOCKET_UPGRADE, grammar, schema_ref,
};
use crate::routes::{Access, RouteGroup, RouteSpec};

/// The operation of `route` in `group`.
pub(super) fn operation(group: &RouteGroup, route: &RouteSpec) -> Operation {
    let doc = &route.doc;
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
    if let Some((status, answer)) = doc.also {
        builder = builder.response(status.to_string(), success(&RouteDoc { answer, ..*doc }));
    }
    for (status, description) in errors(group, route) {
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
pub(super) fn request_body(
    body: RequestBody,
) -> Option<utoipa::openapi::request_body::RequestBody> {
    let (media, schema, required) = match body {
        RequestBody::None => return None,
        RequestBody::Json { schema, required } => ("application/json", Some(schema()), required),
        RequestBody::Raw(media) => (
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
pub(super) fn success(doc: &RouteDoc) -> utoipa::openapi::Response {
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
pub(crate) fn errors(group: &RouteGroup, route: &RouteSpec) -> Vec<(u16, String)> {
    let mut out = derived_errors(group, route, route.doc.body);
    for (status, description) in route.doc.errors {
        match out.iter_mut().find(|(s, _)| s == status) {
            Some((_, text)) => *text = format!("{text}; {description}"),
            None => out.push((*status, (*description).to_owned())),
        }
    }
    out.sort_by_key(|(status, _)| *status);
    out
}

/// The error statuses the route's facts imply.
pub(super) fn derived_errors(
    group: &RouteGroup,
    route: &RouteSpec,
    body: RequestBody,
) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    let json = matches!(body, RequestBody::Json { .. });
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
    if matches!(body, RequestBody::Json { .. } | RequestBody::Raw(_)) {
        out.push((413, "the body is over the size limit".to_owned()));
    }
    match body {
        RequestBody::Json { .. } => {
            out.push((415, "the body is not `application/json`".to_owned()))
        }
        RequestBody::Raw(media) => out.push((415, format!("the body is not `{media}`"))),
        RequestBody::None => {}
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
pub(super) fn permissions(required: &[Permission]) -> String {
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
pub(super) fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// A stable operation id: `get_v1_keys_id`.
pub(super) fn operation_id(method: &Method, path: &str) -> String {
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
pub(super) fn tag(path: &str) -> String {
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
pub(super) fn components() -> utoipa::openapi::Components {
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
        RiskFlagName,
        ProblemDoc,
        FieldErrorDoc,
        Health,
        Jwks,
        TokenRequest,
        RefreshRequest,
        RevokeRequest,
        SetPasswordRequest,
        crate::routes::auth::TokenResponse<'static>,
        EmptyObject,
        crate::routes::keys::Whoami<'static>,
        crate::routes::keys::CreateKey,
        crate::routes::keys::RotateKey,
        crate::routes::keys::KeyView,
        crate::routes::keys::CreatedKey<'static>,
        crate::routes::keys::list::KeyPage,
        crate::routes::audit::AuditPage,
        crate::routes::audit::AuditItem,
        crate::routes::privacy::SubjectRequest,
        crate::routes::privacy::SubjectExport,
        crate::routes::privacy::Erasure<'static>,
        crate::routes::privacy::ErasureReportDoc,
        crate::routes::privacy::PrivacyRequestDoc,
        crate::routes::privacy::PrivacyRequestList,
        crate::routes::roles::RoleList,
        crate::routes::roles::RoleView,
        crate::routes::roles::PutRole,
        crate::routes::accounts::AccountView,
        crate::routes::accounts::AccountPage,
        crate::routes::accounts::CreateAccount,
        crate::routes::accounts::SetRoles,
        crate::routes::accounts::RoleNames,
        crate::routes::accounts::TokenView<'static>,
        crate::routes::accounts::InvitedAccount<'static>,
        crate::routes::admin::PlaceHold,
        crate::routes::admin::LegalHoldDoc,
        crate::routes::admin::LegalHoldList,
        crate::routes::admin::ComplianceReportDoc,
        crate::routes::documents::BatchRequest,
        crate::routes::documents::BatchItem,
        crate::routes::documents::DocumentView<'static>,
        crate::routes::documents::ExtractionView<'static>,
        crate::routes::jobs::JobView<'static>,
        crate::routes::jobs::JobPage<'static>,
        crate::routes::documents::AcceptedDocument<'static>,
        crate::routes::documents::BatchResult<'static>,
        crate::routes::documents::BatchResponse<'static>,
        crate::routes::documents::DocumentTextView<'static>,
        crate::routes::documents::list::DocumentPage<'static>,
        crate::routes::tenants::CreateTenant,
        crate::routes::tenants::UpdateTenant,
        crate::routes::tenants::SuspendTenant,
        crate::routes::tenants::TenantView,
        crate::routes::tenants::TenantList,
        crate::routes::tenants::SettingsBody,
        crate::routes::tenants::RateLimitBody,
        crate::routes::tenants::QuotasBody,
        crate::routes::usage::Counts,
        crate::routes::usage::UsagePointView,
        crate::routes::usage::UsageSeries,
        crate::routes::usage::KeyUsageView,
        crate::routes::usage::TopKeys,
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
