use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tower::{ServiceExt, service_fn};
use tower_layer::Layer as _;

use super::*;
use crate::clock::ManualClock;

fn outage() -> Error {
    Error::unavailable("db", std::io::Error::other("connection reset"))
}

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .max_attempts(max_attempts)
        .base_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(200))
        .build()
        .expect("valid policy")
}

/// A retry on a fresh auto-advancing clock (waits return at once and are
/// recorded).
fn retry(policy: RetryPolicy) -> (Retry, ManualClock) {
    let clock = ManualClock::new().with_auto_advance();
    (Retry::new(policy, Arc::new(clock.clone())), clock)
}

/// Calls `retry` with an operation that fails `failures` times with `error`
/// and then succeeds; returns the result and the number of attempts.
async fn run(retry: &Retry, failures: u32, error: Error) -> (Result<u32>, u32) {
    let attempts = AtomicU32::new(0);
    let result = retry
        .call(|| {
            let attempt = attempts.fetch_add(1, Ordering::SeqCst) + 1;
            let error = error.clone();
            async move {
                if attempt <= failures {
                    Err(error)
                } else {
                    Ok(attempt)
                }
            }
        })
        .await;
    (result, attempts.load(Ordering::SeqCst))
}

#[test]
fn caps_grow_exponentially_up_to_max_delay() {
    let policy = policy(10);
    let caps: Vec<u64> = (0..8)
        .map(|n| u64::try_from(policy.backoff_cap(n).as_millis()).expect("small"))
        .collect();
    assert_eq!(caps, [10, 20, 40, 80, 160, 200, 200, 200]);
    assert_eq!(policy.backoff_cap(u32::MAX), Duration::from_millis(200));
}

#[tokio::test]
async fn every_wait_is_within_its_cap_and_no_cap_exceeds_max_delay() {
    let policy = policy(8);
    for _ in 0..200 {
        let (retry, clock) = retry(policy);
        let (result, attempts) = run(&retry, u32::MAX, outage()).await;
        assert!(result.is_err());
        assert_eq!(attempts, 8);
        let sleeps = clock.sleeps();
        assert_eq!(sleeps.len(), 7, "one wait between each pair of attempts");
        for (n, sleep) in (0..).zip(sleeps) {
            let cap = policy.backoff_cap(n);
            assert!(
                cap <= Duration::from_millis(200),
                "cap {cap:?} of retry {n}"
            );
            assert!(
                sleep <= cap,
                "wait {sleep:?} above cap {cap:?} of retry {n}"
            );
        }
    }
}

#[test]
fn jittered_waits_average_about_half_the_cap() {
    let policy = policy(8);
    let cap = policy.backoff_cap(2).as_secs_f64();
    let samples: Vec<f64> = (0..5_000)
        .map(|_| policy.backoff(2).as_secs_f64() / cap)
        .collect();
    let mean = samples.iter().sum::<f64>() / 5_000.0;
    // Standard error of the mean of U(0, 1) over 5000 draws is about 0.004.
    assert!((0.46..=0.54).contains(&mean), "mean {mean} of cap");
    let min = samples.iter().copied().fold(f64::MAX, f64::min);
    let max = samples.iter().copied().fold(f64::MIN, f64::max);
    assert!(min < 0.05 && max > 0.95, "spread [{min}, {max}] of cap");
}

#[tokio::test]
async fn errors_that_are_not_retryable_are_not_retried() {
    let (retry, clock) = retry(policy(5));
    let refusals = [
        Error::not_found("document"),
        Error::invalid_input("bad page range"),
        Error::internal("bug"),
        Error::CircuitOpen {
            dependency: "db".into(),
            retry_after: Duration::from_secs(1),
        },
    ];
    for error in refusals {
        let (result, attempts) = run(&retry, 1, error.clone()).await;
        assert_eq!(result.expect_err("not retried").code(), error.code());
        assert_eq!(attempts, 1, "{error} was retried");
    }
    assert!(clock.sleeps().is_empty());
}

#[tokio::test]
async fn stops_at_max_attempts_with_the_last_error() {
    let (retry, clock) = retry(policy(3));
    let (result, attempts) = run(&retry, 10, outage()).await;
    assert!(matches!(result, Err(Error::Unavailable { .. })));
    assert_eq!(attempts, 3);
    assert_eq!(clock.sleeps().len(), 2);
}

#[tokio::test]
async fn returns_the_value_when_the_kth_attempt_succeeds() {
    let (retry, clock) = retry(policy(5));
    let timeout = Error::Timeout {
        operation: "query".into(),
        after: Duration::from_secs(1),
    };
    let (result, attempts) = run(&retry, 3, timeout).await;
    assert_eq!(result.expect("fourth attempt succeeds"), 4);
    assert_eq!(attempts, 4);
    assert_eq!(clock.sleeps().len(), 3);
}

#[tokio::test]
async fn budget_exhaustion_stops_retries() {
    let clock = ManualClock::new().with_auto_advance();
    let budget = RetryBudget::builder()
        .window(Duration::from_secs(10))
        .min_retries_per_window(2)
        .retry_ratio(0.0)
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid budget");
    let retry = Retry::new(policy(5), Arc::new(clock.clone())).with_budget(budget.clone());

    // The reserve pays for two retries, then nothing is left.
    let (_, attempts) = run(&retry, u32::MAX, outage()).await;
    assert_eq!(attempts, 3);
    let (_, attempts) = run(&retry, u32::MAX, outage()).await;
    assert_eq!(attempts, 1, "an empty budget must not retry");
    assert_eq!(budget.available(), 0);

    // Once the window has passed, the reserve is back.
    clock.advance(Duration::from_secs(10));
    assert_eq!(budget.available(), 2);
    let (result, attempts) = run(&retry, 1, outage()).await;
    assert_eq!((result.expect("second attempt succeeds"), attempts), (2, 2));
}

#[test]
fn budget_earns_retries_in_proportion_to_calls() {
    let clock = ManualClock::new();
    let budget = RetryBudget::builder()
        .min_retries_per_window(0)
        .retry_ratio(0.2)
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("valid budget");
    for _ in 0..9 {
        budget.deposit();
    }
    assert!(budget.try_withdraw());
    assert!(
        !budget.try_withdraw(),
        "9 calls × 0.2 is one retry, not two"
    );
    budget.deposit();
    assert!(budget.try_withdraw());
    // Deposits expire with the window.
    for _ in 0..5 {
        budget.deposit();
    }
    clock.advance(Duration::from_secs(10));
    assert!(!budget.try_withdraw());
}

#[test]
fn rejects_invalid_configuration() {
    let invalid_policies = [
        RetryPolicy::builder().max_attempts(0).build(),
        RetryPolicy::builder()
            .base_delay(Duration::from_secs(20))
            .max_delay(Duration::from_secs(10))
            .build(),
        RetryPolicy::builder().multiplier(0.5).build(),
        RetryPolicy::builder().multiplier(f64::INFINITY).build(),
    ];
    for result in invalid_policies {
        assert!(matches!(result, Err(Error::Misconfigured { .. })));
    }
    let invalid_budgets = [
        RetryBudget::builder()
            .window(Duration::from_nanos(9))
            .build(),
        RetryBudget::builder().retry_ratio(-0.1).build(),
        RetryBudget::builder().retry_ratio(f64::NAN).build(),
    ];
    for result in invalid_budgets {
        assert!(matches!(result, Err(Error::Misconfigured { .. })));
    }
}

#[tokio::test]
async fn layer_retries_a_clone_of_the_request() {
    let (retry, clock) = retry(policy(5));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let service = RetryLayer::new(retry).layer(service_fn({
        let seen = Arc::clone(&seen);
        move |document: String| {
            let attempt = {
                let mut seen = seen.lock().expect("not poisoned");
                seen.push(document.clone());
                seen.len()
            };
            async move {
                if attempt < 3 {
                    Err(outage())
                } else {
                    Ok(format!("{document} extracted"))
                }
            }
        }
    }));
    let response = service
        .oneshot("doc-1".to_owned())
        .await
        .expect("third attempt");
    assert_eq!(response, "doc-1 extracted");
    assert_eq!(
        *seen.lock().expect("not poisoned"),
        ["doc-1", "doc-1", "doc-1"]
    );
    assert_eq!(clock.sleeps().len(), 2);
}

#[tokio::test]
async fn layer_does_not_retry_errors_that_are_not_retryable() {
    let (retry, _clock) = retry(policy(5));
    let calls = Arc::new(AtomicU32::new(0));
    let service = RetryLayer::new(retry).layer(service_fn({
        let calls = Arc::clone(&calls);
        move |()| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err::<(), _>(Error::not_found("document")) }
        }
    }));
    let err = service.oneshot(()).await.expect_err("not found");
    assert!(matches!(err, Error::NotFound { .. }));
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
