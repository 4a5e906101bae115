//! Property tests for the parsers and validators of `docaiche-core`: every
//! value a constructor accepts satisfies the invariant its docs promise, and
//! every codec round-trips.
//!
//! Failures are persisted by proptest under `proptest-regressions/` next to
//! this file; commit any that appear so the case is replayed forever after.

use std::num::NonZeroU32;
use std::time::Duration;

use docaiche_core::api_key::ApiKeyLookup;
use docaiche_core::cache::CacheKey;
use docaiche_core::id::MAX_NAME_ID_LEN;
use docaiche_core::rate_limit::{Quota, RateLimitKey};
use docaiche_core::revocation::{MAX_TOKEN_ID_LEN, validate_token_id};
use docaiche_core::secret_provider::validate_secret_name;
use docaiche_core::{
    Error, ErrorCode, Grant, Permission, PermissionSet, PrincipalId, Problem, RequestContext,
    TenantId,
};
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Strings that are often near-valid for an identifier: characters from
/// `alphabet` mixed with a few hostile ones, lengths across the bounds.
fn near(alphabet: &'static str, max_len: usize) -> impl Strategy<Value = String> {
    let chars: Vec<char> = alphabet
        .chars()
        .chain(['/', ' ', '\0', '\n', '{', '}', ':', '*', 'é', '\u{202e}'])
        .collect();
    let biased = proptest::collection::vec(
        prop_oneof![
            8 => proptest::sample::select(alphabet.chars().collect::<Vec<_>>()),
            1 => proptest::sample::select(chars),
        ],
        0..=max_len + 2,
    )
    .prop_map(String::from_iter);
    prop_oneof![3 => biased, 1 => any::<String>()]
}

const NAME_ID_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@+";
const LOOKUP_CHARS: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";
const SECRET_NAME_CHARS: &str = "abcxyz0189_.-/";

/// A valid permission segment.
fn segment() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_-]{0,47}"
}

fn permission() -> impl Strategy<Value = Permission> {
    (segment(), segment()).prop_map(|(r, a)| {
        Permission::parse(&format!("{r}:{a}")).expect("generated segments are valid")
    })
}

fn grant() -> impl Strategy<Value = Grant> {
    prop_oneof![
        4 => permission().prop_map(Grant::Exact),
        2 => segment().prop_map(|r| Grant::parse(&format!("{r}:*")).expect("valid resource")),
        1 => Just(Grant::Everything),
    ]
}

/// Permissions over a small universe, so that random sets overlap often.
const RESOURCES: [&str; 3] = ["documents", "jobs", "keys"];
const ACTIONS: [&str; 3] = ["read", "write", "delete"];

fn small_permission() -> impl Strategy<Value = Permission> {
    (
        proptest::sample::select(RESOURCES.as_slice()),
        proptest::sample::select(ACTIONS.as_slice()),
    )
        .prop_map(|(r, a)| Permission::parse(&format!("{r}:{a}")).expect("valid"))
}

fn small_grant() -> impl Strategy<Value = Grant> {
    prop_oneof![
        6 => small_permission().prop_map(Grant::Exact),
        3 => proptest::sample::select(RESOURCES.as_slice())
            .prop_map(|r| Grant::parse(&format!("{r}:*")).expect("valid resource")),
        1 => Just(Grant::Everything),
    ]
}

fn small_set() -> impl Strategy<Value = PermissionSet> {
    proptest::collection::vec(small_grant(), 0..5).prop_map(PermissionSet::from_iter)
}

fn every_small_permission() -> Vec<Permission> {
    RESOURCES
        .iter()
        .flat_map(|r| {
            ACTIONS
                .iter()
                .map(move |a| Permission::parse(&format!("{r}:{a}")).expect("valid"))
        })
        .collect()
}

/// Strings of mixed-width characters around the user-agent limit.
fn user_agent() -> impl Strategy<Value = String> {
    let wide = proptest::collection::vec(
        prop_oneof![
            Just('a'),
            Just('é'),  // 2 bytes
            Just('€'),  // 3 bytes
            Just('🦀'), // 4 bytes
            any::<char>(),
        ],
        0..300,
    )
    .prop_map(String::from_iter);
    let around_limit = (
        240usize..260,
        proptest::collection::vec(any::<char>(), 0..8),
    )
        .prop_map(|(n, tail)| {
            let mut s = "a".repeat(n);
            s.extend(tail);
            s
        });
    prop_oneof![wide, around_limit, any::<String>()]
}

// ---------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------

fn name_id_invariants(s: &str) -> bool {
    (1..=MAX_NAME_ID_LEN).contains(&s.len())
        && s.bytes().all(|b| NAME_ID_CHARS.as_bytes().contains(&b))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
}

proptest! {
    #[test]
    fn accepted_tenant_ids_satisfy_their_invariants(
        s in near(NAME_ID_CHARS, MAX_NAME_ID_LEN),
    ) {
        match TenantId::new(s.clone()) {
            Ok(id) => {
                prop_assert_eq!(id.as_str(), s.as_str());
                prop_assert!(name_id_invariants(&s), "accepted {:?}", s);
                // Never a traversal segment (`a..b` is fine: not a segment of its own).
                prop_assert!(s != "." && s != ".." && !s.contains(['/', '\\']), "{:?}", s);
                let json = serde_json::to_string(&id).expect("a string serializes");
                let back: TenantId = serde_json::from_str(&json).expect("own output parses");
                prop_assert_eq!(&back, &id);
                prop_assert_eq!(s.parse::<TenantId>().ok(), Some(id));
            }
            Err(err) => {
                prop_assert_eq!(err.code(), ErrorCode::InvalidInput);
                prop_assert!(!name_id_invariants(&s), "rejected valid {:?}", s);
                // Deserialization validates exactly like `new`.
                let json = serde_json::to_string(&s).expect("a string serializes");
                prop_assert!(serde_json::from_str::<TenantId>(&json).is_err());
            }
        }
    }

    #[test]
    fn principal_ids_accept_exactly_what_tenant_ids_accept(
        s in near(NAME_ID_CHARS, MAX_NAME_ID_LEN),
    ) {
        let principal = PrincipalId::new(s.clone());
        prop_assert_eq!(principal.is_ok(), TenantId::new(s.clone()).is_ok());
        if let Ok(id) = principal {
            let json = serde_json::to_string(&id).expect("a string serializes");
            let back: PrincipalId = serde_json::from_str(&json).expect("own output parses");
            prop_assert_eq!(back, id);
        }
    }

    #[test]
    fn accepted_api_key_lookups_are_8_to_64_word_chars(s in near(LOOKUP_CHARS, 64)) {
        let expected = (8..=64).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        match ApiKeyLookup::new(s.clone()) {
            Ok(lookup) => {
                prop_assert!(expected, "accepted {:?}", s);
                prop_assert_eq!(lookup.as_str(), s.as_str());
                let json = serde_json::to_string(&lookup).expect("a string serializes");
                let back: ApiKeyLookup = serde_json::from_str(&json).expect("own output parses");
                prop_assert_eq!(back, lookup);
            }
            Err(_) => {
                prop_assert!(!expected, "rejected valid {:?}", s);
                let json = serde_json::to_string(&s).expect("a string serializes");
                prop_assert!(serde_json::from_str::<ApiKeyLookup>(&json).is_err());
            }
        }
    }

    #[test]
    fn accepted_rate_limit_keys_are_bounded_and_free_of_hash_tags(
        s in near("tenant:acme/ip.203.0.113.7-docs", RateLimitKey::MAX_LEN),
    ) {
        if let Ok(key) = RateLimitKey::new(s.clone()) {
            prop_assert_eq!(key.as_str(), s.as_str());
            prop_assert_eq!(key.to_string(), s.clone());
            prop_assert!((1..=RateLimitKey::MAX_LEN).contains(&s.len()));
            prop_assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()));
            prop_assert!(!s.contains(['{', '}']), "hash tag in {:?}", s);
        }
    }

    #[test]
    fn accepted_cache_keys_are_bounded_and_printable(
        s in near("extract:acme/0123456789abcdef", CacheKey::MAX_LEN),
    ) {
        if let Ok(key) = CacheKey::new("extract", s.clone()) {
            prop_assert_eq!(key.key(), s.as_str());
            prop_assert_eq!(key.namespace(), "extract");
            prop_assert_eq!(key.to_string(), format!("extract:{s}"));
            prop_assert!((1..=CacheKey::MAX_LEN).contains(&s.len()));
            prop_assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()));
        }
    }

    #[test]
    fn accepted_token_ids_are_printable_ascii(
        s in near("jti-0123456789abcdefXYZ_.~", MAX_TOKEN_ID_LEN),
    ) {
        let expected = (1..=MAX_TOKEN_ID_LEN).contains(&s.len())
            && s.bytes().all(|b| (0x21..=0x7e).contains(&b));
        prop_assert_eq!(validate_token_id(&s).is_ok(), expected, "{:?}", s);
    }

    #[test]
    fn accepted_secret_names_cannot_traverse(s in near(SECRET_NAME_CHARS, 128)) {
        if validate_secret_name(&s).is_ok() {
            prop_assert!((1..=128).contains(&s.len()));
            prop_assert!(s.bytes().all(|b| SECRET_NAME_CHARS.as_bytes().contains(&b)
                || b.is_ascii_lowercase() || b.is_ascii_digit()));
            prop_assert!(!s.starts_with('/') && !s.ends_with('/'), "{:?}", s);
            prop_assert!(!s.contains("//"), "{:?}", s);
            for seg in s.split('/') {
                prop_assert!(seg != ".." && seg != ".", "{:?}", s);
            }
        }
    }

    #[test]
    fn secret_names_from_valid_segments_are_accepted(
        segs in proptest::collection::vec("[a-z0-9_-][a-z0-9_.-]{0,9}", 1..6),
    ) {
        let name = segs.join("/");
        prop_assert!(validate_secret_name(&name).is_ok(), "{:?}", name);
    }

    #[test]
    fn uuid_ids_round_trip_through_display(bits in any::<u128>()) {
        let id = docaiche_core::DocumentId::from_uuid(uuid::Uuid::from_u128(bits));
        prop_assert_eq!(id.to_string().parse::<docaiche_core::DocumentId>().ok(), Some(id));
        let json = serde_json::to_string(&id).expect("a uuid serializes");
        let back: docaiche_core::DocumentId = serde_json::from_str(&json).expect("parses");
        prop_assert_eq!(back, id);
    }

    #[test]
    fn accepted_quotas_have_a_nonzero_emission_interval(
        limit in 1u32..=u32::MAX,
        nanos in any::<u64>(),
    ) {
        let limit = NonZeroU32::new(limit).expect("range starts at 1");
        if let Ok(quota) = Quota::new(limit, Duration::from_nanos(nanos)) {
            prop_assert!(quota.emission_interval() >= Duration::from_nanos(1));
            prop_assert!(quota.emission_interval() <= quota.period);
        }
    }

    #[test]
    fn quotas_round_trip_through_json(
        limit in 1u32..=1_000_000,
        nanos in 1_000_000u64..86_400_000_000_000,
    ) {
        let limit = NonZeroU32::new(limit).expect("range starts at 1");
        let quota = Quota::new(limit, Duration::from_nanos(nanos)).expect("valid");
        let json = serde_json::to_string(&quota).expect("serializes");
        let back: Quota = serde_json::from_str(&json).expect("own output parses");
        prop_assert_eq!(back, quota, "{}", json);
    }
}

// ---------------------------------------------------------------------------
// Permissions
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn parsed_permissions_round_trip_through_display(
        s in prop_oneof![
            permission().prop_map(|p| p.to_string()),
            near("abcdrw-_09:*", 100),
        ],
    ) {
        if let Ok(p) = Permission::parse(&s) {
            prop_assert_eq!(p.to_string(), s.clone());
            prop_assert_eq!(Permission::parse(&p.to_string()).ok(), Some(p.clone()));
            prop_assert_eq!(format!("{}:{}", p.resource(), p.action()), s.clone());
            prop_assert!(!s.contains('*'), "wildcard permission {:?}", s);
            let json = serde_json::to_string(&p).expect("serializes");
            prop_assert_eq!(serde_json::from_str::<Permission>(&json).ok(), Some(p));
        }
    }

    #[test]
    fn parsed_grants_round_trip_through_display(
        s in prop_oneof![
            grant().prop_map(|g| g.to_string()),
            near("abcdrw-_09:*", 100),
        ],
    ) {
        if let Ok(g) = Grant::parse(&s) {
            prop_assert_eq!(g.to_string(), s.clone());
            prop_assert_eq!(Grant::parse(&g.to_string()).ok(), Some(g.clone()));
            let json = serde_json::to_string(&g).expect("serializes");
            prop_assert_eq!(serde_json::from_str::<Grant>(&json).ok(), Some(g));
        }
        // A permission is always also a grant, and the same one.
        if let Ok(p) = Permission::parse(&s) {
            prop_assert_eq!(Grant::parse(&s).ok(), Some(Grant::Exact(p)));
        }
    }

    #[test]
    fn wildcard_resource_with_fixed_action_is_never_a_grant(action in segment()) {
        let s = format!("*:{action}");
        prop_assert!(Grant::parse(&s).is_err());
    }

    #[test]
    fn everything_covers_every_permission(p in permission()) {
        prop_assert!(Grant::Everything.covers(&p));
        let admin: PermissionSet = [Grant::Everything].into_iter().collect();
        prop_assert!(admin.allows(&p));
    }

    #[test]
    fn everything_contains_every_set(
        grants in proptest::collection::vec(grant(), 0..8),
    ) {
        let admin: PermissionSet = [Grant::Everything].into_iter().collect();
        let other: PermissionSet = grants.into_iter().collect();
        prop_assert!(admin.contains_all(&other));
    }

    #[test]
    fn contains_all_is_reflexive(grants in proptest::collection::vec(grant(), 0..8)) {
        let set: PermissionSet = grants.into_iter().collect();
        prop_assert!(set.contains_all(&set));
        prop_assert!(set.contains_all(&PermissionSet::new()));
    }

    #[test]
    fn contains_all_is_transitive(a in small_set(), b in small_set(), c in small_set()) {
        if a.contains_all(&b) && b.contains_all(&c) {
            prop_assert!(a.contains_all(&c), "{:?} ⊇ {:?} ⊇ {:?}", a, b, c);
        }
    }

    #[test]
    fn contains_all_never_lets_a_subset_allow_more(a in small_set(), b in small_set()) {
        if a.contains_all(&b) {
            for p in every_small_permission() {
                prop_assert!(!b.allows(&p) || a.allows(&p), "{:?} ⊇ {:?} but {:?}", a, b, p);
            }
        }
    }

    #[test]
    fn allows_agrees_with_some_grant_covering(
        grants in proptest::collection::vec(small_grant(), 0..6),
        p in small_permission(),
    ) {
        // An independent model of coverage, over the textual forms.
        let model = grants.iter().any(|g| {
            let g = g.to_string();
            g == "*:*" || g == format!("{}:*", p.resource()) || g == p.to_string()
        });
        let set: PermissionSet = grants.iter().cloned().collect();
        prop_assert_eq!(set.allows(&p), model);
        prop_assert_eq!(set.allows(&p), set.iter().any(|g| g.covers(&p)));
    }

    #[test]
    fn permission_sets_round_trip_through_json(
        grants in proptest::collection::vec(grant(), 0..8),
    ) {
        let set: PermissionSet = grants.into_iter().collect();
        let json = serde_json::to_string(&set).expect("serializes");
        let back: PermissionSet = serde_json::from_str(&json).expect("own output parses");
        prop_assert_eq!(back, set);
    }
}

// ---------------------------------------------------------------------------
// Request context and problem documents
// ---------------------------------------------------------------------------

proptest! {
    #[test]
    fn user_agent_truncation_keeps_a_whole_char_prefix(ua in user_agent()) {
        let ctx = RequestContext::new().with_user_agent(&ua);
        let kept = ctx.user_agent.expect("always set");
        prop_assert!(kept.len() <= RequestContext::MAX_USER_AGENT);
        prop_assert!(ua.starts_with(&kept));
        prop_assert!(ua.is_char_boundary(kept.len()));
        if ua.len() <= RequestContext::MAX_USER_AGENT {
            prop_assert_eq!(kept, ua);
        } else {
            // Only the partial character at the limit is dropped.
            let next = ua[kept.len()..].chars().next().expect("something was cut");
            prop_assert!(kept.len() + next.len_utf8() > RequestContext::MAX_USER_AGENT);
        }
    }

    #[test]
    fn client_error_problems_round_trip_through_json(
        message in any::<String>(),
        conflict in any::<bool>(),
        instance in proptest::option::of(any::<String>()),
    ) {
        let (error, status) = if conflict {
            (Error::conflict(message.clone()), 409)
        } else {
            (Error::invalid_input(message.clone()), 400)
        };
        let mut problem = Problem::from_error(&error);
        if let Some(instance) = instance {
            problem = problem.with_instance(instance);
        }
        prop_assert_eq!(problem.status, status);
        prop_assert_eq!(problem.code.as_str(), error.code().as_str());
        prop_assert!(problem.correlation_id.is_none());
        let detail = problem.detail.clone().expect("client errors carry a detail");
        prop_assert!(detail.ends_with(&message));

        let json = serde_json::to_vec(&problem).expect("serializes");
        let back: Problem = serde_json::from_slice(&json).expect("own output parses");
        prop_assert_eq!(&back, &problem);
        let response: http::Response<String> = problem.into_response();
        prop_assert_eq!(response.status().as_u16(), status);
    }
}

// ---------------------------------------------------------------------------
// Regressions
// ---------------------------------------------------------------------------

proptest! {
    /// Deserialization validates like `Quota::new`: a zero or
    /// sub-nanosecond-per-unit period from configuration is rejected, so no
    /// limiter ever sees a zero emission interval (found by this property).
    #[test]
    fn deserialized_quotas_satisfy_quota_new(limit in 1u32..=u32::MAX, secs in 0.0f64..1e-3) {
        let json = format!(r#"{{"limit":{limit},"period":{secs}}}"#);
        if let Ok(quota) = serde_json::from_str::<Quota>(&json) {
            prop_assert!(Quota::new(quota.limit, quota.period).is_ok(), "{}", json);
        }
    }
}
