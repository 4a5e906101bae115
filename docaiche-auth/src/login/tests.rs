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
    .with_device_cookies(
        DeviceCookies::new(&SecretBytes::from(vec![5; 32]))
            .unwrap()
            .with_clock(Arc::clone(&shared)),
    )
    .with_account_tokens(
        AccountTokens::new(&SecretBytes::from(vec![6; 32]))
            .unwrap()
            .with_clock(Arc::clone(&shared)),
    )
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
async fn accounts_are_not_created_with_a_common_breached_password() {
    let f = fixture().await;
    for listed in ["password1234", "PASSWORD 1234", "qwertyuiop123"] {
        let err = f
            .login
            .create_account(
                &f.tenant,
                email("alice@example.com"),
                &secret(listed),
                vec!["reader".to_owned()],
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidInput, "{listed:?}");
        assert!(err.to_string().contains("most common breached passwords"));
        assert!(
            !err.to_string()
                .to_lowercase()
                .contains(&listed.to_lowercase())
        );
    }
    assert!(
        f.accounts
            .find_by_email(&f.tenant, &email("alice@example.com"))
            .await
            .unwrap()
            .is_none(),
        "nothing was stored"
    );
    // The same email with a long passphrase is fine.
    f.alice(&["reader"]).await;
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

impl Fixture {
    async fn login_from(
        &self,
        client: &str,
        password: &str,
        device: Option<&SecretString>,
    ) -> Result<LoginSession> {
        let context = RequestContext::new().with_client_addr(client.parse().unwrap());
        self.login
            .login_from_device(
                &self.tenant,
                &email("alice@example.com"),
                &secret(password),
                device.map(|d| d.expose_secret().as_str()),
                &context,
            )
            .await
    }
}

/// The review's second lockout finding: while an attacker locks alice's
/// account with wrong passwords from many addresses, alice on a device she
/// signed in from before (its device cookie) still signs in; an untrusted
/// client is what the account lock holds back.
#[tokio::test(flavor = "multi_thread")]
async fn an_attack_on_an_account_never_locks_its_owner_out_of_a_known_device() {
    let f = fixture().await;
    f.alice(&[]).await;
    let first = f.login_from("203.0.113.5", PASSWORD, None).await.unwrap();
    let device = first.device_cookie.expect("a device cookie");

    let mut slowed = 0;
    for attacker in 0..30 {
        match f
            .login_from(&format!("198.51.{attacker}.9"), "guess", None)
            .await
        {
            Err(e) if e.code() == ErrorCode::QuotaExceeded => slowed += 1,
            Err(e) => assert_eq!(e.code(), ErrorCode::Unauthenticated),
            Ok(_) => panic!("a wrong password signed in"),
        }
    }
    assert!(slowed >= 20, "the guesser is slowed: {slowed}");
    // An untrusted client, even with the right password, waits...
    let untrusted = f
        .login_from("203.0.113.77", PASSWORD, None)
        .await
        .unwrap_err();
    assert_eq!(untrusted.code(), ErrorCode::QuotaExceeded);
    // ...alice's known device does not, from any address.
    let again = f
        .login_from("192.0.2.200", PASSWORD, Some(&device))
        .await
        .expect("the known device signs in during the attack");
    let events = f.audit.events(&f.tenant);
    let login = events
        .iter()
        .rev()
        .find(|e| e.action == "auth.login")
        .unwrap();
    assert_eq!(login.details["trusted_device"], true);

    // A stolen cookie buys its thief the device's own budget: five free
    // wrong passwords, the sixth locks the device (and only the device).
    let stolen = again.device_cookie.expect("a fresh cookie");
    for _ in 0..6 {
        let e = f
            .login_from("198.51.100.1", "guess", Some(&stolen))
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::Unauthenticated);
    }
    let e = f
        .login_from("198.51.100.1", "guess", Some(&stolen))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::QuotaExceeded, "the device is locked");
    let e = f
        .login_from("198.51.100.1", PASSWORD, Some(&stolen))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::QuotaExceeded);
    f.login_from("192.0.2.200", PASSWORD, Some(&device))
        .await
        .expect("another known device is not");
    // A cookie for another account is worth nothing here.
    let forged = SecretString::from("v1.AAAA.99999999999.AAAA");
    let e = f
        .login_from("203.0.113.78", PASSWORD, Some(&forged))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::QuotaExceeded, "untrusted after all");
}

/// Disabling or deleting an account ends every credential issued to it
/// at once: access tokens (by a subject revocation the verifier checks)
/// and refresh tokens; enabling it again lets only new logins in.
#[tokio::test(flavor = "multi_thread")]
async fn disabling_or_deleting_an_account_ends_its_tokens_at_once() {
    let f = fixture().await;
    let account = f.alice(&["reader"]).await;
    let session = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    let access = session.tokens.access_token.expose_secret().clone();
    let revoked = |token: String| {
        let (verifier, revocations) = (f.verifier.clone(), f.revocations.clone());
        async move {
            let claims = verifier.verify(&token).unwrap();
            let issued = docaiche_core::revocation::IssuedToken::new(
                &claims.token_id,
                &claims.tenant,
                &claims.subject,
                claims.issued_at,
            );
            revocations.is_token_revoked(&issued).await.unwrap()
        }
    };
    assert!(!revoked(access.clone()).await);

    assert!(
        f.login
            .set_disabled(&f.tenant, &account.id, true)
            .await
            .unwrap()
    );
    assert!(revoked(access.clone()).await, "the access token");
    let refresh = session.tokens.refresh_token.expose_secret().clone();
    let err = f
        .login
        .refresh(&refresh, &RequestContext::new())
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Unauthenticated, "the refresh token");

    // Enabled again, a second later: a new login works, old tokens stay dead.
    f.clock.advance(Duration::from_secs(1));
    assert!(
        f.login
            .set_disabled(&f.tenant, &account.id, false)
            .await
            .unwrap()
    );
    let fresh = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    assert!(!revoked(fresh.tokens.access_token.expose_secret().clone()).await);
    assert!(revoked(access).await);

    f.clock.advance(Duration::from_secs(1));
    assert!(
        f.login
            .delete_account(&f.tenant, &account.id)
            .await
            .unwrap()
    );
    assert!(
        revoked(fresh.tokens.access_token.expose_secret().clone()).await,
        "deleted: the newest token too"
    );
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

#[tokio::test(flavor = "multi_thread")]
async fn an_invitation_sets_the_first_password_once() {
    let f = fixture().await;
    let week = AccountTokens::DEFAULT_INVITATION_TTL;
    let (bob, invitation) = f
        .login
        .invite(
            &f.tenant,
            email("bob@example.com"),
            vec!["reader".into()],
            week,
        )
        .await
        .unwrap();
    let token = invitation.token.expose_secret().clone();
    assert_eq!(invitation.kind, AccountTokenKind::Invitation);
    // Nobody knows the placeholder password: no login before the invitation.
    assert!(f.login_as("bob@example.com", PASSWORD).await.is_err());

    // A refused password does not spend the invitation.
    let weak = f
        .login
        .redeem(&token, &secret("password1234"), &RequestContext::new())
        .await
        .unwrap_err();
    assert_eq!(weak.code(), ErrorCode::InvalidInput);

    let redeemed = f
        .login
        .redeem(&token, &secret(PASSWORD), &RequestContext::new())
        .await
        .unwrap();
    assert_eq!(redeemed.id, bob.id);
    let session = f.login_as("bob@example.com", PASSWORD).await.unwrap();
    assert_eq!(session.principal.roles, vec!["reader".to_owned()]);

    let again = f
        .login
        .redeem(
            &token,
            &secret("another long passphrase"),
            &RequestContext::new(),
        )
        .await
        .unwrap_err();
    assert_eq!(again.code(), ErrorCode::Unauthenticated, "single use");
    assert!(f.login_as("bob@example.com", PASSWORD).await.is_ok());
    let actions: Vec<String> = f
        .audit
        .events(&f.tenant)
        .iter()
        .map(|e| format!("{}:{:?}", e.action, e.outcome))
        .collect();
    assert!(
        actions.contains(&"account.password_set:Success".to_owned()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"account.password_set:Failure".to_owned()),
        "{actions:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_redemptions_of_one_token_set_one_password() {
    let f = Arc::new(fixture().await);
    let alice = f.alice(&["reader"]).await;
    let reset = f
        .login
        .reset_token(&f.tenant, &alice.id, AccountTokens::DEFAULT_RESET_TTL)
        .await
        .unwrap()
        .expect("alice exists");
    let token = reset.token.expose_secret().clone();
    let racers: Vec<_> = (0..6)
        .map(|n| {
            let (f, token) = (Arc::clone(&f), token.clone());
            tokio::spawn(async move {
                let password = format!("racer number {n} passphrase");
                let won = f
                    .login
                    .redeem(&token, &secret(&password), &RequestContext::new())
                    .await
                    .is_ok();
                (won, password)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (won, password) = racer.await.unwrap();
        if won {
            winners.push(password);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one redemption wins");
    assert!(f.login_as("alice@example.com", &winners[0]).await.is_ok());
    assert!(f.login_as("alice@example.com", PASSWORD).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reset_ends_sessions_and_expired_or_disabled_tokens_fail_alike() {
    let f = fixture().await;
    let alice = f.alice(&["reader"]).await;
    let session = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    let hour = AccountTokens::DEFAULT_RESET_TTL;
    let reset = f
        .login
        .reset_token(&f.tenant, &alice.id, hour)
        .await
        .unwrap()
        .unwrap();
    // Issuing a token changes nothing: the old password still works.
    assert!(f.login_as("alice@example.com", PASSWORD).await.is_ok());
    f.clock.advance(Duration::from_secs(1));
    f.login
        .redeem(
            reset.token.expose_secret(),
            &secret("a brand new passphrase"),
            &RequestContext::new(),
        )
        .await
        .unwrap();
    let refresh = session.tokens.refresh_token.expose_secret().clone();
    assert!(
        f.login
            .refresh(&refresh, &RequestContext::new())
            .await
            .is_err(),
        "the reset ended the old session"
    );

    let expired = f
        .login
        .reset_token(&f.tenant, &alice.id, hour)
        .await
        .unwrap()
        .unwrap();
    f.clock.advance(hour);
    let disabled = f
        .login
        .reset_token(&f.tenant, &alice.id, hour)
        .await
        .unwrap()
        .unwrap();
    f.login
        .set_disabled(&f.tenant, &alice.id, true)
        .await
        .unwrap();
    let nobody = PrincipalId::new("nobody").unwrap();
    assert!(
        f.login
            .reset_token(&f.tenant, &nobody, hour)
            .await
            .unwrap()
            .is_none()
    );
    let mut messages = Vec::new();
    for token in [expired.token, disabled.token, SecretString::from("v1.junk")] {
        let err = f
            .login
            .redeem(
                token.expose_secret(),
                &secret("yet another passphrase"),
                &RequestContext::new(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
        messages.push(err.to_string());
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "one answer for every bad token");
}

#[tokio::test(flavor = "multi_thread")]
async fn only_roles_within_the_actors_permissions_may_be_granted() {
    let f = fixture().await;
    let actor = |grants: &[&str]| {
        Principal::new(
            PrincipalId::new("admin").unwrap(),
            f.tenant.clone(),
            AuthMethod::Password,
        )
        .with_permissions(
            grants
                .iter()
                .map(|g| docaiche_core::Grant::parse(g).unwrap())
                .collect(),
        )
    };
    let editor = actor(&["documents:read", "keys:manage"]);
    assert!(f.login.may_grant(&editor, "reader"));
    assert!(
        !f.login.may_grant(&editor, "tenant-admin"),
        "documents:* exceeds it"
    );
    assert!(!f.login.may_grant(&editor, "no-such-role"));
    let everything = actor(&["*:*"]);
    assert!(f.login.may_grant(&everything, "tenant-admin"));
    assert!(
        !f.login.may_grant(&everything, "platform-admin"),
        "cross-tenant roles are never granted on an account"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn custom_roles_become_concrete_permissions_and_changes_apply_at_the_next_refresh() {
    use docaiche_core::custom_role::CustomRole;
    use docaiche_store::memory::MemoryCustomRoleStore;

    let mut f = fixture().await;
    let store = Arc::new(MemoryCustomRoleStore::new());
    f.login = f.login.with_custom_roles(store.clone());
    let editor = CustomRole::new(
        f.tenant.clone(),
        "editor",
        [Permission::DOCUMENTS_WRITE, Permission::JOBS_READ],
        f.clock.now(),
    )
    .unwrap();
    store.put(&editor).await.unwrap();
    // Another tenant's role of the same name grants nothing here.
    let elsewhere = CustomRole::new(
        TenantId::new("globex").unwrap(),
        "auditor",
        [Permission::AUDIT_READ],
        f.clock.now(),
    )
    .unwrap();
    store.put(&elsewhere).await.unwrap();
    f.alice(&["reader", "editor", "auditor"]).await;
    let session = f.login_as("alice@example.com", PASSWORD).await.unwrap();
    let claims = f
        .verifier
        .verify(session.tokens.access_token.expose_secret())
        .unwrap();
    assert_eq!(claims.roles, ["reader", "editor"]);
    let mut permissions: Vec<String> = claims.permissions.iter().map(ToString::to_string).collect();
    permissions.sort_unstable();
    assert_eq!(
        permissions,
        ["documents:read", "documents:write", "jobs:read"]
    );

    // Changed: the next refresh carries the change.
    let narrowed = CustomRole::new(
        f.tenant.clone(),
        "editor",
        [Permission::JOBS_READ],
        f.clock.now(),
    )
    .unwrap();
    store.put(&narrowed).await.unwrap();
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
    assert!(!claims.permissions.contains(&Permission::DOCUMENTS_WRITE));
    assert!(claims.permissions.contains(&Permission::JOBS_READ));

    // Deleted: gone at the next refresh.
    store.delete(&f.tenant, "editor").await.unwrap();
    let again = f
        .login
        .refresh(
            refreshed.refresh_token.expose_secret(),
            &RequestContext::new(),
        )
        .await
        .unwrap();
    let claims = f
        .verifier
        .verify(again.access_token.expose_secret())
        .unwrap();
    assert_eq!(claims.roles, ["reader"]);
    assert_eq!(claims.permissions, [Permission::DOCUMENTS_READ]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_role_is_grantable_only_within_the_actors_permissions() {
    use docaiche_core::custom_role::CustomRole;
    use docaiche_store::memory::MemoryCustomRoleStore;

    let mut f = fixture().await;
    let store = Arc::new(MemoryCustomRoleStore::new());
    f.login = f.login.with_custom_roles(store.clone());
    let at = f.clock.now();
    store
        .put(&CustomRole::new(f.tenant.clone(), "auditor", [Permission::AUDIT_READ], at).unwrap())
        .await
        .unwrap();
    // A custom role named like a configured one is shadowed by it.
    store
        .put(&CustomRole::new(f.tenant.clone(), "reader", [Permission::AUDIT_READ], at).unwrap())
        .await
        .unwrap();
    let actor = |grants: &[&str]| {
        Principal::new(
            PrincipalId::new("admin").unwrap(),
            f.tenant.clone(),
            AuthMethod::Password,
        )
        .with_permissions(
            grants
                .iter()
                .map(|g| docaiche_core::Grant::parse(g).unwrap())
                .collect(),
        )
    };
    let reader = actor(&["documents:read"]);
    let auditor = actor(&["audit:read"]);
    let globex = TenantId::new("globex").unwrap();
    assert!(
        f.login
            .may_grant_in(&auditor, &f.tenant, "auditor")
            .await
            .unwrap()
    );
    assert!(
        !f.login
            .may_grant_in(&reader, &f.tenant, "auditor")
            .await
            .unwrap()
    );
    assert!(
        !f.login
            .may_grant_in(&auditor, &globex, "auditor")
            .await
            .unwrap(),
        "another tenant's"
    );
    assert!(
        f.login
            .may_grant_in(&reader, &f.tenant, "reader")
            .await
            .unwrap(),
        "configured wins"
    );
    assert!(
        !f.login
            .may_grant_in(&auditor, &f.tenant, "reader")
            .await
            .unwrap()
    );
    assert!(
        !f.login
            .may_grant_in(&actor(&["*:*"]), &f.tenant, "platform-admin")
            .await
            .unwrap()
    );
}
