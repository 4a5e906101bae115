//! Failed-authentication tracking on a manual clock: back-off growth, cap
//! and expiry, the hourly ceiling, networks, bounded memory and audit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use docaiche_auth::lockout::{
    BackoffPolicy, FailedAuthTracker, FailureSubject, LockoutConfig, SubjectKind,
};
use docaiche_core::audit::AuditOutcome;
use docaiche_core::{AuthFailure, Clock, ManualClock, RequestContext, TenantId};
use docaiche_store::memory::MemoryAuditSink;

fn tracker(config: LockoutConfig) -> (FailedAuthTracker, ManualClock, Arc<MemoryAuditSink>) {
    let clock = ManualClock::new();
    let audit = Arc::new(MemoryAuditSink::new());
    let tracker = FailedAuthTracker::new(config, audit.clone())
        .unwrap()
        .with_clock(Arc::new(clock.clone()));
    (tracker, clock, audit)
}

fn alice() -> [FailureSubject; 1] {
    [FailureSubject::account(None, "alice@example.com")]
}

async fn fail(tracker: &FailedAuthTracker, subjects: &[FailureSubject]) -> Option<Duration> {
    tracker
        .record_failure(subjects, &RequestContext::new(), AuthFailure::BadCredential)
        .await
        .map(|l| l.retry_after)
}

#[tokio::test]
async fn backoff_grows_caps_and_expires() {
    let mut config = LockoutConfig::default();
    config.account = BackoffPolicy::new(3, 1000, 8);
    let (tracker, clock, _) = tracker(config);
    let who = alice();
    let mut delays = Vec::new();
    for _ in 0..8 {
        // Every attempt waits out the previous lock, as a client would.
        if let Err(lock) = tracker.check(&who) {
            clock.advance(lock.retry_after);
        }
        assert!(tracker.check(&who).is_ok(), "the lock expired by itself");
        delays.push(fail(&tracker, &who).await.map_or(0, |d| d.as_secs()));
    }
    assert_eq!(delays, [0, 0, 0, 1, 2, 4, 8, 8], "doubles, then caps");
    let lock = tracker.check(&who).unwrap_err();
    assert_eq!(lock.kind, SubjectKind::Account);
    clock.advance(Duration::from_secs(7));
    assert!(tracker.check(&who).is_err());
    clock.advance(Duration::from_secs(1));
    assert!(tracker.check(&who).is_ok());
}

#[tokio::test]
async fn failures_are_forgotten_after_an_idle_period() {
    let (tracker, clock, _) = tracker(LockoutConfig::default());
    let who = alice();
    for _ in 0..5 {
        fail(&tracker, &who).await;
    }
    clock.advance(Duration::from_secs(3600));
    assert_eq!(fail(&tracker, &who).await, None, "counting starts over");
}

/// Counts the most failures recorded in any sliding hour.
fn max_per_sliding_hour(times: &[Duration]) -> usize {
    let mut window = VecDeque::new();
    let mut max = 0;
    for &t in times {
        window.push_back(t);
        while window
            .front()
            .is_some_and(|&first| t - first >= Duration::from_secs(3600))
        {
            window.pop_front();
        }
        max = max.max(window.len());
    }
    max
}

#[tokio::test]
async fn never_more_than_100_failures_per_hour_per_account() {
    // Back-off disabled: only the hourly ceiling stands in the way.
    let mut no_backoff = LockoutConfig::default();
    no_backoff.account = BackoffPolicy::new(u32::MAX, 0, 0);
    for config in [LockoutConfig::default(), no_backoff] {
        let (tracker, clock, _) = tracker(config);
        let who = alice();
        let mut admitted = Vec::new();
        // An attacker trying once a second for three hours.
        for _ in 0..3 * 3600 {
            if tracker.check(&who).is_ok() {
                admitted.push(clock.monotonic());
                fail(&tracker, &who).await;
            }
            clock.advance(Duration::from_secs(1));
        }
        let max = max_per_sliding_hour(&admitted);
        assert!(max <= 100, "{max} failures in one hour");
        assert!(!admitted.is_empty());
    }
    // Without back-off the ceiling is the binding limit, and it is reached.
    let mut config = LockoutConfig::default();
    config.account = BackoffPolicy::new(u32::MAX, 0, 0);
    let (tracker, clock, _) = tracker(config);
    let mut admitted = Vec::new();
    for _ in 0..3600 {
        if tracker.check(&alice()).is_ok() {
            admitted.push(clock.monotonic());
            fail(&tracker, &alice()).await;
        }
        clock.advance(Duration::from_secs(1));
    }
    assert!((95..=100).contains(&admitted.len()), "{}", admitted.len());
}

#[tokio::test]
async fn an_attacker_cannot_lock_a_victim_out_for_long() {
    let (tracker, clock, _) = tracker(LockoutConfig::default());
    let who = alice();
    // Hammer the account: every failure the tracker admits, for an hour.
    let mut longest = Duration::ZERO;
    for _ in 0..3600 {
        match tracker.check(&who) {
            Ok(()) => {
                fail(&tracker, &who).await;
            }
            Err(lock) => longest = longest.max(lock.retry_after),
        }
        clock.advance(Duration::from_secs(1));
    }
    // Checked a second after each failure: the 300 s cap shows as 299 s.
    assert_eq!(longest, Duration::from_secs(299), "capped at max_delay");
    // The attacker stops; the victim waits at most the capped delay.
    let wait = tracker
        .check(&who)
        .err()
        .map_or(Duration::ZERO, |l| l.retry_after);
    assert!(wait <= Duration::from_secs(300), "{wait:?}");
    clock.advance(wait);
    assert!(tracker.check(&who).is_ok());
}

#[tokio::test]
async fn a_network_is_locked_by_failures_spread_over_its_addresses() {
    let (tracker, _, _) = tracker(LockoutConfig::default());
    for host in 1..=50u8 {
        let addr: IpAddr = format!("198.51.100.{host}").parse().unwrap();
        assert!(tracker.check(&FailureSubject::for_client(addr)).is_ok());
        fail(&tracker, &FailureSubject::for_client(addr)).await;
    }
    let fresh: IpAddr = "198.51.100.200".parse().unwrap();
    let elsewhere: IpAddr = "203.0.113.9".parse().unwrap();
    assert!(tracker.check(&FailureSubject::for_client(fresh)).is_ok());
    fail(&tracker, &FailureSubject::for_client(fresh)).await;
    let lock = tracker
        .check(&FailureSubject::for_client(
            "198.51.100.201".parse().unwrap(),
        ))
        .unwrap_err();
    assert_eq!(lock.kind, SubjectKind::Network);
    assert!(
        tracker
            .check(&FailureSubject::for_client(elsewhere))
            .is_ok()
    );
}

#[tokio::test]
async fn success_clears_the_account_but_not_the_address() {
    let mut config = LockoutConfig::default();
    config.account = BackoffPolicy::new(1, 1000, 60);
    config.client_addr = BackoffPolicy::new(1, 1000, 60);
    let (tracker, clock, _) = tracker(config);
    let addr: IpAddr = "192.0.2.10".parse().unwrap();
    let mut subjects = alice().to_vec();
    subjects.extend(FailureSubject::for_client(addr));
    fail(&tracker, &subjects).await;
    fail(&tracker, &subjects).await;
    clock.advance(Duration::from_secs(1));
    tracker.record_success(&subjects);
    assert_eq!(
        fail(&tracker, &alice()).await,
        None,
        "account counter reset"
    );
    let addr_only = FailureSubject::for_client(addr);
    assert!(
        fail(&tracker, &addr_only).await.is_some(),
        "address counter kept"
    );
}

#[tokio::test]
async fn memory_stays_bounded_under_a_flood_of_addresses() {
    let mut config = LockoutConfig::default();
    config.max_entries = 100;
    let (tracker, _, _) = tracker(config);
    for i in 0..5000u32 {
        let [a, b, c, d] = i.to_be_bytes();
        let addr = IpAddr::from([10 ^ a, b, c, d]);
        fail(&tracker, &FailureSubject::for_client(addr)).await;
        assert!(tracker.tracked() <= 100);
    }
}

#[tokio::test]
async fn every_failure_and_lockout_is_audited() {
    let mut config = LockoutConfig::default();
    config.account = BackoffPolicy::new(2, 1000, 60);
    let (tracker, clock, audit) = tracker(config);
    let acme = TenantId::new("acme").unwrap();
    let who = [FailureSubject::account(Some(acme.clone()), "alice")];
    let context = RequestContext::new().with_client_addr("192.0.2.1".parse().unwrap());
    for _ in 0..3 {
        tracker
            .record_failure(&who, &context, AuthFailure::BadCredential)
            .await;
    }
    clock.advance(Duration::from_secs(1));
    tracker
        .record_failure(&who, &context, AuthFailure::BadCredential)
        .await;
    let events = audit.events(&acme);
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "auth.failure",
            "auth.failure",
            "auth.failure",
            "auth.lockout",
            "auth.failure",
            "auth.lockout"
        ]
    );
    assert!(
        events[..3]
            .iter()
            .all(|e| e.outcome == AuditOutcome::Failure
                && e.reason.as_deref() == Some("bad_credential")
                && e.client_addr == context.client_addr)
    );
    assert_eq!(events[3].outcome, AuditOutcome::Denied);
    assert_eq!(events[3].reason.as_deref(), Some("locked_out"));
    assert_eq!(events[3].details["retry_after_ms"], 1000);
    assert_eq!(events[5].details["retry_after_ms"], 2000);
}

#[test]
fn refuses_a_ceiling_above_100_per_hour() {
    let audit = Arc::new(MemoryAuditSink::new());
    for bad in [0, 1, 101, 1000] {
        let mut config = LockoutConfig::default();
        config.max_failures_per_hour = bad;
        assert!(
            FailedAuthTracker::new(config, audit.clone()).is_err(),
            "{bad}"
        );
    }
    let mut config = LockoutConfig::default();
    config.forget_after_secs = 60;
    assert!(FailedAuthTracker::new(config, audit).is_err());
    let parsed: LockoutConfig =
        serde_json::from_value(serde_json::json!({ "max_failures_per_hour": 20 })).unwrap();
    assert_eq!(parsed.max_failures_per_hour, 20);
    assert_eq!(parsed.account, LockoutConfig::default().account);
}
