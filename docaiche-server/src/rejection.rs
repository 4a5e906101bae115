//! Every refusal is an `application/problem+json` answer, including those
//! axum's extractors and router write on their own.
//!
//! Two complementary pieces, because neither alone is enough:
//!
//! - **Extractors whose rejection is our [`Error`]**, so the problem names
//!   what was wrong: [`Path`] here (an invalid UTF-8 segment such as
//!   `/v1/documents/%ff` is a 400 `invalid-input` naming the parameter),
//!   [`crate::json::ValidJson`] for JSON bodies (400/413/415), and the
//!   handlers that take `Result<Query<_>, QueryRejection>` or
//!   `Result<WebSocketUpgrade, _>` and answer the rejection as an
//!   [`Error::InvalidInput`]. The token endpoints read their body by hand.
//! - **A backstop, [`problem_for_status`]**, applied by the router's
//!   `LayerErrorsAsProblems` layer (see [`crate::app`]) to every answer
//!   that is a 4xx or 5xx with no body type or a `text/plain` one (a
//!   problem, or a 503 `application/health+json` report, is deliberate
//!   and kept): axum's built-in
//!   rejections of any extractor a handler uses without a wrapper
//!   (`Bytes`, `String`, `Form`, `TypedHeader`, `Host`, `MatchedPath`, …),
//!   tower-http's limit and timeout layers, and whatever a future
//!   dependency adds. The original body is dropped unread (it may echo the
//!   input); the status picks the problem. A wrapper is the better answer
//!   for an extractor a handler uses, since it says *what* failed; the
//!   backstop guarantees the contract for the ones nobody wrapped, so a
//!   new handler cannot bring back a `text/plain` refusal.
//!
//! What neither can reach: a request hyper refuses before it becomes a
//! request (a malformed request line or headers, headers over hyper's size
//! limit) is answered by hyper itself, with an empty 400 or 431 and the
//! connection closed.

use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use docaiche_core::Error;
use serde::de::DeserializeOwned;

/// `axum::extract::Path`, rejected with an [`Error`]: a 400 problem for a
/// segment that is not valid UTF-8 or does not parse, naming the
/// parameter; a 500 for a route wired to the wrong parameters (a bug).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Path<T>(pub(crate) T);

impl<S, T> FromRequestParts<S> for Path<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Self(value))
            .map_err(path_error)
    }
}

/// The [`Error`] of a [`PathRejection`].
fn path_error(rejection: PathRejection) -> Error {
    let PathRejection::FailedToDeserializePathParams(failure) = rejection else {
        // MissingPathParams and future variants: the route and its handler
        // disagree, which no request can cause.
        return Error::internal(format!("path extraction failed: {}", rejection.body_text()));
    };
    match failure.kind() {
        ErrorKind::InvalidUtf8InPathParam { key } => Error::invalid_input(format!(
            "the path parameter `{}` is not valid UTF-8 once percent-decoded",
            crate::json::truncate(key)
        )),
        ErrorKind::ParseErrorAtKey {
            key, expected_type, ..
        } => Error::invalid_input(format!(
            "the path parameter `{}` is not a valid {expected_type}",
            crate::json::truncate(key)
        )),
        ErrorKind::ParseError { expected_type, .. }
        | ErrorKind::ParseErrorAtIndex { expected_type, .. } => {
            Error::invalid_input(format!("a path parameter is not a valid {expected_type}"))
        }
        // Wrong parameter count, unsupported target type, a custom
        // deserializer message: the handler's type does not fit its route.
        _ => Error::internal(format!("path extraction failed: {}", failure.body_text())),
    }
}

/// The problem for an answer of `status` that carries no problem body (an
/// axum rejection, a tower-http layer's plain answer), to a `method`
/// request. A status with a problem code of its own keeps it; any other
/// 4xx becomes a 400 `invalid-input` (the client must change the request),
/// any other 5xx a 500 `internal` (logged with a correlation id). `None`
/// for a status that is not an error.
pub(crate) fn problem_for_status(status: StatusCode, method: &Method) -> Option<Error> {
    let error = match status {
        s if !(s.is_client_error() || s.is_server_error()) => return None,
        StatusCode::UNAUTHORIZED => Error::Unauthenticated {
            reason: docaiche_core::AuthFailure::Malformed,
        },
        StatusCode::FORBIDDEN => Error::Forbidden { permission: None },
        StatusCode::NOT_FOUND => Error::not_found("route"),
        StatusCode::METHOD_NOT_ALLOWED => Error::MethodNotAllowed {
            method: method.to_string().into(),
        },
        StatusCode::CONFLICT => Error::conflict("the request conflicts with the current state"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Error::UnsupportedMediaType {
            expected: "the media type the route documents".into(),
        },
        StatusCode::SERVICE_UNAVAILABLE => Error::Unavailable {
            dependency: "the service".into(),
            source: None,
        },
        s if s.is_client_error() => Error::invalid_input(format!(
            "the request was refused ({})",
            s.canonical_reason().unwrap_or("client error")
        )),
        s => Error::internal(format!("a layer answered {s} without a problem body")),
    };
    Some(error)
}

#[cfg(test)]
mod tests {
    use docaiche_core::ErrorCode;

    use super::*;

    #[test]
    fn every_error_status_becomes_a_problem_of_its_own_code_or_the_generic_one() {
        let code = |status: u16| {
            problem_for_status(StatusCode::from_u16(status).expect("status"), &Method::GET)
                .map(|e| e.code())
        };
        assert_eq!(code(200), None);
        assert_eq!(code(304), None);
        assert_eq!(code(400), Some(ErrorCode::InvalidInput));
        assert_eq!(code(401), Some(ErrorCode::Unauthenticated));
        assert_eq!(code(403), Some(ErrorCode::Forbidden));
        assert_eq!(code(404), Some(ErrorCode::NotFound));
        assert_eq!(code(405), Some(ErrorCode::MethodNotAllowed));
        assert_eq!(code(409), Some(ErrorCode::Conflict));
        assert_eq!(code(415), Some(ErrorCode::UnsupportedMediaType));
        for other in [411, 414, 422, 426, 431] {
            assert_eq!(code(other), Some(ErrorCode::InvalidInput), "{other}");
        }
        assert_eq!(code(503), Some(ErrorCode::Unavailable));
        assert_eq!(code(500), Some(ErrorCode::Internal));
        assert_eq!(code(502), Some(ErrorCode::Internal));
    }
}
