//! Every identifier validator, fed arbitrary strings: none panics, and every
//! accepted value satisfies the invariant its documentation promises.

#![no_main]

use docaiche_core::api_key::ApiKeyLookup;
use docaiche_core::cache::CacheKey;
use docaiche_core::id::MAX_NAME_ID_LEN;
use docaiche_core::rate_limit::RateLimitKey;
use docaiche_core::revocation::{MAX_TOKEN_ID_LEN, validate_token_id};
use docaiche_core::secret_provider::validate_secret_name;
use docaiche_core::{DocumentId, PrincipalId, RequestContext, TenantId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let s = s.as_ref();

    if let Ok(id) = TenantId::new(s) {
        check_name_id(s);
        let json = serde_json::to_string(&id).expect("an id serializes");
        let back: TenantId = serde_json::from_str(&json).expect("own output parses");
        assert_eq!(back, id);
    }
    let principal = PrincipalId::new(s);
    assert_eq!(principal.is_ok(), TenantId::new(s).is_ok());
    if principal.is_ok() {
        check_name_id(s);
    }
    // Deserialization validates exactly like the constructor.
    let json = serde_json::to_string(s).expect("a string serializes");
    assert_eq!(
        serde_json::from_str::<TenantId>(&json).is_ok(),
        TenantId::new(s).is_ok()
    );

    if let Ok(lookup) = ApiKeyLookup::new(s) {
        assert!((8..=64).contains(&s.len()), "lookup length {}", s.len());
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        assert_eq!(lookup.as_str(), s);
    }
    assert_eq!(
        serde_json::from_str::<ApiKeyLookup>(&json).is_ok(),
        ApiKeyLookup::new(s).is_ok()
    );

    if let Ok(key) = RateLimitKey::new(s) {
        assert!((1..=RateLimitKey::MAX_LEN).contains(&s.len()));
        assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()));
        assert!(!s.contains(['{', '}']), "hash tag in {s:?}");
        assert_eq!(key.as_str(), s);
    }

    if let Ok(key) = CacheKey::new("fuzz", s) {
        assert!((1..=CacheKey::MAX_LEN).contains(&s.len()));
        assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()));
        assert_eq!(key.to_string(), format!("fuzz:{s}"));
    }

    if validate_token_id(s).is_ok() {
        assert!((1..=MAX_TOKEN_ID_LEN).contains(&s.len()));
        assert!(s.bytes().all(|b| b.is_ascii_graphic()));
    }

    if validate_secret_name(s).is_ok() {
        assert!((1..=128).contains(&s.len()));
        assert!(s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'/' | b'-')
        }));
        assert!(!s.starts_with('/') && !s.ends_with('/') && !s.contains("//"));
        assert!(s.split('/').all(|seg| seg != ".." && seg != "."), "{s:?}");
    }

    if let Ok(id) = s.parse::<DocumentId>() {
        assert_eq!(id.to_string().parse::<DocumentId>().ok(), Some(id));
    }

    let ua = RequestContext::new()
        .with_user_agent(s)
        .user_agent
        .expect("always set");
    assert!(ua.len() <= RequestContext::MAX_USER_AGENT);
    assert!(s.starts_with(&ua));
});

/// The documented shape of a tenant or principal id.
fn check_name_id(s: &str) {
    assert!(
        (1..=MAX_NAME_ID_LEN).contains(&s.len()),
        "length {}",
        s.len()
    );
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+')),
        "{s:?}"
    );
    assert!(s.starts_with(|c: char| c.is_ascii_alphanumeric()), "{s:?}");
    assert!(s != "." && s != ".." && !s.contains('/'));
}
