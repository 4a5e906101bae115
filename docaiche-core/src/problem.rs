//! The one mapping from [`Error`] to HTTP: RFC 9457 `application/problem+json`.
//!
//! [`Problem::from_error`] decides what a client may see. Client errors (4xx)
//! carry a safe detail; server errors (5xx) carry only a generic sentence and a
//! correlation id, while the full error chain is written to the log under the
//! same id so an operator can find it.
//!
//! ```
//! use docaiche_core::{Error, problem::Problem};
//!
//! let err = Error::internal("connection string postgres://admin:hunter2@db rejected");
//! let problem = Problem::from_error(&err);
//! let body = serde_json::to_string(&problem).unwrap();
//! assert_eq!(problem.status, 500);
//! assert!(!body.contains("hunter2"));
//! assert!(body.contains(problem.correlation_id.as_deref().unwrap()));
//! ```

use http::{HeaderValue, Response, StatusCode, header};
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorCode, FieldError};

/// The media type of problem documents.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The prefix of every DocAIche problem `type` URI; the error code follows.
/// It identifies the problem kind; it need not be dereferenceable.
pub const PROBLEM_TYPE_BASE: &str = "https://docaiche.dev/problems/";

/// An RFC 9457 problem details document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// URI identifying the problem type: [`PROBLEM_TYPE_BASE`] + `code`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// Client-safe explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// URI reference of this occurrence (usually the request path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension: the stable machine-readable code ([`ErrorCode::as_str`]).
    pub code: String,
    /// Extension: correlation id under which a server error was logged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    /// Extension: field-level validation errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Extension: seconds until a retry may succeed (also sent as `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Extension: which tenant quota was exceeded (`documents`,
    /// `storage_bytes`), on `tenant-quota-exceeded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
}

impl Problem {
    /// Build the client-facing problem for `error`, logging it.
    ///
    /// Server errors are logged at `error` level with a fresh correlation id
    /// that the problem carries; client errors at `debug` (they are expected
    /// and an attacker can produce them at will, so they must not flood logs).
    #[must_use]
    pub fn from_error(error: &Error) -> Self {
        let code = error.code();
        let status = code.status();
        let mut problem = Self::bare(code);
        problem.retry_after = error.retry_after().map(|d| ceil_secs(d.as_secs_f64()));

        if status.is_server_error() {
            let correlation_id = uuid::Uuid::new_v4().to_string();
            tracing::error!(
                correlation_id = %correlation_id,
                code = code.as_str(),
                error = %error.log_chain(),
                "request failed with a server error"
            );
            problem.detail = Some(match error {
                Error::Unavailable { .. } | Error::CircuitOpen { .. } => {
                    "a dependency is temporarily unavailable; retry later".to_owned()
                }
                Error::Timeout { .. } => "the operation timed out; retry later".to_owned(),
                _ => "an internal error occurred; quote the correlation id to support".to_owned(),
            });
            problem.correlation_id = Some(correlation_id);
            return problem;
        }

        tracing::debug!(code = code.as_str(), error = %error, "request rejected");
        problem.detail = match error {
            // The reason stays in the log: the client must not learn which
            // check a forged credential failed.
            Error::Unauthenticated { .. } => Some("missing or invalid credentials".to_owned()),
            Error::InvalidInput { fields, .. } => {
                problem.errors.clone_from(fields);
                Some(error.to_string())
            }
            Error::TenantSuspended => {
                Some("the tenant is suspended; contact the platform operator".to_owned())
            }
            Error::TenantQuotaExceeded { quota, .. } => {
                problem.quota = Some((*quota).to_owned());
                Some(error.to_string())
            }
            other => Some(other.to_string()),
        };
        problem
    }

    /// A problem with only the type, title, status and code filled in.
    #[must_use]
    pub fn bare(code: ErrorCode) -> Self {
        Self {
            type_uri: format!("{PROBLEM_TYPE_BASE}{}", code.as_str()),
            title: code.title().to_owned(),
            status: code.status().as_u16(),
            detail: None,
            instance: None,
            code: code.as_str().to_owned(),
            correlation_id: None,
            errors: Vec::new(),
            retry_after: None,
            quota: None,
        }
    }

    /// Set the `instance` member (usually the request path).
    #[must_use]
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The HTTP status.
    #[must_use]
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Serialize to an HTTP response with the right status and headers:
    /// `Content-Type: application/problem+json`, `Retry-After` when known,
    /// and `WWW-Authenticate: Bearer` on 401.
    ///
    /// The body type is anything constructible from a `String`
    /// (`axum::body::Body`, `http_body_util::Full<Bytes>`, `String`).
    pub fn into_response<B: From<String>>(self) -> Response<B> {
        let body = serde_json::to_string(&self).unwrap_or_else(|_| {
            // Serializing plain strings and integers cannot fail; keep a
            // well-formed body anyway rather than an empty one.
            format!(r#"{{"type":"about:blank","status":{}}}"#, self.status)
        });
        let mut response = Response::new(B::from(body));
        *response.status_mut() = self.status_code();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED.as_u16() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="docaiche""#),
            );
        }
        response
    }
}

impl Error {
    /// Shorthand for [`Problem::from_error`] followed by
    /// [`Problem::into_response`].
    pub fn into_problem_response<B: From<String>>(&self) -> Response<B> {
        Problem::from_error(self).into_response()
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Error {
    fn into_response(self) -> axum::response::Response {
        self.into_problem_response()
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for Problem {
    fn into_response(self) -> axum::response::Response {
        Problem::into_response(self)
    }
}

fn ceil_secs(secs: f64) -> u64 {
    // Retry-After is whole seconds; round up so a client never retries early.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let whole = secs.ceil().clamp(0.0, u64::MAX as f64) as u64;
    whole
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::AuthFailure;
    use crate::permission::Permission;

    fn sample(code: ErrorCode) -> Error {
        match code {
            ErrorCode::InvalidInput => Error::invalid_fields(
                "body failed validation",
                vec![FieldError::new("/email", "must be an email address")],
            ),
            ErrorCode::Unauthenticated => Error::unauthenticated(AuthFailure::BadCredential),
            ErrorCode::Forbidden => Error::missing_permission(Permission::DOCUMENTS_WRITE),
            ErrorCode::NotFound => Error::not_found("document"),
            ErrorCode::MethodNotAllowed => Error::MethodNotAllowed {
                method: "DELETE".into(),
            },
            ErrorCode::Conflict => Error::conflict("api key name already used"),
            ErrorCode::PayloadTooLarge => Error::PayloadTooLarge { limit: 1024 },
            ErrorCode::UnsupportedMediaType => Error::UnsupportedMediaType {
                expected: "application/pdf".into(),
            },
            ErrorCode::DocumentRejected => Error::DocumentRejected {
                reason: "not_pdf",
                message: "missing %PDF- header".into(),
            },
            ErrorCode::QuotaExceeded => Error::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            ErrorCode::TenantSuspended => Error::TenantSuspended,
            ErrorCode::TenantQuotaExceeded => Error::TenantQuotaExceeded {
                quota: "storage_bytes",
                limit: 1 << 30,
            },
            ErrorCode::Unavailable => Error::unavailable(
                "postgres",
                std::io::Error::other("connect to 10.0.0.7:5432 as admin failed"),
            ),
            ErrorCode::Timeout => Error::Timeout {
                operation: "SELECT secret_column FROM keys".into(),
                after: Duration::from_secs(2),
            },
            ErrorCode::CircuitOpen => Error::CircuitOpen {
                dependency: "vault at 10.0.0.9".into(),
                retry_after: Duration::from_secs(5),
            },
            ErrorCode::Misconfigured => Error::misconfigured("jwt.secret", "value=hunter2"),
            ErrorCode::Internal => Error::internal_with(
                "query failed",
                std::io::Error::other("password=hunter2 at /srv/db.rs:42"),
            ),
        }
    }

    #[test]
    fn every_error_code_maps_to_a_complete_problem() {
        for code in ErrorCode::ALL {
            let err = sample(code);
            assert_eq!(err.code(), code);
            let problem = Problem::from_error(&err);
            assert_eq!(problem.status, code.status().as_u16(), "{code}");
            assert_eq!(problem.code, code.as_str());
            assert_eq!(problem.type_uri, format!("{PROBLEM_TYPE_BASE}{code}"));
            assert!(!problem.title.is_empty());
            assert!(problem.detail.is_some(), "{code} has no detail");

            let response: Response<String> = problem.clone().into_response();
            assert_eq!(response.status(), code.status());
            assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
            let parsed: Problem = serde_json::from_str(response.body()).expect("valid json");
            assert_eq!(parsed, problem);
        }
    }

    #[test]
    fn server_errors_reveal_only_a_correlation_id() {
        for code in ErrorCode::ALL
            .into_iter()
            .filter(|c| c.status().is_server_error())
        {
            let err = sample(code);
            let problem = Problem::from_error(&err);
            let body = serde_json::to_string(&problem).expect("serializes");
            for secret in ["hunter2", "10.0.0", "/srv", "SELECT", "admin"] {
                assert!(!body.contains(secret), "{code} leaked {secret}: {body}");
            }
            let id = problem.correlation_id.expect("server errors carry an id");
            assert!(uuid::Uuid::parse_str(&id).is_ok());
        }
    }

    #[test]
    fn unauthenticated_hides_the_reason_and_sets_www_authenticate() {
        for reason in [
            AuthFailure::Expired,
            AuthFailure::Revoked,
            AuthFailure::UnknownKey,
        ] {
            let problem = Problem::from_error(&Error::unauthenticated(reason));
            assert!(
                !problem
                    .detail
                    .as_deref()
                    .unwrap_or("")
                    .contains(reason.as_str())
            );
            let response: Response<String> = problem.into_response();
            assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        }
    }

    #[test]
    fn rate_limited_sets_retry_after_rounded_up() {
        let response: Response<String> = Error::RateLimited {
            retry_after: Duration::from_millis(1500),
        }
        .into_problem_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
        assert!(
            response
                .body()
                .contains(r#""type":"https://docaiche.dev/problems/quota-exceeded""#)
        );
    }

    #[test]
    fn tenant_quota_problems_name_the_quota() {
        let problem = Problem::from_error(&sample(ErrorCode::TenantQuotaExceeded));
        assert_eq!(problem.status, 403);
        assert_eq!(problem.quota.as_deref(), Some("storage_bytes"));
        let suspended = Problem::from_error(&Error::TenantSuspended);
        assert_eq!(suspended.code, "tenant-suspended");
        assert_eq!(suspended.quota, None);
    }

    #[test]
    fn field_errors_reach_the_client() {
        let problem = Problem::from_error(&sample(ErrorCode::InvalidInput));
        assert_eq!(problem.errors.len(), 1);
        assert_eq!(problem.errors[0].pointer, "/email");
    }
}
