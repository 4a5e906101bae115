//! Access-token verification: `JwtVerifier::verify` against a bare
//! `jsonwebtoken::decode` with the same key and validation, per algorithm,
//! in one group so the figures read as ratios.
//!
//! Run: `cargo bench -p docaiche-auth --bench jwt`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use docaiche_auth::jwt::{Algorithm, JwtConfig, JwtIssuer, JwtKey, JwtKeySet, JwtVerifier};
use docaiche_core::{
    AuthMethod, Clock, Principal, PrincipalId, SecretBytes, SystemClock, TenantId,
};
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;

const ED_PRIVATE: &[u8] = include_bytes!("../tests/fixtures/ed25519_private.pem");
const ED_PUBLIC: &[u8] = include_bytes!("../tests/fixtures/ed25519_public.pem");
const SECRET: [u8; 32] = [0x5a; 32];
const ISSUER: &str = "https://auth.docaiche.test";
const AUDIENCE: &str = "docaiche-api";

/// The same claim shape the verifier decodes.
#[derive(Deserialize)]
#[allow(dead_code)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
    tenant: Option<String>,
    roles: Option<Vec<String>>,
    permissions: Option<Vec<String>>,
}

fn principal() -> Principal {
    Principal::new(
        PrincipalId::new("alice@example.com").unwrap(),
        TenantId::new("acme").unwrap(),
        AuthMethod::Password,
    )
    .with_roles(vec!["reader".to_owned(), "uploader".to_owned()])
    .with_permissions(
        [
            docaiche_core::Permission::DOCUMENTS_READ,
            docaiche_core::Permission::DOCUMENTS_WRITE,
        ]
        .into_iter()
        .collect(),
    )
}

fn verify(c: &mut Criterion) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock::new());
    let config = JwtConfig::new(ISSUER, AUDIENCE);
    let mut group = c.benchmark_group("jwt_verify");
    group.throughput(Throughput::Elements(1));
    let cases = [
        (
            "HS256",
            JwtKey::hmac("k1", Algorithm::HS256, &SecretBytes::from(SECRET.to_vec())).unwrap(),
            DecodingKey::from_secret(&SECRET),
            Algorithm::HS256,
        ),
        (
            "EdDSA",
            JwtKey::from_pem("k1", Algorithm::EdDSA, ED_PRIVATE).unwrap(),
            DecodingKey::from_ed_pem(ED_PUBLIC).unwrap(),
            Algorithm::EdDSA,
        ),
    ];
    for (name, key, bare_key, alg) in cases {
        let keys = Arc::new(JwtKeySet::new(key).unwrap());
        // A realistic set: the previous key is still there after a rotation.
        keys.insert(JwtKey::hmac("k0", Algorithm::HS512, &SecretBytes::from(vec![1; 64])).unwrap())
            .unwrap();
        let issuer = JwtIssuer::new(keys.clone(), config.clone(), clock.clone()).unwrap();
        let verifier = JwtVerifier::new(keys, config.clone(), clock.clone()).unwrap();
        let token = issuer
            .issue(&principal())
            .unwrap()
            .token
            .expose_secret()
            .clone();

        let mut validation = Validation::new(alg);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 30;
        assert!(jsonwebtoken::decode::<Claims>(&token, &bare_key, &validation).is_ok());
        assert!(verifier.verify(&token).is_ok());

        group.bench_with_input(
            BenchmarkId::new("jsonwebtoken", name),
            &token,
            |b, token| {
                b.iter(|| jsonwebtoken::decode::<Claims>(black_box(token), &bare_key, &validation))
            },
        );
        group.bench_with_input(BenchmarkId::new("docaiche", name), &token, |b, token| {
            b.iter(|| verifier.verify(black_box(token)))
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
