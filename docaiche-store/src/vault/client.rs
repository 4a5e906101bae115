//! [`VaultClient`]: the HTTP client, authentication, token renewal, the
//! mapping of Vault's answers onto [`Error`], and the health check.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use docaiche_core::health::{ComponentHealth, HealthCheck, HealthStatus};
use docaiche_core::resilience::CircuitBreaker;
use docaiche_core::secret::{SecretBytes, SecretString};
use docaiche_core::{Clock, Error, Result, SystemClock};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use rustls_platform_verifier::BuilderVerifierExt as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::config::{VaultAuth, VaultConfig};

/// The only place the token goes.
const TOKEN_HEADER: &str = "X-Vault-Token";
const NAMESPACE_HEADER: &str = "X-Vault-Namespace";
/// What [`Error::Unavailable`] and [`Error::Timeout`] name.
const DEPENDENCY: &str = "vault";

/// A Vault / OpenBao client shared by the adapters: one HTTP connection
/// pool, one login, one token.
///
/// - **HTTP**: reqwest with rustls (the `ring` provider, passed explicitly so
///   no process-wide provider is installed) and the platform's trust store;
///   redirects are not followed (a redirect would carry the token elsewhere);
///   every request has `request_timeout_ms` as its deadline and bodies are
///   capped at `max_response_bytes` while read.
/// - **Token**: sent only in the `X-Vault-Token` header, marked sensitive;
///   never logged, never in `Debug`, never in an error. Response bodies are
///   read into zeroizing buffers, since several carry secrets.
/// - **Authentication** happens lazily, on the first request: a configured
///   token is looked up once (`auth/token/lookup-self`) to learn its TTL;
///   AppRole logs in (`auth/<mount>/login`).
/// - **Resilience**: optionally, a [`CircuitBreaker`]
///   ([`VaultClient::with_circuit_breaker`]) fails requests fast while Vault
///   is down. No retries inside: callers (or a `Retry` around them) decide,
///   since [`Error::is_retryable`] tells outages apart.
/// - **Renewal** is lazy too, on use rather than by a background task (no
///   task to own, stop or leak, and an idle client costs nothing): the first
///   request after two thirds of the token's lease have passed renews it with
///   `auth/token/renew-self`, one renewal at a time for all callers. An
///   AppRole token that can no longer be renewed (or that Vault refuses with
///   403) is replaced by a fresh login, once per request. The cost: a client
///   idle for longer than the whole lease starts over with a login (AppRole)
///   or fails with the expired token (token auth) — give a long-lived
///   service's token a period or a generous TTL.
///
/// Clones share everything. `Debug` shows the address and the auth method only.
#[derive(Clone)]
pub struct VaultClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    config: VaultConfig,
    clock: Arc<dyn Clock>,
    token: RwLock<Option<Arc<Token>>>,
    /// Serializes logins and renewals.
    auth_lock: tokio::sync::Mutex<()>,
    breaker: OnceLock<CircuitBreaker>,
    requests: AtomicU64,
    logins: AtomicU64,
    renewals: AtomicU64,
}

/// What a client has done so far, for metrics and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct VaultStats {
    /// HTTP requests sent (all of them: reads, writes, logins, renewals, health).
    pub requests: u64,
    /// Successful logins (AppRole) or token lookups (token auth).
    pub logins: u64,
    /// Successful token renewals.
    pub renewals: u64,
}

/// The current token, as a header value marked sensitive (hyper and reqwest
/// then keep it out of their `Debug` output).
struct Token {
    header: HeaderValue,
    lease: Option<Lease>,
}

#[derive(Debug, Clone, Copy)]
struct Lease {
    /// When the lease started, on the client's monotonic clock.
    obtained_at: Duration,
    ttl: Duration,
    /// The TTL at login, to tell a renewal that hit the max TTL.
    full_ttl: Duration,
    renewable: bool,
}

impl Lease {
    fn new(now: Duration, ttl_secs: u64, full_ttl: Option<Duration>, renewable: bool) -> Self {
        let ttl = Duration::from_secs(ttl_secs);
        Self {
            obtained_at: now,
            ttl,
            full_ttl: full_ttl.unwrap_or(ttl),
            renewable,
        }
    }

    /// Two thirds of the lease have passed (Vault's own agent renews then).
    fn renewal_due(&self, now: Duration) -> bool {
        now.saturating_sub(self.obtained_at) >= self.ttl.saturating_mul(2) / 3
    }
}

/// One HTTP answer: its status and its body, in a zeroizing buffer.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: SecretBytes,
}

/// Vault's answer to a failed request, carried as the [`Error`]'s source
/// (for the log): the status, the operation, and Vault's error messages,
/// which name the problem and never echo secrets or tokens.
#[derive(Debug)]
pub(crate) struct VaultStatus {
    op: &'static str,
    status: u16,
    messages: String,
}

impl VaultStatus {
    pub(crate) fn new(op: &'static str, reply: &Reply) -> Self {
        #[derive(Deserialize)]
        struct Errors {
            #[serde(default)]
            errors: Vec<String>,
        }
        let messages = serde_json::from_slice::<Errors>(reply.body.expose_secret())
            .map(|e| {
                e.errors
                    .iter()
                    .take(3)
                    .map(|m| m.chars().take(200).collect::<String>())
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        Self {
            op,
            status: reply.status,
            messages,
        }
    }

    /// Whether Vault's message contains `needle`.
    pub(crate) fn says(&self, needle: &str) -> bool {
        self.messages.contains(needle)
    }
}

impl fmt::Display for VaultStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vault answered {} to {}", self.status, self.op)?;
        if !self.messages.is_empty() {
            write!(f, ": {}", self.messages)?;
        }
        Ok(())
    }
}

impl std::error::Error for VaultStatus {}

/// Map a non-success answer onto [`Error`]:
///
/// | Vault | `Error` |
/// |---|---|
/// | 401, 403 | `Misconfigured` (`vault.auth`): the token expired or its policies do not allow the path |
/// | 404 | `NotFound` |
/// | 412, 429, 5xx (503 = sealed or standby) | `Unavailable`, retryable |
/// | anything else | `Internal`, with Vault's message as the source |
pub(crate) fn status_error(op: &'static str, reply: &Reply) -> Error {
    let status = VaultStatus::new(op, reply);
    match reply.status {
        401 | 403 => Error::misconfigured(
            "vault.auth",
            format!(
                "vault refused {op} with permission denied: the token has expired or been \
                 revoked, or its policies do not allow this path"
            ),
        ),
        404 => Error::not_found("vault path"),
        code if is_outage(code) => Error::Unavailable {
            dependency: DEPENDENCY.into(),
            source: Some(Arc::new(status)),
        },
        _ => Error::internal_with(format!("vault {op} failed"), status),
    }
}

/// Statuses that say Vault is down, sealed, overloaded or not ready.
const fn is_outage(status: u16) -> bool {
    matches!(status, 412 | 429 | 500..=599)
}

/// Parse a JSON body. The parser's own message is left out: it can quote the
/// input, and the input can be a secret.
pub(crate) fn parse<T: DeserializeOwned>(op: &'static str, body: &SecretBytes) -> Result<T> {
    serde_json::from_slice(body.expose_secret()).map_err(|e| {
        Error::internal(format!(
            "vault {op}: unexpected response ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

#[derive(Deserialize)]
struct AuthEnvelope {
    auth: Option<AuthData>,
}

#[derive(Deserialize)]
struct AuthData {
    client_token: SecretString,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct LookupEnvelope {
    data: LookupData,
}

#[derive(Deserialize)]
struct LookupData {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
}

impl fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let config = &self.inner.config;
        f.debug_struct("VaultClient")
            .field("address", &config.address)
            .field("namespace", &config.namespace)
            .field("auth", &config.auth.method())
            .finish_non_exhaustive()
    }
}

impl VaultClient {
    /// A client for `config`, on the system clock. Sends nothing yet.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for an invalid setting, or when TLS or the
    /// platform trust store cannot be set up.
    pub fn new(config: VaultConfig) -> Result<Self> {
        Self::with_clock(config, Arc::new(SystemClock::new()))
    }

    /// A client reading time (token leases, cache ages) from `clock`.
    ///
    /// # Errors
    /// As [`VaultClient::new`].
    pub fn with_clock(config: VaultConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        config.validate()?;
        let base = config.base_url()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|builder| builder.with_platform_verifier())
            .map_err(|err| Error::misconfigured("vault.tls", format!("TLS setup failed: {err}")))?
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout())
            .timeout(config.request_timeout())
            .user_agent(concat!("docaiche-store/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                Error::misconfigured("vault.http", format!("HTTP client setup failed: {err}"))
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                clock,
                token: RwLock::new(None),
                auth_lock: tokio::sync::Mutex::new(()),
                breaker: OnceLock::new(),
                requests: AtomicU64::new(0),
                logins: AtomicU64::new(0),
                renewals: AtomicU64::new(0),
            }),
        })
    }

    /// Guard every request but the health probe with `breaker`: outages
    /// (transport errors, timeouts, 412, 429 and 5xx answers, a sealed
    /// Vault) count as failures, and while it is open requests fail at once
    /// with [`Error::CircuitOpen`]. A refused wrapped key or a missing secret
    /// is not an outage and never trips it. Set once, before the client is
    /// used; a second breaker is ignored.
    #[must_use]
    pub fn with_circuit_breaker(self, breaker: CircuitBreaker) -> Self {
        if self.inner.breaker.set(breaker).is_err() {
            tracing::warn!("vault client already has a circuit breaker; ignoring the new one");
        }
        self
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &VaultConfig {
        &self.inner.config
    }

    /// The clock leases and caches are timed by.
    #[must_use]
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// What this client (and its clones) has done so far.
    #[must_use]
    pub fn stats(&self) -> VaultStats {
        VaultStats {
            requests: self.inner.requests.load(Ordering::Relaxed),
            logins: self.inner.logins.load(Ordering::Relaxed),
            renewals: self.inner.renewals.load(Ordering::Relaxed),
        }
    }

    /// Read `path` (relative to `/v1/`, e.g. `sys/mounts`): `None` on 404.
    /// For administration and tests; the response is not zeroized, so do not
    /// read secrets with it (use the adapters).
    ///
    /// # Errors
    /// `InvalidInput` for a path with `..`, an empty segment or other than
    /// `[A-Za-z0-9_.-/]`; otherwise as any request (see [`VaultClient`]).
    pub async fn read_json(&self, path: &str) -> Result<Option<serde_json::Value>> {
        check_request_path(path)?;
        let reply = self.call("read", Method::GET, path, None).await?;
        match reply.status {
            404 => Ok(None),
            200 => parse("read", &reply.body).map(Some),
            _ => Err(status_error("read", &reply)),
        }
    }

    /// Write `body` to `path` (relative to `/v1/`): Vault's answer, or
    /// `None` when it has none (204). For administration and tests.
    ///
    /// # Errors
    /// As [`VaultClient::read_json`]; a 404 is `NotFound`.
    pub async fn write_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<Option<serde_json::Value>> {
        check_request_path(path)?;
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::internal_with("vault write: cannot encode the body", e))?;
        let reply = self.call("write", Method::POST, path, Some(&body)).await?;
        match reply.status {
            204 => Ok(None),
            200 => parse("write", &reply.body).map(Some),
            _ => Err(status_error("write", &reply)),
        }
    }

    /// An authenticated request: the current token (logging in or renewing
    /// first when due); on 401/403 with AppRole, one fresh login and one retry.
    pub(crate) async fn call(
        &self,
        op: &'static str,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply> {
        let token = self.token().await?;
        let reply = self
            .send(method.clone(), path, body, Some(&token.header))
            .await?;
        if matches!(reply.status, 401 | 403) && self.is_approle() {
            let fresh = self.login_again(&token).await?;
            tracing::debug!(op, "vault refused the token; logged in again and retrying");
            return self.send(method, path, body, Some(&fresh.header)).await;
        }
        Ok(reply)
    }

    /// One HTTP request through the circuit breaker, if there is one.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        token: Option<&HeaderValue>,
    ) -> Result<Reply> {
        let Some(breaker) = self.inner.breaker.get() else {
            return self.send_raw(method, path, body, token).await;
        };
        let permit = breaker.try_acquire()?;
        let result = self.send_raw(method, path, body, token).await;
        match &result {
            Ok(reply) if is_outage(reply.status) => permit.failure(),
            other => permit.record(other),
        }
        result
    }

    /// One HTTP request, with or without the token.
    async fn send_raw(
        &self,
        method: Method,
        path: &str,
        body: Option<&[u8]>,
        token: Option<&HeaderValue>,
    ) -> Result<Reply> {
        let url = format!("{}{path}", self.inner.base);
        let mut request = self
            .inner
            .http
            .request(method, url)
            .header(ACCEPT, "application/json");
        if let Some(namespace) = &self.inner.config.namespace {
            request = request.header(NAMESPACE_HEADER, namespace.as_str());
        }
        if let Some(token) = token {
            request = request.header(TOKEN_HEADER, token.clone());
        }
        if let Some(body) = body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_vec());
        }
        self.inner.requests.fetch_add(1, Ordering::Relaxed);
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status().as_u16();
        let body = self.read_body(response).await?;
        Ok(Reply { status, body })
    }

    fn transport(&self, err: reqwest::Error) -> Error {
        if err.is_timeout() {
            Error::Timeout {
                operation: Cow::Borrowed("vault request"),
                after: self.inner.config.request_timeout(),
            }
        } else {
            Error::unavailable(DEPENDENCY, err.without_url())
        }
    }

    /// Read the body into a zeroizing buffer, refusing more than
    /// `max_response_bytes`. The buffer grows by copying into a new one so
    /// that no reallocation leaves an unzeroized copy behind.
    async fn read_body(&self, mut response: reqwest::Response) -> Result<SecretBytes> {
        let max = self.inner.config.max_response_bytes;
        let too_large = || Error::internal("vault response exceeds max_response_bytes");
        let declared = response
            .content_length()
            .map(|len| usize::try_from(len).unwrap_or(usize::MAX));
        if declared.is_some_and(|len| len > max) {
            return Err(too_large());
        }
        let mut body = SecretBytes::new(Vec::with_capacity(declared.unwrap_or(4096).min(max)));
        while let Some(chunk) = response.chunk().await.map_err(|e| self.transport(e))? {
            let len = body.len();
            if len + chunk.len() > max {
                return Err(too_large());
            }
            let buffer = body.expose_secret_mut();
            if buffer.capacity() - len < chunk.len() {
                let capacity = (len + chunk.len()).max(len * 2).min(max);
                let mut bigger = SecretBytes::new(Vec::with_capacity(capacity));
                bigger.expose_secret_mut().extend_from_slice(buffer);
                body = bigger;
            }
            body.expose_secret_mut().extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn is_approle(&self) -> bool {
        matches!(self.inner.config.auth, VaultAuth::AppRole { .. })
    }

    fn current(&self) -> Option<Arc<Token>> {
        self.inner
            .token
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn store(&self, token: Token) -> Arc<Token> {
        let token = Arc::new(token);
        *self
            .inner
            .token
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(token.clone());
        token
    }

    /// Whether `token` should be renewed (or, for AppRole, replaced) now.
    fn renewal_due(&self, token: &Token) -> bool {
        let now = self.inner.clock.monotonic();
        token
            .lease
            .is_some_and(|lease| lease.renewal_due(now) && (lease.renewable || self.is_approle()))
    }

    /// The token to use: logs in first if there is none, renews it if due.
    async fn token(&self) -> Result<Arc<Token>> {
        if let Some(token) = self.current()
            && !self.renewal_due(&token)
        {
            return Ok(token);
        }
        let _guard = self.inner.auth_lock.lock().await;
        match self.current() {
            Some(token) if !self.renewal_due(&token) => Ok(token),
            Some(token) => self.renew(&token).await,
            None => self.authenticate().await,
        }
    }

    /// Replace a token Vault refused (AppRole only), unless another caller
    /// already did.
    async fn login_again(&self, refused: &Arc<Token>) -> Result<Arc<Token>> {
        let _guard = self.inner.auth_lock.lock().await;
        match self.current() {
            Some(current) if !Arc::ptr_eq(&current, refused) => Ok(current),
            _ => self.authenticate().await,
        }
    }

    /// Renew with `auth/token/renew-self`. Called with the auth lock held.
    async fn renew(&self, token: &Arc<Token>) -> Result<Arc<Token>> {
        let renewed = self
            .send(
                Method::POST,
                "auth/token/renew-self",
                Some(b"{}"),
                Some(&token.header),
            )
            .await;
        let full_ttl = token.lease.map(|lease| lease.full_ttl);
        match renewed {
            Ok(reply) if reply.status == 200 => {
                let auth = parse::<AuthEnvelope>("token renewal", &reply.body)?
                    .auth
                    .ok_or_else(|| Error::internal("vault token renewal: no auth in the answer"))?;
                self.inner.renewals.fetch_add(1, Ordering::Relaxed);
                let lease = Lease::new(
                    self.inner.clock.monotonic(),
                    auth.lease_duration,
                    full_ttl,
                    auth.renewable,
                );
                tracing::debug!(ttl = ?lease.ttl, "renewed the vault token");
                if self.is_approle() && lease.ttl < lease.full_ttl / 3 {
                    // Near its max TTL: renewing buys little; log in afresh.
                    return self.authenticate().await;
                }
                Ok(self.store(Token {
                    header: token.header.clone(),
                    lease: Some(lease),
                }))
            }
            Ok(reply) if is_outage(reply.status) => {
                // Vault is struggling; keep the token and retry renewing on
                // the next request.
                tracing::warn!(status = reply.status, "vault token renewal failed");
                Ok(token.clone())
            }
            Err(err) => {
                tracing::warn!(error = %err.log_chain(), "vault token renewal failed");
                Ok(token.clone())
            }
            Ok(reply) if self.is_approle() => {
                tracing::debug!(
                    status = reply.status,
                    "vault token not renewable; logging in"
                );
                self.authenticate().await
            }
            Ok(reply) => {
                // A configured token that cannot be renewed: use it until it
                // expires, without asking again.
                tracing::warn!(
                    status = reply.status,
                    "the configured vault token cannot be renewed; it will expire"
                );
                Ok(self.store(Token {
                    header: token.header.clone(),
                    lease: token.lease.map(|lease| Lease {
                        renewable: false,
                        ..lease
                    }),
                }))
            }
        }
    }

    /// Log in (AppRole) or look the configured token up (token auth). Called
    /// with the auth lock held.
    async fn authenticate(&self) -> Result<Arc<Token>> {
        let token = match &self.inner.config.auth {
            VaultAuth::Token { token } => self.lookup(token).await?,
            VaultAuth::AppRole {
                role_id,
                secret_id,
                mount,
            } => self.login(role_id, secret_id, mount).await?,
        };
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        Ok(self.store(token))
    }

    async fn lookup(&self, token: &SecretString) -> Result<Token> {
        let header = sensitive_header(token, "vault.auth.token")?;
        let reply = self
            .send(Method::GET, "auth/token/lookup-self", None, Some(&header))
            .await?;
        match reply.status {
            200 => {
                let data = parse::<LookupEnvelope>("token lookup", &reply.body)?.data;
                let lease = (data.ttl > 0).then(|| {
                    Lease::new(self.inner.clock.monotonic(), data.ttl, None, data.renewable)
                });
                Ok(Token { header, lease })
            }
            401 | 403 => Err(Error::misconfigured(
                "vault.auth.token",
                "vault refused the configured token: it is unknown, expired or revoked",
            )),
            _ => Err(status_error("token lookup", &reply)),
        }
    }

    async fn login(
        &self,
        role_id: &SecretString,
        secret_id: &SecretString,
        mount: &str,
    ) -> Result<Token> {
        #[derive(serde::Serialize)]
        struct Login<'a> {
            role_id: &'a str,
            secret_id: &'a str,
        }
        let body = SecretBytes::new(
            serde_json::to_vec(&Login {
                role_id: role_id.expose_secret(),
                secret_id: secret_id.expose_secret(),
            })
            .map_err(|e| Error::internal_with("vault login: cannot encode the body", e))?,
        );
        let path = format!("auth/{mount}/login");
        let reply = self
            .send(Method::POST, &path, Some(body.expose_secret()), None)
            .await?;
        match reply.status {
            200 => {
                let auth = parse::<AuthEnvelope>("approle login", &reply.body)?
                    .auth
                    .ok_or_else(|| Error::internal("vault approle login: no auth in the answer"))?;
                let header = sensitive_header(&auth.client_token, "vault.auth")?;
                let lease = (auth.lease_duration > 0).then(|| {
                    Lease::new(
                        self.inner.clock.monotonic(),
                        auth.lease_duration,
                        None,
                        auth.renewable,
                    )
                });
                tracing::debug!(ttl = ?lease.map(|l| l.ttl), "logged in to vault with approle");
                Ok(Token { header, lease })
            }
            400 | 401 | 403 => Err(Error::misconfigured(
                "vault.auth.secret_id",
                "vault refused the AppRole login: the role_id or secret_id is wrong, or the \
                 secret_id has expired or been used up",
            )),
            _ => Err(status_error("approle login", &reply)),
        }
    }

    /// Probe `sys/health` (unauthenticated).
    async fn probe(&self) -> (HealthStatus, String) {
        match self.send_raw(Method::GET, "sys/health", None, None).await {
            Ok(reply) => match reply.status {
                200 => (HealthStatus::Up, "active".to_owned()),
                429 => (HealthStatus::Up, "standby".to_owned()),
                473 => (HealthStatus::Up, "performance standby".to_owned()),
                472 => (
                    HealthStatus::Degraded,
                    "disaster-recovery secondary".to_owned(),
                ),
                501 => (HealthStatus::Down, "not initialized".to_owned()),
                503 => (HealthStatus::Down, "sealed".to_owned()),
                other => (HealthStatus::Down, format!("unexpected status {other}")),
            },
            Err(err) => (HealthStatus::Down, format!("unreachable ({})", err.code())),
        }
    }
}

/// The token as a header value marked sensitive.
fn sensitive_header(token: &SecretString, setting: &'static str) -> Result<HeaderValue> {
    super::config::check_token(setting, token)?;
    let mut header = HeaderValue::from_str(token.expose_secret())
        .map_err(|_| Error::misconfigured(setting, "the token is not a valid header value"))?;
    header.set_sensitive(true);
    Ok(header)
}

/// An API path for [`VaultClient::read_json`]/[`VaultClient::write_json`].
fn check_request_path(path: &str) -> Result<()> {
    let ok = !path.is_empty()
        && path.len() <= 1024
        && path.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid_input(
            "vault path must be `/`-separated segments of [A-Za-z0-9_.-]",
        ))
    }
}

/// `vault`: `sys/health` answers active or standby → up; sealed or not
/// initialized → down; unreachable → down. Never sends the token.
#[async_trait::async_trait]
impl HealthCheck for VaultClient {
    fn name(&self) -> Cow<'static, str> {
        Cow::Borrowed(DEPENDENCY)
    }

    async fn check(&self) -> ComponentHealth {
        let started = self.inner.clock.monotonic();
        let (status, detail) = self.probe().await;
        let latency = self.inner.clock.monotonic().saturating_sub(started);
        ComponentHealth::new(DEPENDENCY, status, latency).with_detail(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_after_two_thirds_of_the_lease() {
        let lease = Lease::new(Duration::from_secs(100), 30, None, true);
        assert!(!lease.renewal_due(Duration::from_secs(119)));
        assert!(lease.renewal_due(Duration::from_secs(120)));
    }

    #[test]
    fn request_paths_cannot_traverse() {
        for bad in ["", "../sys", "a//b", "a/./b", "a?b", "a b", "/a", "a/"] {
            assert!(check_request_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_request_path("sys/mounts/transit-1").is_ok());
    }

    #[test]
    fn status_errors_are_typed() {
        let reply = |status: u16, body: &str| Reply {
            status,
            body: SecretBytes::new(body.as_bytes().to_vec()),
        };
        use docaiche_core::ErrorCode as C;
        let cases = [
            (403, C::Misconfigured),
            (401, C::Misconfigured),
            (404, C::NotFound),
            (503, C::Unavailable),
            (500, C::Unavailable),
            (429, C::Unavailable),
            (400, C::Internal),
        ];
        for (status, code) in cases {
            let err = status_error("read", &reply(status, r#"{"errors":["boom"]}"#));
            assert_eq!(err.code(), code, "{status}");
        }
        let err = status_error("read", &reply(503, r#"{"errors":["Vault is sealed"]}"#));
        assert!(err.log_chain().contains("Vault is sealed"));
    }

    #[test]
    fn parse_errors_never_quote_the_body() {
        let body = SecretBytes::new(br#"{"auth": "hvs.super-secret-token"}"#.to_vec());
        let err = parse::<AuthEnvelope>("login", &body)
            .err()
            .map(|e| e.log_chain())
            .unwrap_or_default();
        assert!(!err.is_empty() && !err.contains("super-secret"), "{err}");
    }
}
