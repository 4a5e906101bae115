//! One test per attack on access-token verification, each asserting the
//! specific rejection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod jwt_support;

use std::sync::Arc;
use std::time::Duration;

use docaiche_auth::jwt::{
    Algorithm, JwtAuthenticator, JwtIssuer, JwtKey, JwtRejection, RoleCatalog,
};
use docaiche_core::{
    AuthFailure, AuthMethod, Credential, Error, Grant, Permission, Principal, PrincipalId, Problem,
    RequestContext, Role, SecretBytes, SecretString, TenantId, TokenRevocationStore,
};
use docaiche_store::MemoryRevocationStore;
use jsonwebtoken::EncodingKey;
use jwt_support::*;
use serde_json::json;

fn alice() -> Principal {
    Principal::new(
        PrincipalId::new("alice").unwrap(),
        TenantId::new("acme").unwrap(),
        AuthMethod::Password,
    )
    .with_roles(vec!["reader".to_owned()])
    .with_permissions([Permission::JOBS_READ].into_iter().collect())
}

#[test]
fn round_trips_every_supported_algorithm() {
    let (_, clock) = clock();
    for (kid, alg, pem) in [
        ("rsa", Algorithm::RS256, RSA_PRIVATE),
        ("ec", Algorithm::ES256, EC_PRIVATE),
        ("ed", Algorithm::EdDSA, ED_PRIVATE),
    ] {
        let keys = Arc::new(
            docaiche_auth::jwt::JwtKeySet::new(JwtKey::from_pem(kid, alg, pem).unwrap()).unwrap(),
        );
        let issuer = JwtIssuer::new(keys.clone(), config(), clock.clone()).unwrap();
        let verifier = docaiche_auth::jwt::JwtVerifier::new(keys, config(), clock.clone()).unwrap();
        let issued = issuer.issue(&alice()).unwrap();
        let claims = verifier.verify(issued.token.expose_secret()).unwrap();
        assert_eq!(claims.kid, kid);
        assert_eq!(claims.subject.as_str(), "alice");
        assert_eq!(claims.tenant.as_str(), "acme");
        assert_eq!(claims.token_id, issued.token_id);
    }
    for (alg, len) in [
        (Algorithm::HS256, 32),
        (Algorithm::HS384, 48),
        (Algorithm::HS512, 64),
    ] {
        let key = JwtKey::hmac("h", alg, &SecretBytes::from(vec![9; len])).unwrap();
        let keys = Arc::new(docaiche_auth::jwt::JwtKeySet::new(key).unwrap());
        let issuer = JwtIssuer::new(keys.clone(), config(), clock.clone()).unwrap();
        let verifier = docaiche_auth::jwt::JwtVerifier::new(keys, config(), clock.clone()).unwrap();
        let issued = issuer.issue(&alice()).unwrap();
        assert!(
            verifier.verify(issued.token.expose_secret()).is_ok(),
            "{alg:?}"
        );
    }
}

#[test]
fn issued_tokens_carry_typ_at_jwt_and_the_kid() {
    let (_, clock) = clock();
    let (keys, _) = verifier(&clock);
    let issuer = JwtIssuer::new(keys, config(), clock).unwrap();
    let issued = issuer.issue(&alice()).unwrap();
    let header = jsonwebtoken::decode_header(issued.token.expose_secret()).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(header.kid.as_deref(), Some("hs"));
    assert_eq!(header.alg, Algorithm::HS256);
}

#[test]
fn a_forged_valid_token_verifies() {
    // The forger itself is sound: the rejections below are about the change
    // each test makes, not about the forger.
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let token = hs256(&header("HS256", "hs"), &claims(now(&clock_handle)));
    assert!(verifier.verify(&token).is_ok());
}

#[test]
fn rejects_alg_none() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let body = b64(claims(now(&clock_handle)).to_string().as_bytes());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let head = b64(header(alg, "hs").to_string().as_bytes());
        for token in [format!("{head}.{body}."), format!("{head}.{body}.c2ln")] {
            assert_eq!(
                verifier.verify(&token),
                Err(JwtRejection::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }
}

#[test]
fn rejects_hs256_signed_with_the_rsa_public_key_as_hmac_secret() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let forged = forge(
        &header("HS256", "rsa"),
        &claims(now(&clock_handle)),
        &EncodingKey::from_secret(RSA_PUBLIC),
        Algorithm::HS256,
    );
    assert_eq!(
        verifier.verify(&forged),
        Err(JwtRejection::AlgorithmMismatch)
    );
    // And the public PEM can never become an HMAC key in the first place.
    assert!(
        JwtKey::hmac(
            "x",
            Algorithm::HS256,
            &SecretBytes::from(RSA_PUBLIC.to_vec())
        )
        .is_err()
    );
}

#[test]
fn rejects_a_token_whose_alg_differs_from_its_keys() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    // An RS256 token naming the HMAC key, and an EdDSA token naming the EC key.
    let rs = forge(
        &header("RS256", "hs"),
        &claims(now(&clock_handle)),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        Algorithm::RS256,
    );
    assert_eq!(verifier.verify(&rs), Err(JwtRejection::AlgorithmMismatch));
    let ed = forge(
        &header("EdDSA", "ec"),
        &claims(now(&clock_handle)),
        &EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
        Algorithm::EdDSA,
    );
    assert_eq!(verifier.verify(&ed), Err(JwtRejection::AlgorithmMismatch));
}

#[test]
fn rejects_kid_with_path_traversal_or_sql() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    for kid in [
        "../../../../etc/passwd",
        "..\\..\\keys\\hs",
        "hs' OR '1'='1",
        "hs; DROP TABLE jwt_keys; --",
        "hs\u{0000}",
        "",
    ] {
        let token = hs256(&header("HS256", kid), &claims(now(&clock_handle)));
        let rejection = verifier.verify(&token);
        assert_eq!(rejection, Err(JwtRejection::InvalidKeyId), "{kid:?}");
        let err: Error = rejection.unwrap_err().into();
        assert!(matches!(
            err,
            Error::Unauthenticated {
                reason: AuthFailure::Malformed
            }
        ));
    }
    let no_kid = hs256(
        &json!({"alg": "HS256", "typ": "at+jwt"}),
        &claims(now(&clock_handle)),
    );
    assert_eq!(verifier.verify(&no_kid), Err(JwtRejection::InvalidKeyId));
}

#[test]
fn rejects_unknown_kid() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let token = hs256(&header("HS256", "not-a-key"), &claims(now(&clock_handle)));
    assert_eq!(verifier.verify(&token), Err(JwtRejection::UnknownKeyId));
}

#[test]
fn rejects_expired_tokens_after_the_leeway() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let token = hs256(&header("HS256", "hs"), &claims(now(&clock_handle)));
    clock_handle.advance(Duration::from_secs(600 + 29));
    assert!(verifier.verify(&token).is_ok(), "within the 30 s leeway");
    clock_handle.advance(Duration::from_secs(1));
    assert_eq!(verifier.verify(&token), Err(JwtRejection::Expired));
}

#[test]
fn rejects_nbf_in_the_future() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let mut c = claims(now(&clock_handle));
    c["nbf"] = json!(now(&clock_handle) + 120);
    let token = hs256(&header("HS256", "hs"), &c);
    assert_eq!(verifier.verify(&token), Err(JwtRejection::NotYetValid));
    clock_handle.advance(Duration::from_secs(90));
    assert!(verifier.verify(&token).is_ok(), "nbf within leeway");
}

#[test]
fn rejects_iat_in_the_future() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let mut c = claims(now(&clock_handle));
    c["iat"] = json!(now(&clock_handle) + 300);
    let token = hs256(&header("HS256", "hs"), &c);
    assert_eq!(verifier.verify(&token), Err(JwtRejection::IssuedInFuture));
}

#[test]
fn rejects_wrong_aud() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    for aud in [
        json!("another-api"),
        json!(["another-api", "third"]),
        json!([]),
    ] {
        let mut c = claims(now(&clock_handle));
        c["aud"] = aud.clone();
        let token = hs256(&header("HS256", "hs"), &c);
        assert_eq!(
            verifier.verify(&token),
            Err(JwtRejection::WrongAudience),
            "{aud}"
        );
    }
    let mut c = claims(now(&clock_handle));
    c["aud"] = json!(["another-api", AUDIENCE]);
    assert!(verifier.verify(&hs256(&header("HS256", "hs"), &c)).is_ok());
}

#[test]
fn rejects_missing_aud_which_bare_jsonwebtoken_accepts() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let mut c = claims(now(&clock_handle));
    c.as_object_mut().unwrap().remove("aud");
    let token = hs256(&header("HS256", "hs"), &c);
    assert_eq!(
        verifier.verify(&token),
        Err(JwtRejection::MissingClaim("aud"))
    );

    // The pitfall this guards against: `jsonwebtoken` with an expected
    // audience but without `aud` in the required claims accepts the token.
    let mut bare = jsonwebtoken::Validation::new(Algorithm::HS256);
    bare.set_audience(&[AUDIENCE]);
    bare.set_issuer(&[ISSUER]);
    bare.validate_exp = false;
    let decoded = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(&HMAC_SECRET),
        &bare,
    );
    assert!(
        decoded.is_ok(),
        "jsonwebtoken's default lets a token without aud through"
    );
}

#[test]
fn rejects_wrong_iss() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let mut c = claims(now(&clock_handle));
    c["iss"] = json!("https://evil.example");
    let token = hs256(&header("HS256", "hs"), &c);
    assert_eq!(verifier.verify(&token), Err(JwtRejection::WrongIssuer));
}

#[test]
fn rejects_missing_each_required_claim() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    for claim in ["exp", "iat", "iss", "aud", "sub", "jti", "tenant"] {
        let mut c = claims(now(&clock_handle));
        c.as_object_mut().unwrap().remove(claim);
        let token = hs256(&header("HS256", "hs"), &c);
        assert_eq!(
            verifier.verify(&token),
            Err(JwtRejection::MissingClaim(claim)),
            "{claim}"
        );
    }
}

#[test]
fn rejects_invalid_tenant_subject_and_permission_claims() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    for (claim, value) in [
        ("tenant", json!("../globex")),
        ("tenant", json!("acme' OR 1=1")),
        ("sub", json!("alice/../../root")),
        ("permissions", json!(["*:*"])),
        ("permissions", json!(["documents:*"])),
        ("jti", json!("")),
    ] {
        let mut c = claims(now(&clock_handle));
        c[claim] = value.clone();
        let token = hs256(&header("HS256", "hs"), &c);
        assert_eq!(
            verifier.verify(&token),
            Err(JwtRejection::InvalidClaim(claim)),
            "{claim}={value}"
        );
    }
}

#[test]
fn rejects_wrong_typ() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    for typ in [json!("JWT"), json!("id_token+jwt"), json!(null), json!(1)] {
        let mut h = header("HS256", "hs");
        h["typ"] = typ.clone();
        let token = hs256(&h, &claims(now(&clock_handle)));
        let got = verifier.verify(&token);
        assert!(
            got == Err(JwtRejection::WrongType) || got == Err(JwtRejection::Malformed),
            "{typ}: {got:?}"
        );
    }
    let mut h = header("HS256", "hs");
    h.as_object_mut().unwrap().remove("typ");
    let token = hs256(&h, &claims(now(&clock_handle)));
    assert_eq!(verifier.verify(&token), Err(JwtRejection::WrongType));
    let mut h = header("HS256", "hs");
    h["typ"] = json!("application/AT+JWT");
    assert!(
        verifier
            .verify(&hs256(&h, &claims(now(&clock_handle))))
            .is_ok()
    );
}

#[test]
fn rejects_crit_header() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let mut h = header("HS256", "hs");
    h["crit"] = json!(["b64"]);
    h["b64"] = json!(false);
    let token = hs256(&h, &claims(now(&clock_handle)));
    assert_eq!(verifier.verify(&token), Err(JwtRejection::CriticalHeader));
}

#[test]
fn rejects_tampered_payload() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    for (kid, alg, key) in [
        (
            "hs",
            Algorithm::HS256,
            EncodingKey::from_secret(&HMAC_SECRET),
        ),
        (
            "rsa",
            Algorithm::RS256,
            EncodingKey::from_rsa_pem(RSA_PRIVATE).unwrap(),
        ),
        (
            "ed",
            Algorithm::EdDSA,
            EncodingKey::from_ed_pem(ED_PRIVATE).unwrap(),
        ),
        (
            "ec",
            Algorithm::ES256,
            EncodingKey::from_ec_pem(EC_PRIVATE).unwrap(),
        ),
    ] {
        let alg_name = format!("{alg:?}");
        let token = forge(
            &header(&alg_name, kid),
            &claims(now(&clock_handle)),
            &key,
            alg,
        );
        assert!(verifier.verify(&token).is_ok(), "{kid}");
        let parts: Vec<&str> = token.split('.').collect();
        let mut escalated = claims(now(&clock_handle));
        escalated["tenant"] = json!("globex");
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            b64(escalated.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            verifier.verify(&tampered),
            Err(JwtRejection::BadSignature),
            "{kid}"
        );
    }
}

#[test]
fn rejects_tampered_signature() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let token = hs256(&header("HS256", "hs"), &claims(now(&clock_handle)));
    let (message, signature) = token.rsplit_once('.').unwrap();
    let mut sig = String::new();
    let mut bytes =
        base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, signature)
            .unwrap();
    bytes[0] ^= 0x01;
    sig.push_str(&b64(&bytes));
    assert_eq!(
        verifier.verify(&format!("{message}.{sig}")),
        Err(JwtRejection::BadSignature)
    );
    // A signature from another key of the same algorithm.
    let other = forge(
        &header("HS256", "hs"),
        &claims(now(&clock_handle)),
        &EncodingKey::from_secret(&[0x11; 32]),
        Algorithm::HS256,
    );
    assert_eq!(verifier.verify(&other), Err(JwtRejection::BadSignature));
    // A truncated signature.
    assert_eq!(
        verifier.verify(&format!("{message}.{}", &signature[..20])),
        Err(JwtRejection::BadSignature)
    );
    // A signature that is not base64url.
    assert_eq!(
        verifier.verify(&format!(
            "{message}.{}",
            signature.replace(|c: char| c.is_ascii_alphabetic(), "*")
        )),
        Err(JwtRejection::Malformed)
    );
}

#[test]
fn rejects_oversized_tokens_before_parsing() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    // Garbage beyond the limit is refused as too large, not as malformed:
    // nothing was parsed.
    assert_eq!(
        verifier.verify(&"a".repeat(8 * 1024 + 1)),
        Err(JwtRejection::TooLarge)
    );
    let mut c = claims(now(&clock_handle));
    c["padding"] = json!("x".repeat(8 * 1024));
    let token = hs256(&header("HS256", "hs"), &c);
    assert_eq!(verifier.verify(&token), Err(JwtRejection::TooLarge));
}

#[test]
fn rejects_malformed_base64_and_json() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let good = hs256(&header("HS256", "hs"), &claims(now(&clock_handle)));
    let parts: Vec<&str> = good.split('.').collect();
    let not_json = b64(b"{not json");
    let cases = [
        format!("{}=.{}.{}", parts[0], parts[1], parts[2]),
        format!("$$$.{}.{}", parts[1], parts[2]),
        format!("{not_json}.{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"[1,2,3]"), parts[1], parts[2]),
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[2]),
        format!("{}.{}", parts[0], parts[1]),
        String::from("not a jwt"),
        String::new(),
    ];
    for token in &cases {
        assert_eq!(
            verifier.verify(token),
            Err(JwtRejection::Malformed),
            "{token}"
        );
    }
    // A correctly signed payload that is not JSON.
    let message = format!("{}.{}", parts[0], b64(b"{\"iss\":"));
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(&HMAC_SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&format!("{message}.{signature}")),
        Err(JwtRejection::Malformed)
    );
    // A payload with base64 the signature covers but that does not decode.
    let message = format!("{}.%%%%", parts[0]);
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(&HMAC_SECRET),
        Algorithm::HS256,
    )
    .unwrap();
    assert_eq!(
        verifier.verify(&format!("{message}.{signature}")),
        Err(JwtRejection::Malformed)
    );
}

#[tokio::test]
async fn rejects_revoked_jti() {
    let (clock_handle, clock) = clock();
    let (keys, verifier) = verifier(&clock);
    let revocations = Arc::new(MemoryRevocationStore::new().with_clock(clock.clone()));
    let auth = JwtAuthenticator::new(verifier, revocations.clone());
    let issuer = JwtIssuer::new(keys, config(), clock).unwrap();
    let issued = issuer.issue(&alice()).unwrap();
    let credential = Credential::Bearer(SecretString::from(issued.token.expose_secret().clone()));
    assert!(
        auth.authenticate(&credential, &RequestContext::new())
            .await
            .is_ok()
    );

    revocations
        .revoke(&issued.token_id, issued.expires_at)
        .await
        .unwrap();
    let err = auth
        .authenticate(&credential, &RequestContext::new())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::Unauthenticated {
            reason: AuthFailure::Revoked
        }
    ));
    let _ = clock_handle;
}

use docaiche_core::Authenticator as _;

#[tokio::test]
async fn the_client_never_learns_which_check_failed() {
    let (clock_handle, clock) = clock();
    let (_, verifier) = verifier(&clock);
    let auth = JwtAuthenticator::new(verifier, Arc::new(MemoryRevocationStore::new()));
    let mut wrong_aud = claims(now(&clock_handle));
    wrong_aud["aud"] = json!("x");
    let tokens = [
        hs256(&header("HS256", "nope"), &claims(now(&clock_handle))),
        hs256(&header("HS256", "hs"), &wrong_aud),
        "a.b.c".to_owned(),
    ];
    let mut details = std::collections::HashSet::new();
    for token in tokens {
        let err = auth.authenticate_token(&token).await.unwrap_err();
        let problem = Problem::from_error(&err);
        let body = serde_json::to_string(&problem).unwrap();
        assert!(
            !body.contains("kid") && !body.contains("aud") && !body.contains("malformed"),
            "{body}"
        );
        details.insert(body);
    }
    assert_eq!(details.len(), 1, "one generic answer for every rejection");
}

#[tokio::test]
async fn principal_gets_roles_expanded_through_the_catalog() {
    let (_, clock) = clock();
    let (keys, verifier) = verifier(&clock);
    let catalog = RoleCatalog::new([Role::new("reader", [Grant::parse("documents:*").unwrap()])]);
    let auth =
        JwtAuthenticator::new(verifier, Arc::new(MemoryRevocationStore::new())).with_roles(catalog);
    let issuer = JwtIssuer::new(keys, config(), clock).unwrap();
    let issued = issuer.issue(&alice()).unwrap();
    let principal = auth
        .authenticate_token(issued.token.expose_secret())
        .await
        .unwrap();
    assert_eq!(principal.tenant.as_str(), "acme");
    assert_eq!(principal.roles, ["reader"]);
    assert!(
        principal.has_permission(&Permission::DOCUMENTS_DELETE),
        "from the role"
    );
    assert!(
        principal.has_permission(&Permission::JOBS_READ),
        "concrete claim"
    );
    assert!(!principal.has_permission(&Permission::KEYS_MANAGE));
    assert_eq!(
        principal.auth_method,
        AuthMethod::Jwt {
            kid: "hs".to_owned()
        }
    );
    assert_eq!(principal.expires_at, Some(issued.expires_at));
}
