use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tower::{ServiceExt, service_fn};
use tower_layer::Layer as _;

use super::*;
use crate::clock::ManualClock;

const WAIT: Duration = Duration::from_secs(30);

fn outage() -> Error {
    Error::unavailable("db", std::io::Error::other("connection refused"))
}

/// A count window of 10, 5 minimum calls, 50 % thresholds, slow at 1 s,
/// 30 s open, 2 trials.
fn breaker(clock: &ManualClock) -> CircuitBreaker {
    builder(clock).build().expect("valid configuration")
}

fn builder(clock: &ManualClock) -> CircuitBreakerBuilder {
    CircuitBreaker::builder("db")
        .count_window(10)
        .minimum_calls(5)
        .failure_rate_threshold(50.0)
        .slow_call_rate_threshold(50.0)
        .slow_call_duration(Duration::from_secs(1))
        .wait_in_open(WAIT)
        .permitted_calls_in_half_open(2)
        .clock(Arc::new(clock.clone()))
}

fn succeed(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("admitted").success();
}

fn fail(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("admitted").failure();
}

fn open(breaker: &CircuitBreaker) {
    for _ in 0..5 {
        fail(breaker);
    }
    assert_eq!(breaker.state(), CircuitState::Open);
}

fn assert_circuit_open(result: Result<impl fmt::Debug>, expected_retry_after: Duration) {
    match result {
        Err(Error::CircuitOpen {
            dependency,
            retry_after,
        }) => {
            assert_eq!(dependency, "db");
            assert_eq!(retry_after, expected_retry_after);
        }
        other => panic!("expected CircuitOpen, got {other:?}"),
    }
}

#[test]
fn stays_closed_below_minimum_calls() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    for _ in 0..4 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
    assert_eq!(breaker.metrics().failures, 4);
    assert_eq!(breaker.metrics().failure_rate, 100.0);
}

#[test]
fn opens_when_failure_rate_reaches_threshold() {
    let clock = ManualClock::new();
    let breaker = builder(&clock).minimum_calls(10).build().expect("valid");
    for _ in 0..5 {
        succeed(&breaker);
    }
    for _ in 0..4 {
        fail(&breaker);
    }
    // 4 failures in 9 calls: below the minimum.
    assert_eq!(breaker.state(), CircuitState::Closed);
    succeed(&breaker);
    // 4 of 10 = 40 %: below the threshold.
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    // The oldest success left the window: 5 of 10 = 50 %, exactly the threshold.
    assert_eq!(breaker.state(), CircuitState::Open);
    let metrics = breaker.metrics();
    assert_eq!(metrics.transitions_to_open, 1);
    assert_eq!((metrics.calls, metrics.failures), (10, 5));
}

#[tokio::test]
async fn rejects_while_open_with_remaining_wait_as_retry_after() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    open(&breaker);
    assert_circuit_open(breaker.try_acquire(), WAIT);

    clock.advance(Duration::from_secs(12));
    let ran = AtomicUsize::new(0);
    let result = breaker
        .call(|| async {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .await;
    assert_circuit_open(result, Duration::from_secs(18));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "the operation must not run");
    assert_eq!(breaker.metrics().rejected_calls, 2);
}

#[test]
fn becomes_half_open_once_the_wait_has_elapsed() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    open(&breaker);
    clock.advance(WAIT - Duration::from_nanos(1));
    assert_eq!(breaker.state(), CircuitState::Open);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
}

#[test]
fn half_open_admits_exactly_the_permitted_calls_and_rejects_one_more() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    open(&breaker);
    clock.advance(WAIT);
    let first = breaker.try_acquire().expect("first trial");
    let second = breaker.try_acquire().expect("second trial");
    assert_circuit_open(breaker.try_acquire(), WAIT);
    drop((first, second));
}

#[test]
fn closes_after_successful_trials_with_a_fresh_window() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    open(&breaker);
    clock.advance(WAIT);
    let first = breaker.try_acquire().expect("first trial");
    let second = breaker.try_acquire().expect("second trial");
    first.success();
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    second.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
    let metrics = breaker.metrics();
    assert_eq!((metrics.calls, metrics.failures), (0, 0));
    // The fresh window needs the minimum again before opening.
    for _ in 0..4 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn reopens_after_failed_trials() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    open(&breaker);
    clock.advance(WAIT);
    succeed(&breaker);
    fail(&breaker);
    // 1 of 2 trials failed: 50 % reaches the threshold.
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(breaker.metrics().transitions_to_open, 2);
    assert_circuit_open(breaker.try_acquire(), WAIT);
}

#[tokio::test]
async fn opens_when_slow_call_rate_reaches_threshold() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    for i in 0..5 {
        let clock = clock.clone();
        breaker
            .call(|| async move {
                // Three of five calls wait exactly the slow-call duration.
                tokio::task::yield_now().await;
                if i % 2 == 0 {
                    clock.advance(Duration::from_secs(1));
                }
                Ok(())
            })
            .await
            .expect("the call itself succeeds");
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, CircuitState::Open);
    assert_eq!((metrics.failures, metrics.slow_calls), (0, 3));
}

#[tokio::test]
async fn errors_that_are_not_dependency_failures_count_as_successes() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    for _ in 0..10 {
        let result = breaker
            .call(|| async { Err::<(), _>(Error::not_found("document")) })
            .await;
        assert!(matches!(result, Err(Error::NotFound { .. })));
        let result = breaker
            .call(|| async { Err::<(), _>(Error::invalid_input("bad page")) })
            .await;
        assert!(matches!(result, Err(Error::InvalidInput { .. })));
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, CircuitState::Closed);
    assert_eq!((metrics.calls, metrics.failures), (10, 0));
}

#[test]
fn time_window_forgets_old_failures_as_time_advances() {
    let clock = ManualClock::new();
    let breaker = builder(&clock)
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(4)
        .build()
        .expect("valid");
    for _ in 0..3 {
        fail(&breaker);
    }
    clock.advance(Duration::from_secs(11));
    fail(&breaker);
    for _ in 0..3 {
        succeed(&breaker);
    }
    // Had the first three failures been remembered: 4 of 7 ≥ 50 %.
    let metrics = breaker.metrics();
    assert_eq!(metrics.state, CircuitState::Closed);
    assert_eq!((metrics.calls, metrics.failures), (4, 1));
    // Within the window, failures do accumulate.
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[test]
fn dropped_permit_counts_nothing_and_frees_its_half_open_slot() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    open(&breaker);
    clock.advance(WAIT);
    let first = breaker.try_acquire().expect("first trial");
    let second = breaker.try_acquire().expect("second trial");
    assert!(breaker.try_acquire().is_err());
    drop(first);
    assert_eq!(breaker.metrics().calls, 0);
    let third = breaker
        .try_acquire()
        .expect("the dropped permit freed a slot");
    second.success();
    third.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test]
async fn dropped_call_future_frees_its_half_open_slot() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    open(&breaker);
    clock.advance(WAIT);
    let mut pending = Box::pin(breaker.call(std::future::pending::<Result<()>>));
    assert!(futures_util::poll!(pending.as_mut()).is_pending());
    let other = breaker.try_acquire().expect("second trial");
    assert!(breaker.try_acquire().is_err());
    drop(pending);
    breaker.try_acquire().expect("slot freed").success();
    other.success();
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[test]
fn outcomes_from_before_a_transition_are_ignored() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    let stale = breaker.try_acquire().expect("closed");
    open(&breaker);
    clock.advance(WAIT);
    stale.success();
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    assert_eq!(breaker.metrics().calls, 0);
}

#[test]
fn rejects_invalid_configuration() {
    let clock = ManualClock::new();
    let cases = [
        builder(&clock).failure_rate_threshold(0.0),
        builder(&clock).failure_rate_threshold(100.5),
        builder(&clock).slow_call_rate_threshold(f64::NAN),
        builder(&clock).count_window(0),
        builder(&clock).count_window(4),
        builder(&clock).minimum_calls(0),
        builder(&clock).permitted_calls_in_half_open(0),
        builder(&clock).wait_in_open(Duration::ZERO),
        builder(&clock).slow_call_duration(Duration::ZERO),
        builder(&clock).time_window(Duration::from_secs(1), 0),
        builder(&clock).time_window(Duration::from_nanos(5), 10),
    ];
    for case in cases {
        let err = case.build().expect_err("invalid configuration");
        assert!(matches!(err, Error::Misconfigured { .. }), "{err}");
    }
}

#[tokio::test]
async fn layer_rejects_with_circuit_open_without_calling_the_inner_service() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    let calls = Arc::new(AtomicUsize::new(0));
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(service_fn({
        let calls = Arc::clone(&calls);
        move |fail: bool| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move { if fail { Err(outage()) } else { Ok("ok") } }
        }
    }));
    assert_eq!(service.clone().oneshot(false).await.expect("closed"), "ok");
    // With one success first, the fourth failure makes 4 of 5 calls.
    for _ in 0..4 {
        let err = service.clone().oneshot(true).await.expect_err("outage");
        assert!(matches!(err, Error::Unavailable { .. }));
    }
    assert_eq!(breaker.state(), CircuitState::Open);
    assert_eq!(calls.load(Ordering::SeqCst), 5);

    let err = service.clone().oneshot(false).await.expect_err("open");
    assert!(matches!(err, Error::CircuitOpen { .. }), "{err}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        5,
        "the inner service was called"
    );
}

#[tokio::test]
async fn a_call_is_timed_from_its_first_wait() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    // Time spent inside the first poll is not counted...
    let blocking = clock.clone();
    breaker
        .call(|| async move {
            blocking.advance(Duration::from_secs(5));
            Ok(())
        })
        .await
        .expect("succeeds");
    assert_eq!(breaker.metrics().slow_calls, 0);
    // ...time spent waiting is.
    let waiting = clock.clone();
    breaker
        .call(|| async move {
            tokio::task::yield_now().await;
            waiting.advance(Duration::from_secs(1));
            Ok(())
        })
        .await
        .expect("succeeds");
    assert_eq!(breaker.metrics().slow_calls, 1);
}

#[test]
fn a_permit_is_timed_from_its_acquisition() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    let permit = breaker.try_acquire().expect("closed");
    clock.advance(Duration::from_secs(1));
    permit.success();
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.calls, metrics.failures, metrics.slow_calls),
        (1, 0, 1)
    );
}

#[tokio::test]
async fn layer_counts_slow_calls() {
    let clock = ManualClock::new();
    let breaker = breaker(&clock);
    let service = CircuitBreakerLayer::new(breaker.clone()).layer(service_fn({
        let clock = clock.clone();
        move |()| {
            let clock = clock.clone();
            async move {
                tokio::task::yield_now().await;
                clock.advance(Duration::from_secs(2));
                Ok::<_, Error>(())
            }
        }
    }));
    for _ in 0..5 {
        service.clone().oneshot(()).await.expect("succeeds");
    }
    let metrics = breaker.metrics();
    assert_eq!(metrics.slow_calls, 5);
    assert_eq!(metrics.state, CircuitState::Open);
}
