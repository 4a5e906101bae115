//! The server's own black-box tests: real servers on `127.0.0.1:0`, driven
//! over HTTP (and WebSocket) as a client would, with the real backends
//! where a test names a feature.
//!
//! | module | proves |
//! |---|---|
//! | [`console_instances`] | one console session on two instances sharing a database |
//! | [`e2e`] | every route end to end: credentials, permissions, tenants, problems, transport |
//! | [`e2e_scopes`] | API key scopes and roles on every protected route |
//! | [`hardening`] | the outside security review's findings, as attacks over real HTTP |
//! | [`log_capture`] | no personal data in the log at DEBUG, on every route taking it |
//! | [`one_writer`] | one server per data directory, one audit-trail writer |

mod console_instances;
mod e2e;
mod e2e_scopes;
mod hardening;
mod log_capture;
mod one_writer;
