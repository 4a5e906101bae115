//! The `otpauth://totp/…` provisioning URI an authenticator app scans (as
//! a QR code) to learn a secret: Google's Key Uri Format, which every app
//! reads.
//!
//! ```
//! use docaiche_auth::mfa::{Algorithm, Digits, Totp, provisioning_uri};
//! use docaiche_core::SecretBytes;
//!
//! let totp = Totp::new(SecretBytes::from(b"12345678901234567890".to_vec()), Algorithm::Sha1, Digits::Six)?;
//! let uri = provisioning_uri(&totp, "DocAIche (acme)", "alice@example.com")?;
//! assert_eq!(
//!     uri.expose_secret(),
//!     "otpauth://totp/DocAIche%20%28acme%29:alice%40example.com\
//!      ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=DocAIche%20%28acme%29\
//!      &algorithm=SHA1&digits=6&period=30"
//! );
//! # Ok::<(), docaiche_auth::mfa::MfaError>(())
//! ```

use std::fmt::Write as _;

use docaiche_core::{Error, SecretString};

use super::error::MfaError;
use super::totp::{STEP_SECONDS, Totp};

/// The longest issuer name, in bytes.
pub const MAX_ISSUER_LEN: usize = 128;

/// The longest account label, in bytes (an email address fits).
pub const MAX_ACCOUNT_LABEL_LEN: usize = 254;

/// Check an issuer name or an account label: 1 to `max` bytes once
/// trimmed, no control characters.
pub(crate) fn validate_label(what: &'static str, value: &str, max: usize) -> Result<(), Error> {
    let trimmed = value.trim();
    if trimmed.is_empty() || trimmed.len() > max || trimmed.chars().any(char::is_control) {
        return Err(Error::invalid_input(format!(
            "the {what} is 1 to {max} bytes without control characters"
        )));
    }
    Ok(())
}

/// The provisioning URI of `totp` for `account` (the label the app shows
/// under the issuer, such as the email), issued by `issuer` (the service's
/// name). Both are trimmed and percent-encoded (RFC 3986: everything but
/// `A-Z a-z 0-9 - . _ ~`), so a `:`, `&` or `#` in either cannot change the
/// URI's structure. The secret is base32 without padding. The URI holds
/// the secret: show it once (as a QR code), never log or store it.
///
/// # Errors
/// [`MfaError::Failed`] with `InvalidInput` for an issuer or label that is
/// empty, too long ([`MAX_ISSUER_LEN`], [`MAX_ACCOUNT_LABEL_LEN`]) or holds
/// control characters.
pub fn provisioning_uri(
    totp: &Totp,
    issuer: &str,
    account: &str,
) -> Result<SecretString, MfaError> {
    validate_label("issuer", issuer, MAX_ISSUER_LEN)?;
    validate_label("account label", account, MAX_ACCOUNT_LABEL_LEN)?;
    let (issuer, account) = (issuer.trim(), account.trim());
    let secret = totp.to_base32();
    let mut uri = String::with_capacity(
        64 + 6 * (issuer.len() + account.len()) + secret.expose_secret().len(),
    );
    uri.push_str("otpauth://totp/");
    percent_encode(&mut uri, issuer);
    uri.push(':');
    percent_encode(&mut uri, account);
    uri.push_str("?secret=");
    uri.push_str(secret.expose_secret());
    uri.push_str("&issuer=");
    percent_encode(&mut uri, issuer);
    // Writing to a String cannot fail.
    let _ = write!(
        uri,
        "&algorithm={}&digits={}&period={STEP_SECONDS}",
        totp.algorithm().as_str(),
        totp.digits().count()
    );
    Ok(SecretString::new(uri))
}

/// Append `value` to `out`, percent-encoding every byte that is not an
/// RFC 3986 unreserved character.
fn percent_encode(out: &mut String, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use docaiche_core::SecretBytes;

    use super::super::hotp::{Algorithm, Digits};
    use super::*;

    fn totp(algorithm: Algorithm, digits: Digits) -> Totp {
        Totp::new(
            SecretBytes::from(b"12345678901234567890".to_vec()),
            algorithm,
            digits,
        )
        .expect("valid")
    }

    #[test]
    fn uri_follows_the_key_uri_format() {
        let uri = provisioning_uri(&totp(Algorithm::Sha512, Digits::Eight), "Acme", "bob")
            .expect("valid");
        assert_eq!(
            uri.expose_secret(),
            "otpauth://totp/Acme:bob?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme\
             &algorithm=SHA512&digits=8&period=30"
        );
    }

    #[test]
    fn structure_characters_and_unicode_are_encoded() {
        let uri = provisioning_uri(
            &totp(Algorithm::Sha1, Digits::Six),
            " Ünïcode: Co & Partners ",
            "a:b?c#d&e=f/g+h@i.j%k",
        )
        .expect("valid");
        let uri = uri.expose_secret();
        assert!(
            uri.starts_with(
                "otpauth://totp/%C3%9Cn%C3%AFcode%3A%20Co%20%26%20Partners:\
                 a%3Ab%3Fc%23d%26e%3Df%2Fg%2Bh%40i.j%25k?secret="
            ),
            "{uri}"
        );
        // Exactly one `?` and the four expected parameters.
        assert_eq!(uri.matches('?').count(), 1);
        let query = uri.split_once('?').map(|(_, q)| q).expect("query");
        let keys: Vec<&str> = query
            .split('&')
            .map(|kv| kv.split_once('=').map_or(kv, |(k, _)| k))
            .collect();
        assert_eq!(keys, ["secret", "issuer", "algorithm", "digits", "period"]);
    }

    #[test]
    fn bad_labels_are_refused_without_quoting_them() {
        let t = totp(Algorithm::Sha1, Digits::Six);
        for (issuer, account) in [
            ("", "bob"),
            ("  ", "bob"),
            ("Acme", ""),
            ("Ac\nme", "bob"),
            ("Acme", "b\0b"),
            (&*"x".repeat(MAX_ISSUER_LEN + 1), "bob"),
            ("Acme", &*"y".repeat(MAX_ACCOUNT_LABEL_LEN + 1)),
        ] {
            let err = provisioning_uri(&t, issuer, account).expect_err("refused");
            let message = err.to_string();
            assert!(!message.contains("Ac\nme") && !message.contains("xxxx"));
        }
    }
}
