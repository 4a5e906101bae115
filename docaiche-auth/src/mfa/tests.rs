//! The [`Mfa`] service over the memory store, on a manual clock.

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::mfa::{MfaState, MfaStore, NewMfaEnrolment};
use docaiche_core::{Clock, ErrorCode, ManualClock, PrincipalId, SecretBytes, TenantId};
use docaiche_store::memory::MemoryMfaStore;

use super::*;

struct Fixture {
    clock: ManualClock,
    store: Arc<MemoryMfaStore>,
    mfa: Mfa,
    acme: TenantId,
    alice: PrincipalId,
}

fn fixture() -> Fixture {
    let clock = ManualClock::new();
    let store = Arc::new(MemoryMfaStore::new());
    let keys = MfaKeys::new(1, [(1, SecretBytes::new(vec![7; 32]))]).expect("keys");
    let mfa = Mfa::new(store.clone(), keys, "DocAIche")
        .expect("valid")
        .with_clock(Arc::new(clock.clone()));
    Fixture {
        clock,
        store,
        mfa,
        acme: TenantId::new("acme").expect("id"),
        alice: PrincipalId::new("alice").expect("id"),
    }
}

fn app(enrolled: &Enrolled) -> Totp {
    Totp::from_base32(
        enrolled.secret.expose_secret(),
        Algorithm::Sha1,
        Digits::Six,
    )
    .expect("base32")
}

impl Fixture {
    async fn enrolled_and_confirmed(&self) -> (Enrolled, Totp) {
        let enrolled = self
            .mfa
            .enroll(&self.acme, &self.alice, "alice@example.com")
            .await
            .expect("enrol");
        let totp = app(&enrolled);
        self.mfa
            .confirm(
                &self.acme,
                &self.alice,
                totp.code_at(self.clock.now()).expose_secret(),
            )
            .await
            .expect("confirm");
        (enrolled, totp)
    }

    fn code(&self, totp: &Totp) -> String {
        totp.code_at(self.clock.now()).expose_secret().clone()
    }
}

#[tokio::test]
async fn enrolment_is_pending_until_a_valid_code_confirms_it() {
    let f = fixture();
    let enrolled = f
        .mfa
        .enroll(&f.acme, &f.alice, "alice@example.com")
        .await
        .expect("enrol");
    let uri = enrolled.provisioning_uri.expose_secret();
    assert!(uri.starts_with("otpauth://totp/DocAIche:alice%40example.com?secret="));
    assert!(uri.contains(enrolled.secret.expose_secret()));
    assert!(uri.ends_with("&issuer=DocAIche&algorithm=SHA1&digits=6&period=30"));
    assert_eq!(enrolled.recovery_codes.len(), DEFAULT_RECOVERY_CODES);

    let pending = f.mfa.enrolment(&f.acme, &f.alice).await.expect("get");
    let pending = pending.expect("stored");
    assert_eq!(pending.state, MfaState::Pending);
    assert_eq!(pending.recovery_codes_remaining, DEFAULT_RECOVERY_CODES);
    // The secret did not reach the store in the clear.
    let raw = data_encoding::BASE32_NOPAD
        .decode(enrolled.secret.expose_secret().as_bytes())
        .expect("base32");
    assert!(!pending.sealed_secret.windows(raw.len()).any(|w| w == raw));

    let totp = app(&enrolled);
    let code = f.code(&totp);
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, &code).await,
        Err(MfaError::NotConfirmed)
    ));
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert!(matches!(
        f.mfa.confirm(&f.acme, &f.alice, wrong).await,
        Err(MfaError::WrongCode)
    ));
    let step = f
        .mfa
        .confirm(&f.acme, &f.alice, &code)
        .await
        .expect("confirm");
    let active = f
        .mfa
        .enrolment(&f.acme, &f.alice)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(active.state, MfaState::Active);
    assert_eq!(active.last_step, Some(step));
    assert_eq!(active.confirmed_at, Some(f.clock.now()));
    assert!(matches!(
        f.mfa.confirm(&f.acme, &f.alice, &code).await,
        Err(MfaError::AlreadyActive)
    ));
    assert!(matches!(
        f.mfa.enroll(&f.acme, &f.alice, "alice@example.com").await,
        Err(MfaError::AlreadyActive)
    ));
}

#[tokio::test]
async fn a_totp_code_is_refused_on_second_use() {
    let f = fixture();
    let (_, totp) = f.enrolled_and_confirmed().await;
    // The confirming code was a use: it cannot sign in.
    let confirming = f.code(&totp);
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, &confirming).await,
        Err(MfaError::Replayed { .. })
    ));
    f.clock.advance(Duration::from_secs(30));
    let code = f.code(&totp);
    let Verified::Totp { step } = f
        .mfa
        .verify(&f.acme, &f.alice, &code)
        .await
        .expect("first use")
    else {
        panic!("a totp code");
    };
    let replay = f.mfa.verify(&f.acme, &f.alice, &code).await;
    assert!(matches!(replay, Err(MfaError::Replayed { step: s }) if s == step));
    // Still refused later in the window, and as a core error a 401.
    f.clock.advance(Duration::from_secs(29));
    let err = f
        .mfa
        .verify(&f.acme, &f.alice, &code)
        .await
        .expect_err("replay");
    assert!(err.is_refused_code());
    assert_eq!(
        docaiche_core::Error::from(err).code(),
        ErrorCode::Unauthenticated
    );
}

#[tokio::test]
async fn the_window_is_one_step_either_side() {
    let f = fixture();
    let (_, totp) = f.enrolled_and_confirmed().await;
    let now = |f: &Fixture| Totp::step_at(f.clock.now()).expect("after epoch");
    // A code of the previous step (typed just after it changed).
    f.clock.advance(Duration::from_secs(120));
    let previous = totp.code_at_step(now(&f) - 1);
    assert!(
        f.mfa
            .verify(&f.acme, &f.alice, previous.expose_secret())
            .await
            .is_ok()
    );
    // A phone one step ahead.
    let next = totp.code_at_step(now(&f) + 1);
    assert!(
        f.mfa
            .verify(&f.acme, &f.alice, next.expose_secret())
            .await
            .is_ok()
    );
    // Two steps ahead or behind: wrong.
    f.clock.advance(Duration::from_secs(300));
    for step in [now(&f) + 2, now(&f) - 2] {
        let code = totp.code_at_step(step);
        assert!(matches!(
            f.mfa.verify(&f.acme, &f.alice, code.expose_secret()).await,
            Err(MfaError::WrongCode)
        ));
    }
}

#[tokio::test]
async fn a_recovery_code_works_once_and_counts_down() {
    let f = fixture();
    let (enrolled, _) = f.enrolled_and_confirmed().await;
    let mut codes = enrolled.recovery_codes.iter();
    let first = codes.next().expect("code").to_display_form();
    assert_eq!(
        f.mfa
            .verify(&f.acme, &f.alice, first.expose_secret())
            .await
            .expect("first use"),
        Verified::RecoveryCode { remaining: 9 }
    );
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, first.expose_secret()).await,
        Err(MfaError::RecoveryCodeRefused)
    ));
    // Typed sloppily: upper case, no hyphens, o for 0.
    let second = codes.next().expect("code").expose_secret().to_uppercase();
    assert_eq!(
        f.mfa
            .verify(&f.acme, &f.alice, &second)
            .await
            .expect("second code"),
        Verified::RecoveryCode { remaining: 8 }
    );
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, "zzzz-zzzz-zzzz").await,
        Err(MfaError::RecoveryCodeRefused)
    ));
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, "not a code").await,
        Err(MfaError::Malformed)
    ));
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, "1234567").await,
        Err(MfaError::Malformed)
    ));
}

#[tokio::test]
async fn a_row_copied_to_another_account_is_refused() {
    let f = fixture();
    let (enrolled, totp) = f.enrolled_and_confirmed().await;
    let alice = f
        .store
        .get(&f.acme, &f.alice)
        .await
        .expect("get")
        .expect("stored");
    // An attacker with write access to the database copies Alice's
    // enrolment (whose codes they can produce) onto Bob's account.
    let bob = PrincipalId::new("bob").expect("id");
    let copied = NewMfaEnrolment::new(
        f.acme.clone(),
        bob.clone(),
        alice.sealed_secret.clone(),
        Vec::new(),
        f.clock.now(),
    )
    .expect("valid");
    f.store.begin(&copied).await.expect("begin");
    f.clock.advance(Duration::from_secs(30));
    assert!(matches!(
        f.mfa.confirm(&f.acme, &bob, &f.code(&totp)).await,
        Err(MfaError::Unsealable)
    ));
    // Recovery codes do not move either: their hashes name the account.
    let code = enrolled.recovery_codes.iter().next().expect("code");
    let hash = MfaKeys::new(1, [(1, SecretBytes::new(vec![7; 32]))])
        .expect("keys")
        .recovery_code_hash(&alice.sealed_secret, &f.acme, &bob, code)
        .expect("hash");
    assert!(
        !f.store
            .use_recovery_code(&f.acme, &bob, &hash, f.clock.now())
            .await
            .expect("use")
    );
}

#[tokio::test]
async fn enrolling_again_while_pending_replaces_the_secret() {
    let f = fixture();
    let first = f
        .mfa
        .enroll(&f.acme, &f.alice, "alice@example.com")
        .await
        .expect("enrol");
    let second = f
        .mfa
        .enroll(&f.acme, &f.alice, "alice@example.com")
        .await
        .expect("again");
    assert_ne!(first.secret.expose_secret(), second.secret.expose_secret());
    let stale = f.code(&app(&first));
    if stale != f.code(&app(&second)) {
        assert!(matches!(
            f.mfa.confirm(&f.acme, &f.alice, &stale).await,
            Err(MfaError::WrongCode)
        ));
    }
    f.mfa
        .confirm(&f.acme, &f.alice, &f.code(&app(&second)))
        .await
        .expect("the new secret confirms");
}

#[tokio::test]
async fn disabling_removes_the_factor_and_allows_a_new_enrolment() {
    let f = fixture();
    let (enrolled, totp) = f.enrolled_and_confirmed().await;
    assert!(f.mfa.disable(&f.acme, &f.alice).await.expect("delete"));
    assert!(!f.mfa.disable(&f.acme, &f.alice).await.expect("idempotent"));
    f.clock.advance(Duration::from_secs(30));
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, &f.code(&totp)).await,
        Err(MfaError::NotEnrolled)
    ));
    let code = enrolled
        .recovery_codes
        .iter()
        .next()
        .expect("code")
        .to_display_form();
    assert!(matches!(
        f.mfa.verify(&f.acme, &f.alice, code.expose_secret()).await,
        Err(MfaError::NotEnrolled)
    ));
    assert!(
        f.mfa
            .enroll(&f.acme, &f.alice, "alice@example.com")
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_verifications_of_one_code_accept_it_once() {
    let f = fixture();
    let (_, totp) = f.enrolled_and_confirmed().await;
    f.clock.advance(Duration::from_secs(30));
    let code = f.code(&totp);
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (mfa, tenant, account, code, barrier) = (
                f.mfa.clone(),
                f.acme.clone(),
                f.alice.clone(),
                code.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                mfa.verify(&tenant, &account, &code).await
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(_) => accepted += 1,
            Err(MfaError::Replayed { .. }) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(accepted, 1);
}

#[tokio::test]
async fn parameters_are_kept_per_enrolment() {
    let f = fixture();
    let strict = f
        .mfa
        .clone()
        .with_algorithm(Algorithm::Sha512)
        .with_digits(Digits::Eight)
        .with_recovery_codes(4)
        .expect("valid");
    let enrolled = strict
        .enroll(&f.acme, &f.alice, "alice")
        .await
        .expect("enrol");
    assert!(
        enrolled
            .provisioning_uri
            .expose_secret()
            .ends_with("&algorithm=SHA512&digits=8&period=30")
    );
    assert_eq!(enrolled.recovery_codes.len(), 4);
    let totp = Totp::from_base32(
        enrolled.secret.expose_secret(),
        Algorithm::Sha512,
        Digits::Eight,
    )
    .expect("base32");
    // The default service (SHA1, six digits) verifies it: the parameters
    // travel sealed with the secret.
    f.mfa
        .confirm(&f.acme, &f.alice, &f.code(&totp))
        .await
        .expect("confirm");
    assert!(f.mfa.clone().with_recovery_codes(21).is_err());
}

#[tokio::test]
async fn nothing_secret_prints() {
    let f = fixture();
    let enrolled = f
        .mfa
        .enroll(&f.acme, &f.alice, "alice@example.com")
        .await
        .expect("enrol");
    let printed = format!("{enrolled:?} {:?}", f.mfa);
    assert!(
        !printed.contains(enrolled.secret.expose_secret()),
        "{printed}"
    );
    for code in enrolled.recovery_codes.iter() {
        assert!(!printed.contains(code.expose_secret()));
    }
    assert!(
        Mfa::new(
            f.store.clone(),
            MfaKeys::new(1, [(1, SecretBytes::new(vec![7; 32]))]).expect("keys"),
            "bad\nissuer"
        )
        .is_err()
    );
}
