//! Sessions: rotating refresh tokens, reuse detection, revocation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jwt_support;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use docaiche_auth::jwt::{JwtAuthenticator, JwtIssuer, JwtVerifier};
use docaiche_auth::session::{
    MemoryRefreshTokenStore, RefreshTokenHash, RefreshTokenState, RefreshTokenStore, SessionConfig,
    SessionManager,
};
use docaiche_core::{
    AuthFailure, AuthMethod, Clock, Error, ManualClock, Principal, PrincipalId, TenantId,
    TokenRevocationStore,
};
use docaiche_store::MemoryRevocationStore;
use jwt_support::*;

struct Fixture {
    clock: ManualClock,
    sessions: SessionManager,
    store: Arc<MemoryRefreshTokenStore>,
    revocations: Arc<MemoryRevocationStore>,
    auth: JwtAuthenticator,
}

fn fixture(config: SessionConfig) -> Fixture {
    let (clock, shared) = clock();
    let (keys, verifier) = verifier(&shared);
    let issuer = JwtIssuer::new(keys, jwt_support::config(), shared.clone()).unwrap();
    let store = Arc::new(MemoryRefreshTokenStore::new().with_clock(shared.clone()));
    let revocations = Arc::new(MemoryRevocationStore::new().with_clock(shared.clone()));
    let sessions = SessionManager::new(
        issuer,
        store.clone(),
        revocations.clone(),
        config,
        shared.clone(),
    )
    .unwrap();
    let auth = JwtAuthenticator::new(verifier, revocations.clone());
    Fixture {
        clock,
        sessions,
        store,
        revocations,
        auth,
    }
}

fn alice() -> Principal {
    Principal::new(
        PrincipalId::new("alice").unwrap(),
        TenantId::new("acme").unwrap(),
        AuthMethod::Password,
    )
}

fn reason(err: Error) -> AuthFailure {
    match err {
        Error::Unauthenticated { reason } => reason,
        other => panic!("expected unauthenticated, got {other:?}"),
    }
}

#[tokio::test]
async fn refresh_rotates_both_tokens_and_each_refresh_token_works_once() {
    let f = fixture(SessionConfig::default());
    let first = f.sessions.issue(&alice()).await.unwrap();
    assert!(
        f.auth
            .authenticate_token(first.access_token.expose_secret())
            .await
            .is_ok()
    );
    f.clock.advance(Duration::from_secs(60));
    let second = f
        .sessions
        .refresh(first.refresh_token.expose_secret())
        .await
        .unwrap();
    assert_ne!(
        second.refresh_token.expose_secret(),
        first.refresh_token.expose_secret()
    );
    assert_ne!(second.access_token_id, first.access_token_id);
    assert_eq!(second.session, first.session);
    let principal = f
        .auth
        .authenticate_token(second.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(principal.id.as_str(), "alice");
    let third = f
        .sessions
        .refresh(second.refresh_token.expose_secret())
        .await
        .unwrap();
    assert!(
        f.auth
            .authenticate_token(third.access_token.expose_secret())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn access_tokens_live_fifteen_minutes_by_default() {
    let f = fixture(SessionConfig::default());
    let pair = f.sessions.issue(&alice()).await.unwrap();
    assert_eq!(
        pair.access_expires_at - f.clock.now(),
        time::Duration::minutes(15)
    );
    f.clock.advance(Duration::from_secs(15 * 60 + 30));
    let err = f
        .auth
        .authenticate_token(pair.access_token.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(reason(err), AuthFailure::Expired);
}

#[tokio::test]
async fn replayed_refresh_token_revokes_the_whole_family() {
    let f = fixture(SessionConfig::default());
    let first = f.sessions.issue(&alice()).await.unwrap();
    let second = f
        .sessions
        .refresh(first.refresh_token.expose_secret())
        .await
        .unwrap();
    let third = f
        .sessions
        .refresh(second.refresh_token.expose_secret())
        .await
        .unwrap();
    assert!(
        f.auth
            .authenticate_token(third.access_token.expose_secret())
            .await
            .is_ok()
    );

    // The attacker replays the first (used) refresh token.
    let err = f
        .sessions
        .refresh(first.refresh_token.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(reason(err), AuthFailure::Revoked);

    // The newest refresh token of the family no longer works…
    let err = f
        .sessions
        .refresh(third.refresh_token.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(reason(err), AuthFailure::Revoked);
    // …and neither does the newest access token (revoked by jti).
    let err = f
        .auth
        .authenticate_token(third.access_token.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(reason(err), AuthFailure::Revoked);
    assert!(
        f.revocations
            .is_revoked(&third.access_token_id)
            .await
            .unwrap()
    );

    // Another session of the same user is untouched.
    let other = f.sessions.issue(&alice()).await.unwrap();
    assert!(
        f.sessions
            .refresh(other.refresh_token.expose_secret())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn concurrent_refreshes_with_one_token_let_exactly_one_through() {
    let f = fixture(SessionConfig::default());
    let first = f.sessions.issue(&alice()).await.unwrap();
    let token = first.refresh_token.expose_secret().clone();
    let (a, b) = tokio::join!(f.sessions.refresh(&token), f.sessions.refresh(&token));
    assert!(a.is_ok() != b.is_ok(), "exactly one refresh wins");
    // The loser's replay revoked the family, winner included.
    let winner = a.or(b).unwrap();
    assert!(
        f.sessions
            .refresh(winner.refresh_token.expose_secret())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn refresh_tokens_are_256_random_bits_url_safe_and_stored_only_hashed() {
    let f = fixture(SessionConfig::default());
    let pair = f.sessions.issue(&alice()).await.unwrap();
    let token = pair.refresh_token.expose_secret();
    let (tenant, secret) = token.rsplit_once('.').unwrap();
    assert_eq!(tenant, "acme");
    assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    );
    let other = f.sessions.issue(&alice()).await.unwrap();
    assert_ne!(other.refresh_token.expose_secret(), token);

    let tenant = TenantId::new("acme").unwrap();
    let record = f
        .store
        .find(&tenant, &RefreshTokenHash::of(token))
        .await
        .unwrap()
        .expect("stored under its hash");
    assert_eq!(record.state, RefreshTokenState::Active);
    let stored = serde_json::to_string(&record).unwrap();
    assert!(!stored.contains(secret), "the token itself is never stored");
    assert!(
        !format!("{pair:?}").contains(secret),
        "Debug redacts tokens"
    );
}

#[tokio::test]
async fn refresh_tokens_are_tenant_scoped() {
    let f = fixture(SessionConfig::default());
    let pair = f.sessions.issue(&alice()).await.unwrap();
    let token = pair.refresh_token.expose_secret();
    let (_, secret) = token.rsplit_once('.').unwrap();
    let err = f
        .sessions
        .refresh(&format!("globex.{secret}"))
        .await
        .unwrap_err();
    assert_eq!(reason(err), AuthFailure::BadCredential);
    let globex = TenantId::new("globex").unwrap();
    assert!(
        f.store
            .find(&globex, &RefreshTokenHash::of(token))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn refresh_tokens_expire_and_sessions_end() {
    let config = SessionConfig::default()
        .with_refresh_token_ttl(Duration::from_secs(3600))
        .with_max_session_lifetime(Duration::from_secs(2 * 3600));
    let f = fixture(config);
    let pair = f.sessions.issue(&alice()).await.unwrap();
    f.clock.advance(Duration::from_secs(3600));
    let err = f
        .sessions
        .refresh(pair.refresh_token.expose_secret())
        .await
        .unwrap_err();
    assert_eq!(reason(err), AuthFailure::Expired);

    // Refreshing keeps a session going only up to its lifetime.
    let mut pair = f.sessions.issue(&alice()).await.unwrap();
    let started = f.clock.now();
    loop {
        f.clock.advance(Duration::from_secs(1800));
        match f.sessions.refresh(pair.refresh_token.expose_secret()).await {
            Ok(next) => {
                assert!(next.refresh_expires_at <= started + time::Duration::hours(2));
                pair = next;
            }
            Err(err) => {
                assert_eq!(reason(err), AuthFailure::Expired);
                break;
            }
        }
    }
    assert!(f.clock.now() - started <= time::Duration::hours(2));
}

#[tokio::test]
async fn unknown_and_malformed_refresh_tokens_are_rejected() {
    let f = fixture(SessionConfig::default());
    let unknown = format!("acme.{}", URL_SAFE_NO_PAD.encode([7_u8; 32]));
    assert_eq!(
        reason(f.sessions.refresh(&unknown).await.unwrap_err()),
        AuthFailure::BadCredential
    );
    for bad in [
        "",
        "acme",
        "acme.short",
        "../../x.AAAA",
        &"a".repeat(10_000),
    ] {
        assert_eq!(
            reason(f.sessions.refresh(bad).await.unwrap_err()),
            AuthFailure::Malformed,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn logout_revokes_the_session_and_its_access_token() {
    let f = fixture(SessionConfig::default());
    let pair = f.sessions.issue(&alice()).await.unwrap();
    f.sessions
        .revoke_refresh(pair.refresh_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(
        reason(
            f.sessions
                .refresh(pair.refresh_token.expose_secret())
                .await
                .unwrap_err()
        ),
        AuthFailure::Revoked
    );
    assert_eq!(
        reason(
            f.auth
                .authenticate_token(pair.access_token.expose_secret())
                .await
                .unwrap_err()
        ),
        AuthFailure::Revoked
    );
}

#[tokio::test]
async fn access_revocation_lasts_exactly_the_tokens_remaining_life() {
    let f = fixture(SessionConfig::default());
    let pair = f.sessions.issue(&alice()).await.unwrap();
    f.clock.advance(Duration::from_secs(300));
    let shared: Arc<dyn Clock> = Arc::new(f.clock.clone());
    let (_, verifier) = verifier(&shared);
    let claims = verifier.verify(pair.access_token.expose_secret()).unwrap();
    f.sessions.revoke_access(&claims).await.unwrap();
    assert!(f.revocations.is_revoked(&claims.token_id).await.unwrap());
    assert_eq!(
        reason(
            f.auth
                .authenticate_token(pair.access_token.expose_secret())
                .await
                .unwrap_err()
        ),
        AuthFailure::Revoked
    );
    // Just before the token's own expiry the revocation still holds; after
    // it, the store may forget (the token is expired anyway).
    f.clock.advance(Duration::from_secs(599));
    assert!(f.revocations.is_revoked(&claims.token_id).await.unwrap());
    f.clock.advance(Duration::from_secs(2));
    assert!(!f.revocations.is_revoked(&claims.token_id).await.unwrap());
    let _ = JwtVerifier::new;
}

#[tokio::test]
async fn the_memory_store_is_bounded_and_forgets_only_expired_records() {
    let (clock, shared) = clock();
    let (keys, _) = verifier(&shared);
    let issuer = JwtIssuer::new(keys, jwt_support::config(), shared.clone()).unwrap();
    let store = Arc::new(
        MemoryRefreshTokenStore::new()
            .with_clock(shared.clone())
            .with_max_records(std::num::NonZeroUsize::new(2).unwrap()),
    );
    let sessions = SessionManager::new(
        issuer,
        store.clone(),
        Arc::new(MemoryRevocationStore::new().with_clock(shared.clone())),
        SessionConfig::default().with_refresh_token_ttl(Duration::from_secs(3600)),
        shared,
    )
    .unwrap();
    sessions.issue(&alice()).await.unwrap();
    let kept = sessions.issue(&alice()).await.unwrap();
    let err = sessions.issue(&alice()).await.unwrap_err();
    assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
    assert_eq!(store.len(), 2, "live records are never dropped");
    clock.advance(Duration::from_secs(3600));
    sessions.issue(&alice()).await.unwrap();
    assert_eq!(store.len(), 1, "expired records made room");
    assert!(
        sessions
            .refresh(kept.refresh_token.expose_secret())
            .await
            .is_err()
    );
}
