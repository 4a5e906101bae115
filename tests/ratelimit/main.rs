//! The rate-limit layer end to end over an axum router (`oneshot`, no
//! socket), with a hand-moved clock: policies, keys, client addresses,
//! composed limits, tiers, route classes, concurrency, headers and failure.
//!
//! Most tests run against [`ExactLimiter`], a minimal GCRA on a
//! [`ManualClock`] written here so that every number in the assertions can
//! be derived by hand; `the_in_process_limiter_enforces_the_same_policy`
//! runs the real `LocalRateLimiter` through the same layer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use axum::routing::{get, post};
use docaiche_core::clock::{Clock, ManualClock};
use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey};
use docaiche_core::{ApiKeyId, AuthMethod, Error, Principal, PrincipalId, RateLimiter, TenantId};
use docaiche_ratelimit::headers::{RATELIMIT, RATELIMIT_POLICY};
use docaiche_ratelimit::layer::RateLimitLayer;
use docaiche_ratelimit::policy::{RateLimitConfig, RequestCost};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tower::ServiceExt as _;

// ---------------------------------------------------------------------------
// A tiny exact limiter
// ---------------------------------------------------------------------------

/// GCRA with a theoretical arrival time per key, on a manual clock: `limit`
/// units back to back, then one per `period / limit`. Can be told to fail.
#[derive(Debug)]
struct ExactLimiter {
    clock: ManualClock,
    tat: Mutex<HashMap<String, Duration>>,
    failing: AtomicBool,
    calls: AtomicUsize,
    /// Answer through the synchronous fast path (`check_now`) too.
    synchronous: AtomicBool,
    /// Calls to the asynchronous `check` and `peek`.
    awaited: AtomicUsize,
}

impl ExactLimiter {
    fn new(clock: &ManualClock) -> Arc<Self> {
        Arc::new(Self {
            clock: clock.clone(),
            tat: Mutex::new(HashMap::new()),
            failing: AtomicBool::new(false),
            calls: AtomicUsize::new(0),
            synchronous: AtomicBool::new(false),
            awaited: AtomicUsize::new(0),
        })
    }

    fn decide(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
        take: bool,
    ) -> Result<RateLimitDecision, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::unavailable(
                "redis",
                std::io::Error::other("connection refused"),
            ));
        }
        let now = self.clock.monotonic();
        let interval = quota.emission_interval();
        let mut tats = self.tat.lock().expect("lock");
        let tat = tats.get(key.as_str()).copied().unwrap_or(now).max(now);
        let new_tat = tat + interval * cost.get();
        let limit = quota.limit.get();
        let units =
            |d: Duration| u32::try_from(d.as_nanos() / interval.as_nanos()).unwrap_or(u32::MAX);
        if new_tat > now + quota.period {
            let remaining = units((now + quota.period).saturating_sub(tat)).min(limit);
            return Ok(RateLimitDecision::deny(
                limit,
                remaining,
                tat - now,
                new_tat - now - quota.period,
            ));
        }
        if take {
            tats.insert(key.as_str().to_owned(), new_tat);
        }
        Ok(RateLimitDecision::allow(
            limit,
            units(now + quota.period - new_tat).min(limit),
            new_tat - now,
        ))
    }
}

#[async_trait::async_trait]
impl RateLimiter for ExactLimiter {
    async fn check(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> docaiche_core::Result<RateLimitDecision> {
        self.awaited.fetch_add(1, Ordering::SeqCst);
        self.decide(key, quota, cost, true)
    }

    async fn peek(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> docaiche_core::Result<RateLimitDecision> {
        self.awaited.fetch_add(1, Ordering::SeqCst);
        self.decide(key, quota, cost, false)
    }

    fn check_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<docaiche_core::Result<RateLimitDecision>> {
        self.synchronous
            .load(Ordering::SeqCst)
            .then(|| self.decide(key, quota, cost, true))
    }

    fn peek_now(
        &self,
        key: &RateLimitKey,
        quota: &Quota,
        cost: NonZeroU32,
    ) -> Option<docaiche_core::Result<RateLimitDecision>> {
        self.synchronous
            .load(Ordering::SeqCst)
            .then(|| self.decide(key, quota, cost, false))
    }
}

// ---------------------------------------------------------------------------
// The application under test
// ---------------------------------------------------------------------------

/// A base configuration: `default` (reads), `documents` (stricter) and
/// `heavy` (a concurrency limit of 2 per tenant).
fn base_config() -> Value {
    json!({
        "trusted_proxies": ["10.0.0.0/8"],
        "policies": {
            "default": { "limits": [{ "key": "tenant", "limit": 5, "period_secs": 60 }] },
            "documents": { "limits": [{ "key": "tenant", "limit": 2, "period_secs": 60 }] },
            "heavy": { "concurrency": { "limit": 2 } }
        }
    })
}

/// Gates the `/heavy` handler: each request waits for a permit.
#[derive(Debug, Clone)]
struct Gate {
    open: Arc<Semaphore>,
    entered: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Self {
        Self {
            open: Arc::new(Semaphore::new(0)),
            entered: Arc::new(AtomicUsize::new(0)),
        }
    }
}

struct App {
    router: Router,
    layer: RateLimitLayer,
    gate: Gate,
}

fn app(config: Value, limiter: Arc<dyn RateLimiter>) -> App {
    let policies = serde_json::from_value::<RateLimitConfig>(config)
        .expect("config deserializes")
        .build()
        .expect("config is valid");
    let reads = RateLimitLayer::new(limiter, policies, "default").expect("default class");
    let documents = reads.for_class("documents").expect("documents class");
    let heavy = reads.for_class("heavy").expect("heavy class");
    let gate = Gate::new();
    let handler_gate = gate.clone();
    let router = Router::new()
        .route("/read", get(|| async { "read" }))
        .route("/missing", get(|| async { Error::not_found("document") }))
        .layer(reads.clone())
        .merge(
            Router::new()
                .route("/documents", post(|| async { "processed" }))
                .layer(documents),
        )
        .merge(
            Router::new()
                .route(
                    "/heavy",
                    post(move || {
                        let gate = handler_gate.clone();
                        async move {
                            gate.entered.fetch_add(1, Ordering::SeqCst);
                            gate.open.acquire().await.expect("open").forget();
                            "heavy done"
                        }
                    }),
                )
                .layer(heavy),
        );
    App {
        router,
        layer: reads,
        gate,
    }
}

fn principal(tenant: &str, id: &str) -> Principal {
    Principal::new(
        PrincipalId::new(id).expect("principal id"),
        TenantId::new(tenant).expect("tenant id"),
        AuthMethod::Password,
    )
}

fn api_key_principal(tenant: &str, id: &str, key_id: ApiKeyId) -> Principal {
    Principal::new(
        PrincipalId::new(id).expect("principal id"),
        TenantId::new(tenant).expect("tenant id"),
        AuthMethod::ApiKey { key_id },
    )
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

/// A request as the server sees it after authentication: the principal and
/// the socket peer in the extensions.
fn request(method: &str, path: &str, who: Option<Principal>, peer: SocketAddr) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .expect("request");
    if let Some(who) = who {
        request.extensions_mut().insert(who);
    }
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn get_as(tenant: &str, id: &str) -> Request<Body> {
    request(
        "GET",
        "/read",
        Some(principal(tenant, id)),
        addr("198.51.100.1:5000"),
    )
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: impl header::AsHeaderName) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ascii"))
            .unwrap_or_default()
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("json body")
    }
}

async fn send(router: &Router, request: Request<Body>) -> Answer {
    let response = router.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    Answer {
        status,
        headers,
        body,
    }
}

/// Send `n` requests built by `make`, returning the statuses.
async fn statuses(router: &Router, n: usize, make: impl Fn() -> Request<Body>) -> Vec<u16> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(send(router, make()).await.status.as_u16());
    }
    out
}

// ---------------------------------------------------------------------------
// Quotas, headers, problems
// ---------------------------------------------------------------------------

#[tokio::test]
async fn denies_after_the_quota_with_exact_retry_after_and_a_quota_exceeded_problem() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    // 5 per minute: one unit every 12 s.
    assert_eq!(
        statuses(&app.router, 5, || get_as("acme", "alice")).await,
        [200; 5]
    );
    clock.advance(Duration::from_millis(4_500));

    let refused = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    // The next unit is due 12 s after the start: 7.5 s from now, rounded up.
    assert_eq!(refused.header(header::RETRY_AFTER), "8");
    assert_eq!(
        refused.header(header::CONTENT_TYPE),
        "application/problem+json"
    );
    assert_eq!(refused.header(RATELIMIT), "\"default-tenant\";r=0;t=8");
    assert_eq!(
        refused.header(RATELIMIT_POLICY),
        "\"default-tenant\";q=5;w=60"
    );
    let problem = refused.json();
    assert_eq!(
        problem["type"],
        "https://docaiche.dev/problems/quota-exceeded"
    );
    assert_eq!(problem["status"], 429);
    assert_eq!(problem["retry_after"], 8);
    assert_eq!(problem["violated-policies"], json!(["default-tenant"]));

    // Exactly when Retry-After said (well, when the unit is due), it passes.
    clock.advance(Duration::from_millis(7_500));
    assert_eq!(
        send(&app.router, get_as("acme", "alice")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn allowed_responses_carry_ratelimit_policy_and_ratelimit_headers() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    let first = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body, b"read");
    assert_eq!(
        first.header(RATELIMIT_POLICY),
        "\"default-tenant\";q=5;w=60"
    );
    // One unit spent: 4 left; the quota is whole again 12 s from now.
    assert_eq!(first.header(RATELIMIT), "\"default-tenant\";r=4;t=12");

    clock.advance(Duration::from_millis(500));
    let second = send(&app.router, get_as("acme", "alice")).await;
    // 24 s of debt minus 0.5 s elapsed: 23.5 s, rounded up.
    assert_eq!(second.header(RATELIMIT), "\"default-tenant\";r=3;t=24");

    // Responses the handler fails are limited routes too: headers present.
    let missing = send(
        &app.router,
        request(
            "GET",
            "/missing",
            Some(principal("acme", "alice")),
            addr("198.51.100.1:1"),
        ),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header(RATELIMIT), "\"default-tenant\";r=2;t=36");
}

#[tokio::test]
async fn composed_limits_the_stricter_one_denies_without_spending_the_other() {
    let clock = ManualClock::new();
    composed_limits_case(ExactLimiter::new(&clock)).await;
}

/// The same, through the in-process limiter's all-or-nothing
/// `check_all_now` instead of peek-then-check.
#[tokio::test]
async fn composed_limits_are_all_or_nothing_in_the_in_process_limiter() {
    let clock = ManualClock::new();
    let local = docaiche_ratelimit::local::LocalRateLimiter::new(Arc::new(clock.clone()));
    composed_limits_case(Arc::new(local)).await;
}

async fn composed_limits_case(limiter: Arc<dyn RateLimiter>) {
    let mut config = base_config();
    config["policies"]["default"] = json!({ "limits": [
        { "key": "tenant", "limit": 10, "period_secs": 60 },
        { "key": "principal", "limit": 2, "period_secs": 60 }
    ]});
    let app = app(config, limiter);

    let first = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(
        first.header(RATELIMIT_POLICY),
        "\"default-tenant\";q=10;w=60, \"default-principal\";q=2;w=60"
    );
    // The principal limit has fewer units left: it is the one reported.
    assert_eq!(first.header(RATELIMIT), "\"default-principal\";r=1;t=30");

    assert_eq!(
        send(&app.router, get_as("acme", "alice")).await.status,
        StatusCode::OK
    );
    let refused = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.json()["violated-policies"],
        json!(["default-principal"])
    );
    assert_eq!(refused.header(RATELIMIT), "\"default-principal\";r=0;t=30");

    // The refusal did not spend the tenant budget: 8 of 10 are left, so
    // another principal of acme gets exactly 2 before its own limit, and
    // the tenant's remaining count shows only the 4 successful requests.
    let bob = send(&app.router, get_as("acme", "bob")).await;
    assert_eq!(bob.status, StatusCode::OK);
    let bob = send(&app.router, get_as("acme", "bob")).await;
    assert_eq!(bob.header(RATELIMIT), "\"default-principal\";r=0;t=60");
    let carol = send(&app.router, get_as("acme", "carol")).await;
    assert_eq!(carol.status, StatusCode::OK);
    // tenant: 10 - 5 successes = 5 left; principal (carol): 1 left.
    assert_eq!(carol.header(RATELIMIT), "\"default-principal\";r=1;t=30");
}

#[tokio::test]
async fn principals_of_one_tenant_share_the_tenant_limit_but_not_the_principal_limit() {
    let clock = ManualClock::new();
    let mut config = base_config();
    config["policies"]["default"] = json!({ "limits": [
        { "key": "tenant", "limit": 4, "period_secs": 60 },
        { "key": "principal", "limit": 3, "period_secs": 60 }
    ]});
    let app = app(config, ExactLimiter::new(&clock));
    // alice spends 3 (her own limit), bob gets the tenant's last unit only.
    assert_eq!(
        statuses(&app.router, 4, || get_as("acme", "alice")).await,
        [200, 200, 200, 429]
    );
    assert_eq!(
        statuses(&app.router, 2, || get_as("acme", "bob")).await,
        [200, 429]
    );
    let bob = send(&app.router, get_as("acme", "bob")).await;
    assert_eq!(bob.json()["violated-policies"], json!(["default-tenant"]));
    // Another tenant has its own budget.
    assert_eq!(
        statuses(&app.router, 3, || get_as("globex", "alice")).await,
        [200; 3]
    );
}

#[tokio::test]
async fn api_key_limits_are_per_key() {
    let clock = ManualClock::new();
    let mut config = base_config();
    config["policies"]["default"] =
        json!({ "limits": [{ "key": "api_key", "limit": 2, "period_secs": 60 }] });
    let app = app(config, ExactLimiter::new(&clock));
    let (k1, k2) = (ApiKeyId::new(), ApiKeyId::new());
    let with_key = |key| {
        move || {
            request(
                "GET",
                "/read",
                Some(api_key_principal("acme", "ci-bot", key)),
                addr("198.51.100.1:1"),
            )
        }
    };
    assert_eq!(
        statuses(&app.router, 3, with_key(k1)).await,
        [200, 200, 429]
    );
    // Same principal, another key: another budget.
    assert_eq!(statuses(&app.router, 2, with_key(k2)).await, [200, 200]);
    assert_eq!(
        send(&app.router, with_key(k1)())
            .await
            .header(RATELIMIT_POLICY),
        "\"default-api-key\";q=2;w=60"
    );
}

#[tokio::test]
async fn request_cost_extension_is_charged() {
    let clock = ManualClock::new();
    let mut config = base_config();
    config["policies"]["documents"] = json!({ "limits": [
        { "key": "tenant", "limit": 10, "period_secs": 60, "cost": "request" }
    ]});
    let app = app(config, ExactLimiter::new(&clock));
    let costly = |pages: u32| {
        let mut r = request(
            "POST",
            "/documents",
            Some(principal("acme", "alice")),
            addr("198.51.100.1:1"),
        );
        r.extensions_mut()
            .insert(RequestCost(NonZeroU32::new(pages).expect("non-zero")));
        r
    };
    let answer = send(&app.router, costly(7)).await;
    assert_eq!(answer.header(RATELIMIT), "\"documents-tenant\";r=3;t=42");
    assert_eq!(
        send(&app.router, costly(4)).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // No extension: cost 1.
    let plain = request(
        "POST",
        "/documents",
        Some(principal("acme", "alice")),
        addr("198.51.100.1:1"),
    );
    assert_eq!(
        send(&app.router, plain).await.header(RATELIMIT),
        "\"documents-tenant\";r=2;t=48"
    );
}

// ---------------------------------------------------------------------------
// Tiers and route classes
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_pro_tenant_gets_a_larger_quota_than_a_free_one() {
    let clock = ManualClock::new();
    let mut config = base_config();
    config["policies"]["default"] =
        json!({ "limits": [{ "key": "tenant", "limit": 2, "period_secs": 60 }] });
    config["policies"]["default-pro"] =
        json!({ "limits": [{ "key": "tenant", "limit": 4, "period_secs": 60 }] });
    config["tiers"] = json!({ "free": {}, "pro": { "default": "default-pro" } });
    config["tenants"] = json!({ "bigcorp": "pro", "smallco": "free" });
    let app = app(config, ExactLimiter::new(&clock));

    assert_eq!(
        statuses(&app.router, 3, || get_as("smallco", "a")).await,
        [200, 200, 429]
    );
    assert_eq!(
        statuses(&app.router, 5, || get_as("bigcorp", "a")).await,
        [200, 200, 200, 200, 429]
    );
    let pro = send(&app.router, get_as("bigcorp", "a")).await;
    assert_eq!(
        pro.header(RATELIMIT_POLICY),
        "\"default-pro-tenant\";q=4;w=60"
    );

    let metrics = app.layer.metrics();
    let pro = metrics.policy("default-pro").expect("counted");
    assert_eq!((pro.allowed, pro.limited), (4, 2));
    let free = metrics.policy("default").expect("counted");
    assert_eq!((free.allowed, free.limited, free.errors), (2, 1, 0));
}

#[tokio::test]
async fn document_routes_are_stricter_than_reads() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    let upload = || {
        request(
            "POST",
            "/documents",
            Some(principal("acme", "alice")),
            addr("198.51.100.1:1"),
        )
    };
    assert_eq!(statuses(&app.router, 3, upload).await, [200, 200, 429]);
    // Reads have their own, larger budget, untouched by the uploads.
    assert_eq!(
        statuses(&app.router, 5, || get_as("acme", "alice")).await,
        [200; 5]
    );
    let upload = send(&app.router, upload()).await;
    assert_eq!(
        upload.header(RATELIMIT_POLICY),
        "\"documents-tenant\";q=2;w=60"
    );
}

// ---------------------------------------------------------------------------
// Client addresses
// ---------------------------------------------------------------------------

fn anonymous(peer: &str, forwarded_for: Option<&str>) -> Request<Body> {
    let mut r = request("GET", "/read", None, addr(peer));
    if let Some(xff) = forwarded_for {
        r.headers_mut()
            .insert("x-forwarded-for", xff.parse().expect("header value"));
    }
    r
}

#[tokio::test]
async fn unauthenticated_requests_are_keyed_by_the_socket_address() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    assert_eq!(
        statuses(&app.router, 6, || anonymous("203.0.113.5:1000", None)).await,
        [200, 200, 200, 200, 200, 429]
    );
    // Another port of the same host: the same client.
    assert_eq!(
        send(&app.router, anonymous("203.0.113.5:2000", None))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another host: its own budget.
    assert_eq!(
        send(&app.router, anonymous("203.0.113.6:1000", None))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn forwarded_for_is_honoured_from_a_trusted_proxy() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    // The proxy 10.0.0.2 forwards two different clients: separate budgets.
    let via_proxy = |client: &'static str| move || anonymous("10.0.0.2:443", Some(client));
    assert_eq!(
        statuses(&app.router, 6, via_proxy("198.51.100.7")).await,
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(
        statuses(&app.router, 5, via_proxy("198.51.100.8")).await,
        [200; 5]
    );
    // Through two trusted hops, the client written by the outer proxy.
    assert_eq!(
        send(
            &app.router,
            anonymous("10.0.0.2:443", Some("198.51.100.7, 10.9.9.9"))
        )
        .await
        .status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    // The attacker rotates X-Forwarded-For on every request; it is not a
    // trusted proxy, so every request counts against its own address.
    let mut codes = Vec::new();
    for i in 0..20 {
        let spoof = format!("192.0.2.{i}, 10.0.0.{i}");
        codes.push(
            send(&app.router, anonymous("203.0.113.66:4000", Some(&spoof)))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(codes[..5], [200; 5]);
    assert!(codes[5..].iter().all(|&c| c == 429), "{codes:?}");
    // Behind a trusted proxy, a client's own prefix to the header is ignored
    // too: only the entry the proxy appended counts.
    let mut codes = Vec::new();
    for i in 0..7 {
        let spoof = format!("192.0.2.{i}, 198.51.100.99");
        codes.push(
            send(&app.router, anonymous("10.0.0.2:443", Some(&spoof)))
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 429, 429]);
}

#[tokio::test]
async fn malformed_forwarded_for_from_a_trusted_proxy_keys_by_the_proxy() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    let garbage = [
        "not-an-ip",
        "198.51.100.7, oops",
        "",
        "1.2.3.4 5.6.7.8",
        "999.1.1.1",
    ];
    let mut codes = Vec::new();
    for bad in garbage.iter().cycle().take(6) {
        codes.push(
            send(&app.router, anonymous("10.0.0.2:443", Some(bad)))
                .await
                .status
                .as_u16(),
        );
    }
    // All six counted against the proxy's own address.
    assert_eq!(codes, [200, 200, 200, 200, 200, 429]);
    // A well-formed header through the same proxy is another client.
    assert_eq!(
        send(&app.router, anonymous("10.0.0.2:443", Some("198.51.100.7")))
            .await
            .status,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

fn heavy_as(tenant: &str) -> Request<Body> {
    request(
        "POST",
        "/heavy",
        Some(principal(tenant, "alice")),
        addr("198.51.100.1:1"),
    )
}

async fn wait_until_entered(gate: &Gate, n: usize) {
    while gate.entered.load(Ordering::SeqCst) < n {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn concurrency_limit_refuses_the_extra_heavy_request_of_one_tenant_only() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    let first = tokio::spawn(app.router.clone().oneshot(heavy_as("acme")));
    let second = tokio::spawn(app.router.clone().oneshot(heavy_as("acme")));
    wait_until_entered(&app.gate, 2).await;

    // The third of acme's is refused at once, not queued.
    let refused = send(&app.router, heavy_as("acme")).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.header(header::RETRY_AFTER), "1");
    assert_eq!(refused.header(RATELIMIT), "\"heavy-concurrency\";r=0");
    assert_eq!(
        refused.header(RATELIMIT_POLICY),
        "\"heavy-concurrency\";q=2;qu=\"concurrent-requests\""
    );
    assert_eq!(
        refused.json()["type"],
        "https://docaiche.dev/problems/quota-exceeded"
    );

    // globex is unaffected.
    let other = tokio::spawn(app.router.clone().oneshot(heavy_as("globex")));
    wait_until_entered(&app.gate, 3).await;

    app.gate.open.add_permits(3);
    for handle in [first, second, other] {
        let response = handle.await.expect("task").expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
    }
    // Slots were given back when the responses completed.
    let again = tokio::spawn(app.router.clone().oneshot(heavy_as("acme")));
    wait_until_entered(&app.gate, 4).await;
    app.gate.open.add_permits(1);
    let again = again.await.expect("task").expect("infallible");
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()[RATELIMIT], "\"heavy-concurrency\";r=1");
}

#[tokio::test]
async fn concurrency_slot_is_released_when_the_request_future_is_dropped() {
    let clock = ManualClock::new();
    let app = app(base_config(), ExactLimiter::new(&clock));
    let mut first = Box::pin(app.router.clone().oneshot(heavy_as("acme")));
    let mut second = Box::pin(app.router.clone().oneshot(heavy_as("acme")));
    assert!(futures_util::poll!(first.as_mut()).is_pending());
    assert!(futures_util::poll!(second.as_mut()).is_pending());
    assert_eq!(
        send(&app.router, heavy_as("acme")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // The client went away: the in-flight futures are dropped.
    drop(first);
    drop(second);
    let third = tokio::spawn(app.router.clone().oneshot(heavy_as("acme")));
    let fourth = tokio::spawn(app.router.clone().oneshot(heavy_as("acme")));
    wait_until_entered(&app.gate, 4).await;
    app.gate.open.add_permits(2);
    for handle in [third, fourth] {
        assert_eq!(
            handle.await.expect("task").expect("infallible").status(),
            StatusCode::OK
        );
    }
}

// ---------------------------------------------------------------------------
// Configuration and failure
// ---------------------------------------------------------------------------

#[test]
fn header_injection_in_a_policy_name_is_rejected_at_config() {
    for evil in [
        "x\";q=1000000",
        "x\r\nSet-Cookie: a=b",
        "x, \"y\";q=1",
        "x\\y",
    ] {
        let mut config = base_config();
        config["policies"][evil] =
            json!({ "limits": [{ "key": "global", "limit": 1, "period_secs": 1 }] });
        let built = serde_json::from_value::<RateLimitConfig>(config)
            .expect("deserializes")
            .build();
        match built {
            Err(Error::Misconfigured { setting, .. }) => {
                assert!(setting.starts_with("rate_limit.policies."), "{setting}");
            }
            other => panic!("{evil:?} accepted: {other:?}"),
        }
    }
    let mut config = base_config();
    config["policies"]["default"]["limits"][0]["name"] = json!("ok\r\nX-Evil: 1");
    let built = serde_json::from_value::<RateLimitConfig>(config)
        .expect("deserializes")
        .build();
    assert!(
        matches!(built, Err(Error::Misconfigured { ref setting, .. }) if setting == "rate_limit.policies.default.limits[0].name"),
        "{built:?}"
    );
}

#[tokio::test]
async fn limiter_error_fails_closed_with_a_503_problem() {
    let clock = ManualClock::new();
    let limiter = ExactLimiter::new(&clock);
    let app = app(base_config(), limiter.clone());
    limiter.failing.store(true, Ordering::SeqCst);
    let answer = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.header(header::CONTENT_TYPE),
        "application/problem+json"
    );
    let problem = answer.json();
    assert_eq!(problem["code"], "unavailable");
    assert!(
        !String::from_utf8_lossy(&answer.body).contains("connection refused"),
        "cause stays in the log"
    );
    assert_eq!(
        answer.header(RATELIMIT_POLICY),
        "\"default-tenant\";q=5;w=60"
    );
    assert!(!answer.headers.contains_key(RATELIMIT));
    assert_eq!(
        app.layer
            .metrics()
            .policy("default")
            .expect("counted")
            .errors,
        1
    );
}

#[tokio::test]
async fn fail_open_lets_requests_through_when_the_limiter_fails() {
    let clock = ManualClock::new();
    let limiter = ExactLimiter::new(&clock);
    let mut config = base_config();
    config["on_limiter_error"] = json!("fail_open");
    let app = app(config, limiter.clone());
    limiter.failing.store(true, Ordering::SeqCst);
    let answer = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(!answer.headers.contains_key(RATELIMIT));
    let m = app.layer.metrics().policy("default").expect("counted");
    assert_eq!((m.allowed, m.errors), (0, 1));
}

#[tokio::test]
async fn a_single_limit_costs_one_limiter_call_and_several_peek_first() {
    let clock = ManualClock::new();
    let limiter = ExactLimiter::new(&clock);
    let mut config = base_config();
    config["policies"]["default"] = json!({ "limits": [
        { "key": "tenant", "limit": 10, "period_secs": 60 },
        { "key": "principal", "limit": 10, "period_secs": 60 }
    ]});
    let app = app(config, limiter.clone());
    send(
        &app.router,
        request(
            "POST",
            "/documents",
            Some(principal("acme", "a")),
            addr("198.51.100.1:1"),
        ),
    )
    .await;
    assert_eq!(limiter.calls.swap(0, Ordering::SeqCst), 1);
    send(&app.router, get_as("acme", "a")).await;
    assert_eq!(
        limiter.calls.load(Ordering::SeqCst),
        4,
        "two peeks, two checks"
    );
}

#[tokio::test]
async fn the_in_process_limiter_enforces_the_same_policy() {
    let clock = ManualClock::new();
    let limiter = Arc::new(docaiche_ratelimit::local::LocalRateLimiter::new(Arc::new(
        clock.clone(),
    )));
    let app = app(base_config(), limiter);
    let first = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(first.header(RATELIMIT), "\"default-tenant\";r=4;t=12");
    assert_eq!(
        statuses(&app.router, 5, || get_as("acme", "alice")).await,
        [200, 200, 200, 200, 429]
    );
    let refused = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(
        refused.json()["type"],
        "https://docaiche.dev/problems/quota-exceeded"
    );
    assert_eq!(refused.header(header::RETRY_AFTER), "12");
    assert_eq!(refused.header(RATELIMIT), "\"default-tenant\";r=0;t=12");
    clock.advance(Duration::from_secs(12));
    assert_eq!(
        send(&app.router, get_as("acme", "alice")).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_limiter_that_decides_synchronously_is_never_awaited() {
    let clock = ManualClock::new();
    let limiter = ExactLimiter::new(&clock);
    limiter.synchronous.store(true, Ordering::SeqCst);
    let mut config = base_config();
    config["policies"]["default"] = json!({ "limits": [
        { "key": "tenant", "limit": 3, "period_secs": 60 },
        { "key": "principal", "limit": 2, "period_secs": 60 }
    ]});
    let app = app(config, limiter.clone());
    assert_eq!(
        statuses(&app.router, 3, || get_as("acme", "alice")).await,
        [200, 200, 429]
    );
    let refused = send(&app.router, get_as("acme", "alice")).await;
    assert_eq!(refused.header(header::RETRY_AFTER), "30");
    assert_eq!(limiter.awaited.load(Ordering::SeqCst), 0);
    // Two peeks and two checks per allowed request, two peeks per refusal.
    assert_eq!(limiter.calls.load(Ordering::SeqCst), 4 + 4 + 2 + 2);

    // The same limiter answering only when awaited decides the same way.
    limiter.synchronous.store(false, Ordering::SeqCst);
    assert_eq!(
        send(&app.router, get_as("acme", "bob")).await.status,
        StatusCode::OK
    );
    assert_eq!(limiter.awaited.load(Ordering::SeqCst), 4);
    let m = app.layer.metrics().policy("default").expect("counted");
    assert_eq!((m.allowed, m.limited, m.fallback), (3, 2, 0));
}

#[tokio::test]
async fn decisions_of_the_failure_policy_are_counted_as_fallback_per_policy() {
    use docaiche_core::resilience::CircuitBreaker;
    use docaiche_ratelimit::fallback::{FailurePolicy, ResilientRateLimiter};
    use docaiche_ratelimit::local::LocalRateLimiter;

    let clock = ManualClock::new();
    let primary = ExactLimiter::new(&clock);
    let breaker = CircuitBreaker::builder("redis")
        .count_window(2)
        .minimum_calls(2)
        .wait_in_open(Duration::from_secs(1))
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("breaker");
    let limiter = ResilientRateLimiter::builder(primary.clone())
        .circuit_breaker(breaker)
        .policy(FailurePolicy::Fallback {
            local: Arc::new(LocalRateLimiter::new(Arc::new(clock.clone()))),
            share: 1.0,
        })
        .build()
        .expect("limiter");
    let app = app(base_config(), Arc::new(limiter));

    primary.failing.store(true, Ordering::SeqCst);
    // Two failed calls open the breaker; the fallback decides all six, the
    // last four through the synchronous path without asking the primary.
    assert_eq!(
        statuses(&app.router, 6, || get_as("acme", "alice")).await,
        [200, 200, 200, 200, 200, 429]
    );
    assert_eq!(primary.calls.load(Ordering::SeqCst), 2);
    let m = app.layer.metrics().policy("default").expect("counted");
    assert_eq!((m.allowed, m.limited, m.fallback, m.errors), (5, 1, 6, 0));

    // The primary is back: after the breaker's wait, decisions leave the
    // fallback and are no longer counted as such.
    primary.failing.store(false, Ordering::SeqCst);
    clock.advance(Duration::from_secs(60));
    assert_eq!(
        send(&app.router, get_as("acme", "alice")).await.status,
        StatusCode::OK
    );
    let m = app.layer.metrics().policy("default").expect("counted");
    assert_eq!((m.allowed, m.fallback), (6, 6));
    assert_eq!(primary.calls.load(Ordering::SeqCst), 3);
}
