//! Every refusal is an `application/problem+json` answer, including those
//! axum's extractors and router write on their own: `docaiche_http`'s
//! [`Path`] extractor and [`crate::json::ValidJson`] name what was wrong,
//! and its problem backstop (in the stack [`crate::routes::router`] builds)
//! turns every other plain error answer into a problem; see
//! [`docaiche_http::rejection`]. Handlers that take
//! `Result<Query<_>, QueryRejection>` or `Result<WebSocketUpgrade, _>`
//! answer the rejection as an [`docaiche_core::Error::InvalidInput`].

pub(crate) use docaiche_http::rejection::Path;
