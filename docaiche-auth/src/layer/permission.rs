//! [`RequirePermissionLayer`] and the [`RequirePermission`] service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use docaiche_core::{AuthFailure, Error, Permission, Principal};
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// Lets a request through only if its [`Principal`] (put in the extensions
/// by [`AuthLayer`](super::AuthLayer), which must run first) holds a
/// permission: otherwise 403 problem+json, or 401 if there is no principal
/// at all. Deny by default: a route behind this layer without an auth layer
/// in front answers 401 to everyone.
#[derive(Debug, Clone)]
pub struct RequirePermissionLayer {
    permission: Permission,
}

impl RequirePermissionLayer {
    /// Require `permission`.
    #[must_use]
    pub const fn new(permission: Permission) -> Self {
        Self { permission }
    }

    /// The permission required.
    #[must_use]
    pub const fn permission(&self) -> &Permission {
        &self.permission
    }
}

impl<S> Layer<S> for RequirePermissionLayer {
    type Service = RequirePermission<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequirePermission {
            inner,
            permission: self.permission.clone(),
        }
    }
}

/// A service that requires a permission; from [`RequirePermissionLayer`].
#[derive(Debug, Clone)]
pub struct RequirePermission<S> {
    inner: S,
    permission: Permission,
}

impl<S> RequirePermission<S> {
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

/// The authenticated principal in `extensions`: the `Arc<Principal>`
/// [`AuthLayer`](super::AuthLayer) puts there, or a plain [`Principal`] an
/// integrator's own layer put there.
#[must_use]
pub fn principal_of(extensions: &http::Extensions) -> Option<&Principal> {
    Principal::from_extensions(extensions)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequirePermission<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: From<String>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = PermissionFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let decision = match principal_of(request.extensions()) {
            None => Err(Error::unauthenticated(AuthFailure::Missing)),
            Some(principal) => principal.require(&self.permission),
        };
        match decision {
            Ok(()) => PermissionFuture {
                state: PermissionState::Inner {
                    future: self.inner.call(request),
                },
            },
            Err(error) => PermissionFuture {
                state: PermissionState::Refused {
                    response: Some(error.into_problem_response()),
                },
            },
        }
    }
}

pin_project! {
    /// The response future of [`RequirePermission`].
    #[derive(Debug)]
    pub struct PermissionFuture<F, B> {
        #[pin]
        state: PermissionState<F, B>,
    }
}

pin_project! {
    #[project = PermissionStateProj]
    #[derive(Debug)]
    enum PermissionState<F, B> {
        Inner {
            #[pin]
            future: F,
        },
        Refused {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, E> Future for PermissionFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: From<String>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            PermissionStateProj::Inner { future } => future.poll(cx),
            PermissionStateProj::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_else(|| {
                    Error::internal("permission future polled after completion")
                        .into_problem_response()
                })))
            }
        }
    }
}
