use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures_util::future::join_all;
use tower::{ServiceExt, service_fn};
use tower_layer::Layer as _;

use super::*;
use crate::clock::{Clock, ManualClock};

const SECOND: Duration = Duration::from_secs(1);

/// Yield until `ready` holds (other futures of the test get polled meanwhile).
async fn until(ready: impl Fn() -> bool) {
    while !ready() {
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn hundred_concurrent_callers_run_the_computation_once_and_share_its_value() {
    let group: SingleFlight<&str, u64> = SingleFlight::new();
    let clock = ManualClock::new();
    let runs = AtomicUsize::new(0);
    let compute = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        clock.sleep(SECOND).await;
        Ok(7)
    };
    let callers = join_all((0..100).map(|_| group.run("report", compute)));
    let driver = async {
        until(|| group.waiters(&"report") == 99).await;
        clock.advance(SECOND);
    };
    let (results, ()) = tokio::join!(callers, driver);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(results.into_iter().all(|r| r.expect("shared value") == 7));
    assert_eq!(group.in_flight(), 0, "the key is free again");
}

#[tokio::test]
async fn an_error_is_shared_by_every_caller() {
    let group: SingleFlight<&str, u64> = SingleFlight::new();
    let clock = ManualClock::new();
    let runs = AtomicUsize::new(0);
    let compute = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        clock.sleep(SECOND).await;
        Err(Error::unavailable("vault", std::io::Error::other("sealed")))
    };
    let callers = join_all((0..100).map(|_| group.run("secret", compute)));
    let driver = async {
        until(|| group.waiters(&"secret") == 99).await;
        clock.advance(SECOND);
    };
    let (results, ()) = tokio::join!(callers, driver);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    for result in results {
        assert!(
            matches!(result, Err(Error::Unavailable { .. })),
            "{result:?}"
        );
    }
}

#[tokio::test]
async fn a_panicking_computation_fails_its_waiters_and_does_not_wedge_the_key() {
    let group: SingleFlight<&'static str, u64> = SingleFlight::new();
    let clock = ManualClock::new();
    let leader = tokio::spawn({
        let (group, clock) = (group.clone(), clock.clone());
        async move {
            group
                .run("key", || async move {
                    clock.sleep(SECOND).await;
                    let bug = true;
                    if bug {
                        panic!("computation bug");
                    }
                    Ok(1)
                })
                .await
        }
    });
    until(|| group.in_flight() == 1).await;
    let waiter = tokio::spawn({
        let group = group.clone();
        async move { group.run("key", || async { Ok(2) }).await }
    });
    until(|| group.waiters(&"key") == 1).await;
    clock.advance(SECOND);

    let leader = leader.await.expect_err("the leader's task panicked");
    assert!(leader.is_panic());
    match waiter.await.expect("the waiter's task completes") {
        Err(Error::Internal { message, .. }) => assert_eq!(message, "computation panicked"),
        other => panic!("expected an internal error, got {other:?}"),
    }
    assert_eq!(group.in_flight(), 0);
    let later = group.run("key", || async { Ok(3) }).await;
    assert_eq!(later.expect("a fresh computation"), 3);
}

#[tokio::test]
async fn different_keys_run_independently() {
    let group: SingleFlight<u32, u32> = SingleFlight::new();
    let clock = ManualClock::new();
    let runs = AtomicUsize::new(0);
    let compute = |key: u32| {
        let (runs, clock) = (&runs, &clock);
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            clock.sleep(SECOND).await;
            Ok(key * 10)
        }
    };
    let callers = futures_util::future::join(group.run(1, compute(1)), group.run(2, compute(2)));
    let driver = async {
        until(|| group.in_flight() == 2).await;
        clock.advance(SECOND);
    };
    let ((one, two), ()) = tokio::join!(callers, driver);
    assert_eq!((one.expect("key 1"), two.expect("key 2")), (10, 20));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[test]
fn a_waiter_takes_over_when_the_leader_is_cancelled() {
    let group: SingleFlight<&str, u64> = SingleFlight::new();
    let clock = ManualClock::new();
    let runs = AtomicUsize::new(0);
    let compute = |value: u64| {
        let (runs, clock) = (&runs, &clock);
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            clock.sleep(SECOND).await;
            Ok(value)
        }
    };
    let mut cx = Context::from_waker(Waker::noop());
    let mut leader = Box::pin(group.run("key", compute(1)));
    let mut first = Box::pin(group.run("key", compute(2)));
    let mut second = Box::pin(group.run("key", compute(3)));
    assert!(leader.as_mut().poll(&mut cx).is_pending());
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert_eq!(group.waiters(&"key"), 2);

    drop(leader);
    // The first waiter polled after the cancellation leads with its own
    // computation; the other joins it.
    assert!(first.as_mut().poll(&mut cx).is_pending());
    assert!(second.as_mut().poll(&mut cx).is_pending());
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(group.waiters(&"key"), 1);

    clock.advance(SECOND);
    assert!(matches!(first.as_mut().poll(&mut cx), Poll::Ready(Ok(2))));
    assert!(matches!(second.as_mut().poll(&mut cx), Poll::Ready(Ok(2))));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    assert_eq!(group.in_flight(), 0);
}

#[test]
fn a_cancelled_leader_without_waiters_frees_the_key() {
    let group: SingleFlight<&str, u64> = SingleFlight::new();
    let mut cx = Context::from_waker(Waker::noop());
    let mut leader = Box::pin(group.run("key", std::future::pending));
    assert!(leader.as_mut().poll(&mut cx).is_pending());
    assert_eq!(group.in_flight(), 1);
    drop(leader);
    assert_eq!(group.in_flight(), 0);
}

#[tokio::test]
async fn layer_shares_one_inner_call_between_concurrent_requests() {
    let group: SingleFlight<String, String> = SingleFlight::new();
    let clock = ManualClock::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let service = SingleFlightLayer::with_group(group.clone(), |path: &String| path.clone()).layer(
        service_fn({
            let (calls, clock) = (Arc::clone(&calls), clock.clone());
            move |path: String| {
                calls.fetch_add(1, Ordering::SeqCst);
                let sleep = clock.sleep(SECOND);
                async move {
                    sleep.await;
                    Ok::<_, Error>(format!("contents of {path}"))
                }
            }
        }),
    );
    let requests = join_all((0..10).map(|_| service.clone().oneshot("/a".to_owned())));
    let driver = async {
        until(|| group.waiters(&"/a".to_owned()) == 9).await;
        clock.advance(SECOND);
    };
    let (responses, ()) = tokio::join!(requests, driver);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    for response in responses {
        assert_eq!(response.expect("shared response"), "contents of /a");
    }
}
