//! Bearer token verification on arbitrary strings: `JwtVerifier::verify`
//! (size limit, header, `kid`, algorithm, signature, claims) never panics
//! and never accepts a token it did not sign.

#![no_main]

use std::sync::{Arc, OnceLock};

use docaiche_auth::jwt::{Algorithm, JwtConfig, JwtKey, JwtKeySet, JwtVerifier};
use docaiche_core::{Clock, ManualClock, SecretBytes};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static JwtVerifier {
    static VERIFIER: OnceLock<JwtVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let clock: Arc<dyn Clock> = Arc::new(ManualClock::new());
        let key = JwtKey::hmac("fuzz", Algorithm::HS256, &SecretBytes::from(vec![42; 32]))
            .expect("a valid key");
        let keys = Arc::new(JwtKeySet::new(key).expect("a key set"));
        JwtVerifier::new(keys, JwtConfig::new("https://fuzz.example", "docaiche"), clock)
            .expect("a verifier")
    })
}

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    // Random bytes cannot carry a valid HMAC-SHA-256 of a key they never saw.
    assert!(verifier().verify(&token).is_err());
});
