//! The console's way to the API: an in-process call of the API router, as
//! the signed-in person.
//!
//! Each call carries an access token minted for the person's current
//! principal (the JWT issuer of the API's own logins, the configured
//! lifetime), the console request's id and client address, so the API's
//! gate authenticates, authorizes, rate-limits, counts and audits it as if
//! the person had called it. Nothing leaves the process.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use docaiche_core::{Error, Principal};
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;
use tower::ServiceExt as _;

use crate::state::AppState;

/// Longest API answer the console reads (the API's pages are bounded; this
/// bounds what a page can make the console buffer).
const MAX_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// The API router, as the console's extension.
#[derive(Clone)]
pub(crate) struct Api {
    router: Router,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Api")
    }
}

/// An API answer: its status and JSON body (`null` when empty).
#[derive(Debug)]
pub(crate) struct Answer {
    /// The status.
    pub(crate) status: StatusCode,
    /// The body.
    pub(crate) body: serde_json::Value,
}

impl Answer {
    /// The body as `T` when the status is a success; the API's refusal as
    /// a console page otherwise.
    ///
    /// # Errors
    /// The refusal page of the API's problem (its status, title and
    /// detail, which the API writes for clients); an error page when a
    /// success does not parse as `T`.
    pub(crate) fn into_ok<T: DeserializeOwned>(self) -> Result<T, Response> {
        if self.status.is_success() {
            return serde_json::from_value(self.body).map_err(|e| {
                super::layout::error_page(&Error::internal_with("an API answer did not parse", e))
            });
        }
        Err(self.refusal())
    }

    /// The API's refusal as a console page of the same status.
    pub(crate) fn refusal(&self) -> Response {
        let text = |name| self.body.get(name).and_then(|d| d.as_str());
        super::layout::refusal(
            self.status,
            text("title").unwrap_or("Refused"),
            text("detail").unwrap_or("The request was refused."),
        )
    }
}

impl Api {
    /// Calls of `router`.
    pub(crate) const fn new(router: Router) -> Self {
        Self { router }
    }

    /// `method uri` with JSON `body` (if any) as `principal`, carrying the
    /// console request's `headers`' request id and `peer`.
    ///
    /// # Errors
    /// `Internal` when a token cannot be minted or the answer cannot be
    /// read; an API refusal is an [`Answer`], not an error.
    pub(crate) async fn call(
        &self,
        state: &AppState,
        principal: &Principal,
        context: &CallContext,
        method: Method,
        uri: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Answer, Error> {
        let token = state.auth.issuer.issue(principal)?;
        let mut request = Request::builder().method(method).uri(uri);
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.token.expose_secret()))
            .map_err(|e| Error::internal_with("a minted token is not a header value", e))?;
        bearer.set_sensitive(true);
        request = request.header(header::AUTHORIZATION, bearer);
        if let Some(id) = &context.request_id {
            request = request.header("x-request-id", id.clone());
        }
        let body = match body {
            Some(json) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(json).map_err(|e| {
                    Error::internal_with("a console request body did not serialize", e)
                })?)
            }
            None => Body::empty(),
        };
        let mut request = request
            .body(body)
            .map_err(|e| Error::internal_with("a console API request is invalid", e))?;
        if let Some(peer) = context.peer {
            request.extensions_mut().insert(peer);
        }
        let response = match self.router.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| Error::internal(format!("an API answer could not be read: {e}")))?
            .to_bytes();
        let body = if bytes.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .map_err(|e| Error::internal_with("an API answer is not JSON", e))?
        };
        Ok(Answer { status, body })
    }
}

/// What a console request passes on to the API calls it makes.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallContext {
    /// The console request's id.
    request_id: Option<HeaderValue>,
    /// The browser's address.
    peer: Option<ConnectInfo<std::net::SocketAddr>>,
}

impl CallContext {
    /// The context of a console request with `headers` and `extensions`.
    fn of(headers: &HeaderMap, extensions: &axum::http::Extensions) -> Self {
        Self {
            request_id: headers.get("x-request-id").cloned(),
            peer: extensions
                .get::<ConnectInfo<std::net::SocketAddr>>()
                .cloned(),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for CallContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.headers, &parts.extensions))
    }
}
