//! Minimal embedding: an existing axum app gains API-key authentication,
//! a permission check and per-key rate limiting from DocAIche.
//!
//! ```text
//! cargo run --example embed                      # prints a key, serves 127.0.0.1:8091
//! curl -i 127.0.0.1:8091/notes                    # 401 problem+json
//! curl -i -H "X-API-Key: $KEY" 127.0.0.1:8091/notes  # 200, then 429 past 5 a minute
//! ```
//!
//! Keys live in memory here; swap `MemoryApiKeyStore` for the SQLite or
//! PostgreSQL store, and read the pepper from a `SecretProvider`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::get;
use docaiche::auth::api_key::{ApiKeyService, NewApiKey, Peppers};
use docaiche::auth::layer::{AuthLayer, CredentialRouter, RequirePermissionLayer, principal_of};
use docaiche::core::{SecretBytes, SystemClock};
use docaiche::ratelimit::{
    layer::RateLimitLayer, local::LocalRateLimiter, policy::RateLimitConfig,
};
use docaiche::store::memory::MemoryApiKeyStore;
use docaiche::{AuthMethod, Error, Permission, Principal, PrincipalId, TenantId};

/// The app's own handler: it reads who called, nothing else changes.
async fn notes(request: Request) -> String {
    let caller = principal_of(request.extensions()).map(|p| p.id.to_string());
    format!("notes of {}\n", caller.unwrap_or_default())
}

/// The app, behind authentication, a per-key rate limit and a permission.
fn app(keys: Arc<ApiKeyService>) -> Result<Router, Error> {
    let limits: RateLimitConfig = serde_json::from_value(serde_json::json!({
        "policies": { "default": { "limits": [{ "key": "api_key", "limit": 5, "period_secs": 60 }] } }
    }))
    .map_err(|e| Error::misconfigured("rate_limit", e.to_string()))?;
    let limiter = Arc::new(LocalRateLimiter::new(Arc::new(SystemClock::new())));
    // The last layer added runs first: authenticate, then limit, then authorize.
    Ok(Router::new()
        .route("/notes", get(notes))
        .layer(RequirePermissionLayer::new(Permission::DOCUMENTS_READ))
        .layer(RateLimitLayer::new(limiter, limits.build()?, "default")?)
        .layer(AuthLayer::new(Arc::new(
            CredentialRouter::new().api_keys(keys),
        ))))
}

/// An API key service with a random pepper, and one key to call it with.
async fn keys_and_one_key() -> Result<(Arc<ApiKeyService>, String), Error> {
    let pepper = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    let peppers = Peppers::new(1, [(1, SecretBytes::new(pepper))])?;
    let keys = Arc::new(ApiKeyService::new(
        Arc::new(MemoryApiKeyStore::new()),
        peppers,
    ));
    let tenant = TenantId::new("acme")?;
    let admin = Principal::new(
        PrincipalId::new("admin")?,
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions(
        [Permission::KEYS_MANAGE, Permission::DOCUMENTS_READ]
            .into_iter()
            .collect(),
    );
    let scopes = [Permission::DOCUMENTS_READ].into_iter().collect();
    let created = keys
        .create(&admin, NewApiKey::new(tenant, "demo").with_scopes(scopes))
        .await?;
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
        let mut request = Request::get("/notes");
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let request = request.body(Body::empty()).expect("request");
        app.clone()
            .oneshot(request)
            .await
            .expect("infallible")
            .status()
    }

    #[tokio::test]
    async fn answers_401_without_a_key_200_with_one_and_429_past_its_limit() {
        let (keys, key) = keys_and_one_key().await.expect("keys");
        let app = app(keys).expect("app");
        assert_eq!(get_notes(&app, None).await, StatusCode::UNAUTHORIZED);
        for _ in 0..5 {
            assert_eq!(get_notes(&app, Some(&key)).await, StatusCode::OK);
        }
        assert_eq!(
            get_notes(&app, Some(&key)).await,
            StatusCode::TOO_MANY_REQUESTS
        );
    }
}
