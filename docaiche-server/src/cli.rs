//! The command line: `serve` (the default), `bootstrap-key`,
//! `bootstrap-admin`, `alert-rules` and `check-config`, parsed by clap.
//!
//! Every command reads the same configuration (`--config PATH` or
//! `DOCAICHE_CONFIG`, then `DOCAICHE_*` variables) and refuses it the same
//! way: the problems on stderr and exit status 2. `bootstrap-key` and
//! `bootstrap-admin` keep stdout for their one line (the key, the account
//! id) and log to stderr.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::config::{Config, LogConfig, LogFormat};
use crate::login::BootstrapAdminArgs;

/// Exit status for a command line or configuration that was refused.
const EXIT_MISCONFIGURED: u8 = 2;
/// Exit status for any other start-up or serving failure.
const EXIT_FAILURE: u8 = 1;
/// Exit status of success.
const SUCCESS: u8 = 0;

/// The DocAIche server: document intake, extraction, API keys, audit and
/// privacy requests behind one hardened HTTP API.
#[derive(Debug, Parser)]
#[command(
    name = "docaiche-server",
    version,
    after_help = "Settings can be overridden with DOCAICHE_* environment variables; see \
                  docaiche-server/server.example.toml and docaiche-server/README.md."
)]
pub(crate) struct Cli {
    /// TOML configuration file (default: $DOCAICHE_CONFIG, else none).
    #[arg(short, long, value_name = "PATH", global = true)]
    pub(crate) config: Option<PathBuf>,
    /// What to do; `serve` when none is given.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, PartialEq, Eq, Subcommand)]
pub(crate) enum Command {
    /// Serve the API until SIGINT or SIGTERM (the default).
    Serve,
    /// Create an API key of TENANT acting as PRINCIPAL, bound to the role
    /// `auth.bootstrap_role`, and print it once on stdout.
    BootstrapKey(BootstrapKey),
    /// Create the password account EMAIL of TENANT, bound to
    /// `auth.bootstrap_role`, with the password read from standard input
    /// (at least 12 characters; there is no default password), and print
    /// its account id. An email that already has an account is refused.
    BootstrapAdmin {
        /// The tenant of the account.
        #[arg(long)]
        tenant: String,
        /// The account's email.
        #[arg(long)]
        email: String,
    },
    /// Print the Prometheus SLO burn-rate alert rules of `[slo]` on stdout.
    AlertRules,
    /// Check the configuration as `serve` would, print its warnings, and
    /// exit 0 when it would start (2 with every problem otherwise).
    CheckConfig,
}

/// `bootstrap-key --tenant T --name N [--principal P]`.
#[derive(Debug, PartialEq, Eq, clap::Args)]
pub(crate) struct BootstrapKey {
    /// The tenant of the key.
    #[arg(long)]
    pub(crate) tenant: String,
    /// The key's name.
    #[arg(long)]
    pub(crate) name: String,
    /// The principal the key acts as.
    #[arg(long, default_value = "admin")]
    pub(crate) principal: String,
}

impl Cli {
    /// Parse the arguments after the program name.
    pub(crate) fn parse_args(
        args: impl IntoIterator<Item = OsString>,
    ) -> Result<Self, clap::Error> {
        Self::try_parse_from(std::iter::once(OsString::from("docaiche-server")).chain(args))
    }
}

/// Run the program: parse the process's arguments, then serve or run the
/// subcommand they name, on a multi-threaded tokio runtime. What the
/// `docaiche-server` binary's `main` is.
pub fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("docaiche-server: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    ExitCode::from(runtime.block_on(run(std::env::args_os().skip(1))))
}

/// The program after its name: serve, or run the subcommand `args` names.
/// Returns the exit status: 0 on success, 2 for a command line or
/// configuration that was refused, 1 for any other failure.
pub async fn run(args: impl IntoIterator<Item = OsString>) -> u8 {
    let cli = match Cli::parse_args(args) {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with status 0; mistakes to
            // stderr with status 2.
            let _ = e.print();
            return u8::try_from(e.exit_code()).unwrap_or(EXIT_MISCONFIGURED);
        }
    };
    let command = cli.command.unwrap_or(Command::Serve);

    let env = |name: &str| std::env::var(name).ok();
    let config = match Config::load(cli.config.as_deref(), &env) {
        Ok(config) => config,
        Err(problems) => {
            eprintln!("docaiche-server: {problems}");
            return EXIT_MISCONFIGURED;
        }
    };
    if command == Command::AlertRules {
        return crate::slo::alert_rules_command(&config);
    }
    let warnings = match config.validate() {
        Ok(warnings) => warnings,
        Err(problems) => {
            eprintln!(
                "docaiche-server: {problems}\n(environment: {})",
                config.environment.as_str()
            );
            return EXIT_MISCONFIGURED;
        }
    };
    if command == Command::CheckConfig {
        for warning in &warnings {
            eprintln!("warning: {}: {}", warning.setting, warning.message);
        }
        println!(
            "configuration is valid (environment: {}, {} warning{})",
            config.environment.as_str(),
            warnings.len(),
            if warnings.len() == 1 { "" } else { "s" }
        );
        return SUCCESS;
    }
    // bootstrap-key and bootstrap-admin keep stdout for their one line.
    let bootstrapping = matches!(
        command,
        Command::BootstrapKey(_) | Command::BootstrapAdmin { .. }
    );
    let traces = match crate::telemetry::tracer_provider(&config.telemetry) {
        Ok(traces) => traces.filter(|_| !bootstrapping),
        Err(e) => {
            eprintln!("docaiche-server: {e}");
            return EXIT_MISCONFIGURED;
        }
    };
    if let Err(e) = init_logging(&config, bootstrapping, traces.as_ref()) {
        eprintln!("docaiche-server: cannot start logging: {e}");
        return EXIT_FAILURE;
    }
    for warning in &warnings {
        tracing::warn!(setting = %warning.setting, "{}", warning.message);
    }

    let outcome = match command {
        Command::BootstrapKey(args) => bootstrap_key(&config, &args, &env).await,
        Command::BootstrapAdmin { tenant, email } => {
            let args = BootstrapAdminArgs { tenant, email };
            crate::login::bootstrap_admin(&config, &args, &env, std::io::stdin().lock())
                .await
                .map(|account| println!("{}", account.id))
        }
        _ => serve(config, &env).await,
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
                    eprintln!("docaiche-server: {e}");
                    EXIT_MISCONFIGURED
                }
                _ => EXIT_FAILURE,
            }
        }
    }
}

/// Prepare storage and keys, then serve until SIGINT or SIGTERM.
async fn serve(
    config: Config,
    env: crate::config::EnvLookup<'_>,
) -> Result<(), docaiche_core::Error> {
    use docaiche_core::Error;

    crate::storage::prepare_data_dir(&config.storage.data_dir)
        .map_err(|e| Error::misconfigured("storage.data_dir", e.to_string()))?;
    // One server per data directory, before anything is opened or bound;
    // held until the process exits.
    let _data_dir = crate::storage::lock_data_dir(&config.storage.data_dir)?;
    if config.encryption.key_wrapper == crate::config::KeyWrapperKind::Local {
        crate::keys::prepare(&config.key_source())?;
    }

    let state = crate::state::AppState::from_config(&config, env).await?;
    // Events the bootstrap commands deposit while the server owns the trail.
    let inbox = state.audit.as_ref().and_then(crate::audit::start_inbox);
    let tls = match (&config.http.tls_cert_file, &config.http.tls_key_file) {
        (Some(cert), Some(key)) => Some(crate::tls::server_config(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(config.server.bind)
        .await
        .map_err(|e| Error::misconfigured("server.bind", format!("cannot listen: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::internal_with("listener has no local address", e))?;
    let limits = crate::http::HttpHardening::from_config(&config)?.connection_limits;
    let listener = crate::tls::ServerListener::new(listener, tls, config.http.idle_timeout())
        .with_limits(limits);
    log_started(&config, local, listener.is_tls());

    // `/metrics` on an address of its own (`metrics.bind`), stopped once
    // the API listener has drained.
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(bind) = config.metrics.bind.filter(|_| config.metrics.enabled) {
        let metrics_listener = TcpListener::bind(bind)
            .await
            .map_err(|e| Error::misconfigured("metrics.bind", format!("cannot listen: {e}")))?;
        tracing::info!(address = %bind, "serving /metrics on its own listener");
        tokio::spawn(crate::metrics::serve_separately(
            metrics_listener,
            state.metrics.clone(),
            async move {
                let _ = metrics_stopped.await;
            },
            config.http.header_read_timeout(),
        ));
    }

    let auth = std::sync::Arc::clone(&state.auth);
    let worker = crate::documents::start_worker(&state)?;
    let purge = crate::compliance::start_purge(&state.compliance)?;
    let usage = state.usage.start()?;
    let sessions = crate::console::purge::start(
        std::sync::Arc::clone(&state.console),
        std::sync::Arc::clone(&state.auth.clock),
    );
    let stopped = crate::shutdown::serve_with(
        listener.into_serve(),
        crate::routes::router(state),
        crate::shutdown::signal(),
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
    // After the listener drained: the last requests' counts are flushed.
    if let Some(usage) = usage {
        usage.shutdown(config.server.shutdown_grace()).await;
        tracing::info!("usage flusher stopped");
    }
    let runs = sessions.shutdown(config.server.shutdown_grace()).await;
    tracing::info!(runs = ?runs, "console session purge stopped");
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
    args: &BootstrapKey,
    env: crate::config::EnvLookup<'_>,
) -> Result<(), docaiche_core::Error> {
    use docaiche_core::Error;

    crate::storage::prepare_data_dir(&config.storage.data_dir)
        .map_err(|e| Error::misconfigured("storage.data_dir", e.to_string()))?;
    // A guest of the audit trail: a running server owns it, and gets this
    // command's events through the trail's inbox.
    let (auth, _) = crate::state::open_auth_as(config, env, crate::audit::TrailRole::Guest).await?;
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
pub(crate) fn log_dispatch<W>(
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
        .keep_json_field("request_id", crate::edge::is_request_id)
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
            .with(traces.map(crate::telemetry::layer))
            .into(),
        LogFormat::Pretty => builder
            .pretty()
            .finish()
            .with(traces.map(crate::telemetry::layer))
            .into(),
    })
}

/// Log the start-up line: where the server listens (`local`, the bound
/// address) and how.
pub(crate) fn log_started(config: &Config, local: std::net::SocketAddr, tls: bool) {
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

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::parse_args(args.iter().map(OsString::from))
    }

    #[test]
    fn serve_is_the_default_and_config_is_global() {
        let cli = parse(&[]).expect("valid");
        assert_eq!((cli.config, cli.command), (None, None));
        for args in [
            &["--config", "a.toml"][..],
            &["-c", "a.toml"],
            &["--config=a.toml"],
            &["serve", "-c", "a.toml"],
        ] {
            assert_eq!(
                parse(args).expect("valid").config,
                Some(PathBuf::from("a.toml")),
                "{args:?}"
            );
        }
        assert_eq!(
            parse(&["--help"]).expect_err("help").kind(),
            clap::error::ErrorKind::DisplayHelp
        );
        assert!(parse(&["--config"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
        assert!(parse(&["unknown-command"]).is_err());
    }

    #[test]
    fn bootstrap_key_needs_a_tenant_and_a_name() {
        let cli = parse(&[
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
            cli.command,
            Some(Command::BootstrapKey(BootstrapKey {
                tenant: "acme".into(),
                name: "ops".into(),
                principal: "admin".into(),
            }))
        );
        assert_eq!(cli.config, Some(PathBuf::from("a.toml")));
        let cli = parse(&[
            "bootstrap-key",
            "--tenant",
            "acme",
            "--name",
            "ops",
            "--principal",
            "root",
        ])
        .expect("valid");
        assert!(matches!(cli.command, Some(Command::BootstrapKey(k)) if k.principal == "root"));
        assert!(parse(&["bootstrap-key", "--name", "ops"]).is_err());
        assert!(parse(&["bootstrap-key", "--tenant", "acme"]).is_err());
        assert!(parse(&["bootstrap-key", "--tenant"]).is_err());
        // Subcommand flags are not server flags.
        assert!(parse(&["--tenant", "acme"]).is_err());
    }

    #[test]
    fn bootstrap_admin_needs_a_tenant_and_an_email() {
        let cli = parse(&[
            "bootstrap-admin",
            "--tenant",
            "acme",
            "--email",
            "ops@example.com",
            "-c",
            "a.toml",
        ])
        .expect("valid");
        assert_eq!(
            cli.command,
            Some(Command::BootstrapAdmin {
                tenant: "acme".into(),
                email: "ops@example.com".into(),
            })
        );
        assert_eq!(cli.config, Some("a.toml".into()));
        assert!(parse(&["bootstrap-admin", "--tenant", "acme"]).is_err());
        assert!(parse(&["bootstrap-admin", "--email", "a@b.c"]).is_err());
        assert!(parse(&["bootstrap-admin", "--email"]).is_err());
        // No password on the command line, where `ps` would show it.
        assert!(
            parse(&[
                "bootstrap-admin",
                "--tenant",
                "acme",
                "--email",
                "a@b.c",
                "--password",
                "x"
            ])
            .is_err()
        );
        assert!(parse(&["--email", "a@b.c"]).is_err());
    }

    #[tokio::test]
    async fn refusals_exit_with_status_2_and_help_with_0() {
        assert_eq!(run(["--no-such-flag".into()]).await, EXIT_MISCONFIGURED);
        assert_eq!(run(["--help".into()]).await, SUCCESS);
        assert_eq!(
            run(["bootstrap-key".into(), "--help".into()]).await,
            SUCCESS
        );
    }
}
