//! Password accounts and the token endpoints, assembled from
//! `docaiche-auth`'s [`PasswordLogin`]: `POST /v1/auth/token` (password
//! login), `POST /v1/auth/refresh` (rotating refresh tokens, reuse
//! detection) and `POST /v1/auth/revoke` (RFC 7009), and the
//! `bootstrap-admin` subcommand that creates the first account.
//!
//! The three routes are public (a token endpoint is where credentials are
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
//!
//! The 401 is the same body for every bad credential, so an answer never
//! tells whether an account exists (the work done is the same too, see
//! `docaiche_auth::login`).

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use docaiche_auth::jwt::JwtVerifier;
use docaiche_auth::lockout::FailedAuthTracker;
use docaiche_auth::login::{DeviceCookies, PasswordLogin};
use docaiche_auth::password::{PasswordConfig, PasswordService};
use docaiche_auth::session::{MemoryRefreshTokenStore, SessionConfig, SessionManager, TokenPair};
use docaiche_core::account::AccountEmail;
use docaiche_core::error::FieldError;
use docaiche_core::{Error, Problem, RequestContext, SecretString, TenantId};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::auth::AuthServices;
use crate::config::{AuthSection, Config, EnvLookup};
use crate::openapi::{
    EmptyObject, Payload, RefreshRequest, RequestBody, RevokeRequest, RouteDoc, TokenRequest,
    schema_ref,
};
use crate::routes::Endpoint;
use crate::routes::RouteGroup;
use crate::state::AppState;

/// Shortest password `bootstrap-admin` (and any account creation) accepts.
pub(crate) const MIN_PASSWORD_CHARS: usize = 12;

/// Longest password read from standard input, in bytes.
const MAX_STDIN_BYTES: u64 = 4096;

/// Add the token endpoints to `group` (the public `auth` group).
pub(crate) fn routes(group: RouteGroup) -> RouteGroup {
    group
        .route(TOKEN, &[], token)
        .route(REFRESH, &[], refresh)
        .route(REVOKE, &[], revoke)
}

/// The login service of the server, built on first use: the password
/// service computes a dummy hash when it starts, which takes an argon2id
/// run the synchronous start-up path cannot wait for.
#[derive(Debug)]
pub(crate) struct Login {
    parts: Parts,
    password_config: PasswordConfig,
    service: OnceCell<Arc<PasswordLogin>>,
}

/// What the login service is made of.
#[derive(Debug, Clone)]
struct Parts {
    accounts: Arc<dyn docaiche_core::AccountStore>,
    audit: Arc<dyn docaiche_core::AuditSink>,
    sessions: Arc<SessionManager>,
    verifier: Arc<JwtVerifier>,
    tracker: Arc<FailedAuthTracker>,
    devices: DeviceCookies,
    policy: docaiche_auth::rbac::RolePolicy,
    clock: Arc<dyn docaiche_core::Clock>,
    bootstrap_role: String,
}

impl Login {
    /// The login service over `services`' stores, keys, roles and clock,
    /// with `auth`'s lockout settings. Refresh tokens are kept in memory:
    /// a restart ends every session (access tokens stay valid until they
    /// expire).
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for settings `Config::validate` also
    /// refuses.
    pub(crate) fn new(auth: &AuthSection, services: &AuthServices) -> Result<Self, Error> {
        let clock = Arc::clone(&services.clock);
        let stores = &services.stores;
        let sessions = SessionManager::new(
            services.issuer.clone(),
            Arc::new(MemoryRefreshTokenStore::new().with_clock(Arc::clone(&clock))),
            Arc::clone(&stores.revocations),
            SessionConfig::default(),
            Arc::clone(&clock),
        )?;
        let verifier = JwtVerifier::new(
            Arc::clone(&services.jwt_keys),
            auth.jwt_config(),
            Arc::clone(&clock),
        )?;
        let tracker = FailedAuthTracker::new(auth.lockout.clone(), Arc::clone(&stores.audit))?
            .with_clock(Arc::clone(&clock));
        let devices = DeviceCookies::new(&services.device_key)?.with_clock(Arc::clone(&clock));
        let mut password_config = PasswordConfig::default();
        password_config.min_chars = MIN_PASSWORD_CHARS;
        Ok(Self {
            parts: Parts {
                accounts: Arc::clone(&stores.accounts),
                audit: Arc::clone(&stores.audit),
                sessions: Arc::new(sessions),
                verifier: Arc::new(verifier),
                tracker: Arc::new(tracker),
                devices,
                policy: services.policy.clone(),
                clock,
                bootstrap_role: services.bootstrap_role.clone(),
            },
            password_config,
            service: OnceCell::new(),
        })
    }

    /// Hash with `config` instead of the OWASP defaults (tests: cheaper
    /// parameters). `min_chars` is kept at [`MIN_PASSWORD_CHARS`].
    #[cfg(test)]
    pub(crate) fn with_password_config(mut self, mut config: PasswordConfig) -> Self {
        config.min_chars = MIN_PASSWORD_CHARS;
        self.password_config = config;
        self
    }

    /// The login service, started on first use.
    ///
    /// # Errors
    /// As [`PasswordService::new`] and [`PasswordLogin::new`].
    pub(crate) async fn service(&self) -> Result<&Arc<PasswordLogin>, Error> {
        self.service
            .get_or_try_init(|| async {
                let parts = self.parts.clone();
                let passwords = PasswordService::new(self.password_config.clone()).await?;
                let login = PasswordLogin::new(
                    parts.accounts,
                    Arc::new(passwords),
                    parts.sessions,
                    parts.policy,
                    parts.audit,
                )?
                .with_tracker(parts.tracker)
                .with_device_cookies(parts.devices)
                .with_access_token_verifier(parts.verifier)
                .with_clock(parts.clock);
                Ok(Arc::new(login))
            })
            .await
    }

    /// The role `bootstrap-admin` gives the first account.
    pub(crate) fn bootstrap_role(&self) -> &str {
        &self.parts.bootstrap_role
    }
}

/// The request facts for lockouts and the audit trail: a context an outer
/// layer put in the extensions (behind a trusted proxy), else the socket
/// peer, `X-Request-Id` and `User-Agent`.
fn request_context(request: &axum::http::request::Parts) -> RequestContext {
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

/// `bootstrap-admin --tenant T --email E [--config PATH]`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct BootstrapAdminArgs {
    /// The tenant of the account.
    pub(crate) tenant: String,
    /// The account's email.
    pub(crate) email: String,
}

/// Read the password from `input`: everything up to 4 KiB, without the
/// final line break.
fn read_password(mut input: impl Read) -> Result<SecretString, Error> {
    let mut raw = Vec::new();
    input
        .by_ref()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(|e| Error::internal_with("cannot read the password from standard input", e))?;
    if u64::try_from(raw.len()).unwrap_or(u64::MAX) > MAX_STDIN_BYTES {
        return Err(Error::invalid_input(
            "the password must be at most 4096 bytes",
        ));
    }
    let mut text =
        String::from_utf8(raw).map_err(|_| Error::invalid_input("the password must be UTF-8"))?;
    for ending in ["\r\n", "\n"] {
        if text.ends_with(ending) {
            text.truncate(text.len() - ending.len());
            break;
        }
    }
    let password = SecretString::from(text);
    if password.expose_secret().chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::invalid_input(format!(
            "the password must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    Ok(password)
}

/// `bootstrap-admin`: create the first account of a tenant, bound to
/// `auth.bootstrap_role`, in the configured store, with the password read
/// from `input`; prints the account id on stdout.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad tenant, email or password;
/// [`Error::Conflict`] if the email already has an account in the tenant;
/// the store's error.
pub(crate) async fn bootstrap_admin(
    config: &Config,
    args: &BootstrapAdminArgs,
    env: EnvLookup<'_>,
    input: impl Read,
) -> Result<docaiche_core::account::Account, Error> {
    let tenant = TenantId::new(&args.tenant)?;
    let email = AccountEmail::new(&args.email)?;
    let password = read_password(input)?;
    crate::storage::prepare_data_dir(&config.storage.data_dir)
        .map_err(|e| Error::misconfigured("storage.data_dir", e.to_string()))?;
    // A guest of the audit trail: it runs beside the server.
    let (auth, _) = crate::state::open_auth_as(config, env, crate::audit::TrailRole::Guest).await?;
    let login = Login::new(&config.auth, &auth)?;
    create_admin(&login, &tenant, email, &password).await
}

/// Create the bootstrap account with `login`.
async fn create_admin(
    login: &Login,
    tenant: &TenantId,
    email: AccountEmail,
    password: &SecretString,
) -> Result<docaiche_core::account::Account, Error> {
    let role = login.bootstrap_role().to_owned();
    let service = login.service().await?;
    let account = service
        .create_account(tenant, email, password, vec![role.clone()])
        .await
        .map_err(|e| match e {
            Error::Conflict { .. } => {
                Error::conflict("an account with this email already exists in the tenant")
            }
            other => other,
        })?;
    tracing::info!(
        tenant = %account.tenant,
        account = %account.id,
        role = %role,
        "bootstrap admin account created"
    );
    Ok(account)
}

#[cfg(test)]
mod tests;
