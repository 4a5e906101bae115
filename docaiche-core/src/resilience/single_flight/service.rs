use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;

use super::SingleFlight;
use super::future::ResponseFuture;
use crate::error::Error;

/// A service whose concurrent calls with equal keys share one inner call;
/// from [`SingleFlightLayer`](super::SingleFlightLayer).
///
/// Each call takes the inner service that was polled ready (leaving a clone
/// in its place, the usual tower pattern), so a waiter that must take over
/// from a cancelled leader has a ready service to call. The inner service
/// must therefore be cheap to clone, and the response `Clone`.
pub struct SingleFlightService<S, K, V, F> {
    inner: S,
    group: SingleFlight<K, V>,
    key_fn: F,
}

impl<S, K, V, F> SingleFlightService<S, K, V, F> {
    /// Deduplicate calls to `inner` in `group`, keyed by `key_fn`.
    pub fn new(inner: S, group: SingleFlight<K, V>, key_fn: F) -> Self {
        Self {
            inner,
            group,
            key_fn,
        }
    }

    /// The group.
    pub fn group(&self) -> &SingleFlight<K, V> {
        &self.group
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, K, V, F: Clone> Clone for SingleFlightService<S, K, V, F> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            group: self.group.clone(),
            key_fn: self.key_fn.clone(),
        }
    }
}

impl<S: fmt::Debug, K, V, F> fmt::Debug for SingleFlightService<S, K, V, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SingleFlightService")
            .field("inner", &self.inner)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl<S, Req, K, V, F> Service<Req> for SingleFlightService<S, K, V, F>
where
    S: Service<Req, Response = V> + Clone,
    S::Error: Into<Error>,
    K: Hash + Eq + Clone,
    V: Clone,
    F: Fn(&Req) -> K,
{
    type Response = V;
    type Error = Error;
    type Future = ResponseFuture<S, Req, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let key = (self.key_fn)(&request);
        let replacement = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, replacement);
        ResponseFuture::new(Arc::clone(&self.group.shared), key, ready, request)
    }
}
