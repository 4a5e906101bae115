//! Key rotation, key loading through a `SecretProvider`, and the JWKS.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jwt_support;

use std::sync::Arc;

use docaiche_auth::jwt::{Algorithm, JwtIssuer, JwtKey, JwtKeySet, JwtRejection, JwtVerifier};
use docaiche_core::{AuthMethod, Error, Principal, PrincipalId, SecretBytes, TenantId};
use docaiche_store::MemorySecretProvider;
use jwt_support::*;

fn alice() -> Principal {
    Principal::new(
        PrincipalId::new("alice").unwrap(),
        TenantId::new("acme").unwrap(),
        AuthMethod::Password,
    )
}

#[test]
fn key_rotation_keeps_old_tokens_valid_until_the_old_key_is_removed() {
    let (_, clock) = clock();
    let keys = Arc::new(
        JwtKeySet::new(JwtKey::from_pem("2026-01", Algorithm::EdDSA, ED_PRIVATE).unwrap()).unwrap(),
    );
    let issuer = JwtIssuer::new(keys.clone(), config(), clock.clone()).unwrap();
    let verifier = JwtVerifier::new(keys.clone(), config(), clock).unwrap();

    let old = issuer.issue(&alice()).unwrap();
    assert_eq!(old.kid, "2026-01");

    keys.rotate_to(JwtKey::from_pem("2026-02", Algorithm::EdDSA, ED_PRIVATE_2).unwrap())
        .unwrap();
    let new = issuer.issue(&alice()).unwrap();
    assert_eq!(new.kid, "2026-02", "new tokens are signed with the new key");
    assert_eq!(
        verifier.verify(old.token.expose_secret()).unwrap().kid,
        "2026-01"
    );
    assert_eq!(
        verifier.verify(new.token.expose_secret()).unwrap().kid,
        "2026-02"
    );

    keys.remove("2026-01").unwrap();
    assert_eq!(
        verifier.verify(old.token.expose_secret()),
        Err(JwtRejection::UnknownKeyId),
        "a removed kid no longer verifies"
    );
    assert!(verifier.verify(new.token.expose_secret()).is_ok());
}

#[test]
fn a_token_signed_by_the_new_key_but_naming_the_old_kid_fails() {
    let (_, clock) = clock();
    let keys = Arc::new(
        JwtKeySet::new(JwtKey::from_pem("old", Algorithm::EdDSA, ED_PRIVATE).unwrap()).unwrap(),
    );
    keys.insert(JwtKey::from_pem("new", Algorithm::EdDSA, ED_PRIVATE_2).unwrap())
        .unwrap();
    let verifier = JwtVerifier::new(keys, config(), clock.clone()).unwrap();
    let now = clock.now().unix_timestamp();
    let token = forge(
        &header("EdDSA", "old"),
        &claims(now),
        &jsonwebtoken::EncodingKey::from_ed_pem(ED_PRIVATE_2).unwrap(),
        Algorithm::EdDSA,
    );
    assert_eq!(verifier.verify(&token), Err(JwtRejection::BadSignature));
}

#[test]
fn a_verify_only_set_cannot_issue() {
    let (_, clock) = clock();
    let keys = Arc::new(JwtKeySet::verify_only());
    keys.insert(JwtKey::from_pem("pub", Algorithm::RS256, RSA_PUBLIC).unwrap())
        .unwrap();
    assert!(
        keys.rotate_to(JwtKey::from_pem("pub2", Algorithm::RS256, RSA_PUBLIC).unwrap())
            .is_err()
    );
    let issuer = JwtIssuer::new(keys, config(), clock).unwrap();
    assert!(matches!(
        issuer.issue(&alice()),
        Err(Error::Misconfigured { .. })
    ));
}

#[test]
fn jwks_publishes_public_keys_only() {
    let (_, clock) = clock();
    let (keys, _) = verifier(&clock);
    let jwks = keys.jwks();
    let json = serde_json::to_value(&jwks).unwrap();
    let kids: Vec<&str> = json["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(
        kids,
        ["ec", "ed", "rsa"],
        "HMAC key `hs` is never published"
    );
    for key in json["keys"].as_array().unwrap() {
        assert_eq!(key["use"], "sig");
        assert!(
            key.get("d").is_none() && key.get("k").is_none(),
            "no private or secret parameters: {key}"
        );
        assert!(key.get("alg").is_some());
    }
    // A verifier built from the published JWKS alone accepts our tokens.
    let issuer = JwtIssuer::new(keys.clone(), config(), clock.clone()).unwrap();
    keys.rotate_to(JwtKey::from_pem("ed-2", Algorithm::EdDSA, ED_PRIVATE_2).unwrap())
        .unwrap();
    let token = issuer.issue(&alice()).unwrap();
    let public = Arc::new(JwtKeySet::verify_only());
    for jwk in &keys.jwks().keys {
        public
            .insert(JwtKey::from_public_jwk(jwk).unwrap())
            .unwrap();
    }
    let verifier = JwtVerifier::new(public, config(), clock).unwrap();
    assert_eq!(
        verifier.verify(token.token.expose_secret()).unwrap().kid,
        "ed-2"
    );
}

#[tokio::test]
async fn keys_load_through_a_secret_provider() {
    let (_, clock) = clock();
    let provider = MemorySecretProvider::new()
        .with_secret("jwt/hmac", SecretBytes::from(vec![3; 32]))
        .unwrap()
        .with_secret("jwt/ed25519", SecretBytes::from(ED_PRIVATE.to_vec()))
        .unwrap();
    let hmac = JwtKey::load(&provider, "jwt/hmac", "h1", Algorithm::HS256)
        .await
        .unwrap();
    let ed = JwtKey::load(&provider, "jwt/ed25519", "e1", Algorithm::EdDSA)
        .await
        .unwrap();
    assert!(hmac.can_sign() && ed.can_sign());
    assert!(matches!(
        JwtKey::load(&provider, "jwt/missing", "m", Algorithm::HS256).await,
        Err(Error::Misconfigured { .. })
    ));
    assert!(
        JwtKey::load(&provider, "../etc/passwd", "m", Algorithm::HS256)
            .await
            .is_err()
    );
    // An Ed25519 PEM is not an RSA key.
    assert!(
        JwtKey::load(&provider, "jwt/ed25519", "r", Algorithm::RS256)
            .await
            .is_err()
    );

    let keys = Arc::new(JwtKeySet::new(ed).unwrap());
    let issuer = JwtIssuer::new(keys.clone(), config(), clock.clone()).unwrap();
    let verifier = JwtVerifier::new(keys, config(), clock).unwrap();
    let token = issuer.issue(&alice()).unwrap();
    assert!(verifier.verify(token.token.expose_secret()).is_ok());
}

#[test]
fn weak_or_mismatched_key_material_is_refused() {
    assert!(JwtKey::from_pem("x", Algorithm::ES256, RSA_PRIVATE).is_err());
    assert!(JwtKey::from_pem("x", Algorithm::HS256, RSA_PRIVATE).is_err());
    assert!(JwtKey::from_pem("../x", Algorithm::RS256, RSA_PRIVATE).is_err());
    assert!(JwtKey::from_pem("x", Algorithm::RS256, b"not a pem").is_err());
    // A 1024-bit RSA modulus in a JWK.
    let small = serde_json::json!({
        "kty": "RSA", "kid": "small", "alg": "RS256", "use": "sig",
        "n": jwt_support::b64(&[0xc5; 128]), "e": "AQAB"
    });
    let jwk: docaiche_auth::jwt::Jwk = serde_json::from_value(small).unwrap();
    assert!(JwtKey::from_public_jwk(&jwk).is_err());
    // Symmetric keys from a JWKS are refused.
    let oct = serde_json::json!({"kty": "oct", "kid": "o", "alg": "HS256", "k": jwt_support::b64(&[1; 32])});
    let jwk: docaiche_auth::jwt::Jwk = serde_json::from_value(oct).unwrap();
    assert!(JwtKey::from_public_jwk(&jwk).is_err());
}

#[test]
fn an_ec_key_must_fit_its_curve() {
    assert!(JwtKey::from_pem("x", Algorithm::ES384, EC_PRIVATE).is_err());
    assert!(JwtKey::from_pem("x", Algorithm::ES384, EC_PUBLIC).is_err());
    assert!(JwtKey::from_pem("x", Algorithm::ES256, EC_PUBLIC).is_ok());
    assert!(JwtKey::from_pem("x", Algorithm::PS256, RSA_PUBLIC).is_ok());
    assert!(JwtKey::from_pem("x", Algorithm::EdDSA, ED_PUBLIC).is_ok());
}

/// What `f` logs (plain text, every level), through a subscriber of its own.
///
/// Only the tests below reach the RSA warning's callsite in this binary, each
/// under its own subscriber, so tracing's process-wide interest cache for it
/// is never computed on a thread without one.
fn logged(f: impl FnOnce()) -> String {
    #[derive(Clone)]
    struct Buffer(Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buffer = Buffer(Arc::default());
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = buffer.0.lock().unwrap().clone();
    String::from_utf8(text).unwrap()
}

#[test]
fn an_rsa_signing_key_is_taken_with_a_warning_naming_its_kid() {
    let log = logged(|| {
        JwtKeySet::new(JwtKey::from_pem("rsa-2026", Algorithm::RS256, RSA_PRIVATE).unwrap())
            .unwrap();
    });
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("kid=\"rsa-2026\""), "{log}");
    assert!(log.contains("EdDSA") && log.contains("ES256"), "{log}");

    // Rotating to an RSA key warns too.
    let keys =
        JwtKeySet::new(JwtKey::from_pem("ed", Algorithm::EdDSA, ED_PRIVATE).unwrap()).unwrap();
    let log = logged(|| {
        keys.rotate_to(JwtKey::from_pem("ps-2", Algorithm::PS256, RSA_PRIVATE).unwrap())
            .unwrap();
    });
    assert!(
        log.contains("WARN") && log.contains("kid=\"ps-2\""),
        "{log}"
    );
}

#[test]
fn rsa_for_verifying_and_curve_signing_keys_log_no_warning() {
    let log = logged(|| {
        let keys =
            JwtKeySet::new(JwtKey::from_pem("ed", Algorithm::EdDSA, ED_PRIVATE).unwrap()).unwrap();
        keys.rotate_to(JwtKey::from_pem("ec", Algorithm::ES256, EC_PRIVATE).unwrap())
            .unwrap();
        // An external issuer's RSA key, for verification only.
        keys.insert(JwtKey::from_pem("idp", Algorithm::RS256, RSA_PUBLIC).unwrap())
            .unwrap();
        // An RSA private key added for verification only (not signing).
        keys.insert(JwtKey::from_pem("old-rsa", Algorithm::RS256, RSA_PRIVATE).unwrap())
            .unwrap();
    });
    assert!(!log.contains("WARN"), "{log}");
}
