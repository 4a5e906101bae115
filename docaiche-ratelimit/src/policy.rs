//! Rate-limit policies: what is limited, by which key, at what cost, and for
//! whom. Policy is configuration: [`RateLimitConfig`] is read from a file
//! (serde, unknown fields refused) and [`RateLimitConfig::build`] validates
//! it into a [`PolicySet`], naming the offending setting in
//! [`Error::Misconfigured`].
//!
//! # Model
//!
//! - A **policy** is named and holds a list of **limits** that must *all*
//!   pass (e.g. 600 requests a minute per tenant *and* 120 per principal),
//!   plus an optional per-tenant **concurrency limit** for heavy endpoints
//!   (over it, the request is refused at once with a 429, never queued).
//! - A **limit** is a [`Quota`], a [`KeySelector`] saying whose budget it
//!   spends (API key, principal, tenant, client address, or one global
//!   budget) and a [`CostRule`] (a fixed cost, or the [`RequestCost`] an
//!   earlier layer put in the request extensions). Each limit has a name
//!   (by default `<policy>-<key>`) under which it appears in the
//!   `RateLimit-Policy` header and keys its counters: limits with the same
//!   name share one budget across policies, and must then agree on quota and
//!   key.
//! - A **route class** is the name of the policy a group of routes uses by
//!   default (`default`, `documents`, `probes`). The embedder chooses it
//!   where it builds the routes, by applying a layer made for that class
//!   (see [`crate::layer`]).
//! - A **tier** (a tenant's plan: `free`, `pro`) replaces the policy of some
//!   classes for its tenants: `[tiers.pro] documents = "documents-pro"`.
//!   Which tier a tenant is on comes from a [`TenantTier`] request extension
//!   when an earlier layer set one, else from the `tenants` table of the
//!   configuration, else no tier (the class's own policy).
//!
//! A store-backed tenant → tier mapping plugs in through [`TenantTier`]: the
//! authentication layer (or a small layer after it) looks the tenant's plan
//! up in its store, caches it, and inserts `TenantTier("pro")` into the
//! request; the rate-limit layer then needs no I/O of its own for it, and
//! an unknown tier name falls back to the class's policy.
//!
//! # Keys
//!
//! Keys come from the authenticated [`Principal`] in the request extensions
//! and from the client address ([`ClientAddrResolver`]):
//!
//! | selector | key | without a principal |
//! |---|---|---|
//! | `api_key` | `k:<api key id>` (a JWT principal: as `principal`) | client address |
//! | `principal` | `p:<tenant>:<principal>` | client address |
//! | `tenant` | `t:<tenant>` | client address |
//! | `client_addr` | `ip:<address>` (IPv6 by `/ipv6_prefix`, default /64) | same |
//! | `global` | `global` | same |
//!
//! The full key is `rl:<limit name>:<selector key>`. Every part is validated
//! (ids by `docaiche-core`, names here), so [`RateLimitKey::new`] accepts it;
//! should it not, the key is escaped (and hashed if too long) rather than
//! panicking.
//!
//! # Client address and `X-Forwarded-For`
//!
//! The socket peer is the client unless the peer is a configured trusted
//! proxy (`trusted_proxies`, CIDR blocks). Only then is `X-Forwarded-For`
//! read, walking from the right (the entry the trusted proxy itself
//! appended) and skipping entries that are trusted proxies too; the first
//! untrusted address is the client. Everything to its left was written by
//! the client and is not even parsed, so a client cannot choose its own
//! key. A
//! header from an untrusted peer is ignored entirely; a malformed header
//! (unparsable entry, non-ASCII, more than [`ClientAddrResolver::MAX_HOPS`]
//! trusted hops) makes the peer the client, which is conservative: every
//! client behind that proxy then shares one budget. If every entry is a
//! trusted proxy, the leftmost is the client. IPv4-mapped IPv6 addresses
//! count as IPv4. The `Forwarded` header (RFC 7239) is not read.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use docaiche_core::rate_limit::{Quota, RateLimitKey};
use docaiche_core::{ApiKeyId, AuthMethod, Error, Principal, PrincipalId, TenantId};
use http::{HeaderMap, HeaderValue};
use serde::Deserialize;

use crate::headers::{PolicyName, QuotaPolicyItem, policy_header_value};

/// The configuration section name used in [`Error::Misconfigured`] settings.
const SECTION: &str = "rate_limit";

/// Default largest number of tenants tracked by one concurrency limit.
const DEFAULT_MAX_KEYS: usize = 10_000;

// ---------------------------------------------------------------------------
// Configuration (serde)
// ---------------------------------------------------------------------------

/// The `[rate_limit]` configuration, as read from a file.
///
/// ```
/// use docaiche_ratelimit::policy::RateLimitConfig;
///
/// let config: RateLimitConfig = serde_json::from_value(serde_json::json!({
///     "trusted_proxies": ["10.0.0.0/8"],
///     "policies": {
///         "default": { "limits": [
///             { "key": "tenant", "limit": 600, "period_secs": 60 },
///             { "key": "principal", "limit": 120, "period_secs": 60 }
///         ]},
///         "documents": {
///             "limits": [{ "key": "tenant", "limit": 60, "period_secs": 60, "cost": "request" }],
///             "concurrency": { "limit": 4 }
///         },
///         "documents-pro": {
///             "limits": [{ "key": "tenant", "limit": 600, "period_secs": 60, "cost": "request" }],
///             "concurrency": { "limit": 16 }
///         }
///     },
///     "tiers": { "pro": { "documents": "documents-pro" } },
///     "tenants": { "acme": "pro" }
/// })).unwrap();
/// let policies = config.build().unwrap();
/// assert!(policies.has_class("documents"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct RateLimitConfig {
    /// Named policies; a policy's name is also the route class that uses it
    /// by default.
    pub policies: BTreeMap<String, PolicyConfig>,
    /// Tier name → (route class → policy name) overrides.
    pub tiers: BTreeMap<String, BTreeMap<String, String>>,
    /// Tenant id → tier name.
    pub tenants: BTreeMap<String, String>,
    /// CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`, or a bare address) of the
    /// reverse proxies whose `X-Forwarded-For` is believed. Empty (the
    /// default): the header is never read.
    pub trusted_proxies: Vec<String>,
    /// IPv6 clients are keyed by this prefix length (32 to 128; default 64,
    /// since one host usually holds a whole /64).
    pub ipv6_prefix: Option<u8>,
    /// What to do when the limiter fails (`Unavailable`).
    pub on_limiter_error: OnLimiterError,
}

/// One policy of [`RateLimitConfig::policies`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
#[non_exhaustive]
pub struct PolicyConfig {
    /// Limits that must all pass.
    pub limits: Vec<LimitConfig>,
    /// A concurrency limit per tenant, for heavy routes.
    pub concurrency: Option<ConcurrencyConfig>,
}

/// One limit of [`PolicyConfig::limits`].
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitConfig {
    /// The name in headers and keys; default `<policy>-<key>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Whose budget the request spends.
    pub key: KeySelector,
    /// Units per period (also the burst).
    pub limit: u32,
    /// The period in seconds (fractions allowed).
    pub period_secs: f64,
    /// The cost of one request: a number (default 1) or `"request"` for the
    /// [`RequestCost`] extension.
    #[serde(default)]
    pub cost: CostConfig,
}

impl LimitConfig {
    /// `limit` units per `period_secs` keyed by `key`, costing 1 a request.
    #[must_use]
    pub fn new(key: KeySelector, limit: u32, period_secs: f64) -> Self {
        Self {
            name: None,
            key,
            limit,
            period_secs,
            cost: CostConfig::default(),
        }
    }

    /// Set the name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Set the cost rule.
    #[must_use]
    pub fn with_cost(mut self, cost: CostConfig) -> Self {
        self.cost = cost;
        self
    }
}

/// The cost of a request as written in configuration: `cost = 5` or
/// `cost = "request"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
#[non_exhaustive]
pub enum CostConfig {
    /// A fixed number of units.
    Fixed(u32),
    /// A keyword; only `"request"` (take [`RequestCost`]) is accepted.
    Named(String),
}

impl Default for CostConfig {
    fn default() -> Self {
        Self::Fixed(1)
    }
}

/// [`PolicyConfig::concurrency`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ConcurrencyConfig {
    /// The name in headers; default `<policy>-concurrency`.
    #[serde(default)]
    pub name: Option<String>,
    /// Requests a tenant may have in flight at once.
    pub limit: u32,
    /// Most tenants tracked at once (default 10 000); beyond it, requests of
    /// tenants not yet tracked are refused.
    #[serde(default)]
    pub max_keys: Option<usize>,
}

impl ConcurrencyConfig {
    /// At most `limit` requests in flight per tenant.
    #[must_use]
    pub fn new(limit: u32) -> Self {
        Self {
            name: None,
            limit,
            max_keys: None,
        }
    }
}

/// Whose budget a limit spends. See the [module docs](self) for the keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeySelector {
    /// The API key the principal authenticated with.
    ApiKey,
    /// The principal (within its tenant).
    Principal,
    /// The principal's tenant.
    Tenant,
    /// The client address (trusted-proxy aware).
    ClientAddr,
    /// One budget for every request.
    Global,
}

impl KeySelector {
    /// The name as written in configuration.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ApiKey => "api_key",
            Self::Principal => "principal",
            Self::Tenant => "tenant",
            Self::ClientAddr => "client_addr",
            Self::Global => "global",
        }
    }
}

/// What the layer does when the limiter itself fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnLimiterError {
    /// Refuse the request with a 503 problem (default). With
    /// `ResilientRateLimiter` in front of Redis, outages are normally
    /// absorbed by its local fallback before this point.
    #[default]
    FailClosed,
    /// Let the request through unlimited. Weakens abuse protection while the
    /// limiter is down; each such request is counted in `errors` and logged.
    FailOpen,
}

// ---------------------------------------------------------------------------
// Request extensions
// ---------------------------------------------------------------------------

/// The cost of this request, for limits configured with `cost = "request"`
/// ([`CostRule::FromRequest`]). Inserted by a layer *before* the rate-limit
/// layer (e.g. from the page count or `Content-Length`); absent, the cost
/// is 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[expect(
    clippy::exhaustive_structs,
    reason = "a newtype over the cost; nothing else will ever belong to it"
)]
pub struct RequestCost(pub NonZeroU32);

/// The tenant's tier (plan) for this request, set by an earlier layer that
/// knows it (e.g. from the tenant record); wins over the `tenants` table.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[expect(
    clippy::exhaustive_structs,
    reason = "a newtype over the tier name; nothing else will ever belong to it"
)]
pub struct TenantTier(pub String);

/// Quotas replacing the configured ones for this request, set by an earlier
/// layer that knows them (e.g. from the tenant record's settings), from this
/// request on:
///
/// - `tenant` replaces the quota of every limit keyed by `tenant` (the
///   tenant's budget keeps its key; only its size changes);
/// - `api_key` replaces every limit keyed by `api_key` or `principal` with a
///   budget of the API key's own of that size (`rl:<limit>:k:<key id>`), so
///   one key of a principal can be narrowed (or widened) without touching
///   the principal's other keys and sessions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct QuotaOverride {
    /// Replaces the quota of the limits keyed by tenant.
    pub tenant: Option<Quota>,
    /// Replaces the quota of the limits keyed by API key or principal.
    pub api_key: Option<Quota>,
}

impl QuotaOverride {
    /// Overrides for the tenant's and the API key's limits.
    #[must_use]
    pub const fn new(tenant: Option<Quota>, api_key: Option<Quota>) -> Self {
        Self { tenant, api_key }
    }

    /// What replaces a limit keyed by `selector`, if anything: the budget
    /// to spend and its quota.
    #[must_use]
    pub fn replacement(&self, selector: KeySelector) -> Option<(KeySelector, Quota)> {
        match selector {
            KeySelector::Tenant => self.tenant.map(|q| (KeySelector::Tenant, q)),
            KeySelector::ApiKey | KeySelector::Principal => {
                self.api_key.map(|q| (KeySelector::ApiKey, q))
            }
            KeySelector::ClientAddr | KeySelector::Global => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Validated policies
// ---------------------------------------------------------------------------

/// How a limit computes a request's cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CostRule {
    /// Every request costs this much.
    Fixed(NonZeroU32),
    /// The [`RequestCost`] extension, else 1.
    FromRequest,
}

impl CostRule {
    /// The cost of a request with these extensions.
    #[must_use]
    pub fn cost(self, extensions: &http::Extensions) -> NonZeroU32 {
        match self {
            Self::Fixed(cost) => cost,
            Self::FromRequest => extensions
                .get::<RequestCost>()
                .map_or(NonZeroU32::MIN, |c| c.0),
        }
    }
}

/// One validated limit of a [`Policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    name: PolicyName,
    quota: Quota,
    key: KeySelector,
    cost: CostRule,
}

impl Limit {
    /// `quota` on the budget chosen by `key`, costing 1 a request.
    #[must_use]
    pub fn new(name: PolicyName, quota: Quota, key: KeySelector) -> Self {
        Self {
            name,
            quota,
            key,
            cost: CostRule::Fixed(NonZeroU32::MIN),
        }
    }

    /// Set the cost rule.
    #[must_use]
    pub fn with_cost(mut self, cost: CostRule) -> Self {
        self.cost = cost;
        self
    }

    /// The name (in headers, keys and metrics).
    #[must_use]
    pub fn name(&self) -> &PolicyName {
        &self.name
    }

    /// The quota.
    #[must_use]
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// The key selector.
    #[must_use]
    pub fn key_selector(&self) -> KeySelector {
        self.key
    }

    /// The cost rule.
    #[must_use]
    pub fn cost_rule(&self) -> CostRule {
        self.cost
    }

    /// The rate-limit key of a request from `identity`.
    #[must_use]
    pub fn key(&self, identity: &RequestIdentity, ipv6_prefix: u8) -> RateLimitKey {
        self.key_by(self.key, identity, ipv6_prefix)
    }

    /// The budget of this limit that `identity` spends when keyed by
    /// `selector` instead of its own (a [`QuotaOverride`]).
    #[must_use]
    pub fn key_by(
        &self,
        selector: KeySelector,
        identity: &RequestIdentity,
        ipv6_prefix: u8,
    ) -> RateLimitKey {
        use std::fmt::Write as _;

        // `rl:<name>:<selector>`, written into one buffer (this runs for
        // every limit of every request).
        let name = self.name.as_str();
        let mut text = String::with_capacity(64 + name.len());
        text.push_str("rl:");
        text.push_str(name);
        text.push(':');
        let principal = |text: &mut String, tenant: &TenantId, id: &PrincipalId| {
            text.push_str("p:");
            text.push_str(tenant.as_str());
            text.push(':');
            text.push_str(id.as_str());
        };
        match (selector, identity.caller()) {
            (KeySelector::Global, _) => text.push_str("global"),
            (KeySelector::ClientAddr, _) | (_, None) => {
                text.push_str(&identity.client_key(ipv6_prefix));
            }
            (KeySelector::Tenant, Some((tenant, _))) => {
                text.push_str("t:");
                text.push_str(tenant.as_str());
            }
            (KeySelector::Principal, Some((tenant, id))) => principal(&mut text, tenant, id),
            (KeySelector::ApiKey, Some((tenant, id))) => match identity.api_key {
                // Writing to a String cannot fail.
                Some(key_id) => {
                    let _ = write!(text, "k:{key_id}");
                }
                None => principal(&mut text, tenant, id),
            },
        }
        rate_limit_key_owned(text)
    }
}

/// A per-tenant concurrency limit of a [`Policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConcurrencyLimit {
    name: PolicyName,
    limit: NonZeroU32,
    max_keys: usize,
}

impl ConcurrencyLimit {
    /// At most `limit` requests in flight per tenant, tracking at most
    /// `max_keys` tenants.
    #[must_use]
    pub fn new(name: PolicyName, limit: NonZeroU32, max_keys: usize) -> Self {
        Self {
            name,
            limit,
            max_keys: max_keys.max(1),
        }
    }

    /// The name in headers.
    #[must_use]
    pub fn name(&self) -> &PolicyName {
        &self.name
    }

    /// Requests in flight allowed per tenant.
    #[must_use]
    pub fn limit(&self) -> NonZeroU32 {
        self.limit
    }

    /// Most tenants tracked at once.
    #[must_use]
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }

    /// The key a request counts under: its tenant, or its client address
    /// when unauthenticated.
    #[must_use]
    pub fn key(&self, identity: &RequestIdentity, ipv6_prefix: u8) -> String {
        match identity.caller() {
            Some((tenant, _)) => format!("t:{tenant}"),
            None => identity.client_key(ipv6_prefix),
        }
    }
}

/// A validated policy: limits that must all pass, and an optional
/// concurrency limit.
#[derive(Debug, Clone)]
pub struct Policy {
    name: PolicyName,
    limits: Vec<Limit>,
    concurrency: Option<ConcurrencyLimit>,
    header: Option<HeaderValue>,
}

impl Policy {
    /// A policy named `name` with `limits` and an optional concurrency limit.
    ///
    /// # Errors
    /// [`Error::Misconfigured`] if it has neither limits nor a concurrency
    /// limit, or two of its limits share a name.
    pub fn new(
        name: PolicyName,
        limits: Vec<Limit>,
        concurrency: Option<ConcurrencyLimit>,
    ) -> Result<Self, Error> {
        let setting = || format!("{SECTION}.policies.{name}");
        if limits.is_empty() && concurrency.is_none() {
            return Err(Error::misconfigured(
                setting(),
                "has no limits; add at least one limit or a concurrency limit",
            ));
        }
        let mut names: Vec<&PolicyName> = limits.iter().map(Limit::name).collect();
        names.extend(concurrency.as_ref().map(ConcurrencyLimit::name));
        names.sort();
        if let Some(pair) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::misconfigured(
                setting(),
                format!(
                    "two of its limits are named `{}`; names must differ",
                    pair[0]
                ),
            ));
        }
        let mut items: Vec<QuotaPolicyItem> = limits
            .iter()
            .map(|l| QuotaPolicyItem::requests(l.name.clone(), l.quota.limit.get(), l.quota.period))
            .collect();
        items.extend(
            concurrency
                .as_ref()
                .map(|c| QuotaPolicyItem::concurrent(c.name.clone(), c.limit.get())),
        );
        let header = policy_header_value(&items);
        Ok(Self {
            name,
            limits,
            concurrency,
            header,
        })
    }

    /// The policy's name.
    #[must_use]
    pub fn name(&self) -> &PolicyName {
        &self.name
    }

    /// The limits, in the order they are checked.
    #[must_use]
    pub fn limits(&self) -> &[Limit] {
        &self.limits
    }

    /// The concurrency limit, if any.
    #[must_use]
    pub fn concurrency(&self) -> Option<&ConcurrencyLimit> {
        self.concurrency.as_ref()
    }

    /// The `RateLimit-Policy` header value listing every limit.
    #[must_use]
    pub fn header_value(&self) -> Option<&HeaderValue> {
        self.header.as_ref()
    }
}

/// Every policy, the tier overrides and the client-address rules: what the
/// rate-limit layer needs. Built by [`RateLimitConfig::build`]; cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct PolicySet {
    inner: Arc<PolicySetInner>,
}

/// The maps every request looks up (class, tenant, tier). They hold only
/// what the configuration names, so a caller cannot fill them with
/// colliding keys: foldhash (randomly seeded) rather than SipHash, which
/// costs several times more per lookup on the request path.
type ConfigMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

#[derive(Debug)]
struct PolicySetInner {
    policies: ConfigMap<String, Arc<Policy>>,
    /// tier → class → policy.
    tiers: ConfigMap<String, ConfigMap<String, Arc<Policy>>>,
    tenants: ConfigMap<TenantId, String>,
    client_addr: ClientAddrResolver,
    ipv6_prefix: u8,
    on_limiter_error: OnLimiterError,
}

impl PolicySet {
    /// Whether `class` names a policy (and so can be given to a layer).
    #[must_use]
    pub fn has_class(&self, class: &str) -> bool {
        self.inner.policies.contains_key(class)
    }

    /// The policy named `name`.
    #[must_use]
    pub fn policy(&self, name: &str) -> Option<&Arc<Policy>> {
        self.inner.policies.get(name)
    }

    /// Every policy, in no particular order.
    pub fn policies(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.inner.policies.values()
    }

    /// The policy for a request of `class` from `tenant`: the override of
    /// the tenant's tier (from `tier`, else the `tenants` table), else the
    /// class's own. `None` only if `class` is unknown.
    #[must_use]
    pub fn resolve(
        &self,
        class: &str,
        tenant: Option<&TenantId>,
        tier: Option<&TenantTier>,
    ) -> Option<&Arc<Policy>> {
        let tier = tier
            .map(|t| t.0.as_str())
            .or_else(|| tenant.and_then(|t| self.inner.tenants.get(t).map(String::as_str)));
        tier.and_then(|tier| self.inner.tiers.get(tier))
            .and_then(|classes| classes.get(class))
            .or_else(|| self.inner.policies.get(class))
    }

    /// The client-address rules.
    #[must_use]
    pub fn client_addr(&self) -> &ClientAddrResolver {
        &self.inner.client_addr
    }

    /// The IPv6 prefix length client addresses are keyed by.
    #[must_use]
    pub fn ipv6_prefix(&self) -> u8 {
        self.inner.ipv6_prefix
    }

    /// What to do when the limiter fails.
    #[must_use]
    pub fn on_limiter_error(&self) -> OnLimiterError {
        self.inner.on_limiter_error
    }
}

impl RateLimitConfig {
    /// Validate into a [`PolicySet`].
    ///
    /// # Errors
    /// [`Error::Misconfigured`] naming the first invalid setting (e.g.
    /// `rate_limit.policies.default.limits[0].period_secs`): a name outside
    /// `[A-Za-z0-9._-]` (it would reach a response header), a zero limit,
    /// cost or period, an unknown cost keyword, limits sharing a name but
    /// not a quota, a tier naming an unknown class or policy, a tenant with
    /// an invalid id or unknown tier, an invalid CIDR block, or an IPv6
    /// prefix outside 32..=128.
    pub fn build(&self) -> Result<PolicySet, Error> {
        let mut policies = ConfigMap::default();
        let mut shared: HashMap<PolicyName, (Quota, KeySelector, String)> = HashMap::new();
        for (policy_name, policy) in &self.policies {
            let at = format!("{SECTION}.policies.{policy_name}");
            let name = policy_name_at(policy_name, &at)?;
            let mut limits = Vec::with_capacity(policy.limits.len());
            for (i, limit) in policy.limits.iter().enumerate() {
                let at = format!("{at}.limits[{i}]");
                let limit = build_limit(&name, limit, &at)?;
                if let Some((quota, key, first)) = shared.get(&limit.name) {
                    if *quota != limit.quota || *key != limit.key {
                        return Err(Error::misconfigured(
                            format!("{at}.name"),
                            format!(
                                "`{}` is also the name of {first} with another quota or key; \
                                 limits sharing a name share one budget, so give this one \
                                 its own name or the same quota and key",
                                limit.name
                            ),
                        ));
                    }
                } else {
                    shared.insert(limit.name.clone(), (limit.quota, limit.key, at.clone()));
                }
                limits.push(limit);
            }
            let concurrency = match &policy.concurrency {
                None => None,
                Some(c) => Some(build_concurrency(&name, c, &format!("{at}.concurrency"))?),
            };
            let policy = Policy::new(name, limits, concurrency)?;
            policies.insert(policy_name.clone(), Arc::new(policy));
        }

        let mut tiers = ConfigMap::default();
        for (tier, classes) in &self.tiers {
            let at = format!("{SECTION}.tiers.{tier}");
            policy_name_at(tier, &at)?;
            let mut overrides = ConfigMap::default();
            for (class, policy) in classes {
                let at = format!("{at}.{class}");
                if !policies.contains_key(class) {
                    return Err(Error::misconfigured(
                        at,
                        format!("`{class}` is not a route class (a policy name)"),
                    ));
                }
                let Some(policy) = policies.get(policy) else {
                    return Err(Error::misconfigured(
                        at,
                        format!("names the unknown policy `{policy}`"),
                    ));
                };
                overrides.insert(class.clone(), Arc::clone(policy));
            }
            tiers.insert(tier.clone(), overrides);
        }

        let mut tenants = ConfigMap::default();
        for (tenant, tier) in &self.tenants {
            let at = format!("{SECTION}.tenants.{tenant}");
            let id = TenantId::new(tenant.as_str()).map_err(|e| {
                Error::misconfigured(at.clone(), format!("is not a tenant id: {e}"))
            })?;
            if !tiers.contains_key(tier) {
                return Err(Error::misconfigured(
                    at,
                    format!("names the unknown tier `{tier}`"),
                ));
            }
            tenants.insert(id, tier.clone());
        }

        let mut trusted = Vec::with_capacity(self.trusted_proxies.len());
        for (i, block) in self.trusted_proxies.iter().enumerate() {
            trusted.push(IpNet::from_str(block).map_err(|reason| {
                Error::misconfigured(format!("{SECTION}.trusted_proxies[{i}]"), reason)
            })?);
        }
        let ipv6_prefix = self.ipv6_prefix.unwrap_or(64);
        if !(32..=128).contains(&ipv6_prefix) {
            return Err(Error::misconfigured(
                format!("{SECTION}.ipv6_prefix"),
                "must be between 32 and 128 (64 keys each IPv6 /64 as one client)",
            ));
        }
        if self.on_limiter_error == OnLimiterError::FailOpen {
            tracing::warn!(
                setting = "rate_limit.on_limiter_error",
                "fail_open: requests pass unlimited while the rate limiter is unavailable"
            );
        }
        Ok(PolicySet {
            inner: Arc::new(PolicySetInner {
                policies,
                tiers,
                tenants,
                client_addr: ClientAddrResolver::new(trusted),
                ipv6_prefix,
                on_limiter_error: self.on_limiter_error,
            }),
        })
    }
}

fn policy_name_at(name: &str, setting: &str) -> Result<PolicyName, Error> {
    PolicyName::new(name).map_err(|_| {
        Error::misconfigured(
            setting.to_owned(),
            format!(
                "names are 1 to {} characters of A-Z a-z 0-9 . _ - (they are sent in \
                 RateLimit headers)",
                PolicyName::MAX_LEN
            ),
        )
    })
}

fn build_limit(policy: &PolicyName, limit: &LimitConfig, at: &str) -> Result<Limit, Error> {
    let name = match &limit.name {
        Some(name) => policy_name_at(name, &format!("{at}.name"))?,
        None => policy_name_at(
            &format!("{policy}-{}", limit.key.as_str().replace('_', "-")),
            &format!("{at}.name"),
        )?,
    };
    let count = NonZeroU32::new(limit.limit)
        .ok_or_else(|| Error::misconfigured(format!("{at}.limit"), "must be at least 1"))?;
    let period = Duration::try_from_secs_f64(limit.period_secs)
        .ok()
        .filter(|p| !p.is_zero())
        .ok_or_else(|| {
            Error::misconfigured(
                format!("{at}.period_secs"),
                "must be a positive number of seconds",
            )
        })?;
    let quota = Quota::new(count, period)
        .map_err(|e| Error::misconfigured(format!("{at}.period_secs"), format!("{e}")))?;
    let cost = match &limit.cost {
        CostConfig::Fixed(n) => CostRule::Fixed(
            NonZeroU32::new(*n)
                .ok_or_else(|| Error::misconfigured(format!("{at}.cost"), "must be at least 1"))?,
        ),
        CostConfig::Named(word) if word == "request" => CostRule::FromRequest,
        CostConfig::Named(_) => {
            return Err(Error::misconfigured(
                format!("{at}.cost"),
                "must be a number of units or \"request\" (the RequestCost extension)",
            ));
        }
    };
    Ok(Limit::new(name, quota, limit.key).with_cost(cost))
}

fn build_concurrency(
    policy: &PolicyName,
    config: &ConcurrencyConfig,
    at: &str,
) -> Result<ConcurrencyLimit, Error> {
    let name = match &config.name {
        Some(name) => policy_name_at(name, &format!("{at}.name"))?,
        None => policy_name_at(&format!("{policy}-concurrency"), &format!("{at}.name"))?,
    };
    let limit = NonZeroU32::new(config.limit)
        .ok_or_else(|| Error::misconfigured(format!("{at}.limit"), "must be at least 1"))?;
    let max_keys = config.max_keys.unwrap_or(DEFAULT_MAX_KEYS);
    if max_keys == 0 {
        return Err(Error::misconfigured(
            format!("{at}.max_keys"),
            "must be at least 1",
        ));
    }
    Ok(ConcurrencyLimit::new(name, limit, max_keys))
}

/// [`rate_limit_key`] without copying `text` when it is valid as it is.
fn rate_limit_key_owned(text: String) -> RateLimitKey {
    RateLimitKey::try_from_string(text).unwrap_or_else(|text| rate_limit_key(&text))
}

fn rate_limit_key(text: &str) -> RateLimitKey {
    if let Ok(key) = RateLimitKey::new(text) {
        return key;
    }
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || c.is_whitespace() || matches!(c, '{' | '}' | '%') {
            let mut buf = [0; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                escaped.push_str(&format!("%{b:02X}"));
            }
        } else {
            escaped.push(c);
        }
    }
    if escaped.len() > RateLimitKey::MAX_LEN {
        let mut end = RateLimitKey::MAX_LEN - 17;
        while !escaped.is_char_boundary(end) {
            end -= 1;
        }
        let hash = fnv1a(escaped.as_bytes());
        escaped.truncate(end);
        escaped.push_str(&format!("#{hash:016x}"));
    }
    // The text is now free of the refused characters and short enough; a
    // fixed key is still better than a panic should that ever change.
    RateLimitKey::new(escaped)
        .unwrap_or_else(|_| RateLimitKey::new("rl:invalid-key").expect("a constant, valid key"))
}

/// FNV-1a, 64-bit: stable across processes and releases (unlike
/// `DefaultHasher`), which matters for keys shared through Redis.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

// ---------------------------------------------------------------------------
// Who is asking
// ---------------------------------------------------------------------------

/// What the keys of a request are built from: the authenticated caller
/// (from a [`Principal`]) and the client address.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestIdentity {
    /// The caller's tenant and id, when authenticated.
    pub principal: Option<(TenantId, PrincipalId)>,
    /// The API key the caller authenticated with, if it did so with one.
    pub api_key: Option<ApiKeyId>,
    /// The client address (trusted-proxy aware), if known.
    pub client_addr: Option<IpAddr>,
}

impl RequestIdentity {
    /// The identity of a request from `principal` (if authenticated) at
    /// `client_addr`.
    #[must_use]
    pub fn new(principal: Option<&Principal>, client_addr: Option<IpAddr>) -> Self {
        Self {
            principal: principal.map(|p| (p.tenant.clone(), p.id.clone())),
            api_key: principal.and_then(|p| match &p.auth_method {
                AuthMethod::ApiKey { key_id } => Some(*key_id),
                _ => None,
            }),
            client_addr,
        }
    }

    /// The caller's tenant, when authenticated.
    #[must_use]
    pub fn tenant(&self) -> Option<&TenantId> {
        self.principal.as_ref().map(|(tenant, _)| tenant)
    }

    fn caller(&self) -> Option<(&TenantId, &PrincipalId)> {
        self.principal.as_ref().map(|(tenant, id)| (tenant, id))
    }

    fn client_key(&self, ipv6_prefix: u8) -> String {
        match self.client_addr {
            Some(addr) => format!("ip:{}", client_key_addr(addr, ipv6_prefix)),
            None => "ip:unknown".to_owned(),
        }
    }
}

/// The address used in a key: IPv6 masked to `ipv6_prefix` bits and written
/// as a network (`2001:db8:1:2::/64`).
fn client_key_addr(addr: IpAddr, ipv6_prefix: u8) -> String {
    match addr.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) if ipv6_prefix >= 128 => v6.to_string(),
        // `ipv6_prefix` is checked to be at most 128 when the policy is
        // built; `trunc` clears the host bits.
        IpAddr::V6(v6) => match ipnet::Ipv6Net::new(v6, ipv6_prefix) {
            Ok(net) => net.trunc().to_string(),
            Err(_) => v6.to_string(),
        },
    }
}

/// A CIDR block: `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a
/// single host).
///
/// The network arithmetic is the [`ipnet`] crate's; this wrapper adds our
/// rules on top of it: a bare address is a one-host block, an IPv4-mapped
/// IPv6 address (`::ffff:10.0.0.0/104`) is the IPv4 block it maps, host bits
/// after the prefix are refused as a likely typo (`10.0.0.1/8`; `ipnet`
/// would silently keep them), and a parse failure is our [`InvalidIpNet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet(ipnet::IpNet);

impl IpNet {
    /// The block `addr/prefix`.
    ///
    /// # Errors
    /// [`InvalidIpNet`] if `prefix` is longer than the address or `addr`
    /// has bits set after the prefix (a likely typo: `10.0.0.1/8`).
    pub fn new(addr: IpAddr, prefix: u8) -> Result<Self, InvalidIpNet> {
        let invalid = || {
            InvalidIpNet(format!(
                "`{addr}/{prefix}` is not a network: the prefix is too long or host bits are set"
            ))
        };
        let net = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                // `::ffff:a.b.c.d/p` is the IPv4 block `a.b.c.d/(p - 96)`.
                Some(v4) if prefix >= 96 => ipnet::IpNet::new(IpAddr::V4(v4), prefix - 96),
                Some(_) => return Err(invalid()),
                None => ipnet::IpNet::new(addr, prefix),
            },
            IpAddr::V4(_) => ipnet::IpNet::new(addr, prefix),
        }
        .map_err(|_| invalid())?;
        if net.trunc() == net {
            Ok(Self(net))
        } else {
            Err(invalid())
        }
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 counts as IPv4).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }

    /// The block as the [`ipnet`] crate's type, for code that speaks it.
    #[must_use]
    pub fn as_ipnet(&self) -> ipnet::IpNet {
        self.0
    }
}

impl From<IpNet> for ipnet::IpNet {
    fn from(net: IpNet) -> Self {
        net.0
    }
}

impl FromStr for IpNet {
    type Err = InvalidIpNet;

    fn from_str(s: &str) -> Result<Self, InvalidIpNet> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| InvalidIpNet(format!("`{s}` is not an IP address or CIDR block")))?;
        let prefix = match prefix {
            None => match addr {
                IpAddr::V4(_) => 32,
                IpAddr::V6(_) => 128,
            },
            // Digits only: `u8::from_str` would also take `+8`.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse()
                .map_err(|_| InvalidIpNet(format!("`{s}` has an invalid prefix length")))?,
            Some(_) => return Err(InvalidIpNet(format!("`{s}` has an invalid prefix length"))),
        };
        Self::new(addr, prefix)
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a string is not a CIDR block ([`IpNet`]'s parse error): the input
/// and what is wrong with it, ready for [`Error::Misconfigured`]'s reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidIpNet(String);

impl fmt::Display for InvalidIpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidIpNet {}

/// The reason text, so the error drops into [`Error::misconfigured`].
impl From<InvalidIpNet> for std::borrow::Cow<'static, str> {
    fn from(e: InvalidIpNet) -> Self {
        Self::Owned(e.0)
    }
}

/// Finds the client address of a request: the socket peer, or what trusted
/// proxies reported in `X-Forwarded-For`. See the [module docs](self).
#[derive(Debug, Clone, Default)]
pub struct ClientAddrResolver {
    trusted: Vec<IpNet>,
}

impl ClientAddrResolver {
    /// Most `X-Forwarded-For` entries walked; a longer chain of trusted
    /// proxies is treated as malformed.
    pub const MAX_HOPS: usize = 16;

    /// Believe `X-Forwarded-For` only from peers in `trusted`.
    #[must_use]
    pub fn new(trusted: Vec<IpNet>) -> Self {
        Self { trusted }
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client address for a request from `peer` with `headers`.
    #[must_use]
    pub fn resolve(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Option<IpAddr> {
        let peer = peer?.to_canonical();
        if !self.is_trusted(peer) {
            return Some(peer);
        }
        Some(self.forwarded_client(headers).unwrap_or(peer))
    }

    /// The rightmost untrusted `X-Forwarded-For` address; `None` when the
    /// header is absent or malformed.
    fn forwarded_client(&self, headers: &HeaderMap) -> Option<IpAddr> {
        // Several header lines form one list, in order (RFC 9110 §5.3).
        let mut lines = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            lines.push(value.to_str().ok()?);
        }
        let mut entries = lines.iter().rev().flat_map(|line| line.rsplit(','));
        let mut leftmost = None;
        for _ in 0..Self::MAX_HOPS {
            let Some(entry) = entries.next() else {
                return leftmost;
            };
            let ip = parse_forwarded_addr(entry.trim())?;
            if !self.is_trusted(ip) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
        // More trusted hops than we walk: do not guess.
        None
    }
}

/// An `X-Forwarded-For` entry: an address, optionally with a port
/// (`203.0.113.7:4711`, `[2001:db8::1]:4711`), as some proxies write it.
fn parse_forwarded_addr(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    entry
        .strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .map(|v6| IpAddr::V6(v6).to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append("x-forwarded-for", HeaderValue::from_str(v).expect("value"));
        }
        headers
    }

    fn resolver(blocks: &[&str]) -> ClientAddrResolver {
        ClientAddrResolver::new(blocks.iter().map(|b| b.parse().expect("cidr")).collect())
    }

    fn config(toml_like: serde_json::Value) -> Result<PolicySet, Error> {
        serde_json::from_value::<RateLimitConfig>(toml_like)
            .expect("deserializes")
            .build()
    }

    fn misconfigured_setting(result: Result<PolicySet, Error>) -> String {
        match result {
            Err(Error::Misconfigured { setting, .. }) => setting.into_owned(),
            other => panic!("expected Misconfigured, got {other:?}"),
        }
    }

    #[test]
    fn cidr_blocks_parse_and_match() {
        let net: IpNet = "10.0.0.0/8".parse().expect("valid");
        assert!(net.contains(ip("10.200.3.4")));
        assert!(
            net.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped counts as IPv4"
        );
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let v6: IpNet = "2001:db8::/32".parse().expect("valid");
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        let host: IpNet = "192.0.2.1".parse().expect("bare address");
        assert!(host.contains(ip("192.0.2.1")) && !host.contains(ip("192.0.2.2")));
        let all: IpNet = "0.0.0.0/0".parse().expect("valid");
        assert!(all.contains(ip("8.8.8.8")));
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/x",
            "nope",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_mapped_blocks_are_the_ipv4_blocks_they_map() {
        let mapped: IpNet = "::ffff:10.0.0.0/104".parse().expect("valid");
        assert_eq!(mapped, "10.0.0.0/8".parse().expect("valid"));
        assert!(mapped.contains(ip("10.9.8.7")) && mapped.contains(ip("::ffff:10.9.8.7")));
        assert_eq!(mapped.to_string(), "10.0.0.0/8");
        let host: IpNet = "::ffff:192.0.2.1".parse().expect("bare mapped address");
        assert_eq!(host.to_string(), "192.0.2.1/32");
        // A mapped prefix shorter than the mapping itself is not an IPv4 block.
        assert!("::ffff:10.0.0.0/8".parse::<IpNet>().is_err());
    }

    #[test]
    fn cidr_parse_errors_name_the_input_and_become_misconfigured_reasons() {
        let e = "10.0.0.1/8".parse::<IpNet>().expect_err("host bits set");
        assert!(e.to_string().contains("10.0.0.1/8"), "{e}");
        let e = "nope".parse::<IpNet>().expect_err("not an address");
        let Error::Misconfigured { reason, .. } = Error::misconfigured("x", e) else {
            panic!("misconfigured");
        };
        assert_eq!(reason, "`nope` is not an IP address or CIDR block");
    }

    #[test]
    fn forwarded_for_is_ignored_from_an_untrusted_peer() {
        let r = resolver(&["10.0.0.0/8"]);
        let spoofed = xff(&["1.2.3.4"]);
        assert_eq!(
            r.resolve(Some(ip("203.0.113.9")), &spoofed),
            Some(ip("203.0.113.9"))
        );
    }

    #[test]
    fn forwarded_for_walks_from_the_right_skipping_trusted_hops() {
        let r = resolver(&["10.0.0.0/8", "192.168.0.0/16"]);
        // The client wrote "6.6.6.6"; the edge proxy appended the real peer.
        let headers = xff(&["6.6.6.6, 198.51.100.7, 192.168.1.1"]);
        assert_eq!(
            r.resolve(Some(ip("10.0.0.2")), &headers),
            Some(ip("198.51.100.7"))
        );
        // Split over several header lines, ports and brackets tolerated.
        let headers = xff(&["6.6.6.6", "[2001:db8::7]:443", "10.1.1.1:80"]);
        assert_eq!(
            r.resolve(Some(ip("10.0.0.2")), &headers),
            Some(ip("2001:db8::7"))
        );
        // Every entry trusted: the leftmost.
        let headers = xff(&["10.9.9.9, 10.8.8.8"]);
        assert_eq!(
            r.resolve(Some(ip("10.0.0.2")), &headers),
            Some(ip("10.9.9.9"))
        );
        // No header: the peer.
        assert_eq!(
            r.resolve(Some(ip("10.0.0.2")), &HeaderMap::new()),
            Some(ip("10.0.0.2"))
        );
    }

    #[test]
    fn malformed_forwarded_for_falls_back_to_the_peer() {
        let r = resolver(&["10.0.0.0/8"]);
        let peer = Some(ip("10.0.0.2"));
        for bad in [
            "garbage",
            "5.6.7.8,,10.0.0.5",
            "1.2.3.4, nope",
            "",
            "1.2.3.4 5.6.7.8",
        ] {
            assert_eq!(r.resolve(peer, &xff(&[bad])), peer, "{bad:?}");
        }
        // Left of the client address, entries are the client's own words:
        // not parsed, so garbage there changes nothing.
        let headers = xff(&["garbage,, 198.51.100.7, 10.0.0.5"]);
        assert_eq!(r.resolve(peer, &headers), Some(ip("198.51.100.7")));
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"1.2.3.4\xff").expect("opaque bytes"),
        );
        assert_eq!(r.resolve(peer, &headers), peer);
        let long = vec!["10.0.0.1"; ClientAddrResolver::MAX_HOPS + 1].join(",");
        assert_eq!(r.resolve(peer, &xff(&[&long])), peer);
    }

    #[test]
    fn ipv4_mapped_peers_count_as_ipv4() {
        let r = resolver(&["10.0.0.0/8"]);
        let headers = xff(&["198.51.100.7"]);
        assert_eq!(
            r.resolve(Some(ip("::ffff:10.0.0.2")), &headers),
            Some(ip("198.51.100.7"))
        );
        assert_eq!(
            r.resolve(Some(ip("::ffff:8.8.8.8")), &headers),
            Some(ip("8.8.8.8"))
        );
    }

    fn principal(tenant: &str, id: &str, method: AuthMethod) -> Principal {
        Principal::new(
            PrincipalId::new(id).expect("id"),
            TenantId::new(tenant).expect("tenant"),
            method,
        )
    }

    fn limit(key: KeySelector) -> Limit {
        Limit::new(
            PolicyName::new("default-x").expect("name"),
            Quota::per_minute(NonZeroU32::MIN),
            key,
        )
    }

    #[test]
    fn keys_follow_the_selector_and_fall_back_to_the_client_address() {
        let key_id = ApiKeyId::new();
        let by_key = RequestIdentity::new(
            Some(&principal("acme", "bot", AuthMethod::ApiKey { key_id })),
            Some(ip("198.51.100.7")),
        );
        let by_jwt = RequestIdentity::new(
            Some(&principal("acme", "alice", AuthMethod::Password)),
            Some(ip("2001:db8:1:2:3:4:5:6")),
        );
        let anonymous = RequestIdentity::new(None, Some(ip("2001:db8:1:2:3:4:5:6")));
        let key = |sel, id: &RequestIdentity| limit(sel).key(id, 64).as_str().to_owned();

        assert_eq!(
            key(KeySelector::ApiKey, &by_key),
            format!("rl:default-x:k:{key_id}")
        );
        assert_eq!(
            key(KeySelector::ApiKey, &by_jwt),
            "rl:default-x:p:acme:alice"
        );
        assert_eq!(
            key(KeySelector::Principal, &by_key),
            "rl:default-x:p:acme:bot"
        );
        assert_eq!(key(KeySelector::Tenant, &by_jwt), "rl:default-x:t:acme");
        assert_eq!(
            key(KeySelector::ClientAddr, &by_key),
            "rl:default-x:ip:198.51.100.7"
        );
        assert_eq!(key(KeySelector::Global, &by_key), "rl:default-x:global");
        assert_eq!(
            key(KeySelector::Tenant, &anonymous),
            "rl:default-x:ip:2001:db8:1:2::/64"
        );
        assert_eq!(
            limit(KeySelector::ClientAddr).key(&anonymous, 128).as_str(),
            "rl:default-x:ip:2001:db8:1:2:3:4:5:6"
        );
        assert_eq!(
            key(KeySelector::ClientAddr, &RequestIdentity::default()),
            "rl:default-x:ip:unknown"
        );
    }

    #[test]
    fn quota_overrides_resize_the_tenant_budget_and_give_a_key_its_own() {
        let key_id = ApiKeyId::new();
        let by_key = RequestIdentity::new(
            Some(&principal("acme", "bot", AuthMethod::ApiKey { key_id })),
            None,
        );
        let small = Quota::per_minute(NonZeroU32::MIN);
        let only_key = QuotaOverride::new(None, Some(small));
        assert_eq!(only_key.replacement(KeySelector::Tenant), None);
        assert_eq!(only_key.replacement(KeySelector::ClientAddr), None);
        assert_eq!(only_key.replacement(KeySelector::Global), None);
        let (selector, quota) = only_key
            .replacement(KeySelector::Principal)
            .expect("the principal's limit is replaced");
        assert_eq!((selector, quota), (KeySelector::ApiKey, small));
        assert_eq!(
            limit(KeySelector::Principal)
                .key_by(selector, &by_key, 64)
                .as_str(),
            format!("rl:default-x:k:{key_id}"),
            "the key's own budget, not the principal's"
        );
        let only_tenant = QuotaOverride::new(Some(small), None);
        assert_eq!(
            only_tenant.replacement(KeySelector::Tenant),
            Some((KeySelector::Tenant, small))
        );
        assert_eq!(only_tenant.replacement(KeySelector::ApiKey), None);
    }

    #[test]
    fn invalid_key_text_is_escaped_never_a_panic() {
        assert_eq!(rate_limit_key("rl:a b{c}").as_str(), "rl:a%20b%7Bc%7D");
        let long = rate_limit_key(&"x ".repeat(400));
        assert!(long.as_str().len() <= RateLimitKey::MAX_LEN);
        assert_ne!(
            long,
            rate_limit_key(&"x ".repeat(401)),
            "hashed, not just cut"
        );
    }

    fn sample() -> serde_json::Value {
        serde_json::json!({
            "policies": {
                "default": { "limits": [
                    { "key": "tenant", "limit": 600, "period_secs": 60 },
                    { "key": "principal", "limit": 120, "period_secs": 60 }
                ]},
                "default-pro": { "limits": [{ "key": "tenant", "limit": 6000, "period_secs": 60 }] },
                "documents": {
                    "limits": [{ "key": "tenant", "limit": 10, "period_secs": 60, "cost": "request" }],
                    "concurrency": { "limit": 2 }
                }
            },
            "tiers": { "pro": { "default": "default-pro" } },
            "tenants": { "acme": "pro" }
        })
    }

    #[test]
    fn a_valid_configuration_builds_with_named_limits_and_headers() {
        let set = config(sample()).expect("valid");
        let default = set.policy("default").expect("exists");
        let names: Vec<_> = default.limits().iter().map(|l| l.name().as_str()).collect();
        assert_eq!(names, ["default-tenant", "default-principal"]);
        assert_eq!(
            default.header_value().expect("header"),
            "\"default-tenant\";q=600;w=60, \"default-principal\";q=120;w=60"
        );
        let documents = set.policy("documents").expect("exists");
        assert_eq!(documents.limits()[0].cost_rule(), CostRule::FromRequest);
        assert_eq!(
            documents.header_value().expect("header"),
            "\"documents-tenant\";q=10;w=60, \"documents-concurrency\";q=2;qu=\"concurrent-requests\""
        );
        assert_eq!(set.on_limiter_error(), OnLimiterError::FailClosed);
        assert_eq!(set.ipv6_prefix(), 64);
    }

    #[test]
    fn tiers_override_the_class_policy_for_their_tenants() {
        let set = config(sample()).expect("valid");
        let acme = TenantId::new("acme").expect("id");
        let globex = TenantId::new("globex").expect("id");
        let name = |p: Option<&Arc<Policy>>| p.expect("resolves").name().as_str().to_owned();
        assert_eq!(
            name(set.resolve("default", Some(&acme), None)),
            "default-pro"
        );
        assert_eq!(name(set.resolve("default", Some(&globex), None)), "default");
        assert_eq!(
            name(set.resolve("documents", Some(&acme), None)),
            "documents"
        );
        let tier = TenantTier("pro".into());
        assert_eq!(
            name(set.resolve("default", Some(&globex), Some(&tier))),
            "default-pro"
        );
        let unknown = TenantTier("platinum".into());
        assert_eq!(
            name(set.resolve("default", Some(&acme), Some(&unknown))),
            "default"
        );
        assert!(set.resolve("nope", None, None).is_none());
    }

    #[test]
    fn rejects_header_injection_in_policy_names() {
        let mut bad = sample();
        bad["policies"]["evil\"\r\nX-Injected: 1"] =
            serde_json::json!({ "limits": [{ "key": "global", "limit": 1, "period_secs": 1 }] });
        let setting = misconfigured_setting(config(bad));
        assert!(setting.starts_with("rate_limit.policies.evil"), "{setting}");

        let mut bad = sample();
        bad["policies"]["default"]["limits"][0]["name"] = serde_json::json!("a;q=999999");
        assert_eq!(
            misconfigured_setting(config(bad)),
            "rate_limit.policies.default.limits[0].name"
        );
    }

    #[test]
    fn invalid_settings_are_named() {
        let cases: [(&str, serde_json::Value); 9] = [
            ("/policies/default/limits/0/limit", serde_json::json!(0)),
            (
                "/policies/default/limits/0/period_secs",
                serde_json::json!(0.0),
            ),
            (
                "/policies/default/limits/0/period_secs",
                serde_json::json!(-1.0),
            ),
            ("/policies/default/limits/0/cost", serde_json::json!(0)),
            (
                "/policies/default/limits/0/cost",
                serde_json::json!("bytes"),
            ),
            ("/tiers/pro/default", serde_json::json!("missing")),
            ("/tenants/acme", serde_json::json!("gold")),
            ("/trusted_proxies", serde_json::json!(["10.0.0.1/8"])),
            ("/ipv6_prefix", serde_json::json!(16)),
        ];
        let expected = [
            "rate_limit.policies.default.limits[0].limit",
            "rate_limit.policies.default.limits[0].period_secs",
            "rate_limit.policies.default.limits[0].period_secs",
            "rate_limit.policies.default.limits[0].cost",
            "rate_limit.policies.default.limits[0].cost",
            "rate_limit.tiers.pro.default",
            "rate_limit.tenants.acme",
            "rate_limit.trusted_proxies[0]",
            "rate_limit.ipv6_prefix",
        ];
        for ((pointer, value), expected) in cases.into_iter().zip(expected) {
            let mut c = sample();
            let (parent, field) = pointer.rsplit_once('/').expect("a pointer");
            match c.pointer_mut(parent) {
                Some(serde_json::Value::Object(members)) => {
                    members.insert(field.to_owned(), value);
                }
                _ => c[field] = value,
            }
            assert_eq!(misconfigured_setting(config(c)), expected, "{pointer}");
        }
    }

    #[test]
    fn limits_sharing_a_name_must_agree() {
        let mut c = sample();
        c["policies"]["default-pro"]["limits"][0]["name"] = serde_json::json!("default-tenant");
        assert_eq!(
            misconfigured_setting(config(c)),
            "rate_limit.policies.default-pro.limits[0].name"
        );
        let mut c = sample();
        c["policies"]["default"]["limits"][1]["name"] = serde_json::json!("default-tenant");
        assert_eq!(
            misconfigured_setting(config(c)),
            "rate_limit.policies.default.limits[1].name"
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut c = sample();
        c["policies"]["default"]["limits"][0]["burst"] = serde_json::json!(5);
        assert!(serde_json::from_value::<RateLimitConfig>(c).is_err());
        assert!(
            serde_json::from_value::<RateLimitConfig>(serde_json::json!({ "policy": {} })).is_err()
        );
    }

    #[test]
    fn an_empty_policy_is_refused() {
        let c = serde_json::json!({ "policies": { "default": {} } });
        assert_eq!(
            misconfigured_setting(config(c)),
            "rate_limit.policies.default"
        );
    }
}
