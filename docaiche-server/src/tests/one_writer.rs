//! One writer per audit trail and per data directory, tested from outside:
//! the server and the `bootstrap-key` command run as real child processes
//! (this test binary re-run with [`CHILD_ARGS`] set, which runs the same
//! `cli::run`, what the `docaiche-server` binary runs), on a real socket, with a
//! umask of 000 so that only the modes the server sets explicitly count.

use std::ffi::OsString;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use docaiche_compliance::audit::Verifier;
use docaiche_compliance::audit::record::{ParsedLine, event_of, parse_line};

use crate::test_support::TestDir;

/// When set (a JSON array of arguments), [`child_main`] runs the program.
const CHILD_ARGS: &str = "DOCAICHE_TEST_CHILD_MAIN_ARGS";

/// Longest any child may take to start, answer or stop.
const DEADLINE: Duration = Duration::from_secs(60);

/// Only does something in a child process: runs `cli::run` on the
/// arguments of [`CHILD_ARGS`] and exits with its status.
#[test]
fn child_main() {
    let Some(args) = std::env::var_os(CHILD_ARGS) else {
        return;
    };
    let args: Vec<String> =
        serde_json::from_str(&args.to_string_lossy()).expect("child arguments are JSON");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let status = runtime.block_on(crate::cli::run(args.into_iter().map(OsString::from)));
    std::process::exit(i32::from(status));
}

/// Variables for the children besides `PATH` (a database URL).
type Env<'a> = &'a [(&'a str, &'a str)];

/// The program run with `args` in a child process, under umask 000, with
/// no variable of ours leaking in but `env`.
fn program(args: &[&str], env: Env<'_>) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    // The test's name without the crate's, so it follows this module.
    let child_test = format!(
        "{}::child_main",
        module_path!().split_once("::").map_or("", |(_, path)| path)
    );
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args(["--exact", &child_test, "--nocapture"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env(CHILD_ARGS, serde_json::to_string(args).expect("json"))
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

/// A server child process, killed on drop if still running.
struct ServerProcess {
    /// `None` once stopped.
    child: Option<Child>,
    addr: std::net::SocketAddr,
    /// Every line it printed so far (stdout and stderr), for diagnostics.
    lines: mpsc::Receiver<String>,
}

impl ServerProcess {
    /// Its process id.
    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every line of the child's stdout and stderr, on one channel.
fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = tx.clone();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = out.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    rx
}

/// Start the server of `config` and wait for its "server started" line.
fn start_server(config: &Path, env: Env<'_>) -> ServerProcess {
    let mut child = program(&["--config", &config.display().to_string()], env)
        .spawn()
        .expect("spawn the server");
    let lines = lines_of(&mut child);
    let until = Instant::now() + DEADLINE;
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(line) = lines.recv_timeout(left) else {
            panic!("the server never started:\n{}", seen.join("\n"));
        };
        if let Ok(record) = serde_json::from_str::<serde_json::Value>(&line)
            && record["fields"]["message"] == "server started"
        {
            let addr = record["fields"]["address"]
                .as_str()
                .expect("address")
                .parse()
                .expect("socket address");
            return ServerProcess {
                child: Some(child),
                addr,
                lines,
            };
        }
        seen.push(line);
    }
}

/// Run the program with `args` to its end: status and every line.
fn run_to_end(args: &[&str], env: Env<'_>) -> (Option<i32>, Vec<String>) {
    let mut child = program(args, env).spawn().expect("spawn");
    let lines = lines_of(&mut child);
    let pid = child.id().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let Ok(status) = rx.recv_timeout(DEADLINE) else {
        // Leave no process behind: a server that should have refused runs.
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
        panic!(
            "{args:?} did not finish: {:?}",
            lines.try_iter().collect::<Vec<_>>()
        );
    };
    let status = status.expect("wait");
    // Both pipes close when the child exits.
    let lines: Vec<String> = lines.iter().collect();
    (status.code(), lines)
}

/// A configuration with its data directory under `dir`, and `more`, in
/// a file.
fn write_config(dir: &TestDir, more: &str) -> (PathBuf, PathBuf) {
    let data = dir.path().join("data");
    let config = dir.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nbind = \"127.0.0.1:0\"\n\n[storage]\ndata_dir = \"{}\"\n{more}",
            data.display()
        ),
    )
    .expect("write the configuration");
    (config, data)
}

/// `bootstrap-key` for tenant `acme`: the key it printed.
fn bootstrap_key(config: &Path, name: &str, env: Env<'_>) -> String {
    let config = config.display().to_string();
    let (status, lines) = run_to_end(
        &[
            "bootstrap-key",
            "--tenant",
            "acme",
            "--name",
            name,
            "--config",
            &config,
        ],
        env,
    );
    assert_eq!(
        status,
        Some(0),
        "bootstrap-key failed:\n{}",
        lines.join("\n")
    );
    lines
        .into_iter()
        .find(|l| l.starts_with("dcx_"))
        .expect("bootstrap-key printed a key")
}

/// The records of the trail at `trail` whose action is `action`.
fn records_of(trail: &Path, action: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(trail) else {
        return 0;
    };
    text.lines()
        .filter(|line| {
            matches!(parse_line(line.as_bytes()), Ok(ParsedLine::Record(_)))
                && event_of(line.as_bytes()).is_ok_and(|e| e.action == action)
        })
        .count()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Stop the server with SIGTERM; it must exit 0.
fn terminate(mut server: ServerProcess) {
    let pid = server.pid().to_string();
    let sent = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let (tx, rx) = mpsc::channel();
    let mut child = server.child.take().expect("running");
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = rx
        .recv_timeout(DEADLINE)
        .expect("the server stops")
        .expect("wait");
    let lines: Vec<String> = server.lines.try_iter().collect();
    assert!(status.success(), "{status:?}:\n{}", lines.join("\n"));
}

/// A plain-HTTP client.
fn client() -> reqwest::Client {
    crate::test_support::plain_http_client(None)
}

/// Create an API key through the running server with `key` (the server
/// appends `api_key.create` to tenant `acme`'s stream itself).
async fn create_key_over_http(server: &ServerProcess, key: &str, name: &str) {
    let response = client()
        .post(format!("http://{}/v1/keys", server.addr))
        .header("X-API-Key", key)
        .header("Content-Type", "application/json")
        .body(format!(
            r#"{{"name":"{name}","scopes":["documents:read"]}}"#
        ))
        .send()
        .await
        .expect("POST /v1/keys");
    assert_eq!(response.status(), 201, "{:?}", response.text().await);
}

/// `bootstrap-key` three times beside `server`, each followed by a key
/// the server creates itself with the new key.
async fn interleave(server: &ServerProcess, config: &Path, env: Env<'_>) {
    for i in 0..3 {
        let key = bootstrap_key(config, &format!("ops-{i}"), env);
        create_key_over_http(server, &key, &format!("reader-{i}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_key_beside_a_running_server_keeps_the_chain_intact() {
    let dir = TestDir::new("one-writer-chain");
    let (config, data) = write_config(&dir, "");
    let trail = data.join("audit").join("audit.jsonl");
    let server = start_server(&config, &[]);

    // Interleave: the command's events and the server's own, on one
    // tenant's stream. Before the trail had one writer, each process
    // numbered the stream from its own head and the chain forked.
    interleave(&server, &config, &[]).await;
    // The server ingests the commands' deposits within a second or so.
    let until = Instant::now() + DEADLINE;
    while records_of(&trail, "api_key.create") < 6 {
        assert!(
            Instant::now() < until,
            "the deposited events never reached the trail"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = Verifier::new().verify_path(&trail).expect("verify");
    assert!(report.is_ok(), "the chain is broken: {:?}", report.tamper);
    // One stream, numbered once: every record of `acme` in one sequence.
    assert!(report.heads["acme"].seq >= 6, "{report:?}");

    // SQLite's journal files take the database file's mode.
    #[cfg(unix)]
    for journal in ["docaiche.db-wal", "docaiche.db-shm"] {
        // WAL mode: both exist while the server has the database open.
        let journal = data.join(journal);
        assert_eq!(mode(&journal), 0o600, "{}", journal.display());
    }

    terminate(server);
    let report = Verifier::new().verify_path(&trail).expect("verify");
    assert!(report.is_ok(), "the chain is broken: {:?}", report.tamper);
    assert_eq!(records_of(&trail, "api_key.create"), 6);
    let inbox = docaiche_compliance::audit::AuditInbox::for_trail(&trail);
    let left = std::fs::read_dir(inbox.path()).map_or(0, Iterator::count);
    assert_eq!(left, 0, "deposits left behind in the inbox");

    // Everything the server and the command created is private, although
    // both ran under umask 000.
    #[cfg(unix)]
    {
        for private_dir in [data.clone(), data.join("audit"), data.join("keys")] {
            assert_eq!(mode(&private_dir), 0o700, "{}", private_dir.display());
        }
        for private_file in [
            data.join("docaiche.db"),
            data.join("server.lock"),
            trail.clone(),
            data.join("audit").join("audit.jsonl.lock"),
            data.join("keys").join("development.key"),
        ] {
            assert_eq!(mode(&private_file), 0o600, "{}", private_file.display());
        }
        assert_eq!(mode(inbox.path()), 0o700);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = TestDir::new("one-writer-dir");
    let (config, data) = write_config(&dir, "");
    let first = start_server(&config, &[]);

    let (status, lines) = run_to_end(&["--config", &config.display().to_string()], &[]);
    let output = lines.join("\n");
    assert_eq!(status, Some(2), "{output}");
    let expected = format!(
        "{} is in use by another server (pid {})",
        data.display(),
        first.pid()
    );
    assert!(output.contains("storage.data_dir"), "{output}");
    assert!(output.contains(&expected), "{output}");
    assert!(
        !output.contains("server started"),
        "it bound its port before refusing: {output}"
    );

    // The first one serves on.
    let response = client()
        .get(format!("http://{}/health/live", first.addr))
        .send()
        .await
        .expect("GET /health/live");
    assert_eq!(response.status(), 200);
    terminate(first);
}

/// The PostgreSQL trail has many writers by design (every instance, and
/// the command): each append locks its stream's head row, so the command
/// beside the server extends the same chain without a lock or an inbox.
#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_key_beside_a_running_server_keeps_the_postgres_chain_intact() {
    use docaiche_store::postgres::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
    let Some(url) = crate::report::require_backend("server-postgres", "DOCAICHE_TEST_POSTGRES_URL")
    else {
        return;
    };
    let dir = TestDir::new("one-writer-pg");
    let mut scratch = crate::config::Config::default();
    let (schema, _) = crate::wiring::tests::on_test_schema(&url, "one_writer", &mut scratch).await;
    let (config, _) = write_config(
        &dir,
        &format!(
            "\n[store]\nbackend = \"postgres\"\nurl_source = \"env:TEST_DATABASE_URL\"\n\
             schema = \"{}\"\nmax_connections = 3\n\n[audit]\nsink = \"postgres\"\n",
            schema.name
        ),
    );
    let env = [("TEST_DATABASE_URL", url.as_str())];
    let server = start_server(&config, &env);
    interleave(&server, &config, &env).await;
    terminate(server);

    let options: PgConnectOptions = url.parse().expect("url");
    let pool = PgPoolOptions::new()
        .max_connections(1)
        .connect_with(options.options([("search_path", schema.name.as_str())]))
        .await
        .expect("connect");
    let trail = docaiche_compliance::audit::PgAuditTrail::existing(pool);
    let report = trail.verify(&Verifier::new()).await.expect("verify");
    assert!(report.is_ok(), "the chain is broken: {:?}", report.tamper);
    let created = trail
        .events(Some(&docaiche_core::TenantId::new("acme").expect("tenant")))
        .await
        .expect("events")
        .into_iter()
        .filter(|e| e.action == "api_key.create")
        .count();
    assert_eq!(created, 6);
}
