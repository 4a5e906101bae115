//! The Redis adapters against real servers.
//!
//! | suite | variable(s) | checks |
//! |---|---|---|
//! | `redis-store` | `DOCAICHE_TEST_REDIS_URL` | the cache, revocation, web session and invalidation-bus conformance suites; web session TTLs; TTLs as stored; namespaced keys; read-through over Redis; reconnecting after a real restart (a `redis-server` this suite starts and kills); invalidations over pub/sub between two connections, resubscribed after a restart |
//! | `redis-cluster-store` | `DOCAICHE_TEST_REDIS_CLUSTER_URLS` (comma-separated) | the four conformance suites on a 3-node cluster; invalidations reach a subscriber on every node |
//!
//! `./scripts/test.sh` starts the servers and sets the variables. A missing
//! server skips loudly, or fails under `CI=true` (see `report`).
//! `redis-cli` and `redis-server` must be on `PATH`.

#[path = "../../tests/backends/report.rs"]
mod report;
#[path = "support/tcp_proxy.rs"]
#[allow(dead_code, unreachable_pub)]
mod tcp_proxy;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use docaiche_core::cache::{CacheKey, CacheStore};
use docaiche_core::invalidation::{Invalidation, InvalidationBus};
use docaiche_core::revocation::TokenRevocationStore;
use docaiche_core::web_session::{SecondFactor, WebSession, WebSessionKey, WebSessionStore};
use docaiche_core::{Error, HealthCheck, HealthStatus};
use docaiche_store::conformance::{
    Harness, run_cache_store, run_invalidation_bus, run_revocation_store, run_web_session_store,
};
use docaiche_store::read_through::ReadThrough;
use docaiche_store::redis::RedisStore;
use futures_util::StreamExt as _;
use time::OffsetDateTime;

const STANDALONE: &str = "redis-store";
const STANDALONE_VAR: &str = "DOCAICHE_TEST_REDIS_URL";
const CLUSTER: &str = "redis-cluster-store";
const CLUSTER_VAR: &str = "DOCAICHE_TEST_REDIS_CLUSTER_URLS";

fn prefix() -> String {
    format!("docaiche:test:store:{}", uuid::Uuid::new_v4().simple())
}

/// A store on the standalone server, after checking it answers (else skip).
async fn standalone() -> Option<(String, RedisStore)> {
    let url = report::require_backend(STANDALONE, STANDALONE_VAR)?;
    let store = RedisStore::builder(url.clone())
        .key_prefix(prefix())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("valid URL");
    match store.ping().await {
        Ok(_) => Some((url, store)),
        Err(error) => {
            report::skip(
                STANDALONE,
                &format!("{STANDALONE_VAR} does not answer PING: {error}"),
            );
            None
        }
    }
}

fn redis_cli(url: &str, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-u")
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli runs (it is on PATH where the servers are)");
    assert!(
        output.status.success(),
        "redis-cli {args:?} failed: {output:?}"
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_revocation_and_invalidation_pass_the_conformance_suites() {
    let Some((url, store)) = standalone().await else {
        return;
    };
    let harness = Harness::real_time();
    run_cache_store(Arc::new(store.cache()), &harness).await;
    run_revocation_store(Arc::new(store.revocations()), &harness).await;
    run_invalidation_bus(Arc::new(store.invalidations()), &harness).await;
    report::mark_ran(
        STANDALONE,
        &format!("cache, revocation and invalidation conformance at {url}"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_session_store_passes_the_conformance_suite_and_expires_sessions_at_their_lifetime() {
    let Some((url, store)) = standalone().await else {
        return;
    };
    let sessions = store.web_sessions(Duration::from_secs(24 * 3600));
    run_web_session_store(Arc::new(sessions.clone()), &Harness::real_time()).await;

    // The session hash lives as long as the lifetime left; the subject's
    // set as long as its latest session.
    let tenant = docaiche_core::TenantId::new("acme").expect("valid id");
    let alice = docaiche_core::PrincipalId::new("alice").expect("valid id");
    let started = OffsetDateTime::now_utc() - time::Duration::hours(1);
    let session = WebSession::new(
        WebSessionKey::of(&uuid::Uuid::new_v4().to_string()),
        tenant.clone(),
        alice.clone(),
        started,
        SecondFactor::Passed,
    );
    sessions.insert(&session).await.expect("insert");
    let ttl: i64 = redis_cli(&url, &["PTTL", &sessions.redis_key(&session.key)])
        .parse()
        .expect("PTTL answers a number");
    let expected = 23 * 3600 * 1000;
    assert!(
        (expected - 10_000..=expected).contains(&ttl),
        "the session expires 24 h after it started: {ttl} ms left"
    );
    let set_ttl: i64 = redis_cli(&url, &["PTTL", &sessions.subject_key(&tenant, &alice)])
        .parse()
        .expect("PTTL answers a number");
    assert!(
        (expected - 10_000..=expected).contains(&set_ttl),
        "{set_ttl}"
    );
    assert_eq!(
        sessions
            .remove_subject(&tenant, &alice)
            .await
            .expect("remove_subject"),
        1
    );
    report::mark_ran(
        STANDALONE,
        &format!("web session conformance and TTLs at {url}"),
    );
}

#[tokio::test]
async fn keys_are_namespaced_under_the_prefix_and_ttls_are_redis_ttls() {
    let Some((url, store)) = standalone().await else {
        return;
    };
    let cache = store.cache();
    // Braces and glob characters are ordinary bytes of a key.
    let key = CacheKey::new("extract", "sha256:{ab}*?[c]").expect("valid key");
    cache
        .set(&key, Bytes::from_static(b"text"), Duration::from_secs(90))
        .await
        .expect("set");
    let redis_key = cache.redis_key(&key);
    assert!(
        redis_key.ends_with(":cache:extract:sha256:{ab}*?[c]"),
        "{redis_key}"
    );
    assert_eq!(redis_cli(&url, &["GET", &redis_key]), "text");
    let pttl: u64 = redis_cli(&url, &["PTTL", &redis_key])
        .parse()
        .expect("a TTL");
    assert!((89_000..=90_000).contains(&pttl), "{pttl}");
    let entry = cache.get(&key).await.expect("get").expect("hit");
    assert!(entry.ttl_remaining <= Duration::from_secs(90));
    assert!(entry.ttl_remaining > Duration::from_secs(88));

    // A value someone wrote without a TTL is not ours to trust.
    redis_cli(&url, &["SET", &redis_key, "forever"]);
    assert_eq!(cache.get(&key).await.expect("get"), None);
    assert!(cache.delete(&key).await.expect("delete"));
    report::mark_ran(STANDALONE, "namespaced keys and TTLs");
}

#[tokio::test]
async fn a_revocation_lives_as_long_as_the_token_and_is_never_shortened() {
    let Some((url, store)) = standalone().await else {
        return;
    };
    let revocations = store.revocations();
    let jti = format!("jti-{}", uuid::Uuid::new_v4().simple());
    let now = OffsetDateTime::now_utc();
    revocations
        .revoke(&jti, now + Duration::from_secs(600))
        .await
        .expect("revoke");
    let key = revocations.redis_key(&jti);
    let pttl = |url: &str| -> u64 { redis_cli(url, &["PTTL", &key]).parse().expect("a TTL") };
    let first = pttl(&url);
    assert!((595_000..=600_000).contains(&first), "{first}");

    // An earlier expiry changes nothing; a later one extends.
    revocations
        .revoke(&jti, now + Duration::from_secs(60))
        .await
        .expect("revoke again");
    assert!(pttl(&url) > 590_000, "never shortened");
    revocations
        .revoke(&jti, now + Duration::from_secs(3_600))
        .await
        .expect("revoke later");
    assert!(pttl(&url) > 3_590_000, "extended");
    assert!(revocations.is_revoked(&jti).await.expect("check"));

    // A token that has already expired needs no entry.
    let old = format!("old-{}", uuid::Uuid::new_v4().simple());
    revocations
        .revoke(&old, now - Duration::from_secs(1))
        .await
        .expect("revoke expired");
    assert_eq!(
        redis_cli(&url, &["EXISTS", &revocations.redis_key(&old)]),
        "0"
    );

    // Hostile ids are refused before any command.
    for evil in ["", "a b", "x\r\nFLUSHALL", &"a".repeat(129)] {
        let refused = revocations.is_revoked(evil).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput { .. })),
            "{evil:?}: {refused:?}"
        );
    }
    report::mark_ran(STANDALONE, "revocation TTLs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_through_over_redis_loads_once_for_many_concurrent_misses() {
    let Some((_url, store)) = standalone().await else {
        return;
    };
    let cache = Arc::new(ReadThrough::new(Arc::new(store.cache())).with_beta(0.0));
    let key = CacheKey::new("jwks", "issuer").expect("valid key");
    let loads = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let cache = Arc::clone(&cache);
            let key = key.clone();
            let loads = Arc::clone(&loads);
            tokio::spawn(async move {
                cache
                    .get_or_load(&key, Duration::from_secs(60), || async {
                        loads.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok(Bytes::from_static(b"keys"))
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(
            task.await.expect("task").expect("value"),
            Bytes::from_static(b"keys")
        );
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    report::mark_ran(STANDALONE, "read-through single flight");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A `redis-server` child of this test, killed on drop.
struct Server {
    child: Child,
}

impl Server {
    fn start(port: u16) -> std::io::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self { child })
    }

    /// A server of this test's own, on a free port, once it answers
    /// `PING` (for faults the shared server must not suffer); `None`, and
    /// the suite skipped, without the shared server or `redis-server`.
    async fn own() -> Option<(Self, u16)> {
        standalone().await?;
        let port = free_port();
        let server = match Self::start(port) {
            Ok(server) => server,
            Err(error) => {
                report::skip(STANDALONE, &format!("cannot run redis-server: {error}"));
                return None;
            }
        };
        let probe = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
            .build()
            .expect("valid URL");
        let started = Instant::now();
        while probe.ping().await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "redis-server did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Some((server, port))
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stores_reconnect_by_themselves_after_redis_restarts() {
    let Some((mut server, port)) = Server::own().await else {
        return;
    };
    let store = RedisStore::builder(format!("redis://127.0.0.1:{port}"))
        .timeout(Duration::from_millis(250))
        .build()
        .expect("valid URL");
    let cache = store.cache();
    let revocations = store.revocations();
    let key = CacheKey::new("t", "k").expect("valid key");
    cache
        .set(&key, Bytes::from_static(b"v"), Duration::from_secs(60))
        .await
        .expect("set");

    server.kill();
    let down = Instant::now();
    let failed = cache.get(&key).await;
    assert!(
        matches!(
            failed,
            Err(Error::Unavailable { .. } | Error::Timeout { .. })
        ),
        "{failed:?}"
    );
    assert!(
        down.elapsed() < Duration::from_millis(500),
        "{:?}",
        down.elapsed()
    );
    let unchecked = revocations.is_revoked("jti-1").await;
    assert!(
        unchecked.is_err(),
        "an unchecked revocation is an error, never `false`"
    );
    let health = store.health_check().check().await;
    assert_eq!(health.status, HealthStatus::Down);

    let _server = Server::start(port).expect("redis-server restarts");
    let restarted = Instant::now();
    let back = loop {
        if cache
            .set(&key, Bytes::from_static(b"again"), Duration::from_secs(60))
            .await
            .is_ok()
        {
            break restarted.elapsed();
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(back < Duration::from_secs(5), "{back:?}");
    let entry = cache.get(&key).await.expect("get").expect("hit");
    assert_eq!(entry.value, Bytes::from_static(b"again"));
    assert!(!revocations.is_revoked("jti-1").await.expect("check"));
    eprintln!("redis store: reconnected {back:?} after the restart");
    report::mark_ran(STANDALONE, &format!("reconnected {back:?} after a restart"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_cache_and_revocation_pass_the_conformance_suites() {
    let Some(urls) = report::require_backend(CLUSTER, CLUSTER_VAR) else {
        return;
    };
    let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
    let store = RedisStore::cluster_builder(urls.clone())
        .key_prefix(prefix())
        .timeout(Duration::from_secs(2))
        .build()
        .expect("valid URLs");
    if let Err(error) = store.ping().await {
        report::skip(
            CLUSTER,
            &format!("{CLUSTER_VAR} does not answer PING: {error}"),
        );
        return;
    }
    assert!(store.is_cluster());
    let harness = Harness::real_time();
    run_cache_store(Arc::new(store.cache()), &harness).await;
    run_revocation_store(Arc::new(store.revocations()), &harness).await;
    let sessions = store.web_sessions(Duration::from_secs(24 * 3600));
    run_web_session_store(Arc::new(sessions), &harness).await;
    run_invalidation_bus(Arc::new(store.invalidations()), &harness).await;
    report::mark_ran(
        CLUSTER,
        &format!("conformance on the cluster at {}", urls.join(",")),
    );
}

/// Fault test, readiness side: the store reaches the shared Redis through a
/// TCP proxy that the test cuts. Calls fail fast, the health check reports
/// `down` and readiness `degraded` (Redis is optional: still ready, the
/// cache degrades to misses); once the proxy forwards again, calls and
/// health recover on their own within 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_degraded_while_redis_is_unreachable_and_recovers() {
    use docaiche_core::health::HealthRegistry;

    let Some((url, _)) = standalone().await else {
        return;
    };
    let (_, upstream) = tcp_proxy::through(&url, "127.0.0.1:1".parse().expect("addr"), 6379);
    let proxy = tcp_proxy::TcpProxy::start(upstream).await;
    let (proxied, _) = tcp_proxy::through(&url, proxy.addr(), 6379);
    let store = RedisStore::builder(proxied)
        .key_prefix(prefix())
        .timeout(Duration::from_millis(250))
        .build()
        .expect("valid URL");
    let registry =
        HealthRegistry::new(Duration::from_secs(2)).with_check(Arc::new(store.health_check()));
    let cache = store.cache();
    let key = CacheKey::new("t", "k").expect("valid key");
    cache
        .set(&key, Bytes::from_static(b"v"), Duration::from_secs(60))
        .await
        .expect("set");
    assert_eq!(registry.check_all().await.status, HealthStatus::Up);

    proxy.cut();
    let call = Instant::now();
    let failed = cache.get(&key).await;
    assert!(
        matches!(
            failed,
            Err(Error::Unavailable { .. } | Error::Timeout { .. })
        ),
        "{failed:?}"
    );
    assert!(
        call.elapsed() < Duration::from_secs(1),
        "{:?}",
        call.elapsed()
    );
    let report = registry.check_all().await;
    assert_eq!(
        report.components[0].status,
        HealthStatus::Down,
        "{report:?}"
    );
    assert_eq!(report.status, HealthStatus::Degraded, "{report:?}");
    assert!(
        report.status.is_ready(),
        "an optional dependency keeps the service ready"
    );
    assert_eq!(report.to_health_json()["status"], "warn");

    proxy.restore();
    let restored = Instant::now();
    let back = loop {
        if registry.check_all().await.status == HealthStatus::Up && cache.get(&key).await.is_ok() {
            break restored.elapsed();
        }
        assert!(
            restored.elapsed() < Duration::from_secs(10),
            "never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(back < Duration::from_secs(5), "{back:?}");
    let entry = cache.get(&key).await.expect("get").expect("still cached");
    assert_eq!(entry.value, Bytes::from_static(b"v"));
    eprintln!("redis behind a cut proxy: readiness and calls back {back:?} after restore");
    report::mark_ran(
        STANDALONE,
        &format!("readiness degraded during a cut, back {back:?}"),
    );
}

/// The next item of an invalidation subscription, within `within`.
async fn next_within(
    stale: &mut futures_util::stream::BoxStream<'static, Invalidation>,
    within: Duration,
) -> Invalidation {
    tokio::time::timeout(within, stale.next())
        .await
        .expect("an invalidation in time")
        .expect("the subscription goes on")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_reach_other_connections_and_survive_a_restart() {
    let Some((mut server, port)) = Server::own().await else {
        return;
    };
    let url = format!("redis://127.0.0.1:{port}");
    let prefix = prefix();
    let instance = || {
        RedisStore::builder(url.clone())
            .key_prefix(prefix.clone())
            .connect_timeout(Duration::from_millis(500))
            .build()
            .expect("valid URL")
    };
    let (publisher, subscriber) = (instance(), instance());
    let bus = publisher.invalidations();
    let mut stale = subscriber
        .invalidations()
        .subscribe("api_keys")
        .expect("channel");
    let mut sessions = subscriber
        .invalidations()
        .subscribe("sessions")
        .expect("channel");
    let second = Duration::from_secs(5);
    assert_eq!(
        next_within(&mut stale, second).await,
        Invalidation::All,
        "live"
    );
    assert_eq!(
        next_within(&mut sessions, second).await,
        Invalidation::All,
        "live"
    );

    bus.publish("sessions", "s1").await.expect("publish");
    bus.publish("api_keys", "k1").await.expect("publish");
    assert_eq!(
        next_within(&mut stale, second).await,
        Invalidation::Key("k1".into())
    );
    assert_eq!(
        next_within(&mut sessions, second).await,
        Invalidation::Key("s1".into())
    );

    // Hostile keys are refused before any command; a hostile payload from
    // another writer on the channel drops everything rather than nothing.
    for evil in ["", "a b", "x\r\nFLUSHALL", &"k".repeat(257)] {
        let refused = bus.publish("api_keys", evil).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput { .. })),
            "{evil:?}"
        );
    }
    let channel = format!("{prefix}:invalidate:api_keys");
    redis_cli(&url, &["PUBLISH", &channel, "a b\r\nc"]);
    assert_eq!(next_within(&mut stale, second).await, Invalidation::All);

    // Redis restarts: what was published meanwhile was lost, so the
    // subscription says `All` once it is back, then delivers again.
    server.kill();
    let _server = Server::start(port).expect("redis-server restarts");
    let restarted = Instant::now();
    assert_eq!(
        next_within(&mut stale, Duration::from_secs(15)).await,
        Invalidation::All,
        "resubscribed"
    );
    let back = restarted.elapsed();
    bus.publish("api_keys", "k2")
        .await
        .expect("publish after the restart");
    assert_eq!(
        next_within(&mut stale, second).await,
        Invalidation::Key("k2".into())
    );
    report::mark_ran(
        STANDALONE,
        &format!("invalidations resubscribed {back:?} after a restart"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_invalidations_reach_subscribers_on_every_node() {
    let Some(urls) = report::require_backend(CLUSTER, CLUSTER_VAR) else {
        return;
    };
    let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
    let prefix = prefix();
    // A subscription connects to the first node it is given: one per node.
    let mut subscriptions = Vec::new();
    for first in 0..urls.len() {
        let mut order = urls.clone();
        order.rotate_left(first);
        let store = RedisStore::cluster_builder(order)
            .key_prefix(prefix.clone())
            .timeout(Duration::from_secs(2))
            .build()
            .expect("valid URLs");
        let mut stale = store
            .invalidations()
            .subscribe("api_keys")
            .expect("channel");
        assert_eq!(
            next_within(&mut stale, Duration::from_secs(5)).await,
            Invalidation::All
        );
        subscriptions.push(stale);
    }
    let publisher = RedisStore::cluster_builder(urls.clone())
        .key_prefix(prefix)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("valid URLs");
    publisher
        .invalidations()
        .publish("api_keys", "k1")
        .await
        .expect("publish");
    for stale in &mut subscriptions {
        assert_eq!(
            next_within(stale, Duration::from_secs(5)).await,
            Invalidation::Key("k1".into())
        );
    }
    report::mark_ran(CLUSTER, "invalidations reach subscribers on every node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_outside_a_runtime_is_an_error_not_a_panic() {
    let Some((_url, store)) = standalone().await else {
        return;
    };
    let bus = store.invalidations();
    let outside = std::thread::spawn(move || bus.subscribe("api_keys").map(|_| ()))
        .join()
        .expect("no panic");
    assert!(
        matches!(outside, Err(Error::Internal { .. })),
        "{outside:?}"
    );
    report::mark_ran(STANDALONE, "subscription outside a runtime refused");
}

#[path = "../../tests/common/spans.rs"]
mod spans;

#[tokio::test]
async fn revocation_checks_and_announcements_run_in_client_spans() {
    let Some((_url, store)) = standalone().await else {
        return;
    };
    let (spans, _guard) = spans::capture();
    let revocations = store.revocations();
    let tenant = docaiche_core::TenantId::new("acme").expect("tenant");
    let subject = docaiche_core::PrincipalId::new("alice").expect("subject");
    let token = docaiche_core::revocation::IssuedToken::new(
        "jti-spans",
        &tenant,
        &subject,
        OffsetDateTime::now_utc(),
    );
    assert!(!revocations.is_token_revoked(&token).await.expect("check"));
    let check = spans.one("is_token_revoked revoked_tokens");
    assert_eq!(check.field("otel.kind"), Some("client"));
    assert_eq!(check.field("db.system.name"), Some("redis"));
    assert_eq!(
        spans.all().len(),
        1,
        "one span for both lookups: {:#?}",
        spans.all()
    );

    let bus = store.invalidations();
    bus.publish("api_keys", "k1").await.expect("publish");
    assert!(bus.publish("api_keys", "a b").await.is_err());
    let publishes = spans.named("publish invalidate");
    assert_eq!(publishes.len(), 2, "{:#?}", spans.all());
    assert!(
        publishes
            .iter()
            .all(|s| s.field("db.system.name") == Some("redis")
                && s.field("db.collection.name") == Some("invalidate"))
    );
    assert_eq!(publishes[0].field("error.type"), None);
    assert_eq!(publishes[1].field("error.type"), Some("invalid-input"));
    report::mark_ran(STANDALONE, "revocation and invalidation spans");
}
