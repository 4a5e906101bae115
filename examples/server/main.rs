//! The DocAIche example server: the whole library assembled behind axum.
//!
//! ```text
//! cargo run --example server                        # development defaults, no setup
//! cargo run --example server -- --config server.toml
//! DOCAICHE_ENV=production DOCAICHE_KEY_SOURCE=vault:transit/docaiche \
//!   DOCAICHE_CORS_ALLOWED_ORIGINS=https://app.example.com cargo run --example server
//! curl -i 127.0.0.1:8080/health/ready
//! ```
//!
//! With no configuration it listens on `127.0.0.1:8080`, keeps its files in
//! `./data` (created with mode 0700) and generates a development key there,
//! logging a warning for each development default it uses. Configuration
//! comes from an optional TOML file (`--config PATH` or `DOCAICHE_CONFIG`;
//! see `examples/server.example.toml`), then `DOCAICHE_*` environment
//! variables (listed in `config.rs`). In production the server refuses to
//! start while a security-relevant development default is in use: it prints
//! every offending setting with its fix to stderr and exits with status 2.
//!
//! The first credential, without any default password:
//!
//! ```text
//! KEY=$(cargo run -q --example server -- bootstrap-key --tenant acme --name ops)
//! curl -H "X-API-Key: $KEY" 127.0.0.1:8080/v1/keys
//! ```
//!
//! `bootstrap-key` creates an API key of the tenant acting as `--principal`
//! (default `admin`), bound to `auth.bootstrap_role` (default
//! `tenant-admin`), in the same store the server uses, and prints
//! the key alone on stdout, once. It may run beside the server: the server
//! owns the audit trail, and the command hands its events to it through
//! the trail's inbox (`audit.rs`). Only one server runs per data directory
//! (`storage.rs`): a second one exits with status 2 before binding.
//!
//! The first password account, the same way (see `login.rs`):
//!
//! ```text
//! printf '%s\n' "$PASSWORD" | cargo run -q --example server -- \
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
//! `GET /v1/admin/tenants/{tenant}/keys` (`tenants:cross` and `keys:manage`).
//! Without a credential they answer 401 (`WWW-Authenticate: Bearer`); without
//! the permission, 403; repeated bad credentials lock the client out (429).
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
//! Backends are chosen by configuration (see `backends.rs`): `[store]`
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

mod api;
mod app;
mod audit;
mod auth;
mod backends;
mod compliance;
mod config;
mod cors;
mod documents;
#[cfg(test)]
mod e2e;
#[cfg(test)]
mod e2e_scopes;
mod edge;
mod events;
#[cfg(test)]
mod hardening;
mod health;
mod http;
mod json;
mod keys;
mod limiter;
#[cfg(test)]
mod log_capture;
mod login;
mod metrics;
#[cfg(test)]
mod one_writer;
mod openapi;
mod page;
mod privacy;
mod rejection;
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/backends/report.rs"]
mod report;
mod shutdown;
mod slo;
mod storage;
mod telemetry;
#[cfg(test)]
mod test_support;
mod tls;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::config::{Config, LogConfig, LogFormat};

/// The global allocator: mimalloc, whose per-thread free lists suit the
/// many small, short-lived allocations of a request. The bare axum baseline
/// of the load report (`examples/hello.rs`) uses the same one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status for a configuration that was refused.
const EXIT_MISCONFIGURED: u8 = 2;
/// Exit status for any other start-up or serving failure.
const EXIT_FAILURE: u8 = 1;

/// What `--help` prints.
const USAGE: &str = "\
usage: server [--config PATH]
       server bootstrap-key --tenant TENANT --name NAME [--principal ID] [--config PATH]
       server alert-rules [--config PATH]   (Prometheus SLO burn-rate rules on stdout)
       server bootstrap-admin --tenant TENANT --email EMAIL [--config PATH] < password-file

  -c, --config PATH   TOML configuration file (default: $DOCAICHE_CONFIG, else none)
  -h, --help          print this help

bootstrap-key creates an API key of TENANT acting as ID (default `admin`),
bound to the role auth.bootstrap_role, and prints it once on stdout.

bootstrap-admin creates the password account EMAIL of TENANT, bound to
auth.bootstrap_role, with the password read from standard input (at least
12 characters; there is no default password), and prints its account id.
It refuses an email that already has an account in the tenant.

Settings can be overridden with DOCAICHE_* environment variables; see
examples/server.example.toml.";

/// Parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    /// `--config PATH`.
    config: Option<PathBuf>,
    /// `--help`.
    help: bool,
    /// The `bootstrap-key` subcommand, if given.
    bootstrap: Option<BootstrapArgs>,
    /// The `bootstrap-admin` subcommand, if given.
    bootstrap_admin: Option<login::BootstrapAdminArgs>,
}

/// `bootstrap-key --tenant T --name N [--principal P]`.
#[derive(Debug, Default, PartialEq, Eq)]
struct BootstrapArgs {
    /// The tenant of the key.
    tenant: String,
    /// The key's name.
    name: String,
    /// The principal the key acts as.
    principal: String,
}

impl Args {
    /// Parse the arguments after the program name.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut args = args.into_iter().peekable();
        let mut bootstrap = None;
        if args
            .peek()
            .is_some_and(|a| a.to_string_lossy() == "bootstrap-admin")
        {
            args.next();
            return login::parse_bootstrap_admin(args);
        }
        if args
            .peek()
            .is_some_and(|a| a.to_string_lossy() == "bootstrap-key")
        {
            args.next();
            bootstrap = Some((None, None, None));
        }
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy().into_owned();
            let mut value = |flag: &str| {
                args.next()
                    .map(|v| v.to_string_lossy().into_owned())
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match (text.as_str(), bootstrap.as_mut()) {
                ("-h" | "--help", _) => parsed.help = true,
                ("-c" | "--config", _) => parsed.config = Some(PathBuf::from(value("--config")?)),
                ("--tenant", Some((tenant, _, _))) => *tenant = Some(value("--tenant")?),
                ("--name", Some((_, name, _))) => *name = Some(value("--name")?),
                ("--principal", Some((_, _, principal))) => {
                    *principal = Some(value("--principal")?);
                }
                _ => {
                    if let Some(path) = text.strip_prefix("--config=") {
                        parsed.config = Some(PathBuf::from(path));
                    } else {
                        return Err(format!("unexpected argument `{text}`"));
                    }
                }
            }
        }
        if let Some((tenant, name, principal)) = bootstrap
            && !parsed.help
        {
            parsed.bootstrap = Some(BootstrapArgs {
                tenant: tenant.ok_or("bootstrap-key needs --tenant")?,
                name: name.ok_or("bootstrap-key needs --name")?,
                principal: principal.unwrap_or_else(|| "admin".to_owned()),
            });
        }
        Ok(parsed)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "alert-rules")
    {
        return slo::alert_rules_command(std::env::args_os().skip(2));
    }
    ExitCode::from(main_with(std::env::args_os().skip(1)).await)
}

/// The program after its name: serve, or run the subcommand `args` names.
/// Returns the exit status (tests run it in a child process).
async fn main_with(args: impl IntoIterator<Item = OsString>) -> u8 {
    const SUCCESS: u8 = 0;
    let args = match Args::parse(args) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("server: {e}\n\n{USAGE}");
            return EXIT_MISCONFIGURED;
        }
    };
    if args.help {
        println!("{USAGE}");
        return SUCCESS;
    }

    let env = |name: &str| std::env::var(name).ok();
    let config = match Config::load(args.config.as_deref(), &env) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("server: {problems}");
            return EXIT_MISCONFIGURED;
        }
    };
    let warnings = match config.validate() {
        Ok(warnings) => warnings,
        Err(problems) => {
            eprintln!(
                "server: {problems}\n(environment: {})",
                config.environment.as_str()
            );
            return EXIT_MISCONFIGURED;
        }
    };
    // bootstrap-key and bootstrap-admin keep stdout for their one line.
    let bootstrapping = args.bootstrap.is_some() || args.bootstrap_admin.is_some();
    let traces = match telemetry::tracer_provider(&config.telemetry) {
        Ok(traces) => traces.filter(|_| !bootstrapping),
        Err(e) => {
            eprintln!("server: {e}");
            return EXIT_MISCONFIGURED;
        }
    };
    if let Err(e) = init_logging(&config, bootstrapping, traces.as_ref()) {
        eprintln!("server: cannot start logging: {e}");
        return EXIT_FAILURE;
    }
    for warning in &warnings {
        tracing::warn!(setting = %warning.setting, "{}", warning.message);
    }

    let outcome = match (&args.bootstrap, &args.bootstrap_admin) {
        (Some(bootstrap), _) => bootstrap_key(&config, bootstrap, &env).await,
        (None, Some(admin)) => {
            login::bootstrap_admin(&config, admin, &env, std::io::stdin().lock())
                .await
                .map(|account| println!("{}", account.id))
        }
        (None, None) => run(config, &env).await,
    };
    if let Some(traces) = traces {
        // Flush the last batch; the exporter's own timeout bounds it.
        let _ = tokio::task::spawn_blocking(move || traces.shutdown()).await;
    }
    match outcome {
        Ok(()) => SUCCESS,
        Err(e) => {
            tracing::error!(error = %e.log_chain(), "server failed");
            match e {
                docaiche_core::Error::Misconfigured { .. } => {
                    // On stderr too, like the configuration's refusals: a
                    // server that will not start says why where it is run.
                    eprintln!("server: {e}");
                    EXIT_MISCONFIGURED
                }
                _ => EXIT_FAILURE,
            }
        }
    }
}

/// Prepare storage and keys, then serve until SIGINT or SIGTERM.
async fn run(config: Config, env: config::EnvLookup<'_>) -> Result<(), docaiche_core::Error> {
    use docaiche_core::Error;

    storage::prepare_data_dir(&config.storage.data_dir)
        .map_err(|e| Error::misconfigured("storage.data_dir", e.to_string()))?;
    // One server per data directory, before anything is opened or bound;
    // held until the process exits.
    let _data_dir = storage::lock_data_dir(&config.storage.data_dir)?;
    if config.encryption.key_wrapper == config::KeyWrapperKind::Local {
        keys::prepare(&config.key_source())?;
    }

    let state = app::AppState::from_config(&config, env).await?;
    // Events the bootstrap commands deposit while the server owns the trail.
    let inbox = state.audit.as_ref().and_then(audit::start_inbox);
    let tls = match (&config.http.tls_cert_file, &config.http.tls_key_file) {
        (Some(cert), Some(key)) => Some(tls::server_config(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.server.bind)
        .await
        .map_err(|e| Error::misconfigured("server.bind", format!("cannot listen: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::internal_with("listener has no local address", e))?;
    let limits = http::HttpHardening::from_config(&config)?.connection_limits;
    let listener =
        tls::ServerListener::new(listener, tls, config.http.idle_timeout()).with_limits(limits);
    log_started(&config, local, listener.is_tls());

    // `/metrics` on an address of its own (`metrics.bind`), stopped once
    // the API listener has drained.
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(bind) = config.metrics.bind.filter(|_| config.metrics.enabled) {
        let metrics_listener = TcpListener::bind(bind)
            .await
            .map_err(|e| Error::misconfigured("metrics.bind", format!("cannot listen: {e}")))?;
        tracing::info!(address = %bind, "serving /metrics on its own listener");
        tokio::spawn(metrics::serve_separately(
            metrics_listener,
            state.metrics.clone(),
            async move {
                let _ = metrics_stopped.await;
            },
            config.http.header_read_timeout(),
        ));
    }

    let auth = std::sync::Arc::clone(&state.auth);
    let worker = documents::start_worker(&state)?;
    let purge = compliance::start_purge(&state.compliance)?;
    let stopped = shutdown::serve_with(
        listener.into_serve(),
        app::router(state),
        shutdown::signal(),
        config.server.shutdown_grace(),
        config.http.header_read_timeout(),
    )
    .await
    .map_err(|e| Error::internal_with("serving failed", e))?;
    tracing::info!(outcome = ?stopped, "server stopped");
    let _ = stop_metrics.send(());
    // Running extraction jobs get the same grace, then their leases are
    // released for another instance.
    let jobs = worker.shutdown(config.server.shutdown_grace()).await;
    tracing::info!(released = jobs.released, "extraction worker stopped");
    if let Some(purge) = purge {
        let runs = purge.shutdown(config.server.shutdown_grace()).await;
        tracing::info!(runs = ?runs, "retention purge stopped");
    }
    if let Some(inbox) = inbox {
        let ingested = inbox.shutdown().await;
        tracing::info!(ingested, "audit inbox stopped");
    }
    match auth.api_keys.flush_usage().await {
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e.log_chain(), "last-used timestamps not written"),
    }
    Ok(())
}

/// `bootstrap-key`: create the key in the configured store and print it,
/// alone, on stdout.
async fn bootstrap_key(
    config: &Config,
    args: &BootstrapArgs,
    env: config::EnvLookup<'_>,
) -> Result<(), docaiche_core::Error> {
    use docaiche_core::Error;

    storage::prepare_data_dir(&config.storage.data_dir)
        .map_err(|e| Error::misconfigured("storage.data_dir", e.to_string()))?;
    // A guest of the audit trail: a running server owns it, and gets this
    // command's events through the trail's inbox.
    let (auth, _) = app::open_auth_as(config, env, audit::TrailRole::Guest).await?;
    let created = auth
        .bootstrap_key(&args.tenant, &args.principal, &args.name)
        .await?;
    tracing::info!(
        tenant = %created.record.tenant,
        principal = %created.record.principal,
        key_id = %created.record.id,
        role = %auth.bootstrap_role,
        "bootstrap API key created; it is printed once and cannot be shown again"
    );
    println!("{}", created.key.expose_secret());
    Ok(())
}

/// Install the global subscriber: JSON lines, or pretty output on request,
/// on stdout or (`to_stderr`) stderr.
fn init_logging(
    config: &Config,
    to_stderr: bool,
    traces: Option<&opentelemetry_sdk::trace::SdkTracerProvider>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    use tracing_subscriber::util::SubscriberInitExt as _;
    let dispatch = if to_stderr {
        log_dispatch(config, std::io::stderr, traces)?
    } else {
        log_dispatch(config, std::io::stdout, traces)?
    };
    dispatch.try_init()?;
    Ok(())
}

/// The logging pipeline of `config.log` writing to `writer`: the filter,
/// JSON lines (or pretty output), every line through the PII redactor.
fn log_dispatch<W>(
    config: &Config,
    writer: W,
    traces: Option<&opentelemetry_sdk::trace::SdkTracerProvider>,
) -> Result<tracing::Dispatch, Box<dyn std::error::Error + Send + Sync>>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use docaiche_compliance::redact::{RedactingMakeWriter, Redactor};
    use tracing_subscriber::layer::SubscriberExt as _;
    let log: &LogConfig = &config.log;
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)?;
    // Every formatted line passes through the PII redactor (e-mail
    // addresses, card numbers, tokens, API keys …; client addresses cut to
    // their network), whatever field or message carried it. The server's
    // own listen address is no personal data: it is logged whole. Nor is
    // a request id of the X-Request-Id grammar in the request span's
    // `request_id` field: operators search the logs for it, and parts of a
    // UUID may look like a phone number.
    let redactor = Redactor::builder()
        .keep_ip_addresses([config.server.bind.ip()])
        .keep_json_field("request_id", edge::is_request_id)
        .build()?;
    let writer = RedactingMakeWriter::new(writer, std::sync::Arc::new(redactor));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    Ok(match log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .finish()
            .with(traces.map(telemetry::layer))
            .into(),
        LogFormat::Pretty => builder
            .pretty()
            .finish()
            .with(traces.map(telemetry::layer))
            .into(),
    })
}

/// Log the start-up line: where the server listens (`local`, the bound
/// address) and how.
fn log_started(config: &Config, local: std::net::SocketAddr, tls: bool) {
    tracing::info!(
        address = %local,
        tls,
        https = config.http.https.as_str(),
        environment = config.environment.as_str(),
        data_dir = %config.storage.data_dir.display(),
        "server started"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments_are_parsed_by_hand() {
        assert_eq!(parse(&[]), Ok(Args::default()));
        for args in [
            &["--config", "a.toml"][..],
            &["-c", "a.toml"],
            &["--config=a.toml"],
        ] {
            assert_eq!(
                parse(args).expect("valid").config,
                Some(PathBuf::from("a.toml"))
            );
        }
        assert!(parse(&["--help"]).expect("valid").help);
        assert!(parse(&["--config"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }

    #[test]
    fn bootstrap_key_needs_a_tenant_and_a_name() {
        let args = parse(&[
            "bootstrap-key",
            "--tenant",
            "acme",
            "--name",
            "ops",
            "-c",
            "a.toml",
        ])
        .expect("valid");
        assert_eq!(
            args.bootstrap,
            Some(BootstrapArgs {
                tenant: "acme".into(),
                name: "ops".into(),
                principal: "admin".into(),
            })
        );
        assert_eq!(args.config, Some(PathBuf::from("a.toml")));
        let args = parse(&[
            "bootstrap-key",
            "--tenant",
            "acme",
            "--name",
            "ops",
            "--principal",
            "root",
        ])
        .expect("valid");
        assert_eq!(args.bootstrap.expect("bootstrap").principal, "root");
        assert!(parse(&["bootstrap-key", "--name", "ops"]).is_err());
        assert!(parse(&["bootstrap-key", "--tenant", "acme"]).is_err());
        assert!(parse(&["bootstrap-key", "--tenant"]).is_err());
        // Subcommand flags are not server flags.
        assert!(parse(&["--tenant", "acme"]).is_err());
    }
}
