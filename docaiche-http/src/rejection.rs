//! Every refusal is an `application/problem+json` answer, including those
//! a router's extractors and tower-http's layers write on their own.
//!
//! Two complementary pieces, because neither alone is enough:
//!
//! - **Extractors whose rejection is a problem naming what was wrong**:
//!   `Path` here (with the `axum` feature: an invalid UTF-8 segment such
//!   as `/v1/documents/%ff` is a 400 `invalid-input` naming the
//!   parameter) and [`crate::json::ValidJson`] for JSON bodies
//!   (400/413/415).
//! - **A backstop, [`ProblemAnswersLayer`]**, turning every answer that is
//!   a 4xx or 5xx with no body type or a `text/plain` one into a problem
//!   ([`problem_for_status`]; a problem, or a 503
//!   `application/health+json` report, is deliberate and kept): a
//!   router's built-in rejections, tower-http's body-limit (413 naming the
//!   limit) and timeout (504) layers, and whatever a future dependency
//!   adds. The original body is dropped unread (it may echo the input);
//!   the status picks the problem.
//!
//! What neither can reach: a request hyper refuses before it becomes a
//! request (a malformed request line or headers, headers over hyper's size
//! limit) is answered by hyper itself, with an empty 400 or 431 and the
//! connection closed.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use docaiche_core::Error;
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::ResponseBody;

/// The problem for an answer of `status` that carries no problem body (a
/// router's rejection, a tower-http layer's plain answer), to a `method`
/// request. A status with a problem code of its own keeps it; any other
/// 4xx becomes a 400 `invalid-input` (the client must change the request),
/// any other 5xx a 500 `internal` (logged with a correlation id). `None`
/// for a status that is not an error.
#[must_use]
pub fn problem_for_status(status: StatusCode, method: &Method) -> Option<Error> {
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

/// The most headers the layers outside [`ProblemAnswers`] in
/// [`crate::secure_stack`] add to an answer: CORS (3), security headers
/// (4), HSTS, the request id, and one to spare. [`ProblemAnswers`] makes
/// room for them once.
pub const OUTER_HEADERS: usize = 10;

/// What a plain 413 or 504 answer stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProblemLimits {
    body_limit: u64,
    request_timeout: Duration,
}

/// Wraps a service with [`ProblemAnswers`].
#[derive(Debug, Clone, Copy)]
pub struct ProblemAnswersLayer {
    // Inline (24 bytes) rather than shared: copied per request, where an
    // `Arc` would be an atomic increment and decrement on a counter every
    // worker thread touches.
    limits: ProblemLimits,
}

impl ProblemAnswersLayer {
    /// Problems for the plain answers of the inner layers: a 413 names
    /// `body_limit`, a 504 `request_timeout` (the limits of the
    /// tower-http layers inside).
    #[must_use]
    pub fn new(body_limit: usize, request_timeout: Duration) -> Self {
        Self {
            limits: ProblemLimits {
                body_limit: u64::try_from(body_limit).unwrap_or(u64::MAX),
                request_timeout,
            },
        }
    }
}

impl<S> Layer<S> for ProblemAnswersLayer {
    type Service = ProblemAnswers<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ProblemAnswers {
            inner,
            limits: self.limits,
        }
    }
}

/// Turns the plain-text or empty error answers of the inner service into
/// problems; see the [module docs](self). A plain tower service: no clone
/// of the inner stack per request.
#[derive(Debug, Clone)]
pub struct ProblemAnswers<S> {
    inner: S,
    limits: ProblemLimits,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ProblemAnswers<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ProblemAnswersFuture<Pin<Box<S::Future>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let method = request.method().clone();
        ProblemAnswersFuture {
            // Boxed: every layer outside holds, and moves, only a pointer
            // to the rest of the stack's future (hundreds of bytes).
            inner: Box::pin(self.inner.call(request)),
            limits: self.limits,
            method,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ProblemAnswers`].
    #[derive(Debug)]
    pub struct ProblemAnswersFuture<F> {
        #[pin]
        inner: F,
        limits: ProblemLimits,
        method: Method,
    }
}

impl<F, B, E> Future for ProblemAnswersFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<ResponseBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let mut response = as_problem(this.limits, this.method, response);
        // The layers outside add up to ten headers: room for them now
        // grows the map once rather than twice.
        response.headers_mut().reserve(OUTER_HEADERS);
        Poll::Ready(Ok(response))
    }
}

/// `response`, or the problem standing for it when it is a plain error
/// answer.
fn as_problem<B>(
    limits: &ProblemLimits,
    method: &Method,
    response: Response<B>,
) -> Response<ResponseBody<B>> {
    // Only bodiless and plain-text answers are rewritten: that is what
    // routers' rejections and tower-http's layers write, while a document
    // of another type (a problem, a 503 health report) is deliberate.
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !plain {
        return response.map(ResponseBody::inner);
    }
    let error = match response.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge {
            limit: limits.body_limit,
        },
        StatusCode::GATEWAY_TIMEOUT => Error::Timeout {
            operation: "request".into(),
            after: limits.request_timeout,
        },
        status => match problem_for_status(status, method) {
            Some(error) => error,
            None => return response.map(ResponseBody::inner),
        },
    };
    // The body is dropped unread: it may echo the input.
    let mut problem = ResponseBody::own_response(error.into_problem_response());
    if !matches!(
        response.status(),
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::GATEWAY_TIMEOUT
    ) {
        // Keep what the layer said about the method or the retry.
        keep(response.headers(), problem.headers_mut());
    }
    problem
}

/// Copy `Allow` and `Retry-After` from `from` into `to`.
fn keep(from: &HeaderMap, to: &mut HeaderMap) {
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = from.get(&name) {
            to.insert(name, value.clone());
        }
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use path::Path;

#[cfg(feature = "axum")]
mod path {
    use axum::extract::FromRequestParts;
    use axum::extract::path::ErrorKind;
    use axum::extract::rejection::PathRejection;
    use docaiche_core::Error;
    use http::request::Parts;
    use serde::de::DeserializeOwned;

    use crate::json::truncate;

    /// `axum::extract::Path`, rejected with an [`Error`]: a 400 problem for
    /// a segment that is not valid UTF-8 or does not parse, naming the
    /// parameter; a 500 for a route wired to the wrong parameters (a bug).
    #[derive(Debug, Clone, Copy, Default)]
    // A transparent wrapper, destructured in handler signatures.
    #[allow(clippy::exhaustive_structs)]
    pub struct Path<T>(pub T);

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
    pub(super) fn path_error(rejection: PathRejection) -> Error {
        let PathRejection::FailedToDeserializePathParams(failure) = rejection else {
            // MissingPathParams and future variants: the route and its
            // handler disagree, which no request can cause.
            return Error::internal(format!("path extraction failed: {}", rejection.body_text()));
        };
        match failure.kind() {
            ErrorKind::InvalidUtf8InPathParam { key } => Error::invalid_input(format!(
                "the path parameter `{}` is not valid UTF-8 once percent-decoded",
                truncate(key)
            )),
            ErrorKind::ParseErrorAtKey {
                key, expected_type, ..
            } => Error::invalid_input(format!(
                "the path parameter `{}` is not a valid {expected_type}",
                truncate(key)
            )),
            ErrorKind::ParseError { expected_type, .. }
            | ErrorKind::ParseErrorAtIndex { expected_type, .. } => {
                Error::invalid_input(format!("a path parameter is not a valid {expected_type}"))
            }
            // The target type's own `Deserialize` refused the segment (a
            // UUID, an id newtype): the client's input, not our route. The
            // message is not echoed: it may quote the input.
            ErrorKind::DeserializeError { key, .. } => Error::invalid_input(format!(
                "the path parameter `{}` is not valid",
                truncate(key)
            )),
            ErrorKind::Message(_) => Error::invalid_input("a path parameter is not valid"),
            // Wrong parameter count, unsupported target type: the
            // handler's type does not fit its route.
            _ => Error::internal(format!("path extraction failed: {}", failure.body_text())),
        }
    }
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

    #[test]
    fn plain_error_answers_become_problems_and_documents_are_kept() {
        let limits = ProblemLimits {
            body_limit: 1024,
            request_timeout: Duration::from_secs(3),
        };
        let answer = |status: StatusCode, content_type: Option<&'static str>| {
            let mut response = Response::new("echoed <script>");
            *response.status_mut() = status;
            if let Some(ct) = content_type {
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, http::HeaderValue::from_static(ct));
            }
            response
                .headers_mut()
                .insert(header::ALLOW, http::HeaderValue::from_static("GET"));
            response
        };
        let too_large = as_problem(
            &limits,
            &Method::POST,
            answer(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("text/plain; charset=utf-8"),
            ),
        );
        assert_eq!(too_large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            too_large.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let method = as_problem(
            &limits,
            &Method::PUT,
            answer(StatusCode::METHOD_NOT_ALLOWED, None),
        );
        assert_eq!(method.headers()[header::ALLOW], "GET", "Allow is kept");
        assert!(matches!(method.body(), ResponseBody::Own { .. }));
        let document = as_problem(
            &limits,
            &Method::GET,
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                Some("application/health+json"),
            ),
        );
        assert!(
            matches!(document.body(), ResponseBody::Inner { .. }),
            "a document is deliberate"
        );
        let fine = as_problem(&limits, &Method::GET, answer(StatusCode::OK, None));
        assert!(matches!(fine.body(), ResponseBody::Inner { .. }));
    }
}
