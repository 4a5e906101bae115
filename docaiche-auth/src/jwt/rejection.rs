//! [`JwtRejection`]: why a token was refused, for logs, audit and tests.

use std::fmt;

use docaiche_core::{AuthFailure, Error};

/// Why a JSON Web Token was rejected.
///
/// This is the precise reason, for the log, the audit trail and tests. It
/// converts into [`Error::Unauthenticated`] carrying only a coarse
/// [`AuthFailure`], and the client sees one generic answer whichever check
/// failed, so the response is not an oracle for forging tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JwtRejection {
    /// The token is longer than the configured limit; nothing was parsed.
    TooLarge,
    /// The token is not three base64url segments of JSON (bad base64, bad
    /// JSON, wrong shape, a claim of the wrong type).
    Malformed,
    /// The header names an algorithm that is not accepted (`none`, an
    /// unknown name).
    UnsupportedAlgorithm,
    /// The header carries a `crit` parameter; no extension is understood, so
    /// RFC 7515 §4.1.11 requires rejection.
    CriticalHeader,
    /// The header's `typ` is missing or not an accepted type (`at+jwt`).
    WrongType,
    /// The header has no `kid`, or a `kid` that is too long or contains
    /// characters outside the allowed set (path traversal, SQL, control bytes).
    InvalidKeyId,
    /// No key with this `kid` is in the key set.
    UnknownKeyId,
    /// The header's `alg` is not the algorithm of the key named by `kid`
    /// (algorithm confusion: an HMAC token naming an RSA key, and so on).
    AlgorithmMismatch,
    /// The signature does not verify (tampered header, payload or signature).
    BadSignature,
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim is present but invalid (a tenant or subject that is not a
    /// valid id, an unusable `jti`).
    InvalidClaim(&'static str),
    /// `exp` is in the past (beyond the leeway).
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    NotYetValid,
    /// `iat` is in the future (beyond the leeway).
    IssuedInFuture,
    /// `iss` is not the expected issuer.
    WrongIssuer,
    /// `aud` does not name this service.
    WrongAudience,
    /// The token's `jti` was revoked.
    Revoked,
}

impl JwtRejection {
    /// A stable snake-case name for logs, metrics and audit records.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::TooLarge => "too_large",
            Self::Malformed => "malformed",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::CriticalHeader => "critical_header",
            Self::WrongType => "wrong_type",
            Self::InvalidKeyId => "invalid_kid",
            Self::UnknownKeyId => "unknown_kid",
            Self::AlgorithmMismatch => "algorithm_mismatch",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim(_) => "missing_claim",
            Self::InvalidClaim(_) => "invalid_claim",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::Revoked => "revoked",
        }
    }

    /// The coarse reason carried by [`Error::Unauthenticated`].
    #[must_use]
    pub const fn auth_failure(self) -> AuthFailure {
        match self {
            Self::TooLarge
            | Self::Malformed
            | Self::CriticalHeader
            | Self::InvalidKeyId
            | Self::MissingClaim(_)
            | Self::InvalidClaim(_) => AuthFailure::Malformed,
            Self::UnsupportedAlgorithm | Self::AlgorithmMismatch | Self::BadSignature => {
                AuthFailure::BadCredential
            }
            Self::UnknownKeyId => AuthFailure::UnknownKey,
            Self::Expired | Self::NotYetValid | Self::IssuedInFuture => AuthFailure::Expired,
            Self::WrongType | Self::WrongIssuer | Self::WrongAudience => AuthFailure::WrongAudience,
            Self::Revoked => AuthFailure::Revoked,
        }
    }
}

impl fmt::Display for JwtRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingClaim(claim) => write!(f, "missing claim `{claim}`"),
            Self::InvalidClaim(claim) => write!(f, "invalid claim `{claim}`"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl std::error::Error for JwtRejection {}

impl From<JwtRejection> for Error {
    fn from(rejection: JwtRejection) -> Self {
        Self::unauthenticated(rejection.auth_failure())
    }
}

/// Map a `jsonwebtoken` error onto a rejection. Key-format errors cannot
/// happen for keys that passed loading, so they count as a bad signature.
pub(crate) fn from_jsonwebtoken(err: &jsonwebtoken::errors::Error) -> JwtRejection {
    use jsonwebtoken::errors::ErrorKind;
    match err.kind() {
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Provider(_) => JwtRejection::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            JwtRejection::AlgorithmMismatch
        }
        ErrorKind::InvalidAlgorithmName | ErrorKind::UnsupportedAlgorithm => {
            JwtRejection::UnsupportedAlgorithm
        }
        ErrorKind::MissingRequiredClaim(claim) => {
            JwtRejection::MissingClaim(match claim.as_str() {
                "exp" => "exp",
                "iss" => "iss",
                "aud" => "aud",
                "sub" => "sub",
                "nbf" => "nbf",
                _ => "unknown",
            })
        }
        ErrorKind::InvalidClaimFormat(_) => JwtRejection::InvalidClaim("time"),
        ErrorKind::ExpiredSignature => JwtRejection::Expired,
        ErrorKind::ImmatureSignature => JwtRejection::NotYetValid,
        ErrorKind::InvalidIssuer => JwtRejection::WrongIssuer,
        ErrorKind::InvalidAudience => JwtRejection::WrongAudience,
        ErrorKind::InvalidSubject => JwtRejection::InvalidClaim("sub"),
        _ => JwtRejection::Malformed,
    }
}
