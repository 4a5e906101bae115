//! Whether a backend suite ran against a real server, said loudly.
//!
//! Every suite that needs PostgreSQL, Redis or OpenBao starts with
//! [`require_backend`] and ends with [`mark_ran`]; when its server cannot be
//! reached it calls [`skip`] and returns. Outside CI a skip prints
//! `SKIPPED <suite>: <reason>` on stderr so a developer without the servers
//! can still run `cargo test`. Under `CI=true` or
//! `DOCAICHE_REQUIRE_BACKENDS=1` a skip panics instead: a suite that did not
//! talk to its server must not pass as if it had.
//!
//! When `DOCAICHE_TEST_REPORT_DIR` is set, each suite also leaves
//! `<suite>.ran` or `<suite>.skipped` there, holding one line of detail;
//! `scripts/test.sh` reads them into its closing table, and fails the run in
//! CI on any skip (defence in depth with the panic above).
//!
//! The module uses only `std`, so other test binaries (the sqlx, redis and
//! vault adapter suites) can mount it with
//! `#[path = "../backends/report.rs"] mod report;`.

use std::{
    env, fs,
    io::{self, Write},
    path::PathBuf,
};

/// The variable naming the directory that collects `<suite>.ran` and
/// `<suite>.skipped` files.
pub(crate) const REPORT_DIR_VAR: &str = "DOCAICHE_TEST_REPORT_DIR";

/// True when a backend suite may not skip: `CI=true` (or `1`), or
/// `DOCAICHE_REQUIRE_BACKENDS=1` (or `true`).
pub(crate) fn backends_required() -> bool {
    let set = |var: &str| {
        env::var(var).is_ok_and(|value| {
            let value = value.trim();
            value == "1" || value.eq_ignore_ascii_case("true")
        })
    };
    set("CI") || set("DOCAICHE_REQUIRE_BACKENDS")
}

/// The value of `env_var` (a server URL), or `None` after reporting the
/// suite as skipped when it is unset or empty.
///
/// # Panics
///
/// When the variable is missing and [`backends_required`] holds.
pub(crate) fn require_backend(suite: &str, env_var: &str) -> Option<String> {
    match env::var(env_var) {
        Ok(value) if !value.trim().is_empty() => Some(value.trim().to_owned()),
        Ok(_) => {
            skip(suite, &format!("{env_var} is empty"));
            None
        }
        Err(_) => {
            skip(
                suite,
                &format!("{env_var} is not set (./scripts/test.sh sets it)"),
            );
            None
        }
    }
}

/// Records that `suite` did not run against its server, and why.
///
/// # Panics
///
/// Always when [`backends_required`] holds, after writing the report file.
pub(crate) fn skip(suite: &str, reason: &str) {
    let reason = one_line(reason);
    write_report(suite, "skipped", &reason);
    if backends_required() {
        panic!(
            "\n\n*** backend suite `{suite}` could not run against a real server: {reason}\n\
             *** CI=true or DOCAICHE_REQUIRE_BACKENDS=1 forbids skipping it; \
             start the servers with ./scripts/test.sh --services-only\n"
        );
    }
    // Straight to the process's stderr: the test harness captures
    // `eprintln!` of passing tests, and a skip must be seen.
    let _ = writeln!(io::stderr(), "SKIPPED {suite}: {reason}");
}

/// Records that `suite` ran against its real server; `detail` (which server,
/// which version) goes into the report file and must not hold secrets.
pub(crate) fn mark_ran(suite: &str, detail: &str) {
    write_report(suite, "ran", &one_line(detail));
}

/// Writes `<dir>/<suite>.<outcome>` and removes the other outcome's file, so
/// a rerun into the same directory leaves one verdict per suite.
fn write_report(suite: &str, outcome: &str, line: &str) {
    let Some(dir) = env::var_os(REPORT_DIR_VAR).filter(|dir| !dir.is_empty()) else {
        return;
    };
    let dir = PathBuf::from(dir);
    fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {REPORT_DIR_VAR} {}: {e}", dir.display()));
    for stale in ["ran", "skipped"] {
        // A missing file is the normal case; anything else shows up below.
        let _ = fs::remove_file(dir.join(format!("{suite}.{stale}")));
    }
    let path = dir.join(format!("{suite}.{outcome}"));
    fs::write(&path, format!("{line}\n"))
        .unwrap_or_else(|e| panic!("cannot write backend report {}: {e}", path.display()));
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
