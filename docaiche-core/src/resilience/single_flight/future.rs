//! The response future of [`SingleFlightService`](super::SingleFlightService).

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Run, Shared, Start};
use crate::error::Error;

/// The inner service (polled ready) and the request, called only if this
/// caller leads.
pub(super) struct CallInner<S, Req> {
    pub(super) service: S,
    pub(super) request: Req,
}

impl<S, Req> Start for CallInner<S, Req>
where
    S: Service<Req>,
{
    type Future = S::Future;

    fn start(mut self) -> S::Future {
        self.service.call(self.request)
    }
}

pin_project! {
    /// Resolves to the response of the computation shared for the request's
    /// key: this caller's own call to the inner service if it leads, a clone
    /// of the leader's response otherwise.
    pub struct ResponseFuture<S, Req, K>
    where
        S: Service<Req>,
        K: Hash,
        K: Eq,
        K: Clone,
    {
        #[pin]
        run: Run<K, S::Response, CallInner<S, Req>, S::Future, Arc<Shared<K, S::Response>>>,
    }
}

impl<S, Req, K> ResponseFuture<S, Req, K>
where
    S: Service<Req>,
    K: Hash + Eq + Clone,
{
    pub(super) fn new(
        shared: Arc<Shared<K, S::Response>>,
        key: K,
        service: S,
        request: Req,
    ) -> Self {
        Self {
            run: Run::new(shared, key, CallInner { service, request }),
        }
    }
}

impl<S, Req, K> Future for ResponseFuture<S, Req, K>
where
    S: Service<Req>,
    S::Response: Clone,
    S::Error: Into<Error>,
    K: Hash + Eq + Clone,
{
    type Output = Result<S::Response, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().run.poll(cx)
    }
}

impl<S, Req, K> fmt::Debug for ResponseFuture<S, Req, K>
where
    S: Service<Req>,
    K: Hash + Eq + Clone,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
