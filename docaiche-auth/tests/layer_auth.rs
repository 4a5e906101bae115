//! The auth tower layers over a real `ApiKeyService` and memory store:
//! 401/403/200, problem+json, hostile headers, lockout and fail-closed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use docaiche_auth::api_key::{ApiKeyService, NewApiKey, Peppers};
use docaiche_auth::layer::{AuthLayer, CredentialRouter, RequirePermissionLayer, principal_of};
use docaiche_auth::lockout::{BackoffPolicy, FailedAuthTracker, LockoutConfig};
use docaiche_core::api_key::{ApiKeyLookup, ApiKeyRecord, ApiKeyStore, ApiKeyUsage};
use docaiche_core::page::{Page, PageRequest};
use docaiche_core::problem::{PROBLEM_JSON, Problem};
use docaiche_core::{
    ApiKeyId, AuthMethod, Error, Grant, ManualClock, Permission, PermissionSet, Principal,
    PrincipalId, RequestContext, Result, SecretBytes, TenantId,
};
use docaiche_store::memory::{MemoryApiKeyStore, MemoryAuditSink};
use http::{HeaderValue, Request, Response, StatusCode, header};
use time::OffsetDateTime;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

fn perms(grants: &[&str]) -> PermissionSet {
    grants.iter().map(|g| Grant::parse(g).unwrap()).collect()
}

async fn keys_with(store: Arc<dyn ApiKeyStore>) -> Arc<ApiKeyService> {
    let peppers = Peppers::new(1, [(1, SecretBytes::new(vec![9; 32]))]).unwrap();
    Arc::new(ApiKeyService::new(store, peppers))
}

async fn key(keys: &ApiKeyService, scopes: &[&str]) -> String {
    let acme = TenantId::new("acme").unwrap();
    let admin = Principal::new(
        PrincipalId::new("alice").unwrap(),
        acme.clone(),
        AuthMethod::Password,
    )
    .with_permissions(perms(&["keys:manage", "documents:read", "documents:write"]));
    keys.create(
        &admin,
        NewApiKey::new(acme, "test").with_scopes(perms(scopes)),
    )
    .await
    .unwrap()
    .key
    .expose_secret()
    .clone()
}

/// A handler that echoes who it was called as, and whether the credential
/// headers were marked sensitive.
async fn echo(request: Request<String>) -> std::result::Result<Response<String>, Infallible> {
    let principal = principal_of(request.extensions()).expect("principal");
    let context = request
        .extensions()
        .get::<RequestContext>()
        .expect("context");
    let sensitive = request
        .headers()
        .get("x-api-key")
        .is_none_or(HeaderValue::is_sensitive);
    Ok(Response::new(format!(
        "{}/{} sensitive={sensitive} addr={:?}",
        principal.tenant, principal.id, context.client_addr
    )))
}

fn request(header: Option<(&str, &[u8])>) -> Request<String> {
    let mut builder = Request::builder().uri("/documents");
    if let Some((name, value)) = header {
        builder = builder.header(name, HeaderValue::from_bytes(value).unwrap());
    }
    let mut request = builder.body(String::new()).unwrap();
    request
        .extensions_mut()
        .insert(SocketAddr::from(([192, 0, 2, 7], 40_000)));
    request
}

fn assert_problem(response: &Response<String>, status: StatusCode) -> Problem {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
    let problem: Problem = serde_json::from_str(response.body()).unwrap();
    assert_eq!(problem.status, status.as_u16());
    problem
}

#[tokio::test]
async fn answers_401_403_and_200_and_hands_the_principal_to_the_handler() {
    let keys = keys_with(Arc::new(MemoryApiKeyStore::new())).await;
    let reader = key(&keys, &["documents:read"]).await;
    let writer = key(&keys, &["documents:write"]).await;
    let app = ServiceBuilder::new()
        .layer(AuthLayer::new(Arc::new(
            CredentialRouter::new().api_keys(keys),
        )))
        .layer(RequirePermissionLayer::new(Permission::DOCUMENTS_READ))
        .service(service_fn(echo));

    // No credential.
    let response = app.clone().oneshot(request(None)).await.unwrap();
    let problem = assert_problem(&response, StatusCode::UNAUTHORIZED);
    assert_eq!(problem.code, "unauthenticated");
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );

    // A bad key: same answer, nothing about why.
    let mut bad = reader.clone().into_bytes();
    bad[20] = if bad[20] == b'a' { b'b' } else { b'a' };
    let response = app
        .clone()
        .oneshot(request(Some(("x-api-key", &bad))))
        .await
        .unwrap();
    let problem = assert_problem(&response, StatusCode::UNAUTHORIZED);
    assert!(!response.body().contains("malformed") && !response.body().contains("checksum"));
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(
        problem.detail.as_deref(),
        Some("missing or invalid credentials")
    );

    // Authenticated, without the permission.
    let response = app
        .clone()
        .oneshot(request(Some(("x-api-key", writer.as_bytes()))))
        .await
        .unwrap();
    let problem = assert_problem(&response, StatusCode::FORBIDDEN);
    assert!(problem.detail.unwrap().contains("documents:read"));

    // Authenticated, with it; also through `Authorization: ApiKey`.
    for (name, value) in [
        ("x-api-key", reader.clone()),
        ("authorization", format!("ApiKey {reader}")),
    ] {
        let response = app
            .clone()
            .oneshot(request(Some((name, value.as_bytes()))))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.body(),
            "acme/alice sensitive=true addr=Some(192.0.2.7)"
        );
    }
}

#[tokio::test]
async fn hostile_header_values_are_refused_cleanly() {
    let keys = keys_with(Arc::new(MemoryApiKeyStore::new())).await;
    let reader = key(&keys, &["documents:read"]).await;
    let app = ServiceBuilder::new()
        .layer(AuthLayer::new(keys).with_max_credential_len(256))
        .service(service_fn(echo));
    let tab = format!("{}\t{}", &reader[..10], &reader[10..]);
    let obs_text = [reader.as_bytes(), "é".as_bytes()].concat();
    let huge = "A".repeat(100_000);
    let bearer_for_keys = format!("Bearer {reader}");
    let cases: Vec<(&str, &[u8])> = vec![
        ("x-api-key", tab.as_bytes()),
        ("x-api-key", &obs_text),
        ("x-api-key", huge.as_bytes()),
        ("authorization", b"Basic YWxpY2U6cGFzcw=="),
        ("authorization", b"Bearer"),
        ("authorization", bearer_for_keys.as_bytes()),
    ];
    for (name, value) in cases {
        let response = app
            .clone()
            .oneshot(request(Some((name, value))))
            .await
            .unwrap();
        assert_problem(&response, StatusCode::UNAUTHORIZED);
    }
    // Two credentials at once are ambiguous, even if both are valid.
    let mut both = request(Some(("x-api-key", reader.as_bytes())));
    both.headers_mut().insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&format!("ApiKey {reader}")).unwrap(),
    );
    let response = app.clone().oneshot(both).await.unwrap();
    assert_problem(&response, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn require_permission_alone_answers_401() {
    let app = ServiceBuilder::new()
        .layer(RequirePermissionLayer::new(Permission::ADMIN_ACCESS))
        .service(service_fn(echo));
    let response = app.oneshot(request(None)).await.unwrap();
    assert_problem(&response, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_locked_out_and_audited() {
    let keys = keys_with(Arc::new(MemoryApiKeyStore::new())).await;
    let reader = key(&keys, &["documents:read"]).await;
    let clock = ManualClock::new();
    let audit = Arc::new(MemoryAuditSink::new());
    let mut config = LockoutConfig::default();
    config.client_addr = BackoffPolicy::new(3, 2000, 60);
    let tracker = Arc::new(
        FailedAuthTracker::new(config, audit.clone())
            .unwrap()
            .with_clock(Arc::new(clock.clone())),
    );
    let mut app = ServiceBuilder::new()
        .layer(AuthLayer::new(keys).with_failure_tracker(tracker.clone()))
        .service(service_fn(echo));

    let (_, unknown) = docaiche_auth::api_key::ApiKeyFormat::default()
        .generate()
        .unwrap();
    let guess = unknown.expose_secret().clone();
    for _ in 0..3 {
        let response = app
            .ready()
            .await
            .unwrap()
            .call(request(Some(("x-api-key", guess.as_bytes()))))
            .await
            .unwrap();
        assert_problem(&response, StatusCode::UNAUTHORIZED);
    }
    // The fourth failure starts a lock: the guesser's next attempts answer
    // 429 with Retry-After...
    for expected_retry in ["2", "4"] {
        let response = app
            .ready()
            .await
            .unwrap()
            .call(request(Some(("x-api-key", guess.as_bytes()))))
            .await
            .unwrap();
        assert_problem(&response, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], expected_retry);
    }
    // ...but a valid key is verified first and never refused by it, even
    // from the locked address.
    let response = app
        .ready()
        .await
        .unwrap()
        .call(request(Some(("x-api-key", reader.as_bytes()))))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "a valid key passes");

    clock.advance(Duration::from_secs(4));
    let response = app
        .ready()
        .await
        .unwrap()
        .call(request(Some(("x-api-key", guess.as_bytes()))))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "a failure after the lock ends starts the next, longer one"
    );
    assert_eq!(response.headers()[header::RETRY_AFTER], "8");

    let events = audit.events_without_tenant();
    let failures = events.iter().filter(|e| e.action == "auth.failure").count();
    let lockouts = events.iter().filter(|e| e.action == "auth.lockout").count();
    assert_eq!((failures, lockouts), (6, 2));
    assert!(
        events
            .iter()
            .all(|e| e.client_addr == Some([192, 0, 2, 7].into()))
    );
    // The key's public prefix is named; the secret never reaches the trail.
    let trail = serde_json::to_string(&events).unwrap();
    assert!(trail.contains(&guess[..16]));
    assert!(!trail.contains(&guess[17..]));
}

/// The review's attack: the public lookup part of a victim's key, in forged
/// keys sent from many addresses, must never make the victim's valid key
/// answer 429; each guessing address is slowed on its own.
#[tokio::test]
async fn forged_keys_carrying_a_victims_lookup_never_lock_the_victims_key() {
    let keys = keys_with(Arc::new(MemoryApiKeyStore::new())).await;
    let victim = key(&keys, &["documents:read"]).await;
    let tracker = Arc::new(
        FailedAuthTracker::new(LockoutConfig::default(), Arc::new(MemoryAuditSink::new()))
            .unwrap()
            .with_clock(Arc::new(ManualClock::new())),
    );
    let mut app = ServiceBuilder::new()
        .layer(AuthLayer::new(keys).with_failure_tracker(tracker))
        .service(service_fn(echo));
    // The victim's type prefix and lookup id, a made-up secret.
    let forged = format!("{}{}", &victim[..17], "x".repeat(victim.len() - 17));
    let from = |key: &str, addr: [u8; 4]| {
        let mut request = request(Some(("x-api-key", key.as_bytes())));
        request
            .extensions_mut()
            .insert(SocketAddr::from((addr, 40_000)));
        request
    };
    let mut slowed = 0;
    for attacker in 0..20_u8 {
        for _ in 0..12 {
            let response = app
                .ready()
                .await
                .unwrap()
                .call(from(&forged, [198, 51, attacker, 9]))
                .await
                .unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                slowed += 1;
            } else {
                assert_problem(&response, StatusCode::UNAUTHORIZED);
            }
        }
        let response = app
            .ready()
            .await
            .unwrap()
            .call(from(&victim, [203, 0, 113, 5]))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "the victim's key after {} forged attempts",
            12 * (usize::from(attacker) + 1)
        );
    }
    // Ten free failures per address, then each is slowed.
    assert_eq!(slowed, 20 * 2);
}

/// The memory store, unreachable: every call fails as an outage would.
#[derive(Debug)]
struct DownStore;

fn down() -> Error {
    Error::unavailable("api key store", std::io::Error::other("connection refused"))
}

#[async_trait::async_trait]
impl ApiKeyStore for DownStore {
    async fn insert(&self, _: &ApiKeyRecord) -> Result<()> {
        Err(down())
    }
    async fn find_by_lookup(&self, _: &ApiKeyLookup) -> Result<Option<ApiKeyRecord>> {
        Err(down())
    }
    async fn get(&self, _: &TenantId, _: &ApiKeyId) -> Result<Option<ApiKeyRecord>> {
        Err(down())
    }
    async fn list(&self, _: &TenantId, _: &PageRequest) -> Result<Page<ApiKeyRecord>> {
        Err(down())
    }
    async fn revoke(&self, _: &TenantId, _: &ApiKeyId, _: OffsetDateTime) -> Result<bool> {
        Err(down())
    }
    async fn delete(&self, _: &TenantId, _: &ApiKeyId) -> Result<bool> {
        Err(down())
    }
    async fn mark_rotated(
        &self,
        _: &TenantId,
        _: &ApiKeyId,
        _: &ApiKeyId,
        _: OffsetDateTime,
    ) -> Result<bool> {
        Err(down())
    }
    async fn record_usage(&self, _: &[ApiKeyUsage]) -> Result<()> {
        Err(down())
    }
}

#[tokio::test]
async fn a_store_outage_fails_closed() {
    let keys = keys_with(Arc::new(DownStore)).await;
    let (_, key) = keys.format().generate().unwrap();
    let app = ServiceBuilder::new()
        .layer(AuthLayer::new(keys))
        .service(service_fn(echo));
    let response = app
        .oneshot(request(Some(("x-api-key", key.expose_secret().as_bytes()))))
        .await
        .unwrap();
    let problem = assert_problem(&response, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!response.body().contains("connection refused"));
    assert!(problem.correlation_id.is_some());
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn the_axum_extractor_reads_the_principal() {
    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use docaiche_auth::layer::Authenticated;

    let keys = keys_with(Arc::new(MemoryApiKeyStore::new())).await;
    let reader = key(&keys, &["documents:read"]).await;
    let handler = |Authenticated(p): Authenticated| async move { p.id.to_string() };
    let protected = Router::new()
        .route("/me", get(handler))
        .layer(AuthLayer::new(keys));
    let unprotected = Router::new().route("/me", get(handler));

    let request = |key: Option<&str>| {
        let mut builder = Request::builder().uri("/me");
        if let Some(key) = key {
            builder = builder.header("x-api-key", key);
        }
        builder.body(Body::empty()).unwrap()
    };
    let response = protected.oneshot(request(Some(&reader))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1024)
        .await
        .unwrap();
    assert_eq!(&body[..], b"alice");

    let response = unprotected.oneshot(request(Some(&reader))).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
}
