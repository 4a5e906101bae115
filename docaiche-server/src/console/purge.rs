//! The purge of timed-out console sessions: [`start`] runs
//! [`WebSessions::purge`](docaiche_auth::web_session::WebSessions::purge)
//! now and every [`INTERVAL`], until [`SessionPurgeJob::shutdown`].
//!
//! A timed-out session is refused when presented whether or not it was
//! purged; the purge only keeps the store from growing with sessions
//! nobody signed out of. Every instance runs it; the deletes are
//! idempotent, so instances sharing a store only repeat each other's work.

use std::sync::Arc;
use std::time::Duration;

use docaiche_core::Clock;
use tokio::sync::oneshot;

use super::Console;

/// How often the purge runs.
pub(crate) const INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The running purge; stop it with [`SessionPurgeJob::shutdown`].
#[derive(Debug)]
pub(crate) struct SessionPurgeJob {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<u64>,
}

impl SessionPurgeJob {
    /// Stop after the run in progress (waiting at most `grace`); the number
    /// of runs, or `None` if the run outlived the grace.
    pub(crate) async fn shutdown(self, grace: Duration) -> Option<u64> {
        let _ = self.stop.send(());
        tokio::time::timeout(grace, self.task)
            .await
            .ok()
            .and_then(Result::ok)
    }
}

/// Spawn the purge of `console`'s sessions, timed by `clock`.
pub(crate) fn start(console: Arc<Console>, clock: Arc<dyn Clock>) -> SessionPurgeJob {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut stopped = std::pin::pin!(stopped);
        let mut runs = 0_u64;
        loop {
            // A failure is logged; the next run retries.
            match console.sessions.purge().await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "console sessions purged"),
                Err(e) => {
                    tracing::warn!(error = %e.log_chain(), "console session purge failed");
                }
            }
            runs += 1;
            tokio::select! {
                _ = &mut stopped => return runs,
                () = clock.sleep(INTERVAL) => {}
            }
        }
    });
    tracing::info!(
        interval_secs = INTERVAL.as_secs(),
        "console session purge started"
    );
    SessionPurgeJob { stop, task }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_purge_removes_timed_out_sessions_every_interval_and_stops() {
        let clock = Arc::new(docaiche_core::ManualClock::new());
        let config = crate::config::Config::default();
        let state = crate::state::tests::state_with_clock(&config, clock.clone());
        let sessions = &state.console.sessions;
        let tenant = docaiche_core::TenantId::new("acme").expect("valid");
        let alice = docaiche_core::PrincipalId::new("alice").expect("valid");
        let (cookie, _) = sessions
            .start(
                &tenant,
                &alice,
                docaiche_auth::web_session::SecondFactor::NotRequired,
            )
            .await
            .expect("start");
        clock.advance(Duration::from_secs(31 * 60));
        let job = start(Arc::clone(&state.console), clock.clone());
        // The first run is at once; then the task sleeps on the clock.
        tokio::task::yield_now().await;
        while clock.sleeps().is_empty() {
            tokio::task::yield_now().await;
        }
        assert_eq!(clock.sleeps()[0], INTERVAL);
        // Purged: gone from the store, so not "expired" but unknown.
        let refused = sessions
            .resolve(cookie.expose_secret())
            .await
            .expect_err("purged");
        assert!(
            matches!(
                refused,
                docaiche_core::Error::Unauthenticated {
                    reason: docaiche_core::AuthFailure::BadCredential
                }
            ),
            "{refused:?}"
        );
        assert_eq!(job.shutdown(Duration::from_secs(1)).await, Some(1));
    }
}
