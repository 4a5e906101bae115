//! The distributed rate limiter against real Redis servers on loopback.
//!
//! | suite | variable | what |
//! |---|---|---|
//! | `redis-limiter` | `DOCAICHE_TEST_REDIS_URL` | GCRA exactness, one global limit for two instances, `NOSCRIPT` recovery, health, failure policies against a refusing and a hung server, a real restart (a `redis-server` this suite starts and kills) |
//! | `redis-cluster` | `DOCAICHE_TEST_REDIS_CLUSTER_URLS` (comma-separated) | one global limit for two instances on a 3-node cluster, keys spread over the nodes by their hash tag |
//!
//! `./scripts/test.sh` starts the servers (the cluster too) and sets the
//! variables. A missing variable skips a suite loudly, or fails it under
//! `CI=true` / `DOCAICHE_REQUIRE_BACKENDS=1` (see [`report`]). Every test
//! uses its own key prefix, so the tests run in parallel on one server.
//! `redis-cli` and `redis-server` (for the restart test) must be on `PATH`.

#[path = "../backends/report.rs"]
mod report;

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::net::{SocketAddr, TcpListener};
use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use docaiche::core::health::{HealthCheck, HealthStatus};
use docaiche::core::rate_limit::{Quota, RateLimitKey, RateLimiter};
use docaiche::core::resilience::CircuitBreaker;
use docaiche::ratelimit::fallback::{DecisionSource, FailurePolicy, ResilientRateLimiter};
use docaiche::ratelimit::local::LocalRateLimiter;
use docaiche::ratelimit::redis::RedisRateLimiter;

const STANDALONE: &str = "redis-limiter";
const STANDALONE_VAR: &str = "DOCAICHE_TEST_REDIS_URL";
const CLUSTER: &str = "redis-cluster";
const CLUSTER_VAR: &str = "DOCAICHE_TEST_REDIS_CLUSTER_URLS";

// --- helpers ------------------------------------------------------------------

fn unique_suffix() -> String {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", hasher.finish())
}

fn prefix() -> String {
    format!("docaiche:test:rl:{}", unique_suffix())
}

fn key(name: &str) -> RateLimitKey {
    RateLimitKey::new(format!("{name}:{}", unique_suffix())).expect("valid key")
}

fn quota(limit: u32, period: Duration) -> Quota {
    Quota::new(NonZeroU32::new(limit).expect("non-zero"), period).expect("valid quota")
}

fn cost(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("non-zero")
}

/// The standalone URL, after checking the server answers (else skip).
async fn standalone_url() -> Option<String> {
    let url = report::require_backend(STANDALONE, STANDALONE_VAR)?;
    let probe = RedisRateLimiter::builder(url.clone())
        .timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("valid URL");
    match probe.ping().await {
        Ok(_) => Some(url),
        Err(error) => {
            report::skip(
                STANDALONE,
                &format!("{STANDALONE_VAR} does not answer PING: {error}"),
            );
            None
        }
    }
}

async fn limiter(url: &str, prefix: &str) -> RedisRateLimiter {
    RedisRateLimiter::builder(url)
        .key_prefix(prefix)
        .timeout(Duration::from_secs(1))
        .build()
        .await
        .expect("valid limiter")
}

/// The cluster's node URLs, after checking the cluster answers (else skip).
async fn cluster_urls() -> Option<Vec<String>> {
    let urls = report::require_backend(CLUSTER, CLUSTER_VAR)?;
    let urls: Vec<String> = urls.split(',').map(|u| u.trim().to_owned()).collect();
    let probe = RedisRateLimiter::cluster_builder(urls.clone())
        .timeout(Duration::from_secs(2))
        .build()
        .await
        .expect("valid URLs");
    match probe.ping().await {
        Ok(_) => Some(urls),
        Err(error) => {
            report::skip(
                CLUSTER,
                &format!("{CLUSTER_VAR} does not answer PING: {error}"),
            );
            None
        }
    }
}

/// `redis-cli -u URL ARGS…`, its output trimmed.
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// `tasks` tasks per limiter calling `check` on one key as fast as they
/// can for `run`; returns (allowed, errors, elapsed from the first call).
async fn hammer(
    limiters: &[RedisRateLimiter],
    key: &RateLimitKey,
    quota: Quota,
    tasks: usize,
    run: Duration,
) -> (u64, u64, Duration) {
    let allowed = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + run;
    let mut handles = Vec::new();
    for limiter in limiters {
        for _ in 0..tasks {
            let (limiter, key) = (limiter.clone(), key.clone());
            let (allowed, errors) = (Arc::clone(&allowed), Arc::clone(&errors));
            handles.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    match limiter.check(&key, &quota, NonZeroU32::MIN).await {
                        Ok(d) if d.allowed => {
                            allowed.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(_) => {}
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
    }
    for handle in handles {
        handle.await.expect("load task");
    }
    let elapsed = started.elapsed();
    (
        allowed.load(Ordering::Relaxed),
        errors.load(Ordering::Relaxed),
        elapsed,
    )
}

/// Two limiters on separate connections enforce one limit: over the run the
/// total allowed is the burst plus one unit per emission interval, within 1 %.
async fn assert_one_global_limit(suite: &str, a: RedisRateLimiter, b: RedisRateLimiter) {
    let quota = quota(1_000, Duration::from_secs(2));
    let key = key("global");
    let (allowed, errors, elapsed) = hammer(&[a, b], &key, quota, 16, Duration::from_secs(3)).await;
    assert_eq!(errors, 0, "{suite}: calls failed under load");
    // Every allowed decision happened within `elapsed` of server time after
    // the first: at most the burst plus elapsed / T.
    let t = quota.emission_interval().as_secs_f64();
    let theoretical = 1_000.0 + (elapsed.as_secs_f64() / t).floor();
    #[expect(clippy::cast_precision_loss, reason = "a few thousand")]
    let ratio = allowed as f64 / theoretical;
    eprintln!(
        "{suite}: {allowed} allowed in {elapsed:?} by two instances; theoretical {theoretical} \
         (ratio {ratio:.4})"
    );
    assert!(
        allowed as f64 <= theoretical + 1.0,
        "{suite}: the shared limit let too much through"
    );
    assert!(
        ratio >= 0.99,
        "{suite}: allowed {allowed} is more than 1 % under {theoretical}"
    );
}

// --- GCRA on Redis ---------------------------------------------------------------

#[tokio::test]
async fn gcra_on_redis_bursts_the_limit_then_denies_for_one_interval() {
    let Some(url) = standalone_url().await else {
        return;
    };
    let limiter = limiter(&url, &prefix()).await;
    let quota = quota(10, Duration::from_secs(1));
    let key = key("burst");
    let started = Instant::now();
    for expected in (0..10).rev() {
        let d = limiter
            .check(&key, &quota, cost(1))
            .await
            .expect("decision");
        assert!(d.allowed);
        assert_eq!(d.limit, 10);
        assert_eq!(d.remaining, expected);
    }
    let denied = limiter
        .check(&key, &quota, cost(1))
        .await
        .expect("decision");
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_millis(100),
        "too slow to test: {elapsed:?}"
    );
    assert!(!denied.allowed);
    assert_eq!(denied.remaining, 0);
    // retry_after is T = 100 ms less the real time that passed since the burst.
    let retry = denied.retry_after.expect("retry_after");
    assert!(retry <= Duration::from_millis(100), "{retry:?}");
    assert!(retry + elapsed >= Duration::from_millis(100), "{retry:?}");
    assert!(denied.reset_after <= Duration::from_secs(1));
    assert!(denied.reset_after + elapsed >= Duration::from_secs(1));
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

#[tokio::test]
async fn a_cost_takes_that_many_units_and_a_cost_above_the_limit_never_passes() {
    let Some(url) = standalone_url().await else {
        return;
    };
    let limiter = limiter(&url, &prefix()).await;
    let quota = quota(10, Duration::from_secs(10));
    let key = key("cost");
    let d = limiter
        .check(&key, &quota, cost(4))
        .await
        .expect("decision");
    assert!(d.allowed);
    assert_eq!(d.remaining, 6);
    // 7 more would need 1 s (one interval) of replenishment.
    let d = limiter
        .check(&key, &quota, cost(7))
        .await
        .expect("decision");
    assert!(!d.allowed);
    assert_eq!(d.remaining, 6);
    let retry = d.retry_after.expect("retry_after");
    assert!(
        retry <= Duration::from_secs(1) && retry > Duration::from_millis(900),
        "{retry:?}"
    );
    // Denied requests took nothing: 6 still pass.
    let d = limiter
        .check(&key, &quota, cost(6))
        .await
        .expect("decision");
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);
    let d = limiter
        .check(&key, &quota, cost(11))
        .await
        .expect("decision");
    assert!(!d.allowed);
    assert_eq!(d.retry_after, Some(d.reset_after));
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

#[tokio::test]
async fn peek_answers_like_check_without_consuming() {
    let Some(url) = standalone_url().await else {
        return;
    };
    let limiter = limiter(&url, &prefix()).await;
    let quota = quota(3, Duration::from_secs(60));
    let key = key("peek");
    for _ in 0..5 {
        let d = limiter.peek(&key, &quota, cost(2)).await.expect("decision");
        assert!(d.allowed);
        assert_eq!(d.remaining, 1);
    }
    let redis_key = limiter.redis_key(&key);
    assert_eq!(
        redis_cli(&url, &["EXISTS", &redis_key]),
        "0",
        "peek stored state"
    );
    let d = limiter
        .check(&key, &quota, cost(2))
        .await
        .expect("decision");
    assert!(d.allowed);
    assert_eq!(d.remaining, 1);
    let d = limiter.peek(&key, &quota, cost(2)).await.expect("decision");
    assert!(!d.allowed);
    assert!(
        limiter
            .check(&key, &quota, cost(1))
            .await
            .expect("decision")
            .allowed
    );
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

#[tokio::test]
async fn idle_keys_expire_at_their_theoretical_arrival_time() {
    let Some(url) = standalone_url().await else {
        return;
    };
    let limiter = limiter(&url, &prefix()).await;
    let key = key("expiry");
    let d = limiter
        .check(&key, &quota(4, Duration::from_secs(2)), cost(3))
        .await
        .expect("decision");
    assert!(d.allowed);
    // 3 units of 500 ms: the key lives 1.5 s.
    let ttl: u64 = redis_cli(&url, &["PTTL", &limiter.redis_key(&key)])
        .parse()
        .expect("PTTL is a number");
    assert!((1_300..=1_500).contains(&ttl), "PTTL {ttl}");
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_redis_enforce_one_global_limit() {
    let Some(url) = standalone_url().await else {
        return;
    };
    let prefix = prefix();
    let a = limiter(&url, &prefix).await;
    let b = limiter(&url, &prefix).await;
    assert_one_global_limit(STANDALONE, a, b).await;
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn noscript_after_script_flush_reloads_the_script_transparently() {
    let Some(url) = standalone_url().await else {
        return;
    };
    let limiter = limiter(&url, &prefix()).await;
    let quota = quota(1_000_000, Duration::from_secs(1));
    let key = key("noscript");
    assert!(
        limiter
            .check(&key, &quota, cost(1))
            .await
            .expect("decision")
            .allowed
    );
    let sha = limiter.script_sha().to_owned();
    assert_eq!(redis_cli(&url, &["SCRIPT", "EXISTS", &sha]), "1");

    // Flush in the middle of a concurrent run: no call may fail.
    let load = {
        let limiter = limiter.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut decided = 0_u32;
            let deadline = Instant::now() + Duration::from_millis(600);
            while Instant::now() < deadline {
                limiter
                    .check(&key, &quota, cost(1))
                    .await
                    .expect("no error across SCRIPT FLUSH");
                decided += 1;
            }
            decided
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    redis_cli(&url, &["SCRIPT", "FLUSH"]);
    let decided = load.await.expect("load task");
    assert!(decided > 10, "only {decided} decisions");
    assert_eq!(
        redis_cli(&url, &["SCRIPT", "EXISTS", &sha]),
        "1",
        "the script was not reloaded"
    );
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

#[tokio::test]
async fn health_reports_up_with_latency_and_down_when_refused() {
    let Some(url) = standalone_url().await else {
        return;
    };
    let up = limiter(&url, &prefix()).await;
    let report_up = up.health_check().check().await;
    assert_eq!(report_up.status, HealthStatus::Up);
    assert!(report_up.latency < Duration::from_secs(1));
    let down = RedisRateLimiter::builder(format!("redis://127.0.0.1:{}", free_port()))
        .build()
        .await
        .expect("valid URL");
    let report_down = down.health_check().check().await;
    assert_eq!(report_down.status, HealthStatus::Down);
    let detail = report_down.detail.expect("a detail");
    assert!(
        !detail.contains("redis://"),
        "detail leaks the URL: {detail}"
    );
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

// --- failure policies ----------------------------------------------------------------

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder("redis")
        .count_window(10)
        .minimum_calls(5)
        .failure_rate_threshold(50.0)
        .wait_in_open(Duration::from_millis(500))
        .permitted_calls_in_half_open(3)
        .build()
        .expect("valid breaker")
}

fn local() -> Arc<LocalRateLimiter> {
    Arc::new(LocalRateLimiter::new(Arc::new(
        docaiche::core::clock::SystemClock::new(),
    )))
}

/// 200 decisions through `limiter` on a dead primary: (allowed count,
/// slowest decision, median decision once the breaker is open).
async fn decide_200(limiter: &ResilientRateLimiter, quota: Quota) -> (u32, Duration, Duration) {
    let key = key("dead");
    let mut allowed = 0;
    let mut slowest = Duration::ZERO;
    let mut open = Vec::new();
    for _ in 0..200 {
        let breaker_open =
            limiter.metrics().breaker.state == docaiche::core::resilience::CircuitState::Open;
        let started = Instant::now();
        let d = limiter
            .check(&key, &quota, cost(1))
            .await
            .expect("a decision, never an error");
        let took = started.elapsed();
        slowest = slowest.max(took);
        if breaker_open {
            open.push(took);
        }
        allowed += u32::from(d.allowed);
    }
    open.sort();
    let median = open.get(open.len() / 2).copied().unwrap_or(Duration::MAX);
    (allowed, slowest, median)
}

#[tokio::test]
async fn a_refusing_redis_follows_each_failure_policy_at_once() {
    // Needs no server, but belongs to the suite: report with it.
    let Some(url) = standalone_url().await else {
        return;
    };
    let dead = format!("redis://127.0.0.1:{}", free_port());
    let quota = quota(10, Duration::from_secs(60));
    let policies = [
        ("fail_closed", FailurePolicy::FailClosed, 0),
        ("fail_open", FailurePolicy::FailOpen, 200),
        (
            "fallback",
            FailurePolicy::Fallback {
                local: local(),
                share: 0.5,
            },
            5,
        ),
    ];
    for (name, policy, expected_allowed) in policies {
        let primary = RedisRateLimiter::builder(dead.clone())
            .build()
            .await
            .expect("valid URL");
        let limiter = ResilientRateLimiter::builder(Arc::new(primary))
            .policy(policy)
            .circuit_breaker(breaker())
            .build()
            .expect("valid limiter");
        let (allowed, slowest, median_open) = decide_200(&limiter, quota).await;
        eprintln!(
            "refused, {name}: {allowed} of 200 allowed, slowest {slowest:?}, \
             median with the breaker open {median_open:?}"
        );
        assert_eq!(allowed, expected_allowed, "{name}");
        assert!(slowest < Duration::from_millis(100), "{name}: {slowest:?}");
        assert!(
            median_open < Duration::from_micros(200),
            "{name}: an open breaker should cost microseconds, took {median_open:?}"
        );
        let m = limiter.metrics();
        assert_eq!(m.switches_to_policy, 1, "{name}: one switch, one log line");
        assert_eq!(m.primary, 0);
        assert!(m.breaker.transitions_to_open >= 1);
    }
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
}

#[tokio::test]
async fn a_hung_redis_costs_at_most_the_call_timeout() {
    let Some(url) = standalone_url().await else {
        return;
    };
    // A listener that never answers: connections sit in its backlog.
    let silent = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr: SocketAddr = silent.local_addr().expect("address");
    let primary = RedisRateLimiter::builder(format!("redis://{addr}"))
        .timeout(Duration::from_millis(50))
        .build()
        .await
        .expect("valid URL");
    let quota = quota(10, Duration::from_secs(60));
    let key = key("hung");
    let started = Instant::now();
    let err = primary
        .check(&key, &quota, cost(1))
        .await
        .expect_err("no answer");
    let took = started.elapsed();
    assert!(err.is_dependency_failure(), "{err}");
    assert!(took < Duration::from_millis(100), "{took:?}");
    let limiter = ResilientRateLimiter::builder(Arc::new(primary))
        .policy(FailurePolicy::Fallback {
            local: local(),
            share: 1.0,
        })
        .circuit_breaker(breaker())
        .build()
        .expect("valid limiter");
    let (allowed, slowest, median_open) = decide_200(&limiter, quota).await;
    eprintln!("hung: slowest {slowest:?}, median with the breaker open {median_open:?}");
    assert_eq!(allowed, 10);
    assert!(slowest < Duration::from_millis(100), "{slowest:?}");
    assert!(median_open < Duration::from_micros(200), "{median_open:?}");
    drop(silent);
    report::mark_ran(STANDALONE, &format!("redis limiter at {url}"));
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

async fn wait_until_up(url: &str) -> bool {
    let probe = RedisRateLimiter::builder(url)
        .build()
        .await
        .expect("valid URL");
    for _ in 0..100 {
        if probe.ping().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_redis_takes_decisions_back_within_five_seconds() {
    let Some(suite_url) = standalone_url().await else {
        return;
    };
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let mut server = match Server::start(port) {
        Ok(server) => server,
        Err(error) => {
            report::skip(STANDALONE, &format!("cannot run redis-server: {error}"));
            return;
        }
    };
    assert!(
        wait_until_up(&url).await,
        "redis-server on {port} did not start"
    );
    let primary = RedisRateLimiter::builder(url.clone())
        .build()
        .await
        .expect("valid URL");
    let limiter = ResilientRateLimiter::builder(Arc::new(primary))
        .policy(FailurePolicy::Fallback {
            local: local(),
            share: 0.5,
        })
        .circuit_breaker(breaker())
        .build()
        .expect("valid limiter");
    let quota = quota(1_000, Duration::from_secs(1));
    let key = key("restart");
    let mut slowest = Duration::ZERO;
    let mut step = async |limiter: &ResilientRateLimiter| {
        let started = Instant::now();
        limiter
            .check(&key, &quota, cost(1))
            .await
            .expect("a decision, never an error");
        slowest = slowest.max(started.elapsed());
        tokio::time::sleep(Duration::from_millis(5)).await;
    };

    for _ in 0..20 {
        step(&limiter).await;
    }
    assert_eq!(limiter.metrics().current, DecisionSource::Primary);

    server.kill();
    for _ in 0..100 {
        step(&limiter).await;
    }
    let m = limiter.metrics();
    assert_eq!(m.current, DecisionSource::Fallback);
    assert!(m.fallback > 0);
    assert_eq!(m.switches_to_policy, 1);

    let mut server = Server::start(port).expect("redis-server restarts");
    let restarted = Instant::now();
    let mut back = None;
    while restarted.elapsed() < Duration::from_secs(10) {
        step(&limiter).await;
        if limiter.metrics().current == DecisionSource::Primary {
            back = Some(restarted.elapsed());
            break;
        }
    }
    server.kill();
    let back = back.expect("never back on Redis within 10 s");
    let m = limiter.metrics();
    eprintln!(
        "restart: back on redis {back:?} after the restart; slowest decision {slowest:?}; \
         metrics {m:?}"
    );
    assert!(back < Duration::from_secs(5), "{back:?}");
    assert!(slowest < Duration::from_millis(100), "{slowest:?}");
    assert_eq!(m.switches_to_primary, 1);
    report::mark_ran(STANDALONE, &format!("redis limiter at {suite_url}"));
}

// --- Redis Cluster ---------------------------------------------------------------------

async fn cluster_limiter(urls: &[String], prefix: &str) -> RedisRateLimiter {
    RedisRateLimiter::cluster_builder(urls.to_vec())
        .key_prefix(prefix)
        .timeout(Duration::from_secs(1))
        .build()
        .await
        .expect("valid limiter")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_a_cluster_enforce_one_global_limit() {
    let Some(urls) = cluster_urls().await else {
        return;
    };
    let prefix = prefix();
    let a = cluster_limiter(&urls, &prefix).await;
    let b = cluster_limiter(&urls, &prefix).await;
    assert!(a.is_cluster());
    assert_one_global_limit(CLUSTER, a, b).await;
    report::mark_ran(
        CLUSTER,
        &format!("{} node cluster at {}", urls.len(), urls.join(",")),
    );
}

#[tokio::test]
async fn cluster_keys_spread_over_the_nodes_by_their_hash_tag() {
    let Some(urls) = cluster_urls().await else {
        return;
    };
    let prefix = prefix();
    let limiter = cluster_limiter(&urls, &prefix).await;
    let quota = quota(5, Duration::from_secs(60));
    let mut keys = Vec::new();
    for i in 0..30 {
        let key = key(&format!("spread{i}"));
        assert!(
            limiter
                .check(&key, &quota, cost(1))
                .await
                .expect("decision")
                .allowed
        );
        keys.push(key);
    }
    // Each stored key hashes as its tag alone: anything derived from the
    // limiter key shares its slot.
    for key in keys.iter().take(5) {
        assert_eq!(
            redis_cli(&urls[0], &["CLUSTER", "KEYSLOT", &limiter.redis_key(key)]),
            redis_cli(&urls[0], &["CLUSTER", "KEYSLOT", key.as_str()]),
        );
    }
    // Every node holds some of the keys (30 random tags over 3 nodes).
    let pattern = format!("{prefix}:*");
    let mut per_node = BTreeMap::new();
    let mut found = BTreeSet::new();
    for url in &urls {
        let listed = redis_cli(url, &["--scan", "--pattern", &pattern]);
        let here: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
        per_node.insert(url.clone(), here.len());
        found.extend(here.into_iter().map(str::to_owned));
    }
    eprintln!("cluster: keys per node {per_node:?}");
    assert_eq!(found.len(), 30, "every key stored once");
    assert!(
        per_node.values().all(|&n| n > 0),
        "keys did not spread: {per_node:?}"
    );
    report::mark_ran(
        CLUSTER,
        &format!("{} node cluster at {}", urls.len(), urls.join(",")),
    );
}
