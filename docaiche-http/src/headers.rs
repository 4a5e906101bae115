//! Security headers on every answer: [`SecurityHeadersLayer`].
//!
//! Each header is set only when the answer does not carry it already (a
//! handler's own value wins), by one service for all of them, so a request
//! pays for one layer rather than one per header:
//!
//! - `Strict-Transport-Security`, when the deployment is HTTPS (see
//!   [`SecurityHeadersPolicy::with_hsts`]);
//! - `Content-Security-Policy` (default [`DEFAULT_CSP`]: nothing may load,
//!   no framing);
//! - `X-Content-Type-Options: nosniff`;
//! - `X-Frame-Options: DENY` (for browsers without `frame-ancestors`);
//! - `Referrer-Policy` (default `no-referrer`).
//!
//! [`AmendHeaders`] and [`AmendedFuture`] are the zero-allocation response
//! future this layer (and CORS's fast path) is built on: the inner future
//! plus a value that edits the answer's headers when it is ready.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use tower_layer::Layer;
use tower_service::Service;

/// The default `Content-Security-Policy`: an API serves no active content,
/// so nothing may load and no page may frame it.
pub const DEFAULT_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// One year, the `max-age` HSTS preload lists ask for.
pub const DEFAULT_HSTS_MAX_AGE: Duration = Duration::from_secs(31_536_000);

/// `X-Content-Type-Options`.
const X_CONTENT_TYPE_OPTIONS: HeaderName = HeaderName::from_static("x-content-type-options");

/// Which security headers are sent, with which values.
///
/// [`Default`] sends [`DEFAULT_CSP`], `Referrer-Policy: no-referrer`,
/// `X-Content-Type-Options: nosniff` and `X-Frame-Options: DENY`, and no
/// HSTS: only an HTTPS deployment may send it ([`Self::with_hsts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityHeadersPolicy {
    hsts: Option<HeaderValue>,
    content_security_policy: Option<HeaderValue>,
    referrer_policy: Option<HeaderValue>,
}

impl Default for SecurityHeadersPolicy {
    fn default() -> Self {
        Self {
            hsts: None,
            content_security_policy: Some(HeaderValue::from_static(DEFAULT_CSP)),
            referrer_policy: Some(HeaderValue::from_static("no-referrer")),
        }
    }
}

impl SecurityHeadersPolicy {
    /// Send `Strict-Transport-Security: max-age=<secs>` (with
    /// `includeSubDomains` when `include_subdomains`); a zero `max_age`
    /// sends none. Only for HTTPS deployments: browsers then refuse plain
    /// HTTP to the host for `max_age`.
    #[must_use]
    pub fn with_hsts(mut self, max_age: Duration, include_subdomains: bool) -> Self {
        self.hsts = (max_age.as_secs() > 0).then(|| {
            let mut value = format!("max-age={}", max_age.as_secs());
            if include_subdomains {
                value.push_str("; includeSubDomains");
            }
            // Digits and ASCII only: always a valid value.
            HeaderValue::try_from(value).unwrap_or_else(|_| HeaderValue::from_static("max-age=0"))
        });
        self
    }

    /// Send `value` as `Content-Security-Policy`; `None` sends none.
    #[must_use]
    pub fn with_content_security_policy(mut self, value: Option<HeaderValue>) -> Self {
        self.content_security_policy = value;
        self
    }

    /// Send `value` as `Referrer-Policy`; `None` sends none.
    #[must_use]
    pub fn with_referrer_policy(mut self, value: Option<HeaderValue>) -> Self {
        self.referrer_policy = value;
        self
    }

    /// The `Strict-Transport-Security` value sent, if any.
    #[must_use]
    pub fn hsts(&self) -> Option<&HeaderValue> {
        self.hsts.as_ref()
    }

    /// The layer setting these headers.
    #[must_use]
    pub fn layer(&self) -> SecurityHeadersLayer {
        // In the order the five single-header layers this replaces set them
        // (the innermost first); the unset ones are left out.
        let headers = [
            (header::REFERRER_POLICY, self.referrer_policy.clone()),
            (
                header::X_FRAME_OPTIONS,
                Some(HeaderValue::from_static("DENY")),
            ),
            (
                X_CONTENT_TYPE_OPTIONS,
                Some(HeaderValue::from_static("nosniff")),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                self.content_security_policy.clone(),
            ),
            (header::STRICT_TRANSPORT_SECURITY, self.hsts.clone()),
        ];
        SecurityHeadersLayer {
            headers: IfAbsent(
                headers
                    .into_iter()
                    .filter_map(|(name, value)| Some((name, value?)))
                    .collect(),
            ),
        }
    }
}

/// Wraps a service with [`SecurityHeaders`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct SecurityHeadersLayer {
    headers: IfAbsent,
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> SecurityHeaders<S> {
        SecurityHeaders {
            inner,
            headers: self.headers.clone(),
        }
    }
}

/// Sets the security headers on every answer of the inner service, each
/// only when the answer does not carry that header already; see the
/// [module docs](self).
#[derive(Debug, Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    /// The headers set, in order.
    headers: IfAbsent,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SecurityHeaders<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = AmendedFuture<S::Future, IfAbsent>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        AmendedFuture::new(self.inner.call(request), self.headers.clone())
    }
}

/// A change a layer makes to the headers of every answer.
pub trait AmendHeaders {
    /// Change `headers`, the answer's. Runs once per answer: must not
    /// panic, and should not allocate beyond the header map's own growth.
    fn amend(&self, headers: &mut HeaderMap);
}

/// The security headers, each set only where the answer has none.
#[derive(Debug, Clone)]
pub struct IfAbsent(Arc<[(HeaderName, HeaderValue)]>);

impl AmendHeaders for IfAbsent {
    fn amend(&self, headers: &mut HeaderMap) {
        for (name, value) in self.0.iter() {
            if let header::Entry::Vacant(entry) = headers.entry(name) {
                entry.insert(value.clone());
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's answer, its headers amended by `A` (the
    /// response future of [`SecurityHeaders`] and of CORS's fast path).
    #[derive(Debug)]
    pub struct AmendedFuture<F, A> {
        #[pin]
        inner: F,
        amend: A,
    }
}

impl<F, A> AmendedFuture<F, A> {
    /// `inner`'s answer, amended by `amend`.
    pub const fn new(inner: F, amend: A) -> Self {
        Self { inner, amend }
    }
}

impl<F, A, B, E> Future for AmendedFuture<F, A>
where
    F: Future<Output = Result<Response<B>, E>>,
    A: AmendHeaders,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        this.amend.amend(response.headers_mut());
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use futures_util::FutureExt as _;

    use super::*;

    fn answer(policy: &SecurityHeadersPolicy, own: &[(HeaderName, &'static str)]) -> HeaderMap {
        let own: Vec<_> = own.to_vec();
        let mut service = policy.layer().layer(tower_service_fn(move || {
            let mut response = Response::new(());
            for (name, value) in &own {
                response
                    .headers_mut()
                    .insert(name, HeaderValue::from_static(value));
            }
            response
        }));
        service
            .call(Request::new(()))
            .now_or_never()
            .expect("ready")
            .expect("infallible")
            .into_parts()
            .0
            .headers
    }

    /// A service answering `make()` at once.
    fn tower_service_fn(
        make: impl Fn() -> Response<()>,
    ) -> impl Service<
        Request<()>,
        Response = Response<()>,
        Error = Infallible,
        Future = std::future::Ready<Result<Response<()>, Infallible>>,
    > {
        struct Answer<F>(F);
        impl<F: Fn() -> Response<()>> Service<Request<()>> for Answer<F> {
            type Response = Response<()>;
            type Error = Infallible;
            type Future = std::future::Ready<Result<Response<()>, Infallible>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<()>) -> Self::Future {
                std::future::ready(Ok((self.0)()))
            }
        }
        Answer(make)
    }

    #[test]
    fn the_defaults_send_four_headers_and_no_hsts() {
        let headers = answer(&SecurityHeadersPolicy::default(), &[]);
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], DEFAULT_CSP);
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(headers[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(!headers.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }

    #[test]
    fn hsts_is_sent_when_asked_and_a_handlers_own_header_wins() {
        let policy = SecurityHeadersPolicy::default()
            .with_hsts(DEFAULT_HSTS_MAX_AGE, true)
            .with_referrer_policy(None);
        let headers = answer(
            &policy,
            &[(header::CONTENT_SECURITY_POLICY, "default-src 'self'")],
        );
        assert_eq!(
            headers[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(
            headers[header::CONTENT_SECURITY_POLICY],
            "default-src 'self'"
        );
        assert!(!headers.contains_key(header::REFERRER_POLICY));
        let none = SecurityHeadersPolicy::default().with_hsts(Duration::ZERO, false);
        assert_eq!(none.hsts(), None, "max-age 0 sends no HSTS");
    }
}
