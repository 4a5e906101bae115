//! The limiter round: peek, then take, every limit of a policy; and the
//! responses that answer instead of the inner service.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use docaiche_core::problem::Problem;
use docaiche_core::rate_limit::{Quota, RateLimitDecision, RateLimitKey};
use docaiche_core::{Error, RateLimiter};
use http::Response;

use crate::headers::{self, PolicyName, ServiceLimitItem};
use crate::policy::Policy;

/// One limit of the request: its name, key, quota and cost.
#[derive(Debug)]
pub(crate) struct PlannedCheck {
    pub(crate) name: PolicyName,
    pub(crate) key: RateLimitKey,
    pub(crate) quota: Quota,
    pub(crate) cost: NonZeroU32,
}

/// What the limiter round decided.
#[derive(Debug)]
pub(crate) enum CheckOutcome {
    /// Every limit passed and its cost was taken; the most restrictive
    /// limit afterwards.
    Allowed(ServiceLimitItem),
    /// A limit refused.
    Denied(Denial),
    /// The limiter failed.
    Failed(Error),
}

/// A refusal: what the 429 says.
#[derive(Debug, Clone)]
pub(crate) struct Denial {
    /// When every violated limit lets a request of this cost through.
    pub(crate) retry_after: Duration,
    /// The names of the violated limits (the draft's `violated-policies`).
    pub(crate) violated: Vec<PolicyName>,
    /// The `RateLimit` item: the violated limit, `r=0`, `t` = Retry-After.
    pub(crate) item: ServiceLimitItem,
}

impl Denial {
    /// A refusal by the limit `name`, retryable after `retry_after`.
    pub(crate) fn by(name: PolicyName, retry_after: Duration) -> Self {
        Self {
            retry_after,
            item: ServiceLimitItem::new(name.clone(), 0, retry_after),
            violated: vec![name],
        }
    }

    /// A refusal by a concurrency limit: no window; retry after a second.
    pub(crate) fn concurrency(name: PolicyName) -> Self {
        Self {
            retry_after: Duration::from_secs(1),
            item: ServiceLimitItem::without_window(name.clone(), 0),
            violated: vec![name],
        }
    }

    fn add(&mut self, name: PolicyName, retry_after: Duration) {
        if retry_after > self.retry_after {
            self.retry_after = retry_after;
            self.item = ServiceLimitItem::new(name.clone(), 0, retry_after);
        }
        self.violated.push(name);
    }
}

/// Check every limit, all or nothing as far as the limiter allows.
///
/// One limit: one `check` (atomic; a refusal consumes nothing). Several:
/// `peek` them all first, so that a request refused by one limit does not
/// spend the others' budget, then `check` each in order. Between the peek
/// and the checks another request may take the last unit of a later limit;
/// the earlier limits have then been charged for a refused request. That
/// race costs at most one request's units per concurrent request, and a
/// refund would need a limiter operation the contract does not have.
pub(crate) async fn run(limiter: Arc<dyn RateLimiter>, checks: Vec<PlannedCheck>) -> CheckOutcome {
    match run_inner(&*limiter, &checks).await {
        Ok(outcome) => outcome,
        Err(error) => CheckOutcome::Failed(error),
    }
}

async fn run_inner(
    limiter: &dyn RateLimiter,
    checks: &[PlannedCheck],
) -> Result<CheckOutcome, Error> {
    if checks.len() > 1 {
        let mut denial: Option<Denial> = None;
        for c in checks {
            let decision = limiter.peek(&c.key, &c.quota, c.cost).await?;
            if !decision.allowed {
                let wait = wait_of(&decision);
                match denial.as_mut() {
                    Some(d) => d.add(c.name.clone(), wait),
                    None => denial = Some(Denial::by(c.name.clone(), wait)),
                }
            }
        }
        if let Some(denial) = denial {
            return Ok(CheckOutcome::Denied(denial));
        }
    }
    let mut strictest: Option<ServiceLimitItem> = None;
    for c in checks {
        let decision = limiter.check(&c.key, &c.quota, c.cost).await?;
        if !decision.allowed {
            return Ok(CheckOutcome::Denied(Denial::by(
                c.name.clone(),
                wait_of(&decision),
            )));
        }
        let item = ServiceLimitItem::new(c.name.clone(), decision.remaining, decision.reset_after);
        if strictest.as_ref().is_none_or(|s| item.is_stricter_than(s)) {
            strictest = Some(item);
        }
    }
    match strictest {
        Some(item) => Ok(CheckOutcome::Allowed(item)),
        // The layer runs a round only for policies with limits.
        None => Err(Error::internal("rate-limit round without limits")),
    }
}

fn wait_of(decision: &RateLimitDecision) -> Duration {
    decision.retry_after.unwrap_or(decision.reset_after)
}

/// The 429: a problem+json `quota-exceeded` with `Retry-After`, the
/// draft's `violated-policies` member and the RateLimit headers.
pub(crate) fn denied_response<B: From<String>>(denial: &Denial, policy: &Policy) -> Response<B> {
    let problem = Problem::from_error(&Error::RateLimited {
        retry_after: denial.retry_after,
    });
    let body = match serde_json::to_value(&problem) {
        Ok(serde_json::Value::Object(mut members)) => {
            members.insert(
                "violated-policies".to_owned(),
                denial
                    .violated
                    .iter()
                    .map(|n| serde_json::Value::from(n.as_str()))
                    .collect(),
            );
            serde_json::Value::Object(members).to_string()
        }
        // Serializing strings and integers cannot fail; keep the core body.
        _ => String::new(),
    };
    let response: Response<String> = problem.into_response();
    let mut response = if body.is_empty() {
        response.map(B::from)
    } else {
        response.map(|_| B::from(body))
    };
    headers::insert(
        response.headers_mut(),
        policy.header_value(),
        Some(&denial.item),
    );
    response
}

/// The answer when the limiter failed and the policy fails closed: the
/// core's 503 problem (the cause goes to the log only).
pub(crate) fn failed_response<B: From<String>>(error: &Error, policy: &Policy) -> Response<B> {
    let mut response: Response<B> = error.into_problem_response();
    headers::insert(response.headers_mut(), policy.header_value(), None);
    response
}
