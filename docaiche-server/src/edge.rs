//! The edge of every route: `docaiche_http`'s edge layer (metering,
//! credential hiding, request id, trace span), reporting to the server's
//! [`crate::metrics::Metrics`]; see [`docaiche_http::edge`].

#[cfg(test)]
pub(crate) use docaiche_http::request_id::REQUEST_ID;
pub(crate) use docaiche_http::request_id::is_request_id;
