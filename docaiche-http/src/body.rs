//! Response bodies of the layers that answer on their own.
//!
//! A layer that refuses a request (plain HTTP, an error answer rewritten as
//! a problem) answers with a complete body of its own; every other answer
//! keeps the inner service's body untouched. [`ResponseBody`] is either,
//! without boxing: the body type of the stack changes, its cost does not.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;

pin_project_lite::pin_project! {
    /// The inner service's body, or a complete one written by a layer (a
    /// problem document, a redirect's empty body).
    #[derive(Debug)]
    // Each variant's one field is its body (pin-project-lite takes no
    // documentation on variant fields).
    // Exhaustive: a body is the inner one or the layer's own, nothing else.
    #[allow(missing_docs, clippy::exhaustive_enums)]
    #[project = ResponseBodyProj]
    pub enum ResponseBody<B> {
        /// The inner service's answer, passed through.
        Inner {
            #[pin]
            body: B,
        },
        /// An answer the layer wrote.
        Own {
            #[pin]
            body: Full<Bytes>,
        },
    }
}

impl<B> ResponseBody<B> {
    /// The inner service's `body`.
    pub const fn inner(body: B) -> Self {
        Self::Inner { body }
    }

    /// A layer's own answer, `bytes`.
    pub fn own(bytes: impl Into<Bytes>) -> Self {
        Self::Own {
            body: Full::new(bytes.into()),
        }
    }

    /// The layer's own answer `response` (a problem: see
    /// [`docaiche_core::Error::into_problem_response`]).
    pub(crate) fn own_response(response: Response<Full<Bytes>>) -> Response<Self> {
        response.map(|body| Self::Own { body })
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Inner { body } => body.poll_frame(cx),
            ResponseBodyProj::Own { body } => body
                .poll_frame(cx)
                .map(|frame| frame.map(|frame| frame.map_err(|never: Infallible| match never {}))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Inner { body } => body.is_end_stream(),
            Self::Own { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Inner { body } => body.size_hint(),
            Self::Own { body } => body.size_hint(),
        }
    }
}
