//! Every refusal is an `application/problem+json` answer, including those
//! axum's extractors and router write on their own: `docaiche_http`'s
//! [`Path`] extractor and [`crate::json::ValidJson`] name what was wrong,
//! and its problem backstop (in the stack [`crate::routes::router`] builds)
//! turns every other plain error answer into a problem; see
//! [`docaiche_http::rejection`]. Handlers that take
//! `Result<Query<_>, QueryRejection>` or `Result<WebSocketUpgrade, _>`
//! answer the rejection as an [`docaiche_core::Error::InvalidInput`].

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use docaiche_core::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub(crate) use docaiche_http::rejection::Path;

/// The query of a handler taking `Result<Query<T>, QueryRejection>`, or
/// an [`Error::InvalidInput`] (a 400 problem) naming what was wrong.
///
/// # Errors
/// As above.
pub(crate) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, Error> {
    query
        .map(|Query(query)| query)
        .map_err(|e| Error::invalid_input(format!("invalid query: {}", e.body_text())))
}

/// The optional RFC 3339 time of the query parameter `name`.
///
/// # Errors
/// [`Error::InvalidInput`] for a value that is not an RFC 3339 time.
pub(crate) fn rfc3339(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, Error> {
    value
        .map(|v| {
            OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|_| Error::invalid_input(format!("{name} is not an RFC 3339 time")))
        })
        .transpose()
}
