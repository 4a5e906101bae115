//! argon2id passwords: verification, rehash on parameter change, equal
//! work for unknown accounts, length limits, the common-password list, and
//! hashing off the runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use docaiche_auth::password::{
    PasswordConfig, PasswordPolicy, PasswordRejection, PasswordService, PasswordVerdict,
};
use docaiche_core::{Error, SecretString};

/// The OWASP minimum setting (m = 7 MiB, t = 5 is the OWASP pairing; t = 1
/// keeps debug-build tests fast while exercising the same code).
fn light(iterations: u32) -> PasswordConfig {
    let mut config = PasswordConfig::default();
    config.memory_kib = 7 * 1024;
    config.iterations = iterations;
    config
}

fn secret(s: &str) -> SecretString {
    SecretString::from(s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defaults_are_owasp_argon2id() {
    let config = PasswordConfig::default();
    assert_eq!(
        (config.memory_kib, config.iterations, config.parallelism),
        (19 * 1024, 2, 1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verifies_correct_and_rejects_incorrect_passwords() {
    let passwords = PasswordService::new(light(1)).await.unwrap();
    let stored = passwords
        .hash(&secret("correct horse battery"))
        .await
        .unwrap();
    assert!(
        stored.starts_with("$argon2id$v=19$m=7168,t=1,p=1$"),
        "{stored}"
    );
    let again = passwords
        .hash(&secret("correct horse battery"))
        .await
        .unwrap();
    assert_ne!(stored, again, "a fresh salt every time");
    assert_eq!(
        passwords
            .verify(&secret("correct horse battery"), Some(&stored))
            .await
            .unwrap(),
        PasswordVerdict::Valid { rehashed: None }
    );
    for wrong in ["correct horse batterz", "", "CORRECT HORSE BATTERY"] {
        assert_eq!(
            passwords
                .verify(&secret(wrong), Some(&stored))
                .await
                .unwrap(),
            PasswordVerdict::Invalid
        );
    }
    assert!(matches!(
        passwords
            .verify(&secret("x"), Some("not a phc string"))
            .await,
        Err(Error::Internal { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehashes_transparently_when_parameters_change() {
    let old = PasswordService::new(light(1)).await.unwrap();
    let stored = old.hash(&secret("correct horse battery")).await.unwrap();
    let new = PasswordService::new(light(2)).await.unwrap();
    assert!(new.needs_rehash(&stored));
    let PasswordVerdict::Valid {
        rehashed: Some(rehashed),
    } = new
        .verify(&secret("correct horse battery"), Some(&stored))
        .await
        .unwrap()
    else {
        panic!("expected a rehash");
    };
    assert!(rehashed.contains("m=7168,t=2,p=1"), "{rehashed}");
    assert!(!new.needs_rehash(&rehashed));
    assert_eq!(
        new.verify(&secret("correct horse battery"), Some(&rehashed))
            .await
            .unwrap(),
        PasswordVerdict::Valid { rehashed: None }
    );
    assert_eq!(
        new.verify(&secret("wrong password"), Some(&stored))
            .await
            .unwrap(),
        PasswordVerdict::Invalid,
        "no rehash without a match"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_accounts_cost_one_verification_like_known_ones() {
    let passwords = PasswordService::new(light(1)).await.unwrap();
    assert_eq!(passwords.hash_operations(), 1, "the dummy hash, once");
    let stored = passwords
        .hash(&secret("correct horse battery"))
        .await
        .unwrap();

    let before = passwords.hash_operations();
    let known = passwords
        .verify(&secret("a guess"), Some(&stored))
        .await
        .unwrap();
    let known_cost = passwords.hash_operations() - before;

    let before = passwords.hash_operations();
    let unknown = passwords.verify(&secret("a guess"), None).await.unwrap();
    let unknown_cost = passwords.hash_operations() - before;

    assert_eq!(known, PasswordVerdict::Invalid);
    assert_eq!(unknown, PasswordVerdict::Invalid);
    assert_eq!((known_cost, unknown_cost), (1, 1));
    // Even the dummy's own password does not log in to a missing account.
    assert_eq!(
        passwords
            .verify(&secret("docaiche dummy password"), None)
            .await
            .unwrap(),
        PasswordVerdict::Invalid
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn length_limits_are_checked_before_hashing() {
    let passwords = PasswordService::new(light(1)).await.unwrap();
    let stored = passwords
        .hash(&secret("correct horse battery"))
        .await
        .unwrap();
    let ops = passwords.hash_operations();
    let huge = secret(&"a".repeat(1025));
    assert!(matches!(
        passwords.hash(&huge).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        passwords.verify(&huge, Some(&stored)).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        passwords.verify(&huge, None).await,
        Err(Error::InvalidInput { .. })
    ));
    assert!(matches!(
        passwords.hash(&secret("short")).await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(passwords.hash_operations(), ops, "no hashing was done");
    // The limit itself is accepted; multi-byte characters count as bytes.
    passwords.hash(&secret(&"a".repeat(1024))).await.unwrap();
    assert!(passwords.hash(&secret(&"é".repeat(513))).await.is_err());
}

#[tokio::test(flavor = "current_thread")]
async fn hashing_does_not_block_the_runtime() {
    // A hash of tens of milliseconds: long enough that a loaded machine
    // cannot finish it on the blocking pool before this task looks again.
    let passwords = std::sync::Arc::new(PasswordService::new(light(8)).await.unwrap());
    let hashing = tokio::spawn({
        let passwords = passwords.clone();
        async move { passwords.hash(&secret("correct horse battery")).await }
    });
    // On a single-threaded runtime, this loop goes round more than once
    // only if the hash is computed elsewhere (the blocking pool): computed
    // inline, the spawned task finishes in its first poll, at the first
    // yield, and the loop sees exactly one tick.
    let mut ticks = 0u32;
    while !hashing.is_finished() {
        ticks += 1;
        tokio::task::yield_now().await;
    }
    hashing.await.unwrap().unwrap();
    assert!(ticks > 1, "the runtime was blocked: {ticks} ticks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn common_breached_passwords_are_refused_before_hashing() {
    let passwords = PasswordService::new(light(1)).await.unwrap();
    assert_eq!(passwords.policy(), &PasswordPolicy::default());
    let ops = passwords.hash_operations();
    for listed in [
        "password1234",
        "Qwertyuiop123",
        " 1q2w3e4r5t6y ",
        "Password 123",
    ] {
        let err = passwords.hash(&secret(listed)).await.unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{listed:?}");
        assert_eq!(
            err.to_string(),
            "invalid input: password is among the most common breached passwords"
        );
        assert!(!format!("{err:?}").contains(listed.trim()), "{err:?}");
    }
    assert_eq!(passwords.hash_operations(), ops, "no hashing was done");
    // Login is not a place to enforce a policy: a password set before the
    // list existed still verifies (and is replaced at the next change).
    let mut lax = light(1);
    lax.reject_common = false;
    let lax = PasswordService::new(lax).await.unwrap();
    let stored = lax.hash(&secret("password1234")).await.unwrap();
    assert!(
        passwords
            .verify(&secret("password1234"), Some(&stored))
            .await
            .unwrap()
            .is_valid()
    );
    assert_eq!(
        lax.policy().check(&secret("password1234")),
        Ok(()),
        "reject_common = false turns the list off"
    );
    assert_eq!(
        passwords.policy().check(&secret("password1234")),
        Err(PasswordRejection::Common)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_weak_or_inconsistent_settings() {
    let mut weak = PasswordConfig::default();
    weak.memory_kib = 1024;
    assert!(matches!(
        PasswordService::new(weak).await,
        Err(Error::Misconfigured { .. })
    ));
    let mut unbounded = PasswordConfig::default();
    unbounded.max_bytes = 1 << 20;
    assert!(PasswordService::new(unbounded).await.is_err());
    let parsed: PasswordConfig =
        serde_json::from_value(serde_json::json!({ "iterations": 3 })).unwrap();
    assert_eq!(parsed.iterations, 3);
    assert_eq!(parsed.memory_kib, 19 * 1024);
    assert_eq!(parsed.min_chars, 12);
    assert!(parsed.reject_common, "the list is on unless turned off");
    let parsed: PasswordConfig =
        serde_json::from_value(serde_json::json!({ "reject_common": false })).unwrap();
    assert!(!parsed.policy().unwrap().rejects_common_passwords());
    let mut empty = PasswordConfig::default();
    empty.min_chars = 0;
    assert!(matches!(
        PasswordService::new(empty).await,
        Err(Error::Misconfigured { .. })
    ));
}
