//! The auth tower middleware: [`AuthLayer`] authenticates,
//! [`RequirePermissionLayer`] authorizes, and (feature `axum`) the
//! [`Authenticated`] extractor hands the [`Principal`](docaiche_core::Principal)
//! to handlers.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use docaiche_auth::api_key::{ApiKeyService, NewApiKey, Peppers};
//! use docaiche_auth::layer::{principal_of, AuthLayer, CredentialRouter, RequirePermissionLayer};
//! use docaiche_core::{AuthMethod, Permission, Principal, PrincipalId, SecretBytes, TenantId};
//! use docaiche_store::memory::MemoryApiKeyStore;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! let peppers = Peppers::new(1, [(1, SecretBytes::new(vec![7; 32]))])?;
//! let keys = Arc::new(ApiKeyService::new(Arc::new(MemoryApiKeyStore::new()), peppers));
//! let router = CredentialRouter::new().api_keys(keys.clone()); // .bearer(jwt_verifier)
//!
//! let app = ServiceBuilder::new()
//!     .layer(AuthLayer::new(Arc::new(router)))
//!     .layer(RequirePermissionLayer::new(Permission::DOCUMENTS_READ))
//!     .service(service_fn(|request: http::Request<String>| async move {
//!         let principal = principal_of(request.extensions()).expect("set by AuthLayer");
//!         Ok::<_, std::convert::Infallible>(http::Response::new(principal.tenant.to_string()))
//!     }));
//!
//! // Without a credential: 401 problem+json with WWW-Authenticate.
//! let response = app.clone().oneshot(http::Request::new(String::new())).await.unwrap();
//! assert_eq!(response.status(), 401);
//! assert!(response.headers().contains_key("www-authenticate"));
//!
//! # let acme = TenantId::new("acme")?;
//! # let admin = Principal::new(PrincipalId::new("alice")?, acme.clone(), AuthMethod::Password)
//! #     .with_permissions([Permission::KEYS_MANAGE, Permission::DOCUMENTS_READ].into_iter().collect());
//! # let scopes = [Permission::DOCUMENTS_READ].into_iter().collect();
//! let created = keys.create(&admin, NewApiKey::new(acme, "ci").with_scopes(scopes)).await?;
//! let request = http::Request::builder()
//!     .header("x-api-key", created.key.expose_secret())
//!     .body(String::new())
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.body(), "acme");
//! # Ok::<(), docaiche_core::Error>(()) }).unwrap();
//! ```
//!
//! # Flow of a request through [`AuthLayer`]
//!
//! 1. The `Authorization` and API-key headers are marked sensitive, so
//!    a trace layer further in never prints them.
//! 2. The credential is read: `Authorization: Bearer <token>`,
//!    `Authorization: ApiKey <key>` or `X-API-Key: <key>`. Header values are
//!    attacker-controlled: control characters, non-ASCII bytes, values over
//!    8 KiB, empty or space-containing tokens, unknown schemes, repeated
//!    headers and requests carrying two credentials are all refused as
//!    malformed, before the authenticator runs.
//! 3. The [`Authenticator`](docaiche_core::Authenticator) verifies the
//!    credential first, whatever any lockout holds: a valid credential is
//!    never refused because someone else failed with its public parts or
//!    from its network. The layer depends only on that trait: a
//!    [`CredentialRouter`] sends API keys to the
//!    [`ApiKeyService`](crate::api_key::ApiKeyService) and bearer tokens to
//!    the JWT verifier.
//! 5. Success: the principal, as an `Arc<`[`Principal`](docaiche_core::Principal)`>`
//!    (shared with the API key cache, never copied per request; read it
//!    with [`principal_of`] or the [`Authenticated`] extractor), and the
//!    [`RequestContext`](docaiche_core::RequestContext) go into the request
//!    extensions and the inner service is called. Failure: with a
//!    [`FailedAuthTracker`](crate::lockout::FailedAuthTracker) it is
//!    counted (and audited) against the client address and its /24 or /64
//!    network; while that source is locked the answer is 429 with
//!    `Retry-After`, otherwise the core's 401 problem+json with
//!    `WWW-Authenticate: Bearer`; the reason is logged, never sent. An
//!    authenticator outage fails closed (503).
//!
//! The layers answer rather than fail: refusals are responses, and the
//! inner service's error type passes through untouched. Both work with any
//! tower-based server, for any `http::Request<B>`; the response body must
//! implement `From<String>` (axum's `Body`, `String`, `Full<Bytes>` do).
//! The layers hold an `Arc` and are cheap to clone.

mod auth;
mod credential;
#[cfg(feature = "axum")]
mod extract;
mod permission;
mod router;

pub use auth::{API_KEY_HEADER, Auth, AuthLayer, DEFAULT_MAX_CREDENTIAL_LEN, ResponseFuture};
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use extract::Authenticated;
pub use permission::{PermissionFuture, RequirePermission, RequirePermissionLayer, principal_of};
pub use router::CredentialRouter;
