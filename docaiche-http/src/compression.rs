//! Response compression, negotiated: [`NegotiatedLayer`].
//!
//! tower-http's `Compression` (gzip and brotli, chosen by
//! `Accept-Encoding`) for a request that sends `Accept-Encoding`, skipped
//! for bodies under the minimum size, for responses already encoded, and
//! for media types that are compressed already (images, audio, video, PDF,
//! archives) or streamed (`text/event-stream`, gRPC): [`CompressWhen`].
//!
//! A request without `Accept-Encoding` can only be answered in identity:
//! it goes to the inner service directly, with what `Compression` would
//! have added (`Vary: Accept-Encoding` when the response could have been
//! compressed). This skips the compression body wrapper, a large value
//! moved through every outer future, on the common path of API clients.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::TryFutureExt as _;
use futures_util::future::{Either, MapOk};
use http::{HeaderValue, Request, Response, header};
use http_body::{Body, Frame, SizeHint};
use tower_http::BoxError;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::{Compression, CompressionBody, CompressionLayer};
use tower_layer::Layer;
use tower_service::Service;

/// When a response is compressed: at least the minimum size (or of
/// unknown size), not already encoded (tower-http checks that), and not a
/// media type that is compressed already or streamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressWhen {
    /// Smallest body compressed; `None` disables compression.
    min_bytes: Option<u64>,
}

impl CompressWhen {
    /// Compress bodies of at least `min_bytes`; `None` compresses nothing.
    #[must_use]
    pub const fn new(min_bytes: Option<u64>) -> Self {
        Self { min_bytes }
    }
}

/// Media types (prefixes) whose bodies are compressed already.
const PRECOMPRESSED: [&str; 10] = [
    "image/",
    "audio/",
    "video/",
    "font/woff",
    "application/pdf",
    "application/zip",
    "application/gzip",
    "application/x-gzip",
    "application/zstd",
    "application/octet-stream",
];

impl Predicate for CompressWhen {
    fn should_compress<B>(&self, response: &Response<B>) -> bool
    where
        B: Body,
    {
        let Some(min_bytes) = self.min_bytes else {
            return false;
        };
        let precompressed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                // Lower-cased on the stack: no allocation per response.
                let ct = ct.trim_start().as_bytes();
                let mut lower = [0u8; 32];
                let len = ct.len().min(lower.len());
                for (to, from) in lower.iter_mut().zip(ct) {
                    *to = from.to_ascii_lowercase();
                }
                let head = &lower[..len];
                // SVG is text: compress it despite `image/`.
                !head.starts_with(b"image/svg+xml")
                    && PRECOMPRESSED.iter().any(|p| head.starts_with(p.as_bytes()))
            });
        !precompressed
            && SizeAbove::new(min_bytes)
                .and(NotForContentType::GRPC)
                .and(NotForContentType::SSE)
                .should_compress(response)
    }
}

/// Wraps a service with [`Negotiated`] compression.
#[derive(Debug, Clone, Copy)]
pub struct NegotiatedLayer {
    when: CompressWhen,
}

impl NegotiatedLayer {
    /// Compress (gzip, brotli) the answers `when` allows.
    #[must_use]
    pub const fn new(when: CompressWhen) -> Self {
        Self { when }
    }
}

impl<S> Layer<S> for NegotiatedLayer {
    type Service = Negotiated<S>;

    fn layer(&self, inner: S) -> Negotiated<S> {
        let compression = CompressionLayer::new()
            .gzip(true)
            .br(true)
            .compress_when(self.when);
        Negotiated {
            compression: compression.layer(inner),
            when: self.when,
        }
    }
}

/// Response compression, negotiated; see the [module docs](self).
#[derive(Clone)]
pub struct Negotiated<S> {
    /// Compression over the inner service.
    compression: Compression<S, CompressWhen>,
    /// Its predicate, for the `Vary` decision of identity answers.
    when: CompressWhen,
}

impl<S: std::fmt::Debug> std::fmt::Debug for Negotiated<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Negotiated")
            .field("inner", self.compression.get_ref())
            .field("when", &self.when)
            .finish()
    }
}

/// The body-type conversion of compressed responses.
type FromCompressed<B> = fn(Response<CompressionBody<B>>) -> Response<NegotiatedBody<B>>;

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Negotiated<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body<Data = Bytes>,
    ResBody::Error: Into<BoxError>,
{
    type Response = Response<NegotiatedBody<ResBody>>;
    type Error = S::Error;
    type Future = Either<
        MapOk<
            tower_http::compression::ResponseFuture<S::Future, CompressWhen>,
            FromCompressed<ResBody>,
        >,
        IdentityFuture<S::Future>,
    >;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.compression.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        if request.headers().contains_key(header::ACCEPT_ENCODING) {
            let into_body: FromCompressed<ResBody> = |response| {
                response.map(|body| NegotiatedBody::Compressed {
                    body: Box::pin(body),
                })
            };
            return Either::Left(self.compression.call(request).map_ok(into_body));
        }
        Either::Right(IdentityFuture {
            inner: self.compression.get_mut().call(request),
            when: self.when,
        })
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Negotiated`] for a request without
    /// `Accept-Encoding`.
    #[derive(Debug)]
    pub struct IdentityFuture<F> {
        #[pin]
        inner: F,
        when: CompressWhen,
    }
}

impl<F, B, E> std::future::Future for IdentityFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<NegotiatedBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        // As tower-http's `Compression` does for an identity answer.
        let headers = response.headers();
        let compressible = !headers.contains_key(header::CONTENT_ENCODING)
            && !headers.contains_key(header::CONTENT_RANGE)
            && this.when.should_compress(&response);
        let varies = || {
            response
                .headers()
                .get_all(header::VARY)
                .iter()
                .any(|value| {
                    value
                        .as_bytes()
                        .windows(ACCEPT_ENCODING_NAME.len())
                        .any(|w| w.eq_ignore_ascii_case(ACCEPT_ENCODING_NAME))
                })
        };
        if compressible && !varies() {
            response
                .headers_mut()
                .append(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        Poll::Ready(Ok(response.map(|body| NegotiatedBody::Identity { body })))
    }
}

/// `accept-encoding`, as `Vary` lists it.
const ACCEPT_ENCODING_NAME: &[u8] = b"accept-encoding";

pin_project_lite::pin_project! {
    /// The body of a [`Negotiated`] answer: the inner body as it is, or
    /// compressed.
    // Each variant's one field is its body (pin-project-lite takes no
    // documentation on variant fields).
    // Exhaustive: a body is the inner one or the layer's own, nothing else.
    #[allow(missing_docs, clippy::exhaustive_enums)]
    #[project = NegotiatedBodyProj]
    pub enum NegotiatedBody<B: Body> {
        /// Not compressed (no `Accept-Encoding`): the inner body.
        Identity {
            #[pin]
            body: B,
        },
        /// Through tower-http's compression (which may still answer in
        /// identity). Boxed: its encoders' state is kilobytes (5.8 KiB
        /// with gzip and brotli), and every answer of the stack, compressed
        /// or not, is this enum, moved by each layer outside.
        Compressed {
            body: Pin<Box<CompressionBody<B>>>,
        },
    }
}

impl<B: Body> std::fmt::Debug for NegotiatedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Identity { .. } => "NegotiatedBody::Identity",
            Self::Compressed { .. } => "NegotiatedBody::Compressed",
        })
    }
}

impl<B> Body for NegotiatedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            NegotiatedBodyProj::Identity { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(Into::into))),
            NegotiatedBodyProj::Compressed { body } => body.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Identity { body } => body.is_end_stream(),
            Self::Compressed { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Identity { body } => body.size_hint(),
            Self::Compressed { body } => body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Full};

    use super::*;

    fn response(ct: &str, len: usize) -> Response<Full<Bytes>> {
        Response::builder()
            .header(header::CONTENT_TYPE, ct)
            .body(Full::new(Bytes::from(vec![b'a'; len])))
            .expect("response")
    }

    #[test]
    fn compression_skips_small_and_precompressed_bodies() {
        let when = CompressWhen::new(Some(100));
        assert!(when.should_compress(&response("application/json", 100)));
        assert!(!when.should_compress(&response("application/json", 99)));
        assert!(!when.should_compress(&response("application/pdf", 5000)));
        assert!(!when.should_compress(&response("image/png", 5000)));
        assert!(when.should_compress(&response("image/svg+xml", 5000)));
        assert!(!when.should_compress(&response("text/event-stream", 5000)));
        let off = CompressWhen::new(None);
        assert!(!off.should_compress(&response("application/json", 5000)));
    }

    #[test]
    fn the_body_stays_small_whatever_the_encoders_hold() {
        // Every answer moves through the layers outside as this type.
        type Inner = crate::body::ResponseBody<Full<Bytes>>;
        assert!(std::mem::size_of::<CompressionBody<Inner>>() > 1024);
        assert!(std::mem::size_of::<NegotiatedBody<Inner>>() <= 64);
    }

    #[tokio::test]
    async fn identity_answers_vary_and_gzip_answers_are_gzip() {
        use tower::ServiceExt as _;

        let service = NegotiatedLayer::new(CompressWhen::new(Some(100))).layer(tower::service_fn(
            |_: Request<()>| async {
                Ok::<_, std::convert::Infallible>(response("application/json", 5000))
            },
        ));
        let identity = service
            .clone()
            .oneshot(Request::new(()))
            .await
            .expect("infallible");
        assert_eq!(identity.headers()[header::VARY], "accept-encoding");
        assert!(!identity.headers().contains_key(header::CONTENT_ENCODING));
        let body = identity.into_body().collect().await.expect("body");
        assert_eq!(body.to_bytes().len(), 5000);

        let gzip = service
            .oneshot(
                Request::builder()
                    .header(header::ACCEPT_ENCODING, "gzip")
                    .body(())
                    .expect("request"),
            )
            .await
            .expect("infallible");
        assert_eq!(gzip.headers()[header::CONTENT_ENCODING], "gzip");
        let compressed = gzip.into_body().collect().await.expect("body").to_bytes();
        let mut text = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&compressed[..]),
            &mut text,
        )
        .expect("gzip");
        assert_eq!(text, vec![b'a'; 5000]);
    }
}
