//! The state every handler and layer shares ([`AppState`]), the HTTP
//! settings the layers need, and how the server opens its backends and
//! auth services from the configuration ([`open_auth`]); the router over
//! this state is [`crate::routes::router`].

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::health::HealthRegistry;
use docaiche_core::{Error, RateLimiter};
use docaiche_ratelimit::layer::RateLimitLayer;
use docaiche_store::encryption::EncryptedDocumentStore;

use crate::auth::{AuthSecrets, AuthServices, AuthStores};
use crate::config::{Config, EnvLookup};
use crate::limiter::Limiter;
use crate::wiring::{Secrets, Stores};

/// Shared state of the handlers and the layers: one `Arc`, so the clone
/// axum makes for every request (handler state, route services) is a
/// reference count. Fields read through `Deref`; assigning a field
/// (`state.audit = …`) goes through `DerefMut`, which copies the fields
/// first if another clone shares them, so clones never see each other's
/// writes.
#[derive(Debug, Clone)]
pub(crate) struct AppState(Arc<AppStateFields>);

impl std::ops::Deref for AppState {
    type Target = AppStateFields;

    fn deref(&self) -> &AppStateFields {
        &self.0
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppStateFields {
        Arc::make_mut(&mut self.0)
    }
}

/// The fields of [`AppState`].
#[derive(Debug, Clone)]
pub(crate) struct AppStateFields {
    /// Readiness checks.
    pub(crate) health: Arc<HealthRegistry>,
    /// Limits and CORS.
    pub(crate) http: HttpSettings,
    /// Security headers, HTTPS enforcement, compression (`[http]`).
    pub(crate) hardening: crate::http::HttpHardening,
    /// The rate-limit layer of the `default` class; the other classes'
    /// layers are made from it and share its limiter and metrics.
    pub(crate) rate_limit: RateLimitLayer,
    /// Authentication and authorization.
    pub(crate) auth: Arc<AuthServices>,
    /// Password login and the token endpoints (`/v1/auth/*`).
    pub(crate) login: Arc<crate::login::Login>,
    /// Documents, encrypted at rest over the configured store, for the
    /// document routes (none yet).
    pub(crate) documents: Arc<EncryptedDocumentStore>,
    /// Document intake: the job queue, the cached extractor, `[documents]`
    /// and the live [`DocumentEvent`](crate::documents::DocumentEvent)s.
    pub(crate) intake: Arc<crate::documents::DocumentServices>,
    /// Prometheus metrics (`/metrics`, `[metrics]`).
    pub(crate) metrics: crate::metrics::Metrics,
    /// The `/v1/events` hub: publish per-tenant events here.
    pub(crate) events: crate::events::EventBus,
    /// The audit trail of `[audit]` (`None` until `from_config`).
    pub(crate) audit: Option<crate::audit::AuditTrail>,
    /// Data-subject requests (`/v1/privacy/*`; `None` until `from_config`).
    pub(crate) privacy: Option<Arc<crate::privacy::PrivacyServices>>,
    /// Retention, legal holds (`compliance.holds`, shared with the privacy
    /// service) and the compliance report (`[retention]`).
    pub(crate) compliance: Arc<crate::compliance::Compliance>,
    /// The OpenAPI document of `GET /openapi.json`, with this
    /// configuration's bounds.
    pub(crate) openapi: Arc<str>,
    /// Per-key usage counting and its store (`[usage]`; in memory until
    /// [`AppState::with_usage_store`]).
    pub(crate) usage: Arc<crate::usage::Usage>,
    /// The admin console's sessions (in this process's memory until
    /// [`AppState::with_web_sessions`]).
    pub(crate) console: Arc<crate::console::Console>,
}

impl AppState {
    /// State for `config`: the limiter its `[rate_limit]` asks for (`env`
    /// resolves `env:` references), the secret chain of `[secrets]`, the
    /// store of `[store]` and the revocation store of `[revocation]`, the
    /// authentication secrets, the encrypted document store of
    /// `[encryption]`, and every readiness check, the limiter backend's and
    /// the stores' included.
    ///
    /// # Errors
    /// As [`Limiter::from_config`], [`open_auth`],
    /// [`crate::wiring::key_wrapper`] and [`Self::new`].
    pub(crate) async fn from_config(config: &Config, env: EnvLookup<'_>) -> Result<Self, Error> {
        let limiter = Limiter::from_config(config, env).await?;
        let redis = limiter.backend == crate::config::RateLimitBackend::Redis;
        // The backend and the failure policy; never the Redis URL.
        tracing::info!(
            backend = limiter.backend.as_str(),
            on_redis_failure = redis.then(|| config.rate_limit.on_redis_failure.as_str()),
            "rate limiter ready"
        );
        let (auth, backends) = open_auth(config, env).await?;
        let mut health = crate::health::registry(config, &limiter);
        for check in &backends.stores.health_checks {
            health = health.with_check(Arc::clone(check));
        }
        let wrapper = crate::wiring::key_wrapper(config, &backends.secrets, env).await?;
        let (data_keys, data_keys_in) = backends.stores.data_keys.clone();
        let documents = crate::wiring::encrypted_documents(
            Arc::clone(&backends.stores.documents),
            data_keys,
            wrapper,
        );
        tracing::info!(
            store = config.store.backend.as_str(),
            key_wrapper = config.encryption.key_wrapper.as_str(),
            data_keys = data_keys_in,
            "document store ready: encrypted at rest"
        );
        let intake = crate::documents::DocumentServices::new(
            &config.documents,
            Arc::clone(&backends.stores.jobs),
        );
        let mut state = Self::new(
            config,
            health,
            limiter.limiter,
            auth.with_background_tasks(),
        )?
        .with_documents(Arc::new(documents));
        // Legal holds in the store's database (before the privacy service,
        // which shares them).
        let purged: Arc<dyn docaiche_core::DocumentStore> = state.documents.clone();
        state.compliance = Arc::new(
            state
                .compliance
                .with_durable_holds(&backends.stores, purged)
                .await?,
        );
        state.intake = Arc::new(intake);
        state
            .metrics
            .register_backends(&backends.stores, limiter.breaker.as_ref());
        backends.audit.register_metrics(&state.metrics);
        state.audit = Some(backends.audit.clone());
        // The `audit` retention period, applied to the file trail.
        let purged: Arc<dyn docaiche_core::DocumentStore> = state.documents.clone();
        state.compliance = Arc::new(state.compliance.with_audit_trail(&backends.audit, purged)?);
        let privacy =
            Arc::new(crate::privacy::PrivacyServices::open(config, &backends, &state).await?);
        // The purge of request records, over the service's own store (built
        // after the holds it shares).
        let purged: Arc<dyn docaiche_core::DocumentStore> = state.documents.clone();
        state.compliance = Arc::new(
            state
                .compliance
                .with_privacy_requests(Arc::clone(&privacy.requests), purged)?,
        );
        state.privacy = Some(privacy);
        state
            .with_web_sessions(Arc::clone(&backends.stores.web_sessions))?
            .with_usage_store(Arc::clone(&backends.stores.usage))
    }

    /// Keep the console's sessions in `store` (shared by every instance
    /// on it), ended by the subject revocations of the auth stores.
    ///
    /// # Errors
    /// As [`crate::console::Console::new`].
    pub(crate) fn with_web_sessions(
        mut self,
        store: Arc<dyn docaiche_core::WebSessionStore>,
    ) -> Result<Self, Error> {
        self.console = Arc::new(crate::console::Console::new(
            store,
            &self.auth.console_key,
            Arc::clone(&self.auth.stores.revocations),
            Arc::clone(&self.auth.clock),
        )?);
        Ok(self)
    }

    /// Count usage into `store` (and read it back from there), with the
    /// recorder's figures on `/metrics`.
    ///
    /// # Errors
    /// As [`crate::usage::Usage::new`].
    pub(crate) fn with_usage_store(
        mut self,
        store: Arc<dyn docaiche_core::usage::UsageStore>,
    ) -> Result<Self, Error> {
        let usage = Arc::new(self.usage.with_store(store)?);
        self.metrics.register_source(usage.clone());
        self.usage = usage;
        Ok(self)
    }

    /// Use `documents` for the document routes.
    #[must_use]
    pub(crate) fn with_documents(mut self, documents: Arc<EncryptedDocumentStore>) -> Self {
        let purged: Arc<dyn docaiche_core::DocumentStore> = documents.clone();
        self.compliance = Arc::new(self.compliance.over_documents(purged));
        self.documents = documents;
        self
    }

    /// State for `config` with these readiness checks, this limiter and
    /// these auth services.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if the rate-limit configuration is invalid
    /// or lacks a policy for one of the router's classes (`validate` reports
    /// both earlier).
    pub(crate) fn new(
        config: &Config,
        health: HealthRegistry,
        limiter: Arc<dyn RateLimiter>,
        auth: AuthServices,
    ) -> Result<Self, Error> {
        // Until `with_documents`: in memory, under a key of this process.
        let documents = Arc::new(crate::wiring::encrypted_documents(
            Arc::new(docaiche_store::memory::MemoryDocumentStore::new()),
            Arc::new(docaiche_store::encryption::MemoryDataKeyStore::new()),
            Arc::new(docaiche_store::key_wrapper::LocalKeyWrapper::generate()),
        ));
        let usage = crate::usage::Usage::new(
            &config.usage,
            Arc::new(docaiche_store::memory::MemoryUsageStore::new()),
            Arc::clone(&auth.stores.api_keys),
            &config.auth.api_keys.prefix,
            Arc::clone(&auth.clock),
        )?;
        let compliance = crate::compliance::Compliance::new(
            config,
            documents.clone(),
            Arc::clone(&auth.stores.audit),
            Arc::clone(&auth.clock),
            Arc::clone(&auth.stores.tenants),
        )?;
        let console = crate::console::Console::in_memory(&auth)?;
        Ok(Self(Arc::new(AppStateFields {
            health: Arc::new(health),
            http: HttpSettings {
                request_timeout: config.server.request_timeout(),
                body_limit: config.server.body_limit_bytes,
                json_body_limit: config.server.json_body_limit_bytes,
                allowed_origins: config.cors.allowed_origins.clone(),
            },
            hardening: crate::http::HttpHardening::from_config(config)?,
            rate_limit: rate_limit_layer(config, limiter)?,
            login: Arc::new(crate::login::Login::new(&config.auth, &auth)?),
            auth: Arc::new(auth),
            documents,
            compliance: Arc::new(compliance),
            openapi: crate::openapi::json(config).into(),
            // Until `from_config`: jobs in memory.
            intake: Arc::new(crate::documents::DocumentServices::new(
                &config.documents,
                Arc::new(docaiche_store::memory::MemoryJobQueue::new()),
            )),
            metrics: crate::metrics::Metrics::from_config(config)?,
            events: crate::events::EventBus::from_config(config)?,
            audit: None,
            privacy: None,
            usage: Arc::new(usage),
            console: Arc::new(console),
        }))
        .observed())
    }
}

/// The backends `config` asks for, as opened by [`open_auth`].
#[derive(Debug)]
pub(crate) struct Backends {
    /// The secret chain and the Vault client.
    pub(crate) secrets: Secrets,
    /// The stores and their readiness checks.
    pub(crate) stores: Stores,
    /// The audit trail of `[audit]` (already the stores' audit sink).
    pub(crate) audit: crate::audit::AuditTrail,
}

/// The auth services of `config` over its configured store, with its
/// secrets read through its chain (`env` resolves `env:` references), and
/// the backends opened on the way (for the server and for `bootstrap-key`,
/// which must see the same keys).
///
/// # Errors
/// As [`Secrets::from_config`], [`Stores::open`], [`AuthSecrets::load`]
/// and [`AuthServices::new`].
pub(crate) async fn open_auth(
    config: &Config,
    env: EnvLookup<'_>,
) -> Result<(AuthServices, Backends), Error> {
    open_auth_as(config, env, crate::audit::TrailRole::Owner).await
}

/// [`open_auth`] for a process in `role` to the audit trail: the server
/// owns it, the `bootstrap-*` commands are guests (see
/// [`crate::audit::TrailRole`]).
///
/// # Errors
/// As [`open_auth`].
pub(crate) async fn open_auth_as(
    config: &Config,
    env: EnvLookup<'_>,
    role: crate::audit::TrailRole,
) -> Result<(AuthServices, Backends), Error> {
    let secrets = Secrets::from_config(config, env).await?;
    let auth_secrets = AuthSecrets::load(config, &secrets).await?;
    let mut opened = Stores::open(config, &secrets, env).await?;
    // The chained trail of `[audit]` replaces the store's audit table.
    let audit = crate::audit::open_as(config, &secrets, env, role).await?;
    opened.audit = audit.sink();
    let stores = opened;
    let clock: Arc<dyn docaiche_core::Clock> = Arc::new(docaiche_core::SystemClock::new());
    let auth = AuthServices::new(
        &config.auth,
        auth_secrets,
        AuthStores::from_stores(&stores),
        clock,
    )?;
    Ok((
        auth,
        Backends {
            secrets,
            stores,
            audit,
        },
    ))
}

/// The `default` class's layer for `config`, checking that every class the
/// router uses has a policy.
pub(crate) fn rate_limit_layer(
    config: &Config,
    limiter: Arc<dyn RateLimiter>,
) -> Result<RateLimitLayer, Error> {
    let policies = config.rate_limit.effective().build()?;
    let layer = RateLimitLayer::new(limiter, policies, "default")?;
    for class in crate::config::RateLimitSection::CLASSES {
        layer.for_class(class)?;
    }
    Ok(layer)
}

/// The HTTP-level settings the layers need (a `Duration` rather than whole
/// seconds so tests can use short timeouts).
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    /// Deadline for a whole request.
    pub(crate) request_timeout: Duration,
    /// Largest accepted body, in bytes.
    pub(crate) body_limit: usize,
    /// Largest accepted JSON body, in bytes (`server.json_body_limit_bytes`).
    pub(crate) json_body_limit: usize,
    /// Validated CORS origins: exact origins, or the single entry `*`.
    pub(crate) allowed_origins: Vec<String>,
}

impl HttpSettings {
    /// The limit JSON bodies are read under: the JSON limit, never above
    /// the server's body limit.
    pub(crate) fn json_body_limit(&self) -> usize {
        self.json_body_limit.min(self.body_limit)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Auth services for `config` over memory stores, with a fixed pepper
    /// and a fresh Ed25519 JWT key, timed by `clock`.
    pub(crate) fn test_auth(config: &Config, clock: Arc<dyn docaiche_core::Clock>) -> AuthServices {
        let pem = crate::keys::ed25519_pem().expect("random");
        let secrets = AuthSecrets {
            peppers: docaiche_auth::api_key::Peppers::new(
                1,
                [(1, docaiche_core::SecretBytes::new(vec![7; 32]))],
            )
            .expect("pepper"),
            jwt_key: docaiche_auth::jwt::JwtKey::from_pem(
                config.auth.jwt.kid.clone(),
                docaiche_auth::jwt::Algorithm::EdDSA,
                &pem,
            )
            .expect("key"),
        };
        AuthServices::new(&config.auth, secrets, AuthStores::memory(&clock), clock)
            .expect("auth services")
    }

    /// State for `config`, rate limited in process, with memory auth
    /// stores on `clock`.
    pub(crate) fn state_with_clock(
        config: &Config,
        clock: Arc<dyn docaiche_core::Clock>,
    ) -> AppState {
        let limiter = Limiter::local();
        let health = crate::health::registry(config, &limiter);
        AppState::new(config, health, limiter.limiter, test_auth(config, clock))
            .expect("valid state")
    }

    /// State for `config`, rate limited in process.
    pub(crate) fn local_state(config: &Config) -> AppState {
        state_with_clock(config, Arc::new(docaiche_core::SystemClock::new()))
    }
}
