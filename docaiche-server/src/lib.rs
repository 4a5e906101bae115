//! The DocAIche server: the whole library assembled behind axum, as a
//! library and the `docaiche-server` binary.
//!
//! ```text
//! cargo run -p docaiche-server                      # development defaults, no setup
//! cargo run -p docaiche-server -- --config server.toml
//! DOCAICHE_ENV=production DOCAICHE_KEY_SOURCE=vault:transit/docaiche \
//!   DOCAICHE_CORS_ALLOWED_ORIGINS=https://app.example.com docaiche-server
//! curl -i 127.0.0.1:8080/health/ready
//! ```
//!
//! With no configuration it listens on `127.0.0.1:8080`, keeps its files in
//! `./data` (created with mode 0700) and generates a development key there,
//! logging a warning for each development default it uses. Configuration
//! comes from an optional TOML file (`--config PATH` or `DOCAICHE_CONFIG`;
//! see `server.example.toml`), then `DOCAICHE_*` environment
//! variables (listed in `config/mod.rs`). In production the server refuses to
//! start while a security-relevant development default is in use: it prints
//! every offending setting with its fix to stderr and exits with status 2.
//!
//! The first credential, without any default password:
//!
//! ```text
//! KEY=$(cargo run -q -p docaiche-server -- bootstrap-key --tenant acme --name ops)
//! curl -H "X-API-Key: $KEY" 127.0.0.1:8080/v1/keys
//! ```
//!
//! `bootstrap-key` creates an API key of the tenant acting as `--principal`
//! (default `admin`), bound to `auth.bootstrap_role` (default
//! `tenant-admin`), in the same store the server uses, and prints
//! the key alone on stdout, once. It may run beside the server: the server
//! owns the audit trail, and the command hands its events to it through
//! the trail's inbox (`audit/`). Only one server runs per data directory
//! (`storage.rs`): a second one exits with status 2 before binding.
//!
//! The first password account, the same way (see `login.rs`):
//!
//! ```text
//! printf '%s\n' "$PASSWORD" | cargo run -q -p docaiche-server -- \
//!   bootstrap-admin --tenant acme --email ops@acme.example
//! curl -d '{"tenant":"acme","email":"ops@acme.example","password":"…"}' \
//!   -H 'Content-Type: application/json' 127.0.0.1:8080/v1/auth/token
//! ```
//!
//! Routes (all of them, with their schemas and errors, in the OpenAPI 3.1
//! document `GET /openapi.json`): `GET /health/live` and `GET /health/ready`
//! (`application/health+json`), `GET /.well-known/jwks.json` and
//! `GET /openapi.json` are public, and so are the token
//! endpoints `POST /v1/auth/token`, `/v1/auth/refresh` and `/v1/auth/revoke`
//! (their own strict `auth` rate-limit class). Everything else needs an API
//! key (`X-API-Key` or `Authorization: ApiKey`) or a bearer JWT signed by
//! the server's key: `GET /v1/whoami`; `POST`/`GET /v1/keys`,
//! `POST /v1/keys/{id}/rotate`, `DELETE /v1/keys/{id}` (`keys:manage`);
//! `GET /v1/admin/tenants/{tenant}/keys` (`tenants:cross` and `keys:manage`);
//! the tenant registry `/v1/tenants` (`tenants:cross` and `admin:access`:
//! register, list, settings, suspend, resume; `routes/tenants.rs`).
//! Without a credential they answer 401 (`WWW-Authenticate: Bearer`); without
//! the permission, 403; repeated bad credentials lock the client out (429);
//! a principal of a suspended tenant, 403 `tenant-suspended` (`tenants.rs`).
//!
//! Every route is rate limited (authenticated callers by principal and
//! tenant, anonymous ones by client address) by its class's policy (`[rate_limit]` in the
//! configuration; in process, or shared through Redis with
//! `rate_limit.backend = "redis"` and the `redis` feature) and answers with the `RateLimit-Policy`
//! and `RateLimit` headers; over the limit, a 429 `quota-exceeded` problem
//! with `Retry-After`.
//! `[http]` hardens the wire (`http.rs`, `tls.rs`, `json.rs`): TLS from PEM
//! files, or HTTPS enforced behind a proxy from a trusted
//! `X-Forwarded-Proto`; security headers on every response; gzip/brotli
//! compression; an idle timeout per connection; JSON bodies checked for
//! their media type, unknown fields and values, with field-level problems.
//! Every error is an RFC 9457 `application/problem+json` document. SIGINT or
//! SIGTERM stops accepting connections and lets in-flight requests finish
//! within `server.shutdown_grace_secs`.
//!
//! Backends are chosen by configuration (see `wiring/`): `[store]`
//! SQLite (default) or PostgreSQL (`--features postgres`); `[revocation]`
//! the store or Redis (`--features redis`), and API key revocations
//! announced to the other instances over Redis pub/sub; `[secrets]` a chain of env,
//! file and Vault KV v2 (`--features vault`) sources; `[encryption]` the
//! local key or Vault Transit wrapping the data keys of the encrypted
//! document store. Readiness includes the store's check (PostgreSQL: with
//! its pool figures).
//!
//! The server holds no security logic of its own beyond validating its
//! configuration: it assembles DocAIche crates and tower-http layers.
//!
//! Embedded in another program, the library runs the same command line:
//!
//! ```no_run
//! # async fn demo() {
//! // `docaiche-server check-config --config server.toml`
//! let status = docaiche_server::cli::run(["check-config", "--config", "server.toml"].map(Into::into)).await;
//! assert_eq!(status, 0, "the configuration would start");
//! # }
//! ```

mod audit;
mod auth;
pub mod cli;
mod compliance;
mod config;
mod console;
mod cors;
mod documents;
mod edge;
mod events;
mod health;
mod http;
mod json;
mod keys;
mod limiter;
mod login;
mod metrics;
mod openapi;
mod page;
mod privacy;
mod rejection;
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/backends/report.rs"]
mod report;
mod routes;
mod shutdown;
mod slo;
mod state;
mod storage;
mod telemetry;
mod tenants;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
mod tls;
mod usage;
mod wiring;

pub use cli::{main, run};
