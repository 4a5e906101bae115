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
        Refused {
            denial: Option<Denial>,
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

    /// Refused before any limiter call (a concurrency limit).
    pub(crate) fn refused(denial: Denial, context: RoundContext) -> Self {
        Self {
            state: State::Refused {
                denial: Some(denial),
            },
            context,
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
                    let policy = context.policy.name().as_str();
                    match outcome {
                        CheckOutcome::Allowed(item) => {
                            context.metrics.record(policy, Outcome::Allowed);
                            context.current = Some(item);
                        }
                        CheckOutcome::Denied(denial) => {
                            context.metrics.record(policy, Outcome::Limited);
                            context.permit = None;
                            return Poll::Ready(Ok(denied_response(&denial, &context.policy)));
                        }
                        CheckOutcome::Failed(error) => {
                            context.metrics.record(policy, Outcome::Error);
                            if context.on_limiter_error == OnLimiterError::FailClosed {
                                context.permit = None;
                                return Poll::Ready(Ok(failed_response(&error, &context.policy)));
                            }
                            tracing::warn!(
                                policy,
                                error = %error.log_chain(),
                                "rate limiter failed; request let through (fail_open)"
                            );
                        }
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
                StateProj::Refused { denial } => {
                    let denial = denial
                        .take()
                        .expect("invariant: a refused future is polled to completion once");
                    return Poll::Ready(Ok(denied_response(&denial, &context.policy)));
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
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("policy", &self.context.policy.name())
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
