//! Walk an audit trail and print `OK` or the first bad record.
//!
//! ```text
//! cargo run -p docaiche-compliance --example audit_verify -- PATH [--allow-pruned-start]
//! cargo run -p docaiche-compliance --features postgres --example audit_verify -- postgres://…
//! ```
//!
//! `PATH` is a file sink's active file (its rotated segments `PATH.000001`,
//! … are read first). With the `postgres` feature, a `postgres://` URL
//! walks the `audit_trail` table (the URL's `options=-c search_path=…`
//! picks the schema). When `DOCAICHE_SECRET_AUDIT_CHECKPOINT_KEY` is set
//! (the environment form of the secret `audit/checkpoint-key`), checkpoint
//! MACs are checked too, and so is a retention anchor (`PATH.anchor`, or
//! the `audit_trail_anchors` rows): streams cut by retention then start
//! where the anchor says, and only there. Without the key an anchor counts
//! for nothing, and a cut trail reports its missing start.
//!
//! Exit status: 0 when the trail verifies, 1 when it was tampered with, 2
//! when it could not be read.

use std::path::PathBuf;
use std::process::ExitCode;

use docaiche_compliance::audit::{CheckpointKey, Verifier, VerifyReport};
use docaiche_store::secret::EnvSecretProvider;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let mut target = None;
    let mut allow_pruned_start = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--allow-pruned-start" => allow_pruned_start = true,
            "-h" | "--help" => {
                println!("usage: audit_verify PATH|postgres://URL [--allow-pruned-start]");
                return ExitCode::SUCCESS;
            }
            _ if target.is_none() => target = Some(arg),
            _ => {
                eprintln!("unexpected argument {arg:?}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(target) = target else {
        eprintln!("usage: audit_verify PATH|postgres://URL [--allow-pruned-start]");
        return ExitCode::from(2);
    };
    let mut verifier = Verifier::new().allow_pruned_start(allow_pruned_start);
    let provider = EnvSecretProvider::new();
    match CheckpointKey::load(&provider, CheckpointKey::DEFAULT_SECRET).await {
        Ok(key) => verifier = verifier.with_key(key),
        Err(e) if e.code() == docaiche_core::ErrorCode::Misconfigured => {
            eprintln!("note: no checkpoint key; checkpoint MACs are not checked");
        }
        Err(e) => {
            eprintln!("cannot load the checkpoint key: {e}");
            return ExitCode::from(2);
        }
    }
    match run(&verifier, &target).await {
        Ok(report) => print_report(&report),
        Err(e) => {
            eprintln!("cannot read the trail: {}", e.log_chain());
            ExitCode::from(2)
        }
    }
}

async fn run(verifier: &Verifier, target: &str) -> docaiche_core::Result<VerifyReport> {
    if target.starts_with("postgres://") || target.starts_with("postgresql://") {
        return verify_postgres(verifier, target).await;
    }
    let path = PathBuf::from(target);
    match docaiche_compliance::audit::Anchor::load(&path)? {
        Some(anchor) => verifier.clone().with_anchor(anchor).verify_path(&path),
        None => verifier.verify_path(&path),
    }
}

#[cfg(feature = "postgres")]
async fn verify_postgres(verifier: &Verifier, url: &str) -> docaiche_core::Result<VerifyReport> {
    use docaiche_compliance::audit::PgAuditTrail;
    let pool = sqlx::PgPool::connect(url)
        .await
        .map_err(|e| docaiche_core::Error::unavailable("postgres", e))?;
    let trail = PgAuditTrail::existing(pool);
    trail.verify(verifier).await
}

#[cfg(not(feature = "postgres"))]
async fn verify_postgres(_: &Verifier, _: &str) -> docaiche_core::Result<VerifyReport> {
    Err(docaiche_core::Error::misconfigured(
        "postgres",
        "build the example with --features postgres to verify a database trail",
    ))
}

fn print_report(report: &VerifyReport) -> ExitCode {
    if let Some(tamper) = &report.tamper {
        println!("TAMPERED {tamper}");
        println!(
            "({} records and {} checkpoints verified before it)",
            report.records, report.checkpoints
        );
        return ExitCode::from(1);
    }
    println!(
        "OK {} records in {} streams, {} checkpoints ({} MACs checked)",
        report.records,
        report.heads.len(),
        report.checkpoints,
        report.checkpoints_verified
    );
    if let Some(torn) = &report.torn_tail {
        println!("note: {torn} is a last line cut short by a crash (never acknowledged)");
    }
    ExitCode::SUCCESS
}
