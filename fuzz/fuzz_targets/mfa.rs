//! The second factor's parsers and its sealed-secret opener on arbitrary
//! input: TOTP codes, recovery codes, base32 secrets, verification,
//! provisioning URIs (labels from the caller) and sealed secrets (bytes
//! from the database). Nothing panics; what parses is canonical and
//! round-trips; no input forges a sealed secret.

#![no_main]

use std::sync::LazyLock;

use docaiche_auth::mfa::{
    Algorithm, Digits, MfaError, MfaKeys, RecoveryCode, Totp, parse_code, provisioning_uri,
};
use docaiche_core::{PrincipalId, SecretBytes, TenantId};
use libfuzzer_sys::fuzz_target;
use time::OffsetDateTime;

static KEYS: LazyLock<MfaKeys> = LazyLock::new(|| {
    MfaKeys::new(1, [(1, SecretBytes::new(vec![7; 32]))]).expect("valid keys")
});

static TOTP: LazyLock<Totp> = LazyLock::new(|| {
    Totp::new(
        SecretBytes::new(b"12345678901234567890".to_vec()),
        Algorithm::Sha1,
        Digits::Six,
    )
    .expect("valid secret")
});

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);

    for digits in [Digits::Six, Digits::Eight] {
        if let Some(value) = parse_code(&input, digits) {
            let width = digits.count();
            assert!(value < 10u32.pow(u32::try_from(width).expect("small")));
            assert_eq!(parse_code(&format!("{value:0width$}"), digits), Some(value));
        }
    }

    if let Some(code) = RecoveryCode::parse(&input) {
        let canonical = code.expose_secret();
        assert_eq!(canonical.len(), 12);
        assert!(canonical.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        let shown = code.to_display_form();
        assert_eq!(RecoveryCode::parse(shown.expose_secret()).as_ref(), Some(&code));
    }

    if let Ok(totp) = Totp::from_base32(&input, Algorithm::Sha256, Digits::Eight) {
        let text = totp.to_base32();
        let again = Totp::from_base32(text.expose_secret(), Algorithm::Sha256, Digits::Eight)
            .expect("its own base32 parses");
        assert_eq!(again.to_base32().expose_secret(), text.expose_secret());
    }

    // A time and a last step from the input, the code from the rest.
    let at = data
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(|b| i64::from_le_bytes(b) % 400_000_000_000)
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let last = data.get(8).map(|&b| u64::from(b) * 1_000_000);
    match TOTP.verify(&input, at, last) {
        Ok(step) => {
            let now = Totp::step_at(at).expect("verified after the epoch");
            assert!(step + 1 >= now && step <= now + 1, "outside the window");
            assert!(last.is_none_or(|last| step > last), "a replay passed");
        }
        Err(MfaError::Malformed | MfaError::WrongCode | MfaError::Replayed { .. }) => {}
        Err(other) => panic!("unexpected refusal {other:?}"),
    }

    if let Ok(uri) = provisioning_uri(&TOTP, &input, &input) {
        let uri = uri.expose_secret();
        assert!(uri.starts_with("otpauth://totp/"));
        assert_eq!(uri.matches('?').count(), 1);
        assert!(!uri.contains('#'));
        assert!(uri.bytes().all(|b| b.is_ascii_graphic()));
    }

    let tenant = TenantId::new("acme").expect("tenant");
    let account = PrincipalId::new("alice").expect("account");
    assert!(
        matches!(KEYS.open(&tenant, &account, data), Err(MfaError::Unsealable)),
        "arbitrary bytes opened as a sealed secret"
    );
    if let Some(code) = RecoveryCode::parse("7qkm-0r2s-9vx1") {
        let _ = KEYS.recovery_code_hash(data, &tenant, &account, &code);
    }
});
