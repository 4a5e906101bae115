//! The verification pipeline shared by our own tokens and external OIDC
//! issuers: cheap, allocation-light checks on the attacker-controlled header
//! first, then `jsonwebtoken`'s signature verification, then the claims.
//!
//! Why not `jsonwebtoken::decode`: it parses the header twice and the claims
//! twice, and checks time against the system clock. We must read the `kid`
//! before choosing a key, take time from the injected `Clock`, and check
//! claims it does not know (`iat`, `jti`, the tenant), so we call its
//! signature verification ([`jsonwebtoken::crypto::verify`], with the key's
//! own algorithm) and check the registered claims here, once, in one place.
//! The claim rules are few and each has a test; the cryptography stays in
//! the library. This keeps verification within 1.2× of a bare
//! `jsonwebtoken::decode` (see `benches/jwt.rs`).

use std::borrow::Cow;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};

use super::key::{JwtKey, is_valid_kid};
use super::rejection::{JwtRejection, from_jsonwebtoken};

/// The header fields we act on. Everything else (`jku`, `jwk`, `x5u`, `x5c`:
/// keys or key locations chosen by the token's author) is ignored: the key
/// comes from our key set by `kid`, never from the token.
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

/// What the header says, once checked.
#[derive(Debug)]
pub(crate) struct Peeked {
    pub(crate) alg: Algorithm,
    pub(crate) kid: String,
}

/// Whether a `typ` header value names one of `accepted` (RFC 7515 §4.1.9:
/// compared case-insensitively, the `application/` prefix optional).
fn typ_matches(typ: &str, accepted: &[String]) -> bool {
    fn strip(t: &str) -> &str {
        const PREFIX: &str = "application/";
        match t.get(..PREFIX.len()) {
            Some(head) if head.eq_ignore_ascii_case(PREFIX) => &t[PREFIX.len()..],
            _ => t,
        }
    }
    let typ = strip(typ);
    accepted.iter().any(|a| strip(a).eq_ignore_ascii_case(typ))
}

/// Longest decoded header accepted, in bytes. Real headers are under 200.
const MAX_HEADER_LEN: usize = 1024;

/// Check the token's size and shape and its header, before any signature
/// work: size limit, three segments, base64url JSON header, a supported
/// `alg` (never `none`), no `crit`, an accepted `typ`, a well-formed `kid`.
pub(crate) fn peek(
    token: &str,
    max_len: usize,
    accepted_types: &[String],
) -> Result<Peeked, JwtRejection> {
    if token.len() > max_len {
        return Err(JwtRejection::TooLarge);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtRejection::Malformed);
    };
    if header.is_empty() || payload.is_empty() {
        return Err(JwtRejection::Malformed);
    }
    // Decode into a stack buffer: no allocation for the header.
    let mut buffer = [0_u8; MAX_HEADER_LEN];
    if header.len() > MAX_HEADER_LEN / 3 * 4 {
        return Err(JwtRejection::Malformed);
    }
    let len = URL_SAFE_NO_PAD
        .decode_slice(header, &mut buffer)
        .map_err(|_| JwtRejection::Malformed)?;
    let header: RawHeader<'_> =
        serde_json::from_slice(buffer.get(..len).ok_or(JwtRejection::Malformed)?)
            .map_err(|_| JwtRejection::Malformed)?;
    let alg = Algorithm::from_str(&header.alg).map_err(|_| JwtRejection::UnsupportedAlgorithm)?;
    if header.crit.is_some() {
        return Err(JwtRejection::CriticalHeader);
    }
    if !header
        .typ
        .as_deref()
        .is_some_and(|typ| typ_matches(typ, accepted_types))
    {
        return Err(JwtRejection::WrongType);
    }
    let kid = match header.kid {
        Some(kid) if is_valid_kid(&kid) => kid.into_owned(),
        _ => return Err(JwtRejection::InvalidKeyId),
    };
    if signature.is_empty() {
        return Err(JwtRejection::BadSignature);
    }
    Ok(Peeked { alg, kid })
}

/// The `aud` claim: one audience or several (RFC 7519 §4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

/// `iss` must be present and one of `issuers`; `aud` must be present and
/// name one of `audiences`. (`jsonwebtoken`'s own validation lets a token
/// without `aud` through unless `aud` is listed as required: a missing
/// audience is refused here unconditionally.)
pub(crate) fn check_issuer_and_audience(
    iss: Option<&str>,
    aud: Option<&Audience>,
    issuers: &[String],
    audiences: &[String],
) -> Result<(), JwtRejection> {
    let iss = iss.ok_or(JwtRejection::MissingClaim("iss"))?;
    let aud = aud.ok_or(JwtRejection::MissingClaim("aud"))?;
    if !issuers.iter().any(|expected| expected == iss) {
        return Err(JwtRejection::WrongIssuer);
    }
    let names_us = |a: &String| audiences.iter().any(|expected| expected == a);
    let ok = match aud {
        Audience::One(a) => names_us(a),
        Audience::Many(all) => all.iter().any(names_us),
    };
    if ok {
        Ok(())
    } else {
        Err(JwtRejection::WrongAudience)
    }
}

/// Verify the signature with `key` (whose algorithm must be the header's)
/// and decode the claims.
pub(crate) fn decode_claims<T: DeserializeOwned>(
    token: &str,
    peeked: &Peeked,
    key: &JwtKey,
) -> Result<T, JwtRejection> {
    if key.algorithm() != peeked.alg {
        return Err(JwtRejection::AlgorithmMismatch);
    }
    let (message, signature) = token.rsplit_once('.').ok_or(JwtRejection::Malformed)?;
    match jsonwebtoken::crypto::verify(
        signature,
        message.as_bytes(),
        key.decoding_key(),
        key.algorithm(),
    ) {
        Ok(true) => {}
        Ok(false) => return Err(JwtRejection::BadSignature),
        Err(err) => return Err(from_jsonwebtoken(&err)),
    }
    let (_, payload) = message.split_once('.').ok_or(JwtRejection::Malformed)?;
    let payload = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| JwtRejection::Malformed)?;
    serde_json::from_slice(&payload).map_err(|_| JwtRejection::Malformed)
}

/// RFC 7519 §4.1.4–4.1.6 against `now` (Unix seconds), with `leeway`
/// seconds of tolerance for clock skew. `exp` and `iat` are required.
pub(crate) fn check_times(
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    now: i64,
    leeway: i64,
) -> Result<(), JwtRejection> {
    let exp = exp.ok_or(JwtRejection::MissingClaim("exp"))?;
    let iat = iat.ok_or(JwtRejection::MissingClaim("iat"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(JwtRejection::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return Err(JwtRejection::NotYetValid);
    }
    if iat > now.saturating_add(leeway) {
        return Err(JwtRejection::IssuedInFuture);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn accepted() -> Vec<String> {
        vec!["at+jwt".to_owned()]
    }

    #[test]
    fn typ_comparison_follows_rfc_7515() {
        let acc = accepted();
        assert!(typ_matches("at+jwt", &acc));
        assert!(typ_matches("AT+JWT", &acc));
        assert!(typ_matches("application/at+jwt", &acc));
        assert!(!typ_matches("JWT", &acc));
        assert!(!typ_matches("application/jwt", &acc));
    }

    #[test]
    fn header_checks_run_in_order() {
        let tok = |h: &str| format!("{}.{}.c2ln", b64(h), b64("{}"));
        assert_eq!(
            peek(
                &tok(r#"{"alg":"none","typ":"at+jwt","kid":"k"}"#),
                8192,
                &accepted()
            )
            .err(),
            Some(JwtRejection::UnsupportedAlgorithm)
        );
        assert_eq!(
            peek(
                &tok(r#"{"alg":"HS256","typ":"at+jwt","kid":"k","crit":["exp"]}"#),
                8192,
                &accepted()
            )
            .err(),
            Some(JwtRejection::CriticalHeader)
        );
        assert_eq!(
            peek(&tok(r#"{"alg":"HS256","kid":"k"}"#), 8192, &accepted()).err(),
            Some(JwtRejection::WrongType)
        );
        assert_eq!(
            peek(&tok(r#"{"alg":"HS256","typ":"at+jwt"}"#), 8192, &accepted()).err(),
            Some(JwtRejection::InvalidKeyId)
        );
        let ok = peek(
            &tok(r#"{"alg":"HS256","typ":"at+jwt","kid":"k"}"#),
            8192,
            &accepted(),
        )
        .expect("valid header");
        assert_eq!((ok.alg, ok.kid.as_str()), (Algorithm::HS256, "k"));
    }

    #[test]
    fn shape_errors_are_malformed() {
        for bad in ["", "a", "a.b", "a.b.c.d", ".b.c", "a..c", "!!!.e30.c2ln"] {
            assert_eq!(
                peek(bad, 8192, &accepted()).err(),
                Some(JwtRejection::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn issuer_and_audience_rules() {
        let iss = vec!["https://a".to_owned()];
        let aud = vec!["api".to_owned(), "api2".to_owned()];
        let one = |a: &str| Audience::One(a.to_owned());
        let many = |v: &[&str]| Audience::Many(v.iter().map(|s| (*s).to_owned()).collect());
        let check =
            |i: Option<&str>, a: Option<&Audience>| check_issuer_and_audience(i, a, &iss, &aud);
        assert_eq!(check(Some("https://a"), Some(&one("api"))), Ok(()));
        assert_eq!(
            check(Some("https://a"), Some(&many(&["x", "api2"]))),
            Ok(())
        );
        assert_eq!(
            check(Some("https://a"), Some(&many(&[]))),
            Err(JwtRejection::WrongAudience)
        );
        assert_eq!(
            check(Some("https://a"), Some(&one("API"))),
            Err(JwtRejection::WrongAudience)
        );
        assert_eq!(
            check(Some("https://a/"), Some(&one("api"))),
            Err(JwtRejection::WrongIssuer)
        );
        assert_eq!(
            check(None, Some(&one("api"))),
            Err(JwtRejection::MissingClaim("iss"))
        );
        assert_eq!(
            check(Some("https://a"), None),
            Err(JwtRejection::MissingClaim("aud"))
        );
    }

    #[test]
    fn times_honour_leeway() {
        assert_eq!(
            check_times(Some(100), None, Some(0), 100, 0),
            Err(JwtRejection::Expired)
        );
        assert_eq!(check_times(Some(100), None, Some(0), 99, 0), Ok(()));
        assert_eq!(check_times(Some(100), None, Some(0), 105, 10), Ok(()));
        assert_eq!(
            check_times(Some(100), Some(50), Some(0), 40, 5),
            Err(JwtRejection::NotYetValid)
        );
        assert_eq!(check_times(Some(100), Some(50), Some(0), 46, 5), Ok(()));
        assert_eq!(
            check_times(Some(100), None, Some(60), 40, 5),
            Err(JwtRejection::IssuedInFuture)
        );
        assert_eq!(
            check_times(None, None, Some(0), 0, 0),
            Err(JwtRejection::MissingClaim("exp"))
        );
        assert_eq!(
            check_times(Some(100), None, None, 0, 0),
            Err(JwtRejection::MissingClaim("iat"))
        );
    }
}
