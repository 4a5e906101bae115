//! Service-level objectives and the Prometheus alert rules they imply.
//!
//! `[slo]` names two objectives over the HTTP metrics of [`crate::metrics`]
//! (probe and scrape routes excluded):
//!
//! - availability: at most `1 - availability_objective` of the requests
//!   answer 5xx (default objective 99.9 %);
//! - latency: at least `latency_objective` of the requests answer within
//!   `latency_threshold_ms` (default: 95 % within 250 ms, i.e. p95 < 250 ms).
//!   The threshold is a bucket boundary of the latency histogram, so the
//!   rules read it exactly.
//!
//! [`alert_rules`] turns them into multi-window, multi-burn-rate alerts
//! (Google SRE workbook, "Alerting on SLOs"): a page when the error budget
//! burns 14.4 times too fast over both 1 h and 5 m, or 6 times over 6 h and
//! 30 m; a ticket at 3 times over 1 d and 2 h, or once over 3 d and 6 h.
//! The long window makes an alert significant, the short one makes it stop
//! soon after the burn does. The committed `deploy/prometheus/alerts.yml`
//! is the output for the default `[slo]`; a test keeps it so
//! (`DOCAICHE_UPDATE_ALERTS=1 cargo test -p docaiche-server slo` rewrites it).

use std::fmt::Write as _;

use docaiche_core::Error;
use serde::Deserialize;

/// `[slo]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SloSection {
    /// Fraction of requests that must not answer 5xx, in (0, 1).
    pub(crate) availability_objective: f64,
    /// Fraction of requests that must answer within the threshold, in (0, 1).
    pub(crate) latency_objective: f64,
    /// The latency threshold, in milliseconds (at least 1).
    pub(crate) latency_threshold_ms: u64,
    /// The period the objectives are stated over, in days (for the
    /// alerts' descriptions).
    pub(crate) period_days: u32,
    /// Label matchers selecting this service's series, e.g. `job="docaiche"`.
    pub(crate) selector: String,
}

impl Default for SloSection {
    fn default() -> Self {
        Self {
            availability_objective: 0.999,
            latency_objective: 0.95,
            latency_threshold_ms: 250,
            period_days: 30,
            selector: r#"job="docaiche""#.to_owned(),
        }
    }
}

/// One multi-window burn-rate alert: both windows above `burn_rate` times
/// the budget.
struct BurnWindow {
    long: &'static str,
    short: &'static str,
    burn_rate: &'static str,
    severity: &'static str,
    /// Share of the period's budget spent when the long window fires.
    budget_spent: &'static str,
}

/// The SRE workbook's recommended windows for a 30-day period.
const WINDOWS: [BurnWindow; 4] = [
    BurnWindow {
        long: "1h",
        short: "5m",
        burn_rate: "14.4",
        severity: "page",
        budget_spent: "2%",
    },
    BurnWindow {
        long: "6h",
        short: "30m",
        burn_rate: "6",
        severity: "page",
        budget_spent: "5%",
    },
    BurnWindow {
        long: "1d",
        short: "2h",
        burn_rate: "3",
        severity: "ticket",
        budget_spent: "10%",
    },
    BurnWindow {
        long: "3d",
        short: "6h",
        burn_rate: "1",
        severity: "ticket",
        budget_spent: "10%",
    },
];

/// Every window a rule reads, shortest first.
const RATE_WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// Routes outside the objectives: probes and scrapes.
const EXCLUDED_ROUTES: &str = r#"route!~"/health/.+|/metrics""#;

impl SloSection {
    /// The latency threshold in seconds (a histogram bucket boundary).
    pub(crate) fn latency_threshold_secs(&self) -> f64 {
        // u64 milliseconds to f64 seconds: exact below 2^53 ms.
        #[expect(
            clippy::cast_precision_loss,
            reason = "thresholds are far below 2^53 ms"
        )]
        let ms = self.latency_threshold_ms as f64;
        ms / 1000.0
    }

    /// Check the objectives.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the first setting out of range.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        for (setting, value) in [
            ("slo.availability_objective", self.availability_objective),
            ("slo.latency_objective", self.latency_objective),
        ] {
            if !(value > 0.0 && value < 1.0) {
                return Err(Error::misconfigured(
                    setting,
                    "must be a fraction strictly between 0 and 1, e.g. 0.999",
                ));
            }
        }
        if self.latency_threshold_ms == 0 {
            return Err(Error::misconfigured(
                "slo.latency_threshold_ms",
                "must be at least 1",
            ));
        }
        if self.period_days == 0 {
            return Err(Error::misconfigured(
                "slo.period_days",
                "must be at least 1",
            ));
        }
        if self.selector.contains('}') || self.selector.contains('\n') {
            return Err(Error::misconfigured(
                "slo.selector",
                "takes label matchers only, e.g. job=\"docaiche\"",
            ));
        }
        Ok(())
    }

    /// The label matchers of every series the rules read.
    fn matchers(&self) -> String {
        if self.selector.trim().is_empty() {
            EXCLUDED_ROUTES.to_owned()
        } else {
            format!("{},{EXCLUDED_ROUTES}", self.selector.trim())
        }
    }
}

/// The Prometheus rule file (recording rules and burn-rate alerts) for
/// `slo`, as YAML.
pub(crate) fn alert_rules(slo: &SloSection) -> String {
    let m = slo.matchers();
    let le = format!("{:?}", slo.latency_threshold_secs());
    let error_budget = budget(slo.availability_objective);
    let latency_budget = budget(slo.latency_objective);
    let mut out = String::new();
    let w = &mut out;
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "# Generated from the [slo] section of the DocAIche server\n\
         # (docaiche-server/src/slo.rs); do not edit by hand. Regenerate with\n\
         # DOCAICHE_UPDATE_ALERTS=1 cargo test -p docaiche-server slo\n\
         #\n\
         # Objectives: {avail} of requests without a 5xx answer; {lat} of requests\n\
         # answered within {ms} ms; over {days} days.\n\
         groups:\n  - name: docaiche-slo-recording\n    rules:",
        avail = percent(slo.availability_objective),
        lat = percent(slo.latency_objective),
        ms = slo.latency_threshold_ms,
        days = slo.period_days,
    );
    for window in RATE_WINDOWS {
        let _ = writeln!(
            w,
            "      - record: docaiche:http_errors:ratio_rate{window}\n        \
             expr: sum(rate(docaiche_http_request_errors_total{{{m}}}[{window}])) / \
             sum(rate(docaiche_http_requests_total{{{m}}}[{window}]))\n      \
             - record: docaiche:http_slow:ratio_rate{window}\n        \
             expr: 1 - (sum(rate(docaiche_http_request_duration_seconds_bucket{{{m},le=\"{le}\"}}[{window}])) / \
             sum(rate(docaiche_http_request_duration_seconds_count{{{m}}}[{window}])))"
        );
    }
    let _ = writeln!(w, "  - name: docaiche-slo-alerts\n    rules:");
    for (sli, name, budget, what) in [
        (
            "http_errors",
            "Errors",
            &error_budget,
            "5xx answers".to_owned(),
        ),
        (
            "http_slow",
            "Latency",
            &latency_budget,
            format!("answers slower than {} ms", slo.latency_threshold_ms),
        ),
    ] {
        for window in &WINDOWS {
            let BurnWindow {
                long,
                short,
                burn_rate,
                severity,
                budget_spent,
            } = window;
            let _ = writeln!(
                w,
                "      - alert: Docaiche{name}BudgetBurn{long}\n        \
                 expr: docaiche:{sli}:ratio_rate{long} > ({burn_rate} * {budget}) and \
                 docaiche:{sli}:ratio_rate{short} > ({burn_rate} * {budget})\n        \
                 labels:\n          severity: {severity}\n          slo: {sli}\n        \
                 annotations:\n          \
                 summary: \"DocAIche {what} burn the {days}-day error budget {burn_rate}x too fast\"\n          \
                 description: \"Over both {long} and {short}, {what} exceed {burn_rate} times the budget \
                 of {budget}; at this rate {budget_spent} of the budget is gone within {long}.\"",
                days = slo.period_days,
            );
        }
    }
    out
}

/// `docaiche-server alert-rules`: print the rules for the `[slo]` section
/// of `config` on stdout; a refused `[slo]` exits with status 2.
pub(crate) fn alert_rules_command(config: &crate::config::Config) -> u8 {
    if let Err(e) = config.slo.validate() {
        eprintln!("docaiche-server alert-rules: {e}");
        return 2;
    }
    print!("{}", alert_rules(&config.slo));
    0
}

/// `1 - objective`, written without floating-point noise (0.999 → 0.001).
fn budget(objective: f64) -> String {
    let text = format!("{objective}");
    match text.strip_prefix("0.") {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            // 1 - 0.d1..dn = (10^n - d) / 10^n, exactly, in decimal.
            let n = digits.len();
            let d: u128 = digits.parse().unwrap_or(0);
            let scale = 10u128.pow(u32::try_from(n).unwrap_or(0));
            let rest = scale - d;
            let padded = format!("{rest:0>n$}");
            let trimmed = padded.trim_end_matches('0');
            format!("0.{trimmed}")
        }
        _ => format!("{}", 1.0 - objective),
    }
}

/// `0.999` → `99.9%`.
fn percent(objective: f64) -> String {
    let text = format!("{objective}");
    match text.strip_prefix("0.") {
        Some(digits) if digits.bytes().all(|b| b.is_ascii_digit()) => {
            let (whole, frac) = digits.split_at(digits.len().min(2));
            let whole = format!("{whole:0<2}").trim_start_matches('0').to_owned();
            let whole = if whole.is_empty() {
                "0".to_owned()
            } else {
                whole
            };
            if frac.is_empty() {
                format!("{whole}%")
            } else {
                format!("{whole}.{frac}%")
            }
        }
        _ => format!("{}%", objective * 100.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed rule file, relative to the package root.
    const ALERTS: &str = "../deploy/prometheus/alerts.yml";

    #[test]
    fn budgets_are_exact_decimals() {
        assert_eq!(budget(0.999), "0.001");
        assert_eq!(budget(0.95), "0.05");
        assert_eq!(budget(0.9995), "0.0005");
        assert_eq!(percent(0.999), "99.9%");
        assert_eq!(percent(0.95), "95%");
        assert_eq!(percent(0.9), "90%");
        assert_eq!(percent(0.9995), "99.95%");
    }

    #[test]
    fn the_rules_hold_every_multi_window_burn_rate_pair() {
        let rules = alert_rules(&SloSection::default());
        for (long, short, rate) in [
            ("1h", "5m", "14.4"),
            ("6h", "30m", "6"),
            ("1d", "2h", "3"),
            ("3d", "6h", "1"),
        ] {
            assert!(
                rules.contains(&format!(
                    "docaiche:http_errors:ratio_rate{long} > ({rate} * 0.001) and \
                     docaiche:http_errors:ratio_rate{short} > ({rate} * 0.001)"
                )),
                "{long}/{short}: {rules}"
            );
            assert!(
                rules.contains(&format!(
                    "docaiche:http_slow:ratio_rate{long} > ({rate} * 0.05)"
                )),
                "{rules}"
            );
        }
        assert!(rules.contains(r#"le="0.25""#), "{rules}");
        assert!(rules.contains(r#"job="docaiche",route!~"/health/.+|/metrics""#));
    }

    #[test]
    fn objectives_out_of_range_are_refused() {
        for bad in [0.0, 1.0, 1.5, -0.1, f64::NAN] {
            let slo = SloSection {
                availability_objective: bad,
                ..SloSection::default()
            };
            assert!(slo.validate().is_err(), "{bad}");
        }
        let slo = SloSection {
            latency_threshold_ms: 0,
            ..SloSection::default()
        };
        assert!(slo.validate().is_err());
        let slo = SloSection {
            selector: "job=\"x\"} or vector(1) {".into(),
            ..SloSection::default()
        };
        assert!(slo.validate().is_err());
        assert!(SloSection::default().validate().is_ok());
    }

    #[test]
    fn the_committed_alert_rules_match_the_generator() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(ALERTS);
        let generated = alert_rules(&SloSection::default());
        if std::env::var_os("DOCAICHE_UPDATE_ALERTS").is_some() {
            std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
            std::fs::write(&path, &generated).expect("write alerts");
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{ALERTS} is stale: run DOCAICHE_UPDATE_ALERTS=1 cargo test -p docaiche-server slo"
        );
    }
}
