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
//! Routes: `GET /health/live` and `GET /health/ready` (`application/health+json`).
//! Every route is rate limited by its class's policy (`[rate_limit]` in the
//! configuration; in process, or shared through Redis with
//! `rate_limit.backend = "redis"` and the `redis` feature) and answers with the `RateLimit-Policy`
//! and `RateLimit` headers; over the limit, a 429 `quota-exceeded` problem
//! with `Retry-After`.
//! Every error is an RFC 9457 `application/problem+json` document. SIGINT or
//! SIGTERM stops accepting connections and lets in-flight requests finish
//! within `server.shutdown_grace_secs`.
//!
//! The server holds no security logic of its own beyond validating its
//! configuration: it assembles DocAIche crates and tower-http layers.

mod app;
mod config;
mod health;
mod keys;
mod limiter;
mod shutdown;
mod storage;
#[cfg(test)]
mod test_support;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use tokio::net::TcpListener;

use crate::config::{Config, LogConfig, LogFormat};

/// Exit status for a configuration that was refused.
const EXIT_MISCONFIGURED: u8 = 2;
/// Exit status for any other start-up or serving failure.
const EXIT_FAILURE: u8 = 1;

/// What `--help` prints.
const USAGE: &str = "\
usage: server [--config PATH]

  -c, --config PATH   TOML configuration file (default: $DOCAICHE_CONFIG, else none)
  -h, --help          print this help

Settings can be overridden with DOCAICHE_* environment variables; see
examples/server.example.toml.";

/// Parsed command line.
#[derive(Debug, Default, PartialEq, Eq)]
struct Args {
    /// `--config PATH`.
    config: Option<PathBuf>,
    /// `--help`.
    help: bool,
}

impl Args {
    /// Parse the arguments after the program name.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, String> {
        let mut parsed = Self::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let text = arg.to_string_lossy();
            if text == "-h" || text == "--help" {
                parsed.help = true;
            } else if text == "-c" || text == "--config" {
                let path = args.next().ok_or("--config needs a path")?;
                parsed.config = Some(PathBuf::from(path));
            } else if let Some(path) = text.strip_prefix("--config=") {
                parsed.config = Some(PathBuf::from(path));
            } else {
                return Err(format!("unexpected argument `{text}`"));
            }
        }
        Ok(parsed)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse(std::env::args_os().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("server: {e}\n\n{USAGE}");
            return ExitCode::from(EXIT_MISCONFIGURED);
        }
    };
    if args.help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }

    let env = |name: &str| std::env::var(name).ok();
    let config = match Config::load(args.config.as_deref(), &env) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("server: {problems}");
            return ExitCode::from(EXIT_MISCONFIGURED);
        }
    };
    let warnings = match config.validate() {
        Ok(warnings) => warnings,
        Err(problems) => {
            eprintln!(
                "server: {problems}\n(environment: {})",
                config.environment.as_str()
            );
            return ExitCode::from(EXIT_MISCONFIGURED);
        }
    };
    if let Err(e) = init_logging(&config.log) {
        eprintln!("server: cannot start logging: {e}");
        return ExitCode::from(EXIT_FAILURE);
    }
    for warning in &warnings {
        tracing::warn!(setting = %warning.setting, "{}", warning.message);
    }

    match run(config, &env).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e.log_chain(), "server failed");
            match e {
                docaiche_core::Error::Misconfigured { .. } => ExitCode::from(EXIT_MISCONFIGURED),
                _ => ExitCode::from(EXIT_FAILURE),
            }
        }
    }
}

/// Prepare storage and keys, then serve until SIGINT or SIGTERM.
async fn run(config: Config, env: config::EnvLookup<'_>) -> Result<(), docaiche_core::Error> {
    use docaiche_core::Error;

    storage::prepare_data_dir(&config.storage.data_dir)
        .map_err(|e| Error::misconfigured("storage.data_dir", e.to_string()))?;
    keys::prepare(&config.key_source())?;

    let state = app::AppState::from_config(&config, env).await?;
    let listener = TcpListener::bind(config.server.bind)
        .await
        .map_err(|e| Error::misconfigured("server.bind", format!("cannot listen: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::internal_with("listener has no local address", e))?;
    tracing::info!(
        address = %local,
        environment = config.environment.as_str(),
        data_dir = %config.storage.data_dir.display(),
        "server started"
    );

    let stopped = shutdown::serve(
        listener,
        app::router(state),
        shutdown::signal(),
        config.server.shutdown_grace(),
    )
    .await
    .map_err(|e| Error::internal_with("serving failed", e))?;
    tracing::info!(outcome = ?stopped, "server stopped");
    Ok(())
}

/// Install the global subscriber: JSON lines, or pretty output on request.
fn init_logging(log: &LogConfig) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = tracing_subscriber::EnvFilter::try_new(&log.filter)?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log.format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.pretty().try_init(),
    }
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
}
