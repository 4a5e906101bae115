//! `[usage]`: per-key usage analytics (what drives it is `crate::usage`):
//! whether requests are counted, how often the counts are flushed to the
//! store, how many series and unwritten batches are held, and how long
//! minute, hour and day rows are kept.

use std::num::NonZeroUsize;
use std::time::Duration;

use docaiche_core::Error;
use docaiche_core::usage::{DEFAULT_MAX_PENDING_BATCHES, DEFAULT_MAX_SERIES, UsageRetention};
use serde::Deserialize;

/// `[usage]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct UsageSection {
    /// Count every authenticated request (default `true`). Off: nothing is
    /// counted, no flusher or retention task runs, and the usage routes
    /// answer from what the store already holds.
    pub(crate) enabled: bool,
    /// Seconds between flushes: a whole number dividing a minute (1, 2, 3,
    /// 4, 5, 6, 10, 12, 15, 20, 30 or 60). A lost flush loses at most this
    /// much (`docaiche_usage_lost_batches_total` says so).
    pub(crate) flush_interval_secs: u64,
    /// Distinct series (tenant × subject × route class) held between two
    /// flushes; requests of new series beyond it are not counted
    /// (`docaiche_usage_overflowed_requests_total`).
    pub(crate) max_series: usize,
    /// Unwritten batches kept for retry while the store is down; beyond
    /// it the oldest is dropped (1: a failed flush loses its interval).
    pub(crate) max_pending_batches: usize,
    /// Seconds between retention runs.
    pub(crate) retention_interval_secs: u64,
    /// Hours minute rows are kept (default 48).
    pub(crate) minute_retention_hours: u64,
    /// Days hour rows are kept (default 90).
    pub(crate) hour_retention_days: u64,
    /// Days day rows are kept (default 730).
    pub(crate) day_retention_days: u64,
}

impl Default for UsageSection {
    fn default() -> Self {
        Self {
            enabled: true,
            flush_interval_secs: 10,
            max_series: DEFAULT_MAX_SERIES,
            max_pending_batches: DEFAULT_MAX_PENDING_BATCHES,
            retention_interval_secs: 3_600,
            minute_retention_hours: 48,
            hour_retention_days: 90,
            day_retention_days: 730,
        }
    }
}

/// Bounds of `usage.retention_interval_secs`.
const RETENTION_INTERVAL_SECS: (u64, u64) = (60, 7 * 24 * 3_600);
/// Upper bound of `usage.max_series`.
const MAX_SERIES: usize = 10_000_000;
/// Upper bound of `usage.max_pending_batches`.
const MAX_PENDING_BATCHES: usize = 10_000;
/// Upper bound of each retention (hours, days): ten years.
const MAX_RETENTION_DAYS: u64 = 3_650;

impl UsageSection {
    /// Invalid settings, as `(setting, reason)` (see `Config::validate`).
    pub(crate) fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.flush_interval().is_err() {
            out.push((
                "usage.flush_interval_secs",
                "must be a whole number of seconds dividing a minute (1, 2, 3, 4, 5, 6, 10, 12, \
                 15, 20, 30 or 60)"
                    .to_owned(),
            ));
        }
        if !(1..=MAX_SERIES).contains(&self.max_series) {
            out.push((
                "usage.max_series",
                format!("must be between 1 and {MAX_SERIES}"),
            ));
        }
        if !(1..=MAX_PENDING_BATCHES).contains(&self.max_pending_batches) {
            out.push((
                "usage.max_pending_batches",
                format!("must be between 1 and {MAX_PENDING_BATCHES}"),
            ));
        }
        if !(RETENTION_INTERVAL_SECS.0..=RETENTION_INTERVAL_SECS.1)
            .contains(&self.retention_interval_secs)
        {
            out.push((
                "usage.retention_interval_secs",
                format!(
                    "must be between {} (one minute) and {} (one week)",
                    RETENTION_INTERVAL_SECS.0, RETENTION_INTERVAL_SECS.1
                ),
            ));
        }
        for (setting, value, max) in [
            (
                "usage.minute_retention_hours",
                self.minute_retention_hours,
                MAX_RETENTION_DAYS * 24,
            ),
            (
                "usage.hour_retention_days",
                self.hour_retention_days,
                MAX_RETENTION_DAYS,
            ),
            (
                "usage.day_retention_days",
                self.day_retention_days,
                MAX_RETENTION_DAYS,
            ),
        ] {
            if value == 0 || value > max {
                out.push((setting, format!("must be between 1 and {max}")));
            }
        }
        if out.is_empty() && self.retention().is_err() {
            out.push((
                "usage.minute_retention_hours",
                "minute rows may not outlive hour rows, nor hour rows day rows".to_owned(),
            ));
        }
        out
    }

    /// The flush interval.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] unless it divides a minute.
    pub(crate) fn flush_interval(&self) -> Result<Duration, Error> {
        let secs = self.flush_interval_secs;
        if secs == 0 || 60 % secs != 0 {
            return Err(Error::misconfigured(
                "usage.flush_interval_secs",
                "must be a whole number of seconds dividing a minute",
            ));
        }
        Ok(Duration::from_secs(secs))
    }

    /// The retention per bucket size.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] for what [`Self::problems`] reports.
    pub(crate) fn retention(&self) -> Result<UsageRetention, Error> {
        let hours = |h: u64| Duration::from_secs(h.saturating_mul(3_600));
        UsageRetention::new(
            hours(self.minute_retention_hours),
            hours(self.hour_retention_days.saturating_mul(24)),
            hours(self.day_retention_days.saturating_mul(24)),
        )
    }

    /// `max_series`, at least 1.
    pub(crate) fn max_series(&self) -> NonZeroUsize {
        NonZeroUsize::new(self.max_series).unwrap_or(NonZeroUsize::MIN)
    }

    /// `max_pending_batches`, at least 1.
    pub(crate) fn max_pending_batches(&self) -> NonZeroUsize {
        NonZeroUsize::new(self.max_pending_batches).unwrap_or(NonZeroUsize::MIN)
    }

    /// Seconds between retention runs.
    pub(crate) const fn retention_interval(&self) -> Duration {
        Duration::from_secs(self.retention_interval_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        let section = UsageSection::default();
        assert!(section.problems().is_empty(), "{:?}", section.problems());
        assert_eq!(section.flush_interval().ok(), Some(Duration::from_secs(10)));
        assert!(section.retention().is_ok());
    }

    #[test]
    fn bad_settings_are_named() {
        let section = UsageSection {
            flush_interval_secs: 7,
            max_series: 0,
            max_pending_batches: 0,
            retention_interval_secs: 1,
            day_retention_days: 0,
            ..UsageSection::default()
        };
        let named: Vec<&str> = section.problems().iter().map(|(s, _)| *s).collect();
        assert_eq!(
            named,
            [
                "usage.flush_interval_secs",
                "usage.max_series",
                "usage.max_pending_batches",
                "usage.retention_interval_secs",
                "usage.day_retention_days",
            ]
        );
        // Minutes kept longer than hours: refused as a whole.
        let section = UsageSection {
            minute_retention_hours: 24 * 100,
            hour_retention_days: 90,
            ..UsageSection::default()
        };
        assert_eq!(section.problems().len(), 1, "{:?}", section.problems());
    }
}
