#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::{AuthFailure, Error, ManualClock, PrincipalId, SecretBytes, TenantId};
use docaiche_store::MemoryRevocationStore;
use docaiche_store::memory::MemoryWebSessionStore;

use super::*;

struct Fixture {
    clock: Arc<ManualClock>,
    store: Arc<MemoryWebSessionStore>,
    sessions: WebSessions,
    acme: TenantId,
    alice: PrincipalId,
}

fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new());
    let store = Arc::new(MemoryWebSessionStore::new());
    let sessions = WebSessions::new(
        store.clone(),
        &SecretBytes::from(vec![9; 32]),
        WebSessionConfig::default(),
        clock.clone(),
    )
    .unwrap();
    Fixture {
        clock,
        store,
        sessions,
        acme: TenantId::new("acme").unwrap(),
        alice: PrincipalId::new("alice").unwrap(),
    }
}

fn refused(result: Result<WebSession>) -> AuthFailure {
    match result {
        Err(Error::Unauthenticated { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_busy_session_lives_until_its_absolute_timeout() {
    let f = fixture();
    let (cookie, _) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    // Used every 20 minutes: never idle, but 12 hours is the end.
    for _ in 0..35 {
        f.clock.advance(Duration::from_secs(20 * 60));
        f.sessions.resolve(cookie.expose_secret()).await.unwrap();
    }
    f.clock.advance(Duration::from_secs(20 * 60));
    assert_eq!(
        refused(f.sessions.resolve(cookie.expose_secret()).await),
        AuthFailure::Expired
    );
    // An expired session is removed, not kept to be refused again.
    assert_eq!(
        f.store
            .purge(OffsetDateTime::UNIX_EPOCH, OffsetDateTime::UNIX_EPOCH)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        refused(f.sessions.resolve(cookie.expose_secret()).await),
        AuthFailure::BadCredential
    );
}

#[tokio::test]
async fn an_idle_session_ends_after_thirty_minutes() {
    let f = fixture();
    let (cookie, _) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(29 * 60));
    f.sessions.resolve(cookie.expose_secret()).await.unwrap();
    f.clock.advance(Duration::from_secs(29 * 60));
    f.sessions.resolve(cookie.expose_secret()).await.unwrap();
    f.clock.advance(Duration::from_secs(30 * 60));
    assert_eq!(
        refused(f.sessions.resolve(cookie.expose_secret()).await),
        AuthFailure::Expired
    );
}

#[tokio::test]
async fn last_seen_is_written_once_per_touch_interval() {
    let f = fixture();
    let (cookie, started) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(30));
    f.sessions.resolve(cookie.expose_secret()).await.unwrap();
    let stored = f.store.get(&started.key).await.unwrap().unwrap();
    assert_eq!(stored.last_seen_at, started.created_at);
    f.clock.advance(Duration::from_secs(31));
    f.sessions.resolve(cookie.expose_secret()).await.unwrap();
    let stored = f.store.get(&started.key).await.unwrap().unwrap();
    assert_eq!(stored.last_seen_at, f.clock.now());
}

#[tokio::test]
async fn a_pending_second_factor_expires_fast_and_promotion_changes_the_cookie() {
    let f = fixture();
    let (pending, session) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::Pending)
        .await
        .unwrap();
    assert!(!session.second_factor.is_complete());
    let (cookie, promoted) = f.sessions.promote(&session).await.unwrap();
    assert_eq!(promoted.second_factor, SecondFactor::Passed);
    assert_ne!(cookie.expose_secret(), pending.expose_secret());
    // The pre-factor cookie is dead: a planted or stolen one gains nothing.
    assert_eq!(
        refused(f.sessions.resolve(pending.expose_secret()).await),
        AuthFailure::BadCredential
    );
    f.sessions.resolve(cookie.expose_secret()).await.unwrap();

    let (late, _) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::Pending)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(5 * 60));
    assert_eq!(
        refused(f.sessions.resolve(late.expose_secret()).await),
        AuthFailure::Expired
    );
}

#[tokio::test]
async fn csrf_tokens_are_bound_to_their_session() {
    let f = fixture();
    let (_, one) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    let (_, two) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    let token = f.sessions.csrf_token(&one);
    assert_eq!(token.len(), 43);
    assert!(f.sessions.verify_csrf(&one, &token));
    assert!(!f.sessions.verify_csrf(&two, &token));
    assert!(!f.sessions.verify_csrf(&one, ""));
    assert!(!f.sessions.verify_csrf(&one, "not base64 !"));
    let mut flipped = token.into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    assert!(
        !f.sessions
            .verify_csrf(&one, &String::from_utf8(flipped).unwrap())
    );
}

#[tokio::test]
async fn malformed_and_unknown_cookies_are_refused() {
    let f = fixture();
    for bad in ["", "short", &"a".repeat(44), &"!".repeat(43)] {
        assert_eq!(
            refused(f.sessions.resolve(bad).await),
            AuthFailure::Malformed,
            "{bad:?}"
        );
    }
    assert_eq!(
        refused(f.sessions.resolve(&"A".repeat(43)).await),
        AuthFailure::BadCredential
    );
}

#[tokio::test]
async fn a_subject_revocation_ends_sessions_started_before_it() {
    let f = fixture();
    let revocations = Arc::new(MemoryRevocationStore::new().with_clock(f.clock.clone()));
    let sessions = f.sessions.clone().with_revocations(revocations.clone());
    let (old, _) = sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(2));
    revocations
        .revoke_subject(
            &f.acme,
            &f.alice,
            f.clock.now(),
            f.clock.now() + time::Duration::hours(13),
        )
        .await
        .unwrap();
    assert_eq!(
        refused(sessions.resolve(old.expose_secret()).await),
        AuthFailure::Revoked
    );
    // Signing in again afterwards works.
    f.clock.advance(Duration::from_secs(2));
    let (new, _) = sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    sessions.resolve(new.expose_secret()).await.unwrap();
}

#[tokio::test]
async fn ending_removes_one_session_or_every_session_of_a_person() {
    let f = fixture();
    let bob = PrincipalId::new("bob").unwrap();
    let mut alices = Vec::new();
    for _ in 0..3 {
        alices.push(
            f.sessions
                .start(&f.acme, &f.alice, SecondFactor::NotRequired)
                .await
                .unwrap()
                .0,
        );
    }
    let (bobs, _) = f
        .sessions
        .start(&f.acme, &bob, SecondFactor::NotRequired)
        .await
        .unwrap();
    assert!(f.sessions.end(alices[0].expose_secret()).await.unwrap());
    assert!(!f.sessions.end(alices[0].expose_secret()).await.unwrap());
    assert_eq!(f.sessions.end_subject(&f.acme, &f.alice).await.unwrap(), 2);
    for cookie in &alices {
        assert!(f.sessions.resolve(cookie.expose_secret()).await.is_err());
    }
    f.sessions.resolve(bobs.expose_secret()).await.unwrap();
}

#[tokio::test]
async fn purge_removes_idle_and_old_sessions_only() {
    let f = fixture();
    let (idle, _) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(20 * 60));
    let (fresh, _) = f
        .sessions
        .start(&f.acme, &f.alice, SecondFactor::NotRequired)
        .await
        .unwrap();
    f.clock.advance(Duration::from_secs(11 * 60));
    assert_eq!(f.sessions.purge().await.unwrap(), 1);
    assert!(f.sessions.resolve(idle.expose_secret()).await.is_err());
    f.sessions.resolve(fresh.expose_secret()).await.unwrap();
}

#[test]
fn invalid_configurations_and_short_keys_are_refused() {
    let store = Arc::new(MemoryWebSessionStore::new());
    let clock = Arc::new(ManualClock::new());
    assert!(
        WebSessions::new(
            store.clone(),
            &SecretBytes::from(vec![1; 16]),
            WebSessionConfig::default(),
            clock.clone()
        )
        .is_err()
    );
    let mut config = WebSessionConfig::default();
    config.touch_interval = config.idle_timeout;
    assert!(WebSessions::new(store, &SecretBytes::from(vec![1; 32]), config, clock).is_err());
}

#[test]
fn debug_output_shows_no_secret() {
    let key = WebSessionKey::of("cookie-value");
    let shown = format!("{key:?}");
    assert!(
        shown.starts_with("WebSessionKey(") && shown.len() < 30,
        "{shown}"
    );
}
