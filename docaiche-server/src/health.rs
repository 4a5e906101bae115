//! Readiness checks: the one place where the server's [`HealthRegistry`] is
//! assembled, and the data-directory check.
//!
//! Adding a dependency's check (PostgreSQL, Redis, Vault) is one more
//! `.with_check(...)` line in [`registry`]. The rate limiter's backend brings
//! its own (Redis: optional, so a down Redis makes readiness `degraded`, still
//! 200, while the limiter falls back).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use docaiche_core::health::{ComponentHealth, HealthCheck, HealthRegistry, HealthStatus};

use crate::config::Config;
use crate::limiter::Limiter;

/// How long any one check may take before it is reported down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Every readiness check the server runs, `limiter`'s backend's included.
pub(crate) fn registry(config: &Config, limiter: &Limiter) -> HealthRegistry {
    let registry = HealthRegistry::new(CHECK_TIMEOUT)
        .with_check(Arc::new(DataDirCheck::new(config.storage.data_dir.clone())));
    match &limiter.health_check {
        Some(check) => registry.with_check(Arc::clone(check)),
        None => registry,
    }
}

/// The data directory exists, is a directory and is writable (probed by
/// creating and removing a file). Critical: without it nothing can be stored.
#[derive(Debug, Clone)]
pub(crate) struct DataDirCheck {
    dir: PathBuf,
}

impl DataDirCheck {
    /// A check of `dir`.
    pub(crate) const fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
}

#[async_trait::async_trait]
impl HealthCheck for DataDirCheck {
    fn name(&self) -> Cow<'static, str> {
        "data_dir".into()
    }

    async fn check(&self) -> ComponentHealth {
        let started = Instant::now();
        let dir = self.dir.clone();
        let outcome = tokio::task::spawn_blocking(move || probe(&dir))
            .await
            .unwrap_or(Err("probe did not complete"));
        let latency = started.elapsed();
        match outcome {
            Ok(()) => ComponentHealth::new("data_dir", HealthStatus::Up, latency),
            Err(detail) => {
                // The path is for the operator's log; the public health
                // document gets only the generic detail.
                tracing::warn!(path = %self.dir.display(), detail, "data directory check failed");
                ComponentHealth::new("data_dir", HealthStatus::Down, latency).with_detail(detail)
            }
        }
    }
}

/// Distinguishes concurrent probes of one process.
static PROBE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Blocking probe of `dir`; the error is a short, path-free detail.
fn probe(dir: &Path) -> Result<(), &'static str> {
    match std::fs::metadata(dir) {
        Err(_) => return Err("data directory is missing"),
        Ok(meta) if !meta.is_dir() => return Err("data directory is not a directory"),
        Ok(_) => {}
    }
    let name = format!(
        ".health-probe-{}-{}",
        std::process::id(),
        PROBE_COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let file = dir.join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .map_err(|_| "data directory is not writable")?;
    std::fs::remove_file(&file).map_err(|_| "data directory does not allow removing files")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDir;

    #[tokio::test]
    async fn a_writable_directory_is_up_and_the_probe_leaves_nothing_behind() {
        let dir = TestDir::new("health-up");
        let report = DataDirCheck::new(dir.path().to_path_buf()).check().await;
        assert_eq!(report.status, HealthStatus::Up);
        assert_eq!(std::fs::read_dir(dir.path()).expect("readable").count(), 0);
    }

    #[tokio::test]
    async fn a_missing_directory_or_a_file_is_down() {
        let dir = TestDir::new("health-down");
        let missing = DataDirCheck::new(dir.path().join("missing")).check().await;
        assert_eq!(missing.status, HealthStatus::Down);
        assert_eq!(missing.detail.as_deref(), Some("data directory is missing"));

        let file = dir.path().join("file");
        std::fs::write(&file, b"x").expect("write");
        let not_dir = DataDirCheck::new(file).check().await;
        assert_eq!(not_dir.status, HealthStatus::Down);
        assert_eq!(
            not_dir.detail.as_deref(),
            Some("data directory is not a directory")
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_read_only_directory_is_down() {
        use std::os::unix::fs::PermissionsExt as _;

        let dir = TestDir::new("health-ro");
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).expect("mkdir");
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).expect("chmod");
        if std::fs::write(ro.join("canary"), b"x").is_ok() {
            // Running as root: permissions do not bind, nothing to assert.
            eprintln!("skipping: the test runs with privileges that ignore directory modes");
            return;
        }
        let report = DataDirCheck::new(ro.clone()).check().await;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).expect("chmod");
        assert_eq!(report.status, HealthStatus::Down);
        assert_eq!(
            report.detail.as_deref(),
            Some("data directory is not writable")
        );
    }
}
