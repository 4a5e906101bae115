//! External OIDC issuers: discovery and JWKS served by the test itself on a
//! loopback port and fetched over real HTTP.
#![cfg(feature = "oidc")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jwt_support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use docaiche_auth::jwt::{Algorithm, JwtKey};
use docaiche_auth::oidc::{ClaimMapping, HttpJwksFetcher, OidcConfig, OidcVerifier};
use docaiche_core::{AuthFailure, AuthMethod, Clock, Error, ManualClock, Permission};
use jsonwebtoken::EncodingKey;
use jwt_support::*;
use serde_json::{Value, json};

const AUDIENCE: &str = "api://docaiche";

struct Issuer {
    url: String,
    discovery_hits: AtomicUsize,
    jwks_hits: AtomicUsize,
    jwks: Mutex<Value>,
    discovery_issuer: Mutex<Option<String>>,
    down: AtomicBool,
    hang: AtomicBool,
}

async fn discovery(State(issuer): State<Arc<Issuer>>) -> Response {
    issuer.discovery_hits.fetch_add(1, Ordering::SeqCst);
    if issuer.down.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let named = issuer
        .discovery_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| issuer.url.clone());
    let body = json!({ "issuer": named, "jwks_uri": format!("{}/keys", issuer.url) });
    ([("content-type", "application/json")], body.to_string()).into_response()
}

async fn jwks(State(issuer): State<Arc<Issuer>>) -> Response {
    issuer.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if issuer.hang.load(Ordering::SeqCst) {
        std::future::pending::<()>().await;
    }
    let body = issuer.jwks.lock().unwrap().to_string();
    ([("content-type", "application/json")], body).into_response()
}

fn public_jwk(kid: &str, alg: Algorithm, pem: &[u8]) -> Value {
    serde_json::to_value(
        JwtKey::from_pem(kid, alg, pem)
            .unwrap()
            .public_jwk()
            .unwrap(),
    )
    .unwrap()
}

async fn start_issuer(keys: Vec<Value>) -> Arc<Issuer> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let issuer = Arc::new(Issuer {
        url,
        discovery_hits: AtomicUsize::new(0),
        jwks_hits: AtomicUsize::new(0),
        jwks: Mutex::new(json!({ "keys": keys })),
        discovery_issuer: Mutex::new(None),
        down: AtomicBool::new(false),
        hang: AtomicBool::new(false),
    });
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/keys", get(jwks))
        .with_state(issuer.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

fn verifier_for(
    issuer: &Issuer,
    clock: &ManualClock,
    config: impl FnOnce(OidcConfig) -> OidcConfig,
) -> OidcVerifier {
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let base = OidcConfig::new(issuer.url.clone(), [AUDIENCE])
        .with_claim_mapping(ClaimMapping::new("org_id").with_permissions_claim("scope"));
    OidcVerifier::new(
        config(base),
        Arc::new(HttpJwksFetcher::new(Duration::from_secs(60)).unwrap()),
        shared,
    )
    .unwrap()
}

fn external_claims(issuer: &Issuer, clock: &ManualClock) -> Value {
    let now = clock.now().unix_timestamp();
    json!({
        "iss": issuer.url,
        "sub": "bob@example.com",
        "aud": [AUDIENCE, "other"],
        "exp": now + 300,
        "iat": now,
        "org_id": "globex",
        "scope": "openid profile documents:read",
        "roles": ["viewer"],
    })
}

fn es256_token(kid: &str, claims: &Value) -> String {
    forge(
        &header("ES256", kid),
        claims,
        &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        Algorithm::ES256,
    )
}

fn reason(err: &Error) -> Option<AuthFailure> {
    match err {
        Error::Unauthenticated { reason } => Some(*reason),
        _ => None,
    }
}

#[tokio::test]
async fn verifies_a_token_from_the_issuer_and_maps_claims() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    let principal = verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap();
    assert_eq!(principal.id.as_str(), "bob@example.com");
    assert_eq!(principal.tenant.as_str(), "globex");
    assert_eq!(principal.roles, ["viewer"]);
    assert!(principal.has_permission(&Permission::DOCUMENTS_READ));
    assert!(!principal.has_permission(&Permission::DOCUMENTS_WRITE));
    assert_eq!(
        principal.auth_method,
        AuthMethod::Oidc {
            issuer: issuer.url.clone()
        }
    );
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 1);
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 1);
    // Cached: no second fetch.
    verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn forged_kids_do_not_cause_a_refresh_storm() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    let claims = external_claims(&issuer, &clock);
    verifier
        .verify(&es256_token("ec-1", &claims))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 1);

    // The first unknown kid after the fetch is inside the cooldown: no fetch.
    for i in 0..200 {
        let err = verifier
            .verify(&es256_token(&format!("forged-{i}"), &claims))
            .await
            .unwrap_err();
        assert_eq!(reason(&err), Some(AuthFailure::UnknownKey));
    }
    assert_eq!(
        issuer.jwks_hits.load(Ordering::SeqCst),
        1,
        "no fetch inside the cooldown"
    );

    // After the cooldown one unknown kid may trigger one refresh, then the
    // cooldown holds again.
    clock.advance(Duration::from_secs(30));
    for i in 0..200 {
        let _ = verifier
            .verify(&es256_token(&format!("forged-b{i}"), &claims))
            .await;
    }
    assert_eq!(
        issuer.jwks_hits.load(Ordering::SeqCst),
        2,
        "one refresh per cooldown"
    );
    // The known key keeps working throughout.
    assert!(verifier.verify(&es256_token("ec-1", &claims)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_cold_verifications_share_one_fetch() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = Arc::new(verifier_for(&issuer, &clock, |c| c));
    let token = es256_token("ec-1", &external_claims(&issuer, &clock));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let verifier = verifier.clone();
            let token = token.clone();
            tokio::spawn(async move { verifier.verify(&token).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 1, "single-flight");
}

#[tokio::test]
async fn a_key_rotated_in_at_the_issuer_is_picked_up_after_the_cooldown() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    let claims = external_claims(&issuer, &clock);
    verifier
        .verify(&es256_token("ec-1", &claims))
        .await
        .unwrap();

    *issuer.jwks.lock().unwrap() = json!({ "keys": [
        public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE),
        public_jwk("ed-2", Algorithm::EdDSA, ED_PRIVATE),
    ]});
    let ed_token = forge(
        &header("EdDSA", "ed-2"),
        &claims,
        &EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
        Algorithm::EdDSA,
    );
    clock.advance(Duration::from_secs(31));
    verifier.verify(&ed_token).await.unwrap();
    assert_eq!(verifier.cached_kids(), ["ec-1", "ed-2"]);
}

#[tokio::test]
async fn keys_expire_after_the_cache_ttl() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(9 * 60));
    verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 1);
    // The issuer removed the key: once the cache expires it is gone.
    *issuer.jwks.lock().unwrap() =
        json!({ "keys": [public_jwk("ed-2", Algorithm::EdDSA, ED_PRIVATE)] });
    clock.advance(Duration::from_secs(61));
    let err = verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(AuthFailure::UnknownKey));
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn stale_keys_serve_while_the_issuer_is_briefly_down() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| {
        c.with_max_stale(Duration::from_secs(3600))
    });
    verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap();
    issuer.down.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(11 * 60));
    verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .expect("stale keys serve while the issuer is down");
    assert_eq!(
        issuer.discovery_hits.load(Ordering::SeqCst),
        2,
        "a refresh was attempted"
    );
    // Beyond the stale limit, the verifier fails closed with Unavailable.
    clock.advance(Duration::from_secs(3600));
    let err = verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    // And once it is back, all is well.
    issuer.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(31));
    verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_issuer_times_out_on_the_clock() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    issuer.hang.store(true, Ordering::SeqCst);
    let clock = ManualClock::new();
    let verifier = Arc::new(verifier_for(&issuer, &clock, |c| c));
    let token = es256_token("ec-1", &external_claims(&issuer, &clock));
    let task = tokio::spawn({
        let verifier = verifier.clone();
        async move { verifier.verify(&token).await }
    });
    while clock.pending_sleepers() == 0 {
        tokio::task::yield_now().await;
    }
    clock.advance(Duration::from_secs(5));
    let err = task.await.unwrap().unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
}

#[tokio::test]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    *issuer.discovery_issuer.lock().unwrap() = Some("https://evil.example".to_owned());
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    let err = verifier
        .verify(&es256_token("ec-1", &external_claims(&issuer, &clock)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(issuer.jwks_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn symmetric_and_excess_keys_in_the_jwks_are_ignored() {
    let oct = json!({"kty": "oct", "kid": "hs", "alg": "HS256", "k": b64(&HMAC_SECRET)});
    let issuer = start_issuer(vec![
        oct,
        public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE),
        public_jwk("rsa-1", Algorithm::RS256, RSA_PRIVATE),
        public_jwk("ed-1", Algorithm::EdDSA, ED_PRIVATE),
        json!({"kty": "weird", "kid": "w"}),
    ])
    .await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c.with_max_keys(2));
    let claims = external_claims(&issuer, &clock);
    // An HMAC token signed with the "published" oct secret is refused.
    let err = verifier
        .verify(&hs256(&header("HS256", "hs"), &claims))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(AuthFailure::UnknownKey));
    assert_eq!(
        verifier.cached_kids(),
        ["ec-1", "rsa-1"],
        "capped at max_keys"
    );
}

#[tokio::test]
async fn hs256_token_naming_the_issuers_rsa_key_is_refused() {
    let issuer = start_issuer(vec![public_jwk("rsa-1", Algorithm::RS256, RSA_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    let forged = forge(
        &header("HS256", "rsa-1"),
        &external_claims(&issuer, &clock),
        &EncodingKey::from_secret(RSA_PUBLIC),
        Algorithm::HS256,
    );
    let err = verifier.verify(&forged).await.unwrap_err();
    assert_eq!(reason(&err), Some(AuthFailure::BadCredential));
}

#[tokio::test]
async fn external_tokens_need_audience_issuer_tenant_and_type() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    let base = external_claims(&issuer, &clock);
    let mut cases = Vec::new();
    let mut c = base.clone();
    c["aud"] = json!("someone-else");
    cases.push((c, AuthFailure::WrongAudience));
    let mut c = base.clone();
    c.as_object_mut().unwrap().remove("aud");
    cases.push((c, AuthFailure::Malformed));
    let mut c = base.clone();
    c["iss"] = json!("https://evil.example");
    cases.push((c, AuthFailure::WrongAudience));
    let mut c = base.clone();
    c.as_object_mut().unwrap().remove("org_id");
    cases.push((c, AuthFailure::Malformed));
    let mut c = base.clone();
    c["exp"] = json!(clock.now().unix_timestamp() - 60);
    cases.push((c, AuthFailure::Expired));
    for (claims, expected) in cases {
        let err = verifier
            .verify(&es256_token("ec-1", &claims))
            .await
            .unwrap_err();
        assert_eq!(reason(&err), Some(expected), "{claims}");
    }
    let mut h = header("ES256", "ec-1");
    h["typ"] = json!("JWT");
    let token = forge(
        &h,
        &base,
        &EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        Algorithm::ES256,
    );
    assert_eq!(
        reason(&verifier.verify(&token).await.unwrap_err()),
        Some(AuthFailure::WrongAudience)
    );
}

#[test]
fn plain_http_issuers_off_loopback_are_refused() {
    let config = OidcConfig::new("http://login.example.com", [AUDIENCE]);
    assert!(matches!(
        config.validate(),
        Err(Error::Misconfigured { .. })
    ));
}

#[tokio::test]
async fn an_issuer_that_is_down_is_asked_once_per_cooldown() {
    let issuer = start_issuer(vec![public_jwk("ec-1", Algorithm::ES256, EC_PRIVATE)]).await;
    issuer.down.store(true, Ordering::SeqCst);
    let clock = ManualClock::new();
    let verifier = verifier_for(&issuer, &clock, |c| c);
    let token = es256_token("ec-1", &external_claims(&issuer, &clock));
    for _ in 0..50 {
        let err = verifier.verify(&token).await.unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    }
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 1);
    issuer.down.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(30));
    verifier.verify(&token).await.unwrap();
    assert_eq!(issuer.discovery_hits.load(Ordering::SeqCst), 2);
}
