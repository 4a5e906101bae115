//! The token endpoints, over the server's login service
//! ([`crate::login::Login`], `docaiche-auth`'s `PasswordLogin`):
//! `POST /v1/auth/token` (password login), `POST /v1/auth/refresh`
//! (rotating refresh tokens, reuse detection), `POST /v1/auth/revoke`
//! (RFC 7009) and `POST /v1/auth/password` (a password set with an
//! invitation or reset token of [`crate::routes::accounts`]).
//!
//! The four routes are public (a token endpoint is where credentials are
//! presented, not checked by the gate) and sit in their own strict `auth`
//! rate-limit class, keyed by client address. Answers follow OAuth 2.0
//! (RFC 6749 §5) inside RFC 9457 problems:
//!
//! | case | status | `code` | `error` |
//! |---|---|---|---|
//! | no or another `Content-Type` than JSON | 415 | `unsupported-media-type` | — |
//! | a body over `server.json_body_limit_bytes` | 413 | `payload-too-large` | — |
//! | malformed body | 400 | `invalid-input` (with field `errors`) | `invalid_request` |
//! | unknown account, wrong password, disabled account, bad refresh token | 401 | `unauthenticated` | `invalid_grant` |
//! | locked out after repeated failures | 429 + `Retry-After` | `quota-exceeded` | — |
//! | the right password or refresh token, but the tenant is suspended (`/v1/tenants`; the refresh token is used up) | 403 | `tenant-suspended` | — |
//!
//! The 401 is the same body for every bad credential, so an answer never
//! tells whether an account exists (the work done is the same too, see
//! `docaiche_auth::login`).

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::login::DeviceCookies;
use docaiche_auth::session::TokenPair;
use docaiche_core::account::AccountEmail;
use docaiche_core::error::FieldError;
use docaiche_core::{Error, Problem, RequestContext, SecretString, TenantId};
use serde_json::{Map, Value};

use crate::openapi::{
    EmptyObject, Payload, RefreshRequest, RequestBody, RevokeRequest, RouteDoc, SetPasswordRequest,
    TokenRequest, schema_ref,
};
use crate::routes::{Endpoint, RouteGroup};
use crate::state::AppState;

/// Add the token endpoints to `group` (the public `auth` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group
        .route(TOKEN, &[], token)
        .route(REFRESH, &[], refresh)
        .route(REVOKE, &[], revoke)
        .route(SET_PASSWORD, &[], set_password)
}

/// The request facts for lockouts and the audit trail: a context an outer
/// layer put in the extensions (behind a trusted proxy), else the socket
/// peer, `X-Request-Id` and `User-Agent`.
pub(crate) fn request_context(request: &axum::http::request::Parts) -> RequestContext {
    if let Some(context) = request.extensions.get::<RequestContext>() {
        return context.clone();
    }
    let mut context = RequestContext::new();
    if let Some(ConnectInfo(peer)) = request
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
    {
        context = context.with_client_addr(peer.ip());
    }
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128)
    };
    if let Some(id) = header("x-request-id") {
        context = context.with_request_id(id);
    }
    if let Some(agent) = header("user-agent") {
        context = context.with_user_agent(agent);
    }
    context
}

/// An error as a problem, with the OAuth 2.0 `error` member where one
/// applies.
fn oauth_problem(error: &Error) -> Response {
    let oauth = match error {
        Error::InvalidInput { .. } => Some("invalid_request"),
        Error::Unauthenticated { .. } => Some("invalid_grant"),
        _ => None,
    };
    let problem = Problem::from_error(error);
    let mut response = problem.clone().into_response();
    if let Some(code) = oauth
        && let Ok(mut body) = serde_json::to_value(&problem)
    {
        body["error"] = Value::String(code.to_owned());
        *response.body_mut() = Body::from(body.to_string());
    }
    response
}

/// A JSON object body with exactly the string fields `required` (and
/// optionally `optional`), or a 400 naming every bad field.
fn fields(
    body: &[u8],
    required: &[&'static str],
    optional: &[&'static str],
) -> Result<Map<String, Value>, Error> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Error::invalid_input(format!("invalid JSON body: {e}")))?;
    let Value::Object(object) = value else {
        return Err(Error::invalid_input("the body must be a JSON object"));
    };
    let mut errors = Vec::new();
    for name in required {
        match object.get(*name) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) => {
                errors.push(FieldError::new(format!("/{name}"), "must not be empty"))
            }
            Some(_) => errors.push(FieldError::new(format!("/{name}"), "must be a string")),
            None => errors.push(FieldError::new(format!("/{name}"), "is required")),
        }
    }
    for (name, value) in &object {
        if required.contains(&name.as_str()) {
            continue;
        }
        if !optional.contains(&name.as_str()) {
            let shown: String = name.chars().take(64).collect();
            errors.push(FieldError::new(format!("/{shown}"), "unknown field"));
        } else if !value.is_string() {
            errors.push(FieldError::new(format!("/{name}"), "must be a string"));
        }
    }
    if errors.is_empty() {
        Ok(object)
    } else {
        Err(Error::invalid_fields("the body failed validation", errors))
    }
}

/// The string field `name` of a body checked by [`fields`].
fn text<'a>(object: &'a Map<String, Value>, name: &str) -> &'a str {
    object.get(name).and_then(Value::as_str).unwrap_or_default()
}

/// A token pair (RFC 6749 §5.1).
// No `Debug`: it holds the tokens.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TokenResponse<'a> {
    /// The access token (a JWT).
    access_token: &'a str,
    /// `Bearer`.
    token_type: &'a str,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// The refresh token (single use).
    refresh_token: &'a str,
    /// Seconds until the refresh token expires.
    refresh_token_expires_in: i64,
}

/// The OAuth 2.0 token response (RFC 6749 §5.1), never cached.
fn token_response(pair: &TokenPair, now: time::OffsetDateTime) -> Response {
    // Whole seconds, rounded up: the issuer counts from the whole second.
    let seconds_until = |at: time::OffsetDateTime| {
        let left = at - now;
        (left.whole_seconds() + i64::from(left.subsec_nanoseconds() > 0)).max(0)
    };
    let expires_in = seconds_until(pair.access_expires_at);
    let refresh_expires_in = seconds_until(pair.refresh_expires_at);
    let body = TokenResponse {
        access_token: pair.access_token.expose_secret(),
        token_type: pair.token_type,
        expires_in,
        refresh_token: pair.refresh_token.expose_secret(),
        refresh_token_expires_in: refresh_expires_in,
    };
    let mut response = (StatusCode::OK, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// `POST /v1/auth/token`: the route of [`token`] and its documentation.
pub(crate) const TOKEN: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/auth/token",
    RouteDoc {
        body: RequestBody::Json {
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
            Payload::Json(schema_ref::<TokenResponse<'static>>),
        )
    },
);

/// `POST /v1/auth/token`: `{tenant, email, password}` → tokens.
async fn token(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let context = request_context(&parts);
    match token_inner(&state, &context, &parts.headers, body).await {
        Ok(response) => response,
        Err(e) => oauth_problem(&e),
    }
}

async fn token_inner(
    state: &AppState,
    context: &RequestContext,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<Response, Error> {
    let body = read_body(state, headers, body).await?;
    let object = fields(&body, &["tenant", "email", "password"], &["grant_type"])?;
    if object
        .get("grant_type")
        .is_some_and(|g| g.as_str() != Some("password"))
    {
        return Err(Error::invalid_fields(
            "the body failed validation",
            vec![FieldError::new(
                "/grant_type",
                "must be \"password\" when given",
            )],
        ));
    }
    let mut errors = Vec::new();
    let tenant = TenantId::new(text(&object, "tenant"))
        .map_err(|e| errors.push(FieldError::new("/tenant", e.to_string())))
        .ok();
    let email = AccountEmail::new(text(&object, "email"))
        .map_err(|e| errors.push(FieldError::new("/email", e.to_string())))
        .ok();
    let (Some(tenant), Some(email)) = (tenant, email) else {
        return Err(Error::invalid_fields("the body failed validation", errors));
    };
    let password = SecretString::from(text(&object, "password").to_owned());
    drop(object);
    let login = state.login.service().await?;
    let device = device_cookie(headers);
    let session = login
        .login_from_device(&tenant, &email, &password, device, context)
        .await?;
    // A suspended tenant's sessions are refused by the gate; its logins
    // are refused here, after the password check, so that the answer does
    // not tell strangers which tenants are suspended.
    if state
        .auth
        .tenants
        .lookup(&tenant)
        .await?
        .is_some_and(|t| t.is_suspended())
    {
        return Err(Error::TenantSuspended);
    }
    let mut response = token_response(&session.tokens, state.auth.clock.now());
    if let Some(cookie) = &session.device_cookie
        && let Ok(value) = HeaderValue::from_str(&format!(
            "{}={}; Path=/v1/auth/token; Max-Age={}; Secure; HttpOnly; SameSite=Strict",
            DeviceCookies::COOKIE_NAME,
            cookie.expose_secret(),
            DeviceCookies::DEFAULT_TTL.as_secs(),
        ))
    {
        let mut value = value;
        value.set_sensitive(true);
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}

/// The value of the device cookie among the request's `Cookie` headers
/// (RFC 6265 §5.4: `name=value` pairs separated by `; `), if any; at most
/// one is looked at, and only a short ASCII one.
fn device_cookie(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == DeviceCookies::COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|value| value.len() <= 256)
}

/// `POST /v1/auth/refresh`: the route of [`refresh`] and its documentation.
pub(crate) const REFRESH: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/auth/refresh",
    RouteDoc {
        description: Some("The refresh token is used up; presenting it again ends the session."),
        body: RequestBody::Json {
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
            Payload::Json(schema_ref::<TokenResponse<'static>>),
        )
    },
);

/// `POST /v1/auth/refresh`: `{refresh_token}` → a new pair; the old
/// refresh token is used up, and presenting it again ends the session.
async fn refresh(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let context = request_context(&parts);
    let outcome = async {
        let body = read_body(&state, &parts.headers, body).await?;
        let object = fields(&body, &["refresh_token"], &["grant_type"])?;
        let login = state.login.service().await?;
        let pair = login
            .refresh(text(&object, "refresh_token"), &context)
            .await?;
        // Refresh tokens are `<tenant>.<secret>`: a suspended tenant's
        // refresh is refused once it succeeded (the token used up), so a
        // stranger cannot probe which tenants are suspended.
        if let Some((tenant, _)) = pair.refresh_token.expose_secret().split_once('.')
            && let Ok(tenant) = TenantId::new(tenant)
            && state
                .auth
                .tenants
                .lookup(&tenant)
                .await?
                .is_some_and(|t| t.is_suspended())
        {
            return Err(Error::TenantSuspended);
        }
        Ok::<_, Error>(token_response(&pair, state.auth.clock.now()))
    };
    outcome.await.unwrap_or_else(|e| oauth_problem(&e))
}

/// `POST /v1/auth/revoke`: the route of [`revoke`] and its documentation.
pub(crate) const REVOKE: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/auth/revoke",
    RouteDoc {
        body: RequestBody::Json {
            schema: schema_ref::<RevokeRequest>,
            required: true,
        },
        ..RouteDoc::ok(
            "Revoke an access or refresh token (RFC 7009)",
            "done, whether or not the token was valid (RFC 7009 §2.2)",
            Payload::Json(schema_ref::<EmptyObject>),
        )
    },
);

/// `POST /v1/auth/revoke`: `{token, token_type_hint?}` → 200, whether or
/// not the token was valid (RFC 7009 §2.2).
async fn revoke(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let context = request_context(&parts);
    let outcome = async {
        let body = read_body(&state, &parts.headers, body).await?;
        let object = fields(&body, &["token"], &["token_type_hint"])?;
        let login = state.login.service().await?;
        let hint = object.get("token_type_hint").and_then(Value::as_str);
        login.revoke(text(&object, "token"), hint, &context).await?;
        Ok::<_, Error>(
            (
                StatusCode::OK,
                [(header::CACHE_CONTROL, "no-store")],
                axum::Json(serde_json::json!({})),
            )
                .into_response(),
        )
    };
    outcome.await.unwrap_or_else(|e| oauth_problem(&e))
}

/// `POST /v1/auth/password`: the route of [`set_password`] and its
/// documentation.
pub(crate) const SET_PASSWORD: Endpoint = Endpoint::new(
    Method::POST,
    "/v1/auth/password",
    RouteDoc {
        description: Some(
            "The token (from `POST /v1/accounts` or \
             `POST /v1/accounts/{id}/password-reset`) is spent, and every session of \
             the account ends; sign in with `POST /v1/auth/token` afterwards.",
        ),
        body: RequestBody::Json {
            schema: schema_ref::<SetPasswordRequest>,
            required: true,
        },
        status: 204,
        errors: &[(
            401,
            "a malformed, forged, expired or spent token, or a disabled account \
             (`invalid_grant`, one body for all)",
        )],
        ..RouteDoc::ok(
            "Set a password with an invitation or password-reset token",
            "the password is set",
            Payload::Empty,
        )
    },
);

/// `POST /v1/auth/password`: `{token, password}` → 204. A refused password
/// (400) does not spend the token.
async fn set_password(State(state): State<AppState>, request: axum::extract::Request) -> Response {
    let (parts, body) = request.into_parts();
    let context = request_context(&parts);
    let outcome = async {
        let body = read_body(&state, &parts.headers, body).await?;
        let object = fields(&body, &["token", "password"], &[])?;
        let password = SecretString::from(text(&object, "password").to_owned());
        let login = state.login.service().await?;
        login
            .redeem(text(&object, "token"), &password, &context)
            .await?;
        Ok::<_, Error>(
            (
                StatusCode::NO_CONTENT,
                [(header::CACHE_CONTROL, "no-store")],
            )
                .into_response(),
        )
    };
    outcome.await.unwrap_or_else(|e| oauth_problem(&e))
}

/// The whole body, declared as JSON (415 otherwise, before anything is
/// read) and within `server.json_body_limit_bytes` (413 otherwise), as for
/// every other JSON route.
async fn read_body(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<Bytes, Error> {
    crate::json::read_json_body(headers, body, state.http.json_body_limit()).await
}

#[cfg(test)]
mod tests;
