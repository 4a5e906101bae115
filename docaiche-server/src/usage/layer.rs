//! [`CountLayer`]: counts each authenticated request by outcome, between
//! authentication and the rate limit (see the [module docs](super)); and
//! [`Refusals`], the future the auth gate wraps around authentication to
//! charge refused credentials.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use axum::response::Response;
use docaiche_core::Principal;
use docaiche_core::usage::{RouteClass, UsageOutcome};
use http::{HeaderMap, HeaderValue, Request, StatusCode, header::AUTHORIZATION};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::Usage;

/// The API-key header, parsed once.
const API_KEY: http::HeaderName =
    http::HeaderName::from_static(docaiche_auth::layer::API_KEY_HEADER);

/// Marks an answer [`Count`] has counted, so that [`Refusals`] does not
/// count it again (set only on 401 and 429 answers: the ones `Refusals`
/// looks at).
#[derive(Debug, Clone, Copy)]
struct Counted;

/// The usage of one route class, for the counting layers. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct CountLayer {
    usage: Arc<Usage>,
    class: RouteClass,
}

impl CountLayer {
    /// Count into `usage`, under `class`; `None` if counting is off.
    pub(crate) fn new(usage: &Arc<Usage>, class: RouteClass) -> Option<Self> {
        usage.is_enabled().then(|| Self {
            usage: Arc::clone(usage),
            class,
        })
    }

    /// The credential of `headers` to keep while authentication runs
    /// (a shared copy of the header's bytes, no allocation).
    pub(crate) fn presented(headers: &HeaderMap) -> Presented {
        Presented(
            headers
                .get(API_KEY)
                .or_else(|| headers.get(AUTHORIZATION))
                .cloned(),
        )
    }

    /// Wrap the authentication future `future` of a request that presented
    /// `presented`.
    pub(crate) fn refusals<F>(&self, presented: Presented, future: F) -> Refusals<F> {
        Refusals {
            future,
            pending: Some((self.clone(), presented)),
        }
    }
}

/// The credential a request presented, kept to charge a refusal.
#[derive(Debug, Clone, Default)]
pub(crate) struct Presented(Option<HeaderValue>);

impl Presented {
    /// The API key, from `X-API-Key` or `Authorization: ApiKey …` (not a
    /// bearer token: its claims are not trusted until it verifies).
    pub(crate) fn api_key(&self) -> Option<&str> {
        let value = self.0.as_ref()?.to_str().ok()?;
        match value.split_once(' ') {
            None => Some(value),
            Some((scheme, key)) if scheme.eq_ignore_ascii_case("apikey") => {
                Some(key.trim_start_matches(' '))
            }
            Some(_) => None,
        }
    }
}

impl<S> Layer<S> for CountLayer {
    type Service = Count<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Count {
            inner,
            layer: Some(self.clone()),
        }
    }
}

/// The service of [`CountLayer`] (`layer: None`: counting is off, the
/// inner service is called as is).
#[derive(Debug, Clone)]
pub(crate) struct Count<S> {
    inner: S,
    layer: Option<CountLayer>,
}

impl<S> Count<S> {
    /// `inner`, not counted.
    pub(crate) const fn passthrough(inner: S) -> Self {
        Self { inner, layer: None }
    }

    /// `inner`, counted by `layer` if any.
    pub(crate) fn new(inner: S, layer: Option<&CountLayer>) -> Self {
        match layer {
            Some(layer) => layer.layer(inner),
            None => Self::passthrough(inner),
        }
    }
}

impl<S, B> Service<Request<B>> for Count<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = CountFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let counting = self.layer.as_ref().and_then(|layer| {
            let extensions = request.extensions();
            let principal = extensions
                .get::<Arc<Principal>>()
                .cloned()
                .or_else(|| extensions.get::<Principal>().cloned().map(Arc::new))?;
            Some((layer.clone(), principal))
        });
        CountFuture {
            future: self.inner.call(request),
            counting,
        }
    }
}

pin_project! {
    /// The response future of [`Count`].
    pub(crate) struct CountFuture<F> {
        #[pin]
        future: F,
        counting: Option<(CountLayer, Arc<Principal>)>,
    }
}

impl<F, E> Future for CountFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut output = ready!(this.future.poll(cx));
        if let (Some((layer, principal)), Ok(response)) = (this.counting.take(), &mut output) {
            let status = response.status();
            let outcome = match status {
                StatusCode::TOO_MANY_REQUESTS => UsageOutcome::RateLimited,
                StatusCode::FORBIDDEN => UsageOutcome::Denied,
                _ => UsageOutcome::Allowed,
            };
            layer.usage.record(&principal, &layer.class, outcome);
            if matches!(
                status,
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            ) {
                response.extensions_mut().insert(Counted);
            }
        }
        Poll::Ready(output)
    }
}

pin_project! {
    /// The authentication path's future in the auth gate: a 401, or a 429
    /// not counted inside, is the authentication layer's refusal of the
    /// presented credential, charged with [`Usage::refused`].
    pub(crate) struct Refusals<F> {
        #[pin]
        future: F,
        pending: Option<(CountLayer, Presented)>,
    }
}

impl<F> Refusals<F> {
    /// `future`, with nothing to charge (counting is off).
    pub(crate) const fn passthrough(future: F) -> Self {
        Self {
            future,
            pending: None,
        }
    }
}

impl<F, E> Future for Refusals<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.future.poll(cx));
        if let (Some((layer, presented)), Ok(response)) = (this.pending.take(), &output)
            && matches!(
                response.status(),
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS
            )
            && response.extensions().get::<Counted>().is_none()
        {
            layer.usage.refused(&presented, &layer.class);
        }
        Poll::Ready(output)
    }
}
