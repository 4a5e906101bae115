//! The response future of [`RateLimit`](super::RateLimit).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::check::{CheckOutcome, Denial, denied_response, failed_response};
use super::concurrency::ConcurrencyPermit;
use docaiche_core::Error;

use super::metrics::{Outcome, RateLimitMetrics};
use crate::headers::{self, ServiceLimitItem};
use crate::policy::{OnLimiterError, Policy};

/// A boxed, sendable future: the limiter round.
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project! {
    /// Resolves to the inner service's response with the RateLimit headers
    /// added, or to the layer's own 429 (or 503) problem response.
    ///
    /// A concurrency slot taken for the request is held until this future
    /// completes or is dropped.
    pub struct ResponseFuture<S, ReqBody, F> {
        #[pin]
        state: State<S, ReqBody, F>,
        context: RoundContext,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, F> {
        /// Waiting for the limiter; then the inner service is called.
        Checking {
            check: BoxFuture<CheckOutcome>,
            call: Option<(S, Request<ReqBody>)>,
        },
        /// The inner service is running.
        Calling {
            #[pin]
            future: F,
        },
        /// Answered without the inner service.
        Answered {
            early: Option<Early>,
        },
    }
}

/// What the future needs besides its state.
pub(crate) struct RoundContext {
    /// The policy the request falls under.
    pub(crate) policy: Arc<Policy>,
    /// Where outcomes are counted.
    pub(crate) metrics: RateLimitMetrics,
    /// What a limiter failure does.
    pub(crate) on_limiter_error: OnLimiterError,
    /// The concurrency slot, held until the inner call completes.
    pub(crate) permit: Option<ConcurrencyPermit>,
    /// The `RateLimit` item for the response, once known.
    pub(crate) current: Option<ServiceLimitItem>,
}

impl<S, ReqBody, F> ResponseFuture<S, ReqBody, F> {
    /// Run the limiter round, then call `service` with `request`.
    pub(crate) fn checking(
        check: BoxFuture<CheckOutcome>,
        service: S,
        request: Request<ReqBody>,
        context: RoundContext,
    ) -> Self {
        Self {
            state: State::Checking {
                check,
                call: Some((service, request)),
            },
            context,
        }
    }

    /// The inner service is already called (no rate limits to check).
    pub(crate) fn calling(future: F, context: RoundContext) -> Self {
        Self {
            state: State::Calling { future },
            context,
        }
    }

    /// Answered without the inner service: refused by a limit, or failed
    /// closed.
    pub(crate) fn answered(early: Early, context: RoundContext) -> Self {
        Self {
            state: State::Answered { early: Some(early) },
            context,
        }
    }
}

/// An answer the layer gives instead of the inner service.
#[derive(Debug)]
pub(crate) enum Early {
    /// A limit refused: 429.
    Denied(Denial),
    /// The limiter failed and the policy fails closed: 503.
    Failed(Error),
}

impl Early {
    fn into_response<B: From<String>>(self, policy: &Policy) -> Response<B> {
        match self {
            Self::Denied(denial) => denied_response(&denial, policy),
            Self::Failed(error) => failed_response(&error, policy),
        }
    }
}

impl RoundContext {
    /// Count the round's `outcome`; `None` when the inner service is to be
    /// called, else the layer's own answer (its concurrency slot freed).
    pub(crate) fn settle(&mut self, outcome: CheckOutcome) -> Option<Early> {
        let policy = self.policy.name().as_str();
        match outcome {
            CheckOutcome::Allowed(item, degraded) => {
                self.metrics.record(policy, Outcome::Allowed, degraded);
                self.current = Some(item);
                None
            }
            CheckOutcome::Denied(denial, degraded) => {
                self.metrics.record(policy, Outcome::Limited, degraded);
                self.permit = None;
                Some(Early::Denied(denial))
            }
            CheckOutcome::Failed(error) => {
                self.metrics.record(policy, Outcome::Error, false);
                if self.on_limiter_error == OnLimiterError::FailClosed {
                    self.permit = None;
                    return Some(Early::Failed(error));
                }
                tracing::warn!(
                    policy,
                    error = %error.log_chain(),
                    "rate limiter failed; request let through (fail_open)"
                );
                None
            }
        }
    }
}

impl<S, ReqBody, ResBody, F, E> Future for ResponseFuture<S, ReqBody, F>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>, Error = E, Future = F>,
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: From<String>,
{
    type Output = Result<Response<ResBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let context = this.context;
        loop {
            match this.state.as_mut().project() {
                StateProj::Checking { check, call } => {
                    let outcome = ready!(check.as_mut().poll(cx));
                    if let Some(early) = context.settle(outcome) {
                        return Poll::Ready(Ok(early.into_response(&context.policy)));
                    }
                    let (mut service, request) = call
                        .take()
                        .expect("invariant: the call is taken once, when the check completes");
                    let future = service.call(request);
                    this.state.set(State::Calling { future });
                }
                StateProj::Calling { future } => {
                    let result = ready!(future.poll(cx));
                    // The request is done: free its concurrency slot.
                    context.permit = None;
                    let mut response = result?;
                    headers::insert(
                        response.headers_mut(),
                        context.policy.header_value(),
                        context.current.as_ref(),
                    );
                    return Poll::Ready(Ok(response));
                }
                StateProj::Answered { early } => {
                    let early = early
                        .take()
                        .expect("invariant: an answered future is polled to completion once");
                    return Poll::Ready(Ok(early.into_response(&context.policy)));
                }
            }
        }
    }
}

impl<S, ReqBody, F> fmt::Debug for ResponseFuture<S, ReqBody, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Checking { .. } => "checking",
            State::Calling { .. } => "calling",
            State::Answered { .. } => "answered",
        };
        f.debug_struct("ResponseFuture")
            .field("policy", &self.context.policy.name())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
