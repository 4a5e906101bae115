#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use docaiche_core::{ErrorCode, ManualClock, Permission, SecretBytes, TokenRevocationStore};
use docaiche_store::memory::{MemoryAccountStore, MemoryAuditSink, MemoryRevocationStore};

use super::*;
use crate::jwt::{Algorithm, JwtConfig, JwtIssuer, JwtKey, JwtKeySet};
use crate::password::PasswordConfig;
use crate::rbac::RbacConfig;
use crate::session::{MemoryRefreshTokenStore, SessionConfig};

struct Fixture {
    login: PasswordLogin,
    accounts: Arc<MemoryAccountStore>,
    audit: Arc<MemoryAuditSink>,
    revocations: Arc<MemoryRevocationStore>,
    verifier: Arc<JwtVerifier>,
    clock: ManualClock,
    tenant: TenantId,
}

/// The cheapest argon2id parameters the service accepts: tests check
/// behaviour, not cost.
fn fast(memory_kib: u32) -> PasswordConfig {
    PasswordConfig {
        memory_kib,
        iterations: 1,
        ..PasswordConfig::default()
    }
}

async fn fixture() -> Fixture {
    let clock = ManualClock::new();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    let keys = Arc::new(
        JwtKeySet::new(
            JwtKey::hmac("k1", Algorithm::HS256, &SecretBytes::from(vec![9; 32])).unwrap(),
        )
        .unwrap(),
    );
    let config = JwtConfig::new("https://auth.example.com", "docaiche");
    let issuer = JwtIssuer::new(Arc::clone(&keys), config.clone(), Arc::clone(&shared)).unwrap();
    let verifier = Arc::new(JwtVerifier::new(keys, config, Arc::clone(&shared)).unwrap());
    let revocations = Arc::new(MemoryRevocationStore::new().with_clock(Arc::clone(&shared)));
    let sessions = SessionManager::new(
        issuer,
        Arc::new(MemoryRefreshTokenStore::new().with_clock(Arc::clone(&shared))),
        revocations.clone(),
        SessionConfig::default(),
        Arc::clone(&shared),
    )
    .unwrap();
    let rbac: RbacConfig = serde_json::from_value(serde_json::json!({
        "roles": {
            "reader": ["documents:read"],
            "tenant-admin": ["documents:*", "keys:manage"],
            "platform-admin": { "grants": ["*:*"], "cross_tenant": true }
        }
    }))
    .unwrap();
    let accounts = Arc::new(MemoryAccountStore::new());
    let audit = Arc::new(MemoryAuditSink::new());
    let tracker = FailedAuthTracker::new(LockoutConfig::default(), audit.clone())
        .unwrap()
        .with_clock(Arc::clone(&shared));
    let login = PasswordLogin::new(
        accounts.clone(),
        Arc::new(PasswordService::new(fast(7168)).await.unwrap()),
        Arc::new(sessions),
        RolePolicy::from_config(&rbac).unwrap(),
        audit.clone(),
    )
    .unwrap()
    .with_tracker(Arc::new(tracker))
    .with_access_token_verifier(verifier.clone())
    .with_clock(shared);
    Fixture {
        login,
        accounts,
        audit,
        revocations,
        verifier,
        clock,
        tenant: TenantId::new("acme").unwrap(),
    }
}

fn email(s: &str) -> AccountEmail {
    AccountEmail::new(s).unwrap()
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

const PASSWORD: &str = "correct horse battery staple";

impl Fixture {
    async fn alice(&self, roles: &[&str]) -> Account {
        self.login
            .create_account(
                &self.tenant,
                email("alice@example.com"),
                &secret(PASSWORD),
                roles.iter().map(|r| (*r).to_owned()).collect(),
            )
            .await
            .unwrap()
    }

    async fn login_as(&self, address: &str, password: &str) -> Result<LoginSession> {
        let context = RequestContext::new().with_client_addr("192.0.2.7".parse().unwrap());
        self.login
            .login(&self.tenant, &email(address), &secret(password), &context)
            .await
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_carries_the_accounts_tenant_scoped_roles() {
    let f = fixture().await;
    let alice = f.alice(&["reader", "platform-admin", "no-such-role"]).await;
    let session = f.login_as("ALICE@example.com", PASSWORD).await.unwrap();
    assert_eq!(session.principal.id, alice.id);
    assert_eq!(session.principal.roles, ["reader"]);
    assert!(
        session
            .principal
            .has_permission(&Permission::DOCUMENTS_READ)
    );
    assert!(
        !session.principal.has_permission(&Permission::TENANTS_CROSS),
        "an account row never grants a cross-tenant role"
    );
    let claims = f
        .verifier
        .verify(session.tokens.access_token.expose_secret())
        .unwrap();
    assert_eq!(claims.subject, alice.id);
    assert_eq!(claims.roles, ["reader"]);
    let events = f.audit.events(&f.tenant);
    assert!(events.iter().any(|e| e.action == "auth.login"
        && e.outcome == AuditOutcome::Success
        && e.actor.as_ref() == Some(&alice.id)));
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_accounts_wrong_passwords_and_disabled_accounts_fail_alike_at_equal_cost() {
    let f = fixture().await;
    let alice = f.alice(&["reader"]).await;
    let mut answers = Vec::new();
    let mut costs = Vec::new();
    for (address, password) in [
        ("alice@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let before = f.login.passwords().hash_operations();
        let err = f.login_as(address, password).await.unwrap_err();
        costs.push(f.login.passwords().hash_operations() - before);
        answers.push((err.code(), err.to_string()));
    }
    f.accounts
        .set_disabled(&f.tenant, &alice.id, true, f.clock.now())
        .await
        .unwrap();
    let before = f.login.passwords().hash_operations();
    let err = f.login_as("alice@example.com", PASSWORD).await.unwrap_err();
    costs.push(f.login.passwords().hash_operations() - before);
    answers.push((err.code(), err.to_string()));
    assert_eq!(costs, [1, 1, 1], "one argon2id run each");
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0].0, ErrorCode::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_failures_lock_the_account_out_before_any_hashing() {
    let f = fixture().await;
    f.alice(&[]).await;
    for _ in 0..6 {
        let err = f.login_as("alice@example.com", "guess").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
    }
    let before = f.login.passwords().hash_operations();
    let err = f.login_as("alice@example.com", PASSWORD).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::QuotaExceeded);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(f.login.passwords().hash_operations(), before, "no hashing");
    let events = f.audit.events(&f.tenant);
    assert_eq!(
        events.iter().filter(|e| e.action == "auth.failure").count(),
        6
    );
    assert!(events.iter().any(|e| e.action == "auth.lockout"));
    // Soft: the lock expires, and the right password then works and
    // clears the account's counter.
    f.clock.advance(Duration::from_secs(1));
    f.login_as("alice@example.com", PASSWORD).await.unwrap();
    f.login_as("alice@example.com", "guess").await.unwrap_err();
    f.login_as("alice@example.com", PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hash_with_old_parameters_is_replaced_at_login() {
    let f = fixture().await;
    let old = PasswordService::new(fast(8192)).await.unwrap();
    let account = Account::new(
        f.tenant.clone(),
        PrincipalId::new("bob").unwrap(),
        email("bob@example.com"),
        old.hash(&secret(PASSWORD)).await.unwrap(),
        f.clock.now(),
    );
    f.accounts.create(&account).await.unwrap();
    assert!(f.login.passwords().needs_rehash(&account.password_hash));
    f.login_as("bob@example.com", PASSWORD).await.unwrap();
    let stored = f
        .accounts
        .get(&f.tenant, &account.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(stored.password_hash, account.password_hash);
    assert!(!f.login.passwords().needs_rehash(&stored.password_hash));
    assert!(
        stored
            .password_hash
            .starts_with("$argon2id$v=19$m=7168,t=1,p=1$")
    );
    f.login_as("bob@example.com", PASSWORD).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refresh_carries_the_accounts_current_roles() {
    let f = fixture().await;
    let alice = f.alice(&["tenant-admin"]).await;
    let session = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    f.accounts
        .set_roles(&f.tenant, &alice.id, &["reader".into()], f.clock.now())
        .await
        .unwrap();
    let refreshed = f
        .login
        .refresh(
            session.tokens.refresh_token.expose_secret(),
            &RequestContext::new(),
        )
        .await
        .unwrap();
    let claims = f
        .verifier
        .verify(refreshed.access_token.expose_secret())
        .unwrap();
    assert_eq!(claims.roles, ["reader"], "demoted at the next refresh");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disabled_account_cannot_refresh_and_its_session_ends() {
    let f = fixture().await;
    let alice = f.alice(&["reader"]).await;
    let session = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    f.accounts
        .set_disabled(&f.tenant, &alice.id, true, f.clock.now())
        .await
        .unwrap();
    let refresh = session.tokens.refresh_token.expose_secret();
    let err = f
        .login
        .refresh(refresh, &RequestContext::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthenticated);
    assert!(
        f.revocations
            .is_revoked(&session.tokens.access_token_id)
            .await
            .unwrap(),
        "the session's access token is revoked too"
    );
    // Enabled again, the old session stays ended.
    f.accounts
        .set_disabled(&f.tenant, &alice.id, false, f.clock.now())
        .await
        .unwrap();
    assert!(
        f.login
            .refresh(refresh, &RequestContext::new())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn revoke_ends_sessions_and_access_tokens_and_ignores_junk() {
    let f = fixture().await;
    f.alice(&["reader"]).await;
    let context = RequestContext::new();
    let first = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    let revoked = f
        .login
        .revoke(first.tokens.refresh_token.expose_secret(), None, &context)
        .await
        .unwrap();
    assert_eq!(revoked, Revoked::Session);
    assert!(
        f.revocations
            .is_revoked(&first.tokens.access_token_id)
            .await
            .unwrap()
    );
    let second = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    let revoked = f
        .login
        .revoke(
            second.tokens.access_token.expose_secret(),
            Some("access_token"),
            &context,
        )
        .await
        .unwrap();
    assert_eq!(revoked, Revoked::AccessToken);
    assert!(
        f.revocations
            .is_revoked(&second.tokens.access_token_id)
            .await
            .unwrap()
    );
    for junk in ["", "nonsense", "acme.AAAA", "a.b.c"] {
        assert_eq!(
            f.login.revoke(junk, None, &context).await.unwrap(),
            Revoked::Nothing
        );
    }
}
