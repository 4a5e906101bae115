//! [`AuthLayer`], the [`Auth`] service and its response future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use docaiche_core::{AuthFailure, Authenticator, Error, Principal, RequestContext};
use http::header::AUTHORIZATION;
use http::{HeaderName, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::credential::{self, Presented};
use crate::lockout::{FailedAuthTracker, FailureSubject};

/// The default API key header.
pub const API_KEY_HEADER: &str = "x-api-key";
/// The default longest credential header value, in bytes.
pub const DEFAULT_MAX_CREDENTIAL_LEN: usize = 8192;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Authenticates every request; see the [module docs](super).
///
/// Cheap to clone.
#[derive(Clone)]
pub struct AuthLayer {
    shared: Arc<Shared>,
}

struct Shared {
    authenticator: Arc<dyn Authenticator>,
    tracker: Option<Arc<FailedAuthTracker>>,
    api_key_header: HeaderName,
    max_credential_len: usize,
}

impl AuthLayer {
    /// A layer verifying credentials with `authenticator` (for bearer
    /// tokens and API keys both, e.g. a
    /// [`CredentialRouter`](super::CredentialRouter)).
    #[must_use]
    pub fn new(authenticator: Arc<dyn Authenticator>) -> Self {
        Self {
            shared: Arc::new(Shared {
                authenticator,
                tracker: None,
                api_key_header: HeaderName::from_static(API_KEY_HEADER),
                max_credential_len: DEFAULT_MAX_CREDENTIAL_LEN,
            }),
        }
    }

    /// Count failed attempts in `tracker`, per client address and client
    /// network (the API-key prefix is named on the audit event, never
    /// counted). A credential is verified first and a valid one is always
    /// accepted; a failure from a locked source answers 429 with
    /// `Retry-After` instead of 401. See [`crate::lockout`].
    #[must_use]
    pub fn with_failure_tracker(self, tracker: Arc<FailedAuthTracker>) -> Self {
        self.map(|s| s.tracker = Some(tracker))
    }

    /// Read API keys from `header` instead of `X-API-Key`.
    #[must_use]
    pub fn with_api_key_header(self, header: HeaderName) -> Self {
        self.map(|s| s.api_key_header = header)
    }

    /// Refuse credential headers longer than `max` bytes (default 8192).
    #[must_use]
    pub fn with_max_credential_len(self, max: usize) -> Self {
        self.map(|s| s.max_credential_len = max)
    }

    fn map(self, f: impl FnOnce(&mut Shared)) -> Self {
        let mut shared = Shared {
            authenticator: Arc::clone(&self.shared.authenticator),
            tracker: self.shared.tracker.clone(),
            api_key_header: self.shared.api_key_header.clone(),
            max_credential_len: self.shared.max_credential_len,
        };
        f(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }
}

impl fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("authenticator", &self.shared.authenticator)
            .field("tracker", &self.shared.tracker.is_some())
            .field("api_key_header", &self.shared.api_key_header)
            .field("max_credential_len", &self.shared.max_credential_len)
            .finish()
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Auth {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service whose requests are authenticated; from [`AuthLayer`].
///
/// `poll_ready` is the inner service's. The inner service is called only
/// after authentication succeeded, with the [`Principal`] (and the
/// [`RequestContext`]) in the request extensions.
#[derive(Debug, Clone)]
pub struct Auth<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S> Auth<S> {
    /// The inner service.
    pub const fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub const fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Auth<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let shared = &self.layer.shared;
        // Before anything below (a trace layer) can print them; one pass
        // over the request's few headers rather than a lookup per name.
        for (name, value) in request.headers_mut().iter_mut() {
            if name == AUTHORIZATION || *name == shared.api_key_header {
                value.set_sensitive(true);
            }
        }
        let presented = credential::extract(
            request.headers(),
            &shared.api_key_header,
            shared.max_credential_len,
        );
        if matches!(presented, Err(AuthFailure::Missing)) {
            // No credential is not an attempt: nothing to count or audit.
            return ResponseFuture::refused(Error::unauthenticated(AuthFailure::Missing));
        }
        let context = credential::request_context(request.extensions(), request.headers());
        // The fast path: an authenticator that can decide without I/O (a
        // cached API key) lets the inner service be called at once, with no
        // boxed future and no clone of it. A valid credential is accepted
        // whatever the failure tracker holds (see `crate::lockout`); a
        // refusal goes the async path, where it is counted.
        if let Ok(credential) = &presented
            && let Some(Ok(principal)) = shared
                .authenticator
                .authenticate_now(&credential.credential, &context)
        {
            request.extensions_mut().insert(context);
            request.extensions_mut().insert(principal);
            return ResponseFuture {
                state: State::Calling {
                    future: self.inner.call(request),
                },
            };
        }
        let authenticating = Box::pin(authenticate(
            Arc::clone(&shared.authenticator),
            shared.tracker.clone(),
            presented,
            context.clone(),
        ));
        request.extensions_mut().insert(context);
        // Call the instance that was driven to readiness; keep a fresh clone.
        let clone = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Authenticating {
                authenticating,
                call: Some((ready, request)),
            },
        }
    }
}

async fn authenticate(
    authenticator: Arc<dyn Authenticator>,
    tracker: Option<Arc<FailedAuthTracker>>,
    presented: Result<Presented, AuthFailure>,
    context: RequestContext,
) -> Result<Principal, Error> {
    // Verify first: a valid credential is never refused for what others
    // did with its public parts or from its network.
    let outcome = match &presented {
        Ok(presented) => {
            authenticator
                .authenticate(&presented.credential, &context)
                .await
        }
        Err(reason) => Err(Error::unauthenticated(*reason)),
    };
    let error = match outcome {
        Ok(principal) => return Ok(principal),
        Err(error) => error,
    };
    tracing::debug!(error = %error, client_addr = ?context.client_addr, "authentication refused");
    match (&error, &tracker) {
        (Error::Unauthenticated { reason }, Some(tracker)) => {
            let subjects = failure_subjects(&context, &presented);
            // A source locked (before or by this failure): the guesser
            // learns only when to come back.
            match tracker.record_failure(&subjects, &context, *reason).await {
                Some(lockout) => Err(lockout.into()),
                None => Err(error),
            }
        }
        _ => Err(error),
    }
}

/// What the failure tracker is told of a failed attempt: the client address
/// and network (counted), and the API-key prefix (only named on the audit
/// event).
fn failure_subjects(
    context: &RequestContext,
    presented: &Result<Presented, AuthFailure>,
) -> Vec<FailureSubject> {
    let mut subjects = Vec::with_capacity(3);
    if let Some(addr) = context.client_addr {
        subjects.extend(FailureSubject::for_client(addr));
    }
    if let Some(prefix) = presented.as_ref().ok().and_then(Presented::key_prefix) {
        subjects.push(FailureSubject::key_prefix(prefix));
    }
    subjects
}

pin_project! {
    /// Resolves to the inner service's response, or to the layer's own 401
    /// (429 while locked out, 503 if the authenticator's backend is down)
    /// problem response.
    pub struct ResponseFuture<S, ReqBody, F> {
        #[pin]
        state: State<S, ReqBody, F>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, F> {
        Authenticating {
            authenticating: BoxFuture<Result<Principal, Error>>,
            call: Option<(S, Request<ReqBody>)>,
        },
        Calling {
            #[pin]
            future: F,
        },
        Refused {
            error: Option<Error>,
        },
    }
}

impl<S, ReqBody, F> ResponseFuture<S, ReqBody, F> {
    fn refused(error: Error) -> Self {
        Self {
            state: State::Refused { error: Some(error) },
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
        loop {
            match this.state.as_mut().project() {
                StateProj::Authenticating {
                    authenticating,
                    call,
                } => {
                    let outcome = ready!(authenticating.as_mut().poll(cx));
                    let Some((mut service, mut request)) = call.take() else {
                        // Polled again after completion: answer, never panic.
                        return Poll::Ready(Ok(Error::internal(
                            "auth future polled after completion",
                        )
                        .into_problem_response()));
                    };
                    match outcome {
                        Ok(principal) => {
                            // As the fast path does: one type for readers.
                            request.extensions_mut().insert(Arc::new(principal));
                            let future = service.call(request);
                            this.state.set(State::Calling { future });
                        }
                        Err(error) => return Poll::Ready(Ok(error.into_problem_response())),
                    }
                }
                StateProj::Calling { future } => return future.poll(cx),
                StateProj::Refused { error } => {
                    let error = error
                        .take()
                        .unwrap_or_else(|| Error::internal("auth future polled after completion"));
                    return Poll::Ready(Ok(error.into_problem_response()));
                }
            }
        }
    }
}

impl<S, ReqBody, F> fmt::Debug for ResponseFuture<S, ReqBody, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Authenticating { .. } => "authenticating",
            State::Calling { .. } => "calling",
            State::Refused { .. } => "refused",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
