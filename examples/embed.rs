//! Minimal embedding: an axum app gains DocAIche's secure HTTP stack, API
//! keys, a per-key rate limit and a permission check.
//! ```text
//! cargo run --example embed --features http           # prints a key, serves 127.0.0.1:8091
//! curl -i 127.0.0.1:8091/notes                        # 401 problem+json
//! curl -i -H "X-API-Key: $KEY" 127.0.0.1:8091/notes  # 200, then 429 past 5 a minute
//! ```
//! Keys live in memory here: use the SQLite or PostgreSQL store, and a
//! pepper from a `SecretProvider`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use docaiche::auth::api_key::{ApiKeyService, NewApiKey, Peppers};
use docaiche::auth::layer::{AuthLayer, CredentialRouter, RequirePermissionLayer, principal_of};
use docaiche::core::{SecretBytes, SystemClock};
use docaiche::http::{SecurityPolicy, secure_stack};
use docaiche::ratelimit::{
    layer::RateLimitLayer, local::LocalRateLimiter, policy::RateLimitConfig,
};
use docaiche::store::memory::MemoryApiKeyStore;
use docaiche::{AuthMethod, Error, Permission, Principal, PrincipalId, TenantId};
use uuid::Uuid;

/// The app's own handler: it reads who called, nothing else changes.
async fn notes(request: Request) -> String {
    let caller = principal_of(request.extensions()).map(|p| p.id.to_string());
    format!("notes of {}\n", caller.unwrap_or_default())
}

/// Five requests a minute per API key.
const LIMITS: &str =
    r#"{"policies":{"default":{"limits":[{"key":"api_key","limit":5,"period_secs":60}]}}}"#;

/// The app, behind DocAIche. The last layer added runs first: the secure
/// stack (request id, security headers, problem+json errors, body limit,
/// timeout), then authentication, the key's rate limit, the permission.
fn app(keys: Arc<ApiKeyService>) -> Result<Router, Error> {
    let limits: RateLimitConfig = serde_json::from_str(LIMITS)
        .map_err(|e| Error::misconfigured("rate_limit", e.to_string()))?;
    let limiter = Arc::new(LocalRateLimiter::new(Arc::new(SystemClock::new())));
    let auth = AuthLayer::new(Arc::new(CredentialRouter::new().api_keys(keys)));
    Ok(Router::new()
        .route("/notes", get(notes))
        .layer(RequirePermissionLayer::new(Permission::DOCUMENTS_READ))
        .layer(RateLimitLayer::new(limiter, limits.build()?, "default")?)
        .layer(auth)
        .layer(secure_stack(&SecurityPolicy::new())))
}

/// An API key service with a random pepper, and one key to call it with.
async fn keys_and_one_key() -> Result<(Arc<ApiKeyService>, String), Error> {
    let pepper: Vec<u8> = (0..2).flat_map(|_| Uuid::new_v4().into_bytes()).collect();
    let peppers = Peppers::new(1, [(1, SecretBytes::new(pepper))])?;
    let store = Arc::new(MemoryApiKeyStore::new());
    let keys = Arc::new(ApiKeyService::new(store, peppers));
    let tenant = TenantId::new("acme")?;
    let scopes = || [Permission::DOCUMENTS_READ].into_iter();
    let id = PrincipalId::new("admin")?;
    let admin = Principal::new(id, tenant.clone(), AuthMethod::Internal)
        .with_permissions(scopes().chain([Permission::KEYS_MANAGE]).collect());
    let request = NewApiKey::new(tenant, "demo").with_scopes(scopes().collect());
    let created = keys.create(&admin, request).await?;
    Ok((keys, created.key.expose_secret().clone()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (keys, key) = keys_and_one_key().await?;
    println!("{key}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8091").await?;
    let app = app(keys)?.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    use super::*;

    async fn get_notes(app: &Router, key: Option<&str>) -> StatusCode {
        get_notes_response(app, key).await.status()
    }

    async fn get_notes_response(
        app: &Router,
        key: Option<&str>,
    ) -> axum::http::Response<axum::body::Body> {
        let mut request = Request::get("/notes");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let request = request.body(Body::empty()).expect("request");
        app.clone().oneshot(request).await.expect("infallible")
    }

    #[tokio::test]
    async fn answers_401_without_a_key_200_with_one_and_429_past_its_limit() {
        let (keys, key) = keys_and_one_key().await.expect("keys");
        let app = app(keys).expect("app");
        let refused = get_notes_response(&app, None).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        // The secure stack's marks: a problem document, a request id, the
        // security headers.
        assert_eq!(
            refused.headers()["content-type"],
            "application/problem+json"
        );
        assert!(refused.headers().contains_key("x-request-id"));
        assert_eq!(refused.headers()["x-content-type-options"], "nosniff");
        for _ in 0..5 {
            assert_eq!(get_notes(&app, Some(&key)).await, StatusCode::OK);
        }
        assert_eq!(
            get_notes(&app, Some(&key)).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
