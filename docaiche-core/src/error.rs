//! The one error type that crosses DocAIche crate boundaries.
//!
//! Every sibling crate keeps its own error enum for its internals and converts
//! into [`Error`] at its public edge. Callers branch on [`Error::code`] (or
//! [`ErrorCode`]), never on message text: messages are for humans and logs,
//! codes are the stable contract.
//!
//! The mapping to HTTP lives in exactly one place, [`crate::problem`]: each
//! variant has a status, a stable problem `type`, and a client-safe detail.
//! Backend detail (an SQL error, a Redis reply, a file path) rides along as a
//! boxed [`source`](std::error::Error::source) that is logged, never sent.

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::permission::Permission;

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A shareable, type-erased cause. `Arc` (not `Box`) so that [`Error`] is
/// `Clone`: single-flight hands one failure to every waiting caller.
pub type Source = Arc<dyn StdError + Send + Sync + 'static>;

/// Why an authentication attempt failed.
///
/// Logged and audited; never sent to the client, which sees one generic
/// answer so that the response is not an oracle (which part of a forged token
/// was wrong, whether an account exists).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthFailure {
    /// No credential was presented.
    Missing,
    /// The credential is syntactically invalid (bad base64, bad checksum, oversized).
    Malformed,
    /// The signature, password or key did not verify.
    BadCredential,
    /// The credential has expired (or is not valid yet).
    Expired,
    /// The credential was revoked.
    Revoked,
    /// The credential is valid but was issued for another audience, issuer or use.
    WrongAudience,
    /// The account or key is temporarily locked after repeated failures.
    LockedOut,
    /// The signing key named by the credential is unknown.
    UnknownKey,
}

impl AuthFailure {
    /// A stable snake-case name for logs, metrics and audit records.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::BadCredential => "bad_credential",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::WrongAudience => "wrong_audience",
            Self::LockedOut => "locked_out",
            Self::UnknownKey => "unknown_key",
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One invalid field of a request body, reported back to the client.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct FieldError {
    /// JSON pointer (RFC 6901) to the offending field, e.g. `/email`.
    pub pointer: String,
    /// What is wrong with it, safe to show to the client.
    pub detail: String,
}

impl FieldError {
    /// A field error for the JSON pointer `pointer`.
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

/// The DocAIche error.
///
/// Each variant says in its docs whether it signals a client mistake, an
/// attack, an outage or a bug. Every variant maps to one [`ErrorCode`]; the
/// code, not the message, is the stable contract.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The request is malformed or fails validation. Client mistake (or a probe).
    #[error("invalid input: {message}")]
    InvalidInput {
        /// Client-safe summary.
        message: Cow<'static, str>,
        /// Field-level details, if the input was a structured body.
        fields: Vec<FieldError>,
    },

    /// No valid credential. Client mistake or attack; the reason is logged only.
    #[error("authentication failed: {reason}")]
    Unauthenticated {
        /// Why, for logs and audit. Never sent to the client.
        reason: AuthFailure,
    },

    /// The principal is authenticated but lacks a permission or tenant scope.
    /// Client mistake or attack (e.g. a cross-tenant access attempt).
    #[error("permission denied{}", .permission.as_ref().map(|p| format!(": requires {p}")).unwrap_or_default())]
    Forbidden {
        /// The permission that was missing, when one specific permission was.
        permission: Option<Permission>,
    },

    /// The resource does not exist *for this tenant*. Another tenant's resource
    /// is reported as not found, never as forbidden, so ids cannot be probed.
    #[error("{resource} not found")]
    NotFound {
        /// The kind of resource (`document`, `api_key`, `job`, …).
        resource: &'static str,
    },

    /// The route exists but not for this HTTP method. Client mistake.
    #[error("method {method} is not allowed on this route")]
    MethodNotAllowed {
        /// The method that was used.
        method: Cow<'static, str>,
    },

    /// The request conflicts with current state (duplicate id, stale version).
    #[error("conflict: {message}")]
    Conflict {
        /// Client-safe explanation.
        message: Cow<'static, str>,
    },

    /// The body exceeds a configured size limit. Client mistake or abuse.
    #[error("payload too large: limit is {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: u64,
    },

    /// The body's media type is not accepted, or does not match its content.
    #[error("unsupported media type: expected {expected}")]
    UnsupportedMediaType {
        /// What the endpoint accepts.
        expected: Cow<'static, str>,
    },

    /// A document was refused by intake validation or parsing limits. Client
    /// mistake or a hostile file; `reason` is a stable snake-case code.
    #[error("document rejected ({reason}): {message}")]
    DocumentRejected {
        /// Stable reason code, e.g. `not_pdf`, `decompression_bomb`, `encrypted`.
        reason: &'static str,
        /// Client-safe explanation.
        message: Cow<'static, str>,
    },

    /// The caller's tenant is suspended by a platform administrator: every
    /// request of its principals (API keys and sessions alike) is refused
    /// until it is resumed. Not retryable; the suspension reason stays with
    /// the platform operators.
    #[error("tenant is suspended")]
    TenantSuspended,

    /// A storage quota of the tenant (`documents` or `storage_bytes`) would
    /// be exceeded. Client mistake or abuse; freeing space or raising the
    /// quota helps, retrying does not.
    #[error("tenant quota `{quota}` exceeded: the limit is {limit}")]
    TenantQuotaExceeded {
        /// Which quota: `documents` or `storage_bytes`.
        quota: &'static str,
        /// Its limit (documents, or bytes).
        limit: u64,
    },

    /// A rate limit or quota is exhausted. Normal under load, or abuse.
    #[error("rate limit exceeded, retry after {retry_after:?}")]
    RateLimited {
        /// When the request would be allowed.
        retry_after: Duration,
    },

    /// A dependency (database, Redis, Vault) could not be reached or answered
    /// with a transient failure. An outage; retryable.
    #[error("{dependency} unavailable")]
    Unavailable {
        /// Which dependency.
        dependency: Cow<'static, str>,
        /// The underlying cause, for the log.
        #[source]
        source: Option<Source>,
    },

    /// An operation exceeded its deadline. An outage or overload; retryable.
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        operation: Cow<'static, str>,
        /// The deadline that was exceeded.
        after: Duration,
    },

    /// A circuit breaker is open: the dependency failed recently and calls are
    /// refused without trying. An outage; not retried in-process.
    #[error("circuit open for {dependency}")]
    CircuitOpen {
        /// Which dependency the breaker protects.
        dependency: Cow<'static, str>,
        /// When the breaker will next admit a trial call.
        retry_after: Duration,
    },

    /// Configuration is invalid or unsafe. Operator mistake; raised at start-up.
    #[error("invalid configuration `{setting}`: {reason}")]
    Misconfigured {
        /// The setting's name as the operator writes it (`cors.allowed_origins`).
        setting: Cow<'static, str>,
        /// What is wrong and how to fix it.
        reason: Cow<'static, str>,
    },

    /// Anything else: a bug or an unexpected backend answer. The client sees
    /// only a correlation id; the message and source go to the log.
    #[error("internal error: {message}")]
    Internal {
        /// For the log only.
        message: Cow<'static, str>,
        /// The underlying cause, for the log.
        #[source]
        source: Option<Source>,
    },
}

/// The stable, machine-readable code of an [`Error`].
///
/// Serialized as the kebab-case string of [`ErrorCode::as_str`], which is also
/// the last segment of the problem `type` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// See [`Error::InvalidInput`].
    InvalidInput,
    /// See [`Error::Unauthenticated`].
    Unauthenticated,
    /// See [`Error::Forbidden`].
    Forbidden,
    /// See [`Error::NotFound`].
    NotFound,
    /// See [`Error::MethodNotAllowed`].
    MethodNotAllowed,
    /// See [`Error::Conflict`].
    Conflict,
    /// See [`Error::PayloadTooLarge`].
    PayloadTooLarge,
    /// See [`Error::UnsupportedMediaType`].
    UnsupportedMediaType,
    /// See [`Error::DocumentRejected`].
    DocumentRejected,
    /// See [`Error::RateLimited`].
    QuotaExceeded,
    /// See [`Error::TenantSuspended`].
    TenantSuspended,
    /// See [`Error::TenantQuotaExceeded`].
    TenantQuotaExceeded,
    /// See [`Error::Unavailable`].
    Unavailable,
    /// See [`Error::Timeout`].
    Timeout,
    /// See [`Error::CircuitOpen`].
    CircuitOpen,
    /// See [`Error::Misconfigured`].
    Misconfigured,
    /// See [`Error::Internal`].
    Internal,
}

impl ErrorCode {
    /// Every code, for exhaustive tests and documentation.
    pub const ALL: [Self; 17] = [
        Self::InvalidInput,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::DocumentRejected,
        Self::QuotaExceeded,
        Self::TenantSuspended,
        Self::TenantQuotaExceeded,
        Self::Unavailable,
        Self::Timeout,
        Self::CircuitOpen,
        Self::Misconfigured,
        Self::Internal,
    ];

    /// The stable kebab-case code.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid-input",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::Conflict => "conflict",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::DocumentRejected => "document-rejected",
            Self::QuotaExceeded => "quota-exceeded",
            Self::TenantSuspended => "tenant-suspended",
            Self::TenantQuotaExceeded => "tenant-quota-exceeded",
            Self::Unavailable => "unavailable",
            Self::Timeout => "timeout",
            Self::CircuitOpen => "circuit-open",
            Self::Misconfigured => "misconfigured",
            Self::Internal => "internal",
        }
    }

    /// The HTTP status this code maps to.
    #[must_use]
    pub const fn status(self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Self::InvalidInput => S::BAD_REQUEST,
            Self::Unauthenticated => S::UNAUTHORIZED,
            Self::Forbidden => S::FORBIDDEN,
            Self::NotFound => S::NOT_FOUND,
            Self::MethodNotAllowed => S::METHOD_NOT_ALLOWED,
            Self::Conflict => S::CONFLICT,
            Self::PayloadTooLarge => S::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => S::UNSUPPORTED_MEDIA_TYPE,
            Self::DocumentRejected => S::UNPROCESSABLE_ENTITY,
            Self::QuotaExceeded => S::TOO_MANY_REQUESTS,
            Self::TenantSuspended | Self::TenantQuotaExceeded => S::FORBIDDEN,
            Self::Unavailable | Self::CircuitOpen => S::SERVICE_UNAVAILABLE,
            Self::Timeout => S::GATEWAY_TIMEOUT,
            Self::Misconfigured | Self::Internal => S::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short, client-safe human title for the problem document.
    #[must_use]
    pub const fn title(self) -> &'static str {
        match self {
            Self::InvalidInput => "Invalid input",
            Self::Unauthenticated => "Authentication required",
            Self::Forbidden => "Permission denied",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::Conflict => "Conflict",
            Self::PayloadTooLarge => "Payload too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::DocumentRejected => "Document rejected",
            Self::QuotaExceeded => "Quota exceeded",
            Self::TenantSuspended => "Tenant suspended",
            Self::TenantQuotaExceeded => "Tenant quota exceeded",
            Self::Unavailable => "Service unavailable",
            Self::Timeout => "Timed out",
            Self::CircuitOpen => "Service unavailable",
            Self::Misconfigured | Self::Internal => "Internal error",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Error {
    /// The stable machine-readable code.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput { .. } => ErrorCode::InvalidInput,
            Self::Unauthenticated { .. } => ErrorCode::Unauthenticated,
            Self::Forbidden { .. } => ErrorCode::Forbidden,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::MethodNotAllowed { .. } => ErrorCode::MethodNotAllowed,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::UnsupportedMediaType { .. } => ErrorCode::UnsupportedMediaType,
            Self::DocumentRejected { .. } => ErrorCode::DocumentRejected,
            Self::RateLimited { .. } => ErrorCode::QuotaExceeded,
            Self::TenantSuspended => ErrorCode::TenantSuspended,
            Self::TenantQuotaExceeded { .. } => ErrorCode::TenantQuotaExceeded,
            Self::Unavailable { .. } => ErrorCode::Unavailable,
            Self::Timeout { .. } => ErrorCode::Timeout,
            Self::CircuitOpen { .. } => ErrorCode::CircuitOpen,
            Self::Misconfigured { .. } => ErrorCode::Misconfigured,
            Self::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// The HTTP status of this error.
    #[must_use]
    pub const fn status(&self) -> http::StatusCode {
        self.code().status()
    }

    /// Whether retrying the same operation may succeed: transient outages and
    /// timeouts. Retry wrappers retry only these. An open circuit is *not*
    /// retryable: the breaker exists to stop retries.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. })
    }

    /// Whether this error says something about the health of a dependency
    /// (rather than about the request). Circuit breakers count only these.
    #[must_use]
    pub const fn is_dependency_failure(&self) -> bool {
        matches!(
            self,
            Self::Unavailable { .. } | Self::Timeout { .. } | Self::Internal { .. }
        )
    }

    /// When the client may retry, for the `Retry-After` header.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } | Self::CircuitOpen { retry_after, .. } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    /// An [`Error::InvalidInput`] without field details.
    pub fn invalid_input(message: impl Into<Cow<'static, str>>) -> Self {
        Self::InvalidInput {
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// An [`Error::InvalidInput`] with field-level details.
    pub fn invalid_fields(message: impl Into<Cow<'static, str>>, fields: Vec<FieldError>) -> Self {
        Self::InvalidInput {
            message: message.into(),
            fields,
        }
    }

    /// An [`Error::Unauthenticated`].
    #[must_use]
    pub const fn unauthenticated(reason: AuthFailure) -> Self {
        Self::Unauthenticated { reason }
    }

    /// An [`Error::Forbidden`] naming the missing permission.
    #[must_use]
    pub const fn missing_permission(permission: Permission) -> Self {
        Self::Forbidden {
            permission: Some(permission),
        }
    }

    /// An [`Error::NotFound`].
    #[must_use]
    pub const fn not_found(resource: &'static str) -> Self {
        Self::NotFound { resource }
    }

    /// An [`Error::Conflict`].
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::Conflict {
            message: message.into(),
        }
    }

    /// An [`Error::Unavailable`] caused by `source`.
    pub fn unavailable(
        dependency: impl Into<Cow<'static, str>>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable {
            dependency: dependency.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// An [`Error::Internal`] with a log message and no source.
    pub fn internal(message: impl Into<Cow<'static, str>>) -> Self {
        Self::Internal {
            message: message.into(),
            source: None,
        }
    }

    /// An [`Error::Internal`] caused by `source`.
    pub fn internal_with(
        message: impl Into<Cow<'static, str>>,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// An [`Error::Misconfigured`].
    pub fn misconfigured(
        setting: impl Into<Cow<'static, str>>,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self::Misconfigured {
            setting: setting.into(),
            reason: reason.into(),
        }
    }

    /// The message followed by every source in the chain, `: `-separated, for
    /// the log. Never send this to a client.
    #[must_use]
    pub fn log_chain(&self) -> String {
        let mut out = self.to_string();
        let mut next = StdError::source(self);
        while let Some(cause) = next {
            out.push_str(": ");
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_unique_and_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{s} is not kebab-case"
            );
        }
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(Error::unavailable("redis", std::io::Error::other("x")).is_retryable());
        assert!(
            Error::Timeout {
                operation: "db".into(),
                after: Duration::from_secs(1)
            }
            .is_retryable()
        );
        assert!(
            !Error::CircuitOpen {
                dependency: "db".into(),
                retry_after: Duration::ZERO
            }
            .is_retryable()
        );
        assert!(!Error::invalid_input("x").is_retryable());
        assert!(!Error::internal("bug").is_retryable());
    }

    #[test]
    fn log_chain_includes_sources() {
        let err = Error::internal_with("query failed", std::io::Error::other("socket closed"));
        assert_eq!(
            err.log_chain(),
            "internal error: query failed: socket closed"
        );
    }

    #[test]
    fn messages_are_lowercase_without_trailing_period() {
        let samples = [
            Error::invalid_input("bad"),
            Error::unauthenticated(AuthFailure::Expired),
            Error::Forbidden { permission: None },
            Error::not_found("document"),
            Error::conflict("dup"),
            Error::PayloadTooLarge { limit: 1 },
            Error::TenantSuspended,
            Error::TenantQuotaExceeded {
                quota: "documents",
                limit: 3,
            },
            Error::internal("x"),
        ];
        for e in samples {
            let m = e.to_string();
            assert!(m.chars().next().is_some_and(|c| c.is_lowercase()), "{m}");
            assert!(!m.ends_with('.'), "{m}");
        }
    }
}
