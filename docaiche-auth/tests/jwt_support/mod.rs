//! Shared helpers for the JWT, OIDC and session tests: fixture keys, a
//! manual clock and a token forger that signs arbitrary headers and claims.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use docaiche_auth::jwt::{Algorithm, JwtConfig, JwtKey, JwtKeySet, JwtVerifier};
use docaiche_core::{Clock, ManualClock, SecretBytes};
use jsonwebtoken::EncodingKey;
use serde_json::{Value, json};

pub const ISSUER: &str = "https://auth.docaiche.test";
pub const AUDIENCE: &str = "docaiche-api";

pub const RSA_PRIVATE: &[u8] = include_bytes!("../fixtures/rsa_private.pem");
pub const RSA_PUBLIC: &[u8] = include_bytes!("../fixtures/rsa_public.pem");
pub const EC_PRIVATE: &[u8] = include_bytes!("../fixtures/ec_private.pem");
pub const EC_PUBLIC: &[u8] = include_bytes!("../fixtures/ec_public.pem");
pub const ED_PRIVATE: &[u8] = include_bytes!("../fixtures/ed25519_private.pem");
pub const ED_PUBLIC: &[u8] = include_bytes!("../fixtures/ed25519_public.pem");
pub const ED_PRIVATE_2: &[u8] = include_bytes!("../fixtures/ed25519_private_2.pem");

pub const HMAC_SECRET: [u8; 32] = [0x5a; 32];

pub fn clock() -> (ManualClock, Arc<dyn Clock>) {
    let clock = ManualClock::new();
    let shared: Arc<dyn Clock> = Arc::new(clock.clone());
    (clock, shared)
}

pub fn config() -> JwtConfig {
    JwtConfig::new(ISSUER, AUDIENCE)
}

pub fn hmac_key(kid: &str) -> JwtKey {
    JwtKey::hmac(
        kid,
        Algorithm::HS256,
        &SecretBytes::from(HMAC_SECRET.to_vec()),
    )
    .unwrap()
}

/// A verifier over `hs` (HS256), `rsa` (RS256), `ec` (ES256) and `ed`
/// (EdDSA) keys, signing with `hs`.
pub fn verifier(clock: &Arc<dyn Clock>) -> (Arc<JwtKeySet>, JwtVerifier) {
    let keys = Arc::new(JwtKeySet::new(hmac_key("hs")).unwrap());
    keys.insert(JwtKey::from_pem("rsa", Algorithm::RS256, RSA_PRIVATE).unwrap())
        .unwrap();
    keys.insert(JwtKey::from_pem("ec", Algorithm::ES256, EC_PRIVATE).unwrap())
        .unwrap();
    keys.insert(JwtKey::from_pem("ed", Algorithm::EdDSA, ED_PRIVATE).unwrap())
        .unwrap();
    let verifier = JwtVerifier::new(keys.clone(), config(), clock.clone()).unwrap();
    (keys, verifier)
}

/// Valid claims at `now` (Unix seconds).
pub fn claims(now: i64) -> Value {
    json!({
        "iss": ISSUER,
        "sub": "alice",
        "aud": AUDIENCE,
        "exp": now + 600,
        "iat": now,
        "jti": "tok-0001",
        "tenant": "acme",
        "roles": ["reader"],
        "permissions": ["documents:read"],
    })
}

pub fn header(alg: &str, kid: &str) -> Value {
    json!({ "alg": alg, "typ": "at+jwt", "kid": kid })
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Sign `header.claims` with `key` and `alg`, whatever the header says.
pub fn forge(header: &Value, claims: &Value, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{signature}")
}

pub fn hs256(header: &Value, claims: &Value) -> String {
    forge(
        header,
        claims,
        &EncodingKey::from_secret(&HMAC_SECRET),
        Algorithm::HS256,
    )
}

pub fn now(clock: &ManualClock) -> i64 {
    clock.now().unix_timestamp()
}
