//! The limiter round: peek, then take, every limit of a policy; and the
//! responses that answer instead of the inner service.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use docaiche_core::problem::Problem;
use docaiche_core::rate_limit::{LimitCheck, Quota, RateLimitDecision, RateLimitKey};
use docaiche_core::{Error, RateLimiter};
use http::Response;
use smallvec::SmallVec;

use crate::ROUND_INLINE;
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

/// A round's checks, inline up to [`ROUND_INLINE`].
pub(crate) type PlannedChecks = SmallVec<[PlannedCheck; ROUND_INLINE]>;

/// What the limiter round decided.
#[derive(Debug)]
pub(crate) enum CheckOutcome {
    /// Every limit passed and its cost was taken; the most restrictive
    /// limit afterwards, and whether a failure policy decided any part.
    Allowed(ServiceLimitItem, bool),
    /// A limit refused; and whether a failure policy decided any part.
    Denied(Denial, bool),
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
/// one [`RateLimiter::check_all_now`] when the limiter has it (the
/// in-process limiter decides them all under its locks: exactly all or
/// nothing). Otherwise `peek` them all first, so that a request refused by
/// one limit does not spend the others' budget, then `check` each in order.
/// Between the peek and the checks another request may take the last unit
/// of a later limit; the earlier limits have then been charged for a
/// refused request. That race costs at most one request's units per
/// concurrent request, and a refund would need a limiter operation the
/// contract does not have.
///
/// Each step first asks the limiter's synchronous fast path
/// ([`RateLimiter::check_now`]); only a step it cannot answer waits. A
/// round an in-process limiter answers entirely is decided in
/// [`Round::decide_now`], before any future exists.
#[derive(Debug)]
pub(crate) struct Round {
    checks: PlannedChecks,
    /// The next step: an index into `checks`, in the peek or the check pass.
    next: usize,
    peeking: bool,
    denial: Option<Denial>,
    strictest: Option<ServiceLimitItem>,
    /// Whether a failure policy made any decision of the round.
    degraded: bool,
}

/// How a round ended, or that it must wait.
#[derive(Debug)]
pub(crate) enum Progress {
    /// Decided.
    Done(CheckOutcome),
    /// The limiter needs to be awaited for the rest (boxed: the round is
    /// about to move into a boxed future anyway).
    Pending(Box<Round>),
}

impl Round {
    /// A round over `checks` (at least one).
    pub(crate) fn new(checks: PlannedChecks) -> Self {
        let peeking = checks.len() > 1;
        Self {
            checks,
            next: 0,
            peeking,
            denial: None,
            strictest: None,
            degraded: false,
        }
    }

    /// Run every step the limiter answers synchronously.
    pub(crate) fn decide_now(mut self, limiter: &dyn RateLimiter) -> Progress {
        if self.peeking && self.next == 0 {
            let answer = {
                let checks: SmallVec<[LimitCheck<'_>; ROUND_INLINE]> = self
                    .checks
                    .iter()
                    .map(|c| LimitCheck::new(&c.key, &c.quota, c.cost))
                    .collect();
                limiter.check_all_now(&checks)
            };
            if let Some(answer) = answer {
                return Progress::Done(self.settle_all(answer));
            }
        }
        loop {
            let Some(c) = self.checks.get(self.next) else {
                return Progress::Done(self.finish());
            };
            let answer = if self.peeking {
                limiter.peek_now(&c.key, &c.quota, c.cost)
            } else {
                limiter.check_now(&c.key, &c.quota, c.cost)
            };
            match answer {
                Some(decision) => {
                    if let Some(outcome) = self.feed(decision) {
                        return Progress::Done(outcome);
                    }
                }
                None => return Progress::Pending(Box::new(self)),
            }
        }
    }

    /// Run the rest of the round, awaiting the limiter where it must.
    pub(crate) async fn decide(mut self, limiter: Arc<dyn RateLimiter>) -> CheckOutcome {
        loop {
            let Some(c) = self.checks.get(self.next) else {
                return self.finish();
            };
            let decision = if self.peeking {
                match limiter.peek_now(&c.key, &c.quota, c.cost) {
                    Some(decision) => decision,
                    None => limiter.peek(&c.key, &c.quota, c.cost).await,
                }
            } else {
                match limiter.check_now(&c.key, &c.quota, c.cost) {
                    Some(decision) => decision,
                    None => limiter.check(&c.key, &c.quota, c.cost).await,
                }
            };
            if let Some(outcome) = self.feed(decision) {
                return outcome;
            }
        }
    }

    /// Take one step's answer; `Some` when it ends the round.
    fn feed(&mut self, decision: Result<RateLimitDecision, Error>) -> Option<CheckOutcome> {
        let decision = match decision {
            Ok(decision) => decision,
            Err(error) => return Some(CheckOutcome::Failed(error)),
        };
        self.degraded |= decision.source.is_degraded();
        let name = self.checks[self.next].name.clone();
        self.next += 1;
        if self.peeking {
            if !decision.allowed {
                self.refused(&name, wait_of(&decision));
            }
            if self.next == self.checks.len() {
                if let Some(denial) = self.denial.take() {
                    return Some(CheckOutcome::Denied(denial, self.degraded));
                }
                self.peeking = false;
                self.next = 0;
            }
            return None;
        }
        if !decision.allowed {
            let denial = Denial::by(name, wait_of(&decision));
            return Some(CheckOutcome::Denied(denial, self.degraded));
        }
        self.passed(ServiceLimitItem::new(
            name,
            decision.remaining,
            decision.reset_after,
        ));
        None
    }

    /// Count a refusal by the limit `name`.
    fn refused(&mut self, name: &PolicyName, wait: Duration) {
        match self.denial.as_mut() {
            Some(d) => d.add(name.clone(), wait),
            None => self.denial = Some(Denial::by(name.clone(), wait)),
        }
    }

    /// Keep `item` if it is the most restrictive limit so far.
    fn passed(&mut self, item: ServiceLimitItem) {
        if self
            .strictest
            .as_ref()
            .is_none_or(|s| item.is_stricter_than(s))
        {
            self.strictest = Some(item);
        }
    }

    /// Take the answers of a whole round from `check_all_now`.
    fn settle_all(&mut self, answer: Result<Vec<RateLimitDecision>, Error>) -> CheckOutcome {
        let decisions = match answer {
            Ok(decisions) if decisions.len() == self.checks.len() => decisions,
            Ok(decisions) => {
                return CheckOutcome::Failed(Error::internal(format!(
                    "the limiter answered {} of {} limits",
                    decisions.len(),
                    self.checks.len()
                )));
            }
            Err(error) => return CheckOutcome::Failed(error),
        };
        let checks = std::mem::take(&mut self.checks);
        for (c, decision) in checks.iter().zip(&decisions) {
            self.degraded |= decision.source.is_degraded();
            if !decision.allowed {
                self.refused(&c.name, wait_of(decision));
            }
        }
        if let Some(denial) = self.denial.take() {
            return CheckOutcome::Denied(denial, self.degraded);
        }
        for (c, decision) in checks.iter().zip(&decisions) {
            self.passed(ServiceLimitItem::new(
                c.name.clone(),
                decision.remaining,
                decision.reset_after,
            ));
        }
        self.finish()
    }

    fn finish(&mut self) -> CheckOutcome {
        match self.strictest.take() {
            Some(item) => CheckOutcome::Allowed(item, self.degraded),
            // The layer runs a round only for policies with limits.
            None => CheckOutcome::Failed(Error::internal("rate-limit round without limits")),
        }
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
