//! The [`WebSessionStore`] suite.

use std::sync::Arc;

use docaiche_core::web_session::{SecondFactor, WebSession, WebSessionKey, WebSessionStore};
use docaiche_core::{ErrorCode, PrincipalId, TenantId};
use time::{Duration, OffsetDateTime};

use super::{Case, Harness, concurrently};

const SUITE: &str = "WebSessionStore";

/// Sessions of one subject made at once by `many_sessions`.
const MANY: usize = 200;

fn key(h: &Harness) -> WebSessionKey {
    WebSessionKey::of(&h.unique("cookie"))
}

fn subject(case: Case, h: &Harness, label: &str) -> PrincipalId {
    case.ok(PrincipalId::new(h.unique(label)), "principal id")
}

fn session(
    h: &Harness,
    tenant: &TenantId,
    subject: &PrincipalId,
    created_at: OffsetDateTime,
) -> WebSession {
    WebSession::new(
        key(h),
        tenant.clone(),
        subject.clone(),
        created_at,
        SecondFactor::NotRequired,
    )
}

/// `t` cut to whole microseconds (what the SQL and Redis adapters keep).
fn to_micros(t: OffsetDateTime) -> OffsetDateTime {
    t.replace_nanosecond(t.nanosecond() / 1_000 * 1_000)
        .unwrap_or(t)
}

/// Whether `stored` is `written` at a precision of a microsecond or finer.
fn same_instant(stored: OffsetDateTime, written: OffsetDateTime) -> bool {
    stored == written || stored == to_micros(written)
}

/// Run the whole [`WebSessionStore`] contract against `store`.
///
/// Cases share no sessions, but `purge` spans the whole store: run the
/// suite on a store no other test purges meanwhile (its own database,
/// schema or key prefix). A Redis store needs a lifetime of a day or more.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_web_session_store(store: Arc<dyn WebSessionStore>, harness: &Harness) {
    insert_then_get_round_trips_every_field(&*store, harness).await;
    a_duplicate_key_conflicts(&*store, harness).await;
    unknown_keys_find_nothing(&*store, harness).await;
    touch_never_moves_last_seen_back(&*store, harness).await;
    remove_ends_one_session(&*store, harness).await;
    remove_subject_touches_only_that_subject_in_that_tenant(&*store, harness).await;
    purge_removes_idle_and_old_sessions(&*store, harness).await;
    many_sessions(&store, harness).await;
}

async fn insert_then_get_round_trips_every_field(store: &dyn WebSessionStore, h: &Harness) {
    let case = Case::new(SUITE, "insert_then_get_round_trips_every_field");
    let tenant = h.tenant();
    let alice = subject(case, h, "alice");
    // Odd nanoseconds, so a store that keeps less than microseconds shows.
    let created = h.now().replace_nanosecond(123_456_789).unwrap_or(h.now());
    let factors = [
        SecondFactor::NotRequired,
        SecondFactor::Pending,
        SecondFactor::Passed,
    ];
    for (i, factor) in factors.into_iter().enumerate() {
        let mut written = session(h, &tenant, &alice, created);
        written.second_factor = factor;
        written.last_seen_at = created + Duration::seconds(7) + Duration::nanoseconds(999);
        written.created_at = created - Duration::minutes(i64::try_from(i).unwrap_or(0));
        case.ok(store.insert(&written).await, "insert");
        let Some(read) = case.ok(store.get(&written.key).await, "get") else {
            case.fail("a session just inserted must be found")
        };
        case.eq(&read.key, &written.key, "key");
        case.eq(&read.tenant, &written.tenant, "tenant");
        case.eq(&read.subject, &written.subject, "subject");
        case.eq(&read.second_factor, &factor, "second factor");
        case.check(
            same_instant(read.created_at, written.created_at),
            format_args!(
                "created_at: wrote {}, read {}",
                written.created_at, read.created_at
            ),
        );
        case.check(
            same_instant(read.last_seen_at, written.last_seen_at),
            format_args!(
                "last_seen_at: wrote {}, read {}",
                written.last_seen_at, read.last_seen_at
            ),
        );
    }
}

async fn a_duplicate_key_conflicts(store: &dyn WebSessionStore, h: &Harness) {
    let case = Case::new(SUITE, "a_duplicate_key_conflicts");
    let tenant = h.tenant();
    let first = session(h, &tenant, &subject(case, h, "alice"), h.now_seconds());
    case.ok(store.insert(&first).await, "insert");
    let mut second = session(h, &tenant, &subject(case, h, "mallory"), h.now_seconds());
    second.key = first.key;
    case.err(
        store.insert(&second).await,
        ErrorCode::Conflict,
        "a second session with the same key",
    );
    case.eq(
        &case.ok(store.get(&first.key).await, "get"),
        &Some(first.clone()),
        "the first session is unchanged",
    );
    case.err(
        store.insert(&first).await,
        ErrorCode::Conflict,
        "inserting the same session again",
    );
}

async fn unknown_keys_find_nothing(store: &dyn WebSessionStore, h: &Harness) {
    let case = Case::new(SUITE, "unknown_keys_find_nothing");
    for unknown in [
        key(h),
        WebSessionKey::from_bytes([0; 32]),
        WebSessionKey::from_bytes([0xff; 32]),
    ] {
        case.eq(&case.ok(store.get(&unknown).await, "get"), &None, "get");
        case.eq(
            &case.ok(store.touch(&unknown, h.now()).await, "touch"),
            &false,
            "touch",
        );
        case.eq(
            &case.ok(store.remove(&unknown).await, "remove"),
            &false,
            "remove",
        );
    }
    let nobody = subject(case, h, "nobody");
    case.eq(
        &case.ok(
            store.remove_subject(&h.tenant(), &nobody).await,
            "remove_subject",
        ),
        &0,
        "remove_subject of a subject without sessions",
    );
}

async fn touch_never_moves_last_seen_back(store: &dyn WebSessionStore, h: &Harness) {
    let case = Case::new(SUITE, "touch_never_moves_last_seen_back");
    let start = h.now_seconds();
    let written = session(h, &h.tenant(), &subject(case, h, "alice"), start);
    case.ok(store.insert(&written).await, "insert");
    let later = start + Duration::seconds(90);
    case.eq(
        &case.ok(store.touch(&written.key, later).await, "touch"),
        &true,
        "touch of a stored session",
    );
    let read = case.ok(store.get(&written.key).await, "get");
    case.eq(
        &read.as_ref().map(|s| (s.last_seen_at, s.created_at)),
        &Some((later, start)),
        "last seen moves; created stays",
    );
    case.eq(
        &case.ok(
            store
                .touch(&written.key, start + Duration::seconds(30))
                .await,
            "touch",
        ),
        &true,
        "an earlier touch still finds the session",
    );
    let read = case.ok(store.get(&written.key).await, "get");
    case.eq(
        &read.map(|s| s.last_seen_at),
        &Some(later),
        "an earlier touch never moves last seen back",
    );
}

async fn remove_ends_one_session(store: &dyn WebSessionStore, h: &Harness) {
    let case = Case::new(SUITE, "remove_ends_one_session");
    let tenant = h.tenant();
    let alice = subject(case, h, "alice");
    let ended = session(h, &tenant, &alice, h.now_seconds());
    let kept = session(h, &tenant, &alice, h.now_seconds());
    case.ok(store.insert(&ended).await, "insert");
    case.ok(store.insert(&kept).await, "insert");
    case.eq(
        &case.ok(store.remove(&ended.key).await, "remove"),
        &true,
        "remove",
    );
    case.eq(
        &case.ok(store.remove(&ended.key).await, "remove"),
        &false,
        "remove again",
    );
    case.eq(&case.ok(store.get(&ended.key).await, "get"), &None, "gone");
    case.eq(
        &case.ok(store.touch(&ended.key, h.now()).await, "touch"),
        &false,
        "touch of a removed session",
    );
    case.eq(
        &case.ok(store.get(&kept.key).await, "get"),
        &Some(kept.clone()),
        "the subject's other session stays",
    );
    case.eq(
        &case.ok(
            store.remove_subject(&tenant, &alice).await,
            "remove_subject",
        ),
        &1,
        "the removed session is not counted again",
    );
}

async fn remove_subject_touches_only_that_subject_in_that_tenant(
    store: &dyn WebSessionStore,
    h: &Harness,
) {
    let case = Case::new(
        SUITE,
        "remove_subject_touches_only_that_subject_in_that_tenant",
    );
    let (acme, globex) = (h.tenant(), h.tenant());
    let alice = subject(case, h, "alice");
    let bob = subject(case, h, "bob");
    let now = h.now_seconds();
    let ended = [
        session(h, &acme, &alice, now),
        session(h, &acme, &alice, now),
    ];
    let kept = [
        session(h, &acme, &bob, now),
        // The same subject id in another tenant is another person.
        session(h, &globex, &alice, now),
    ];
    for s in ended.iter().chain(&kept) {
        case.ok(store.insert(s).await, "insert");
    }
    case.eq(
        &case.ok(store.remove_subject(&acme, &alice).await, "remove_subject"),
        &2,
        "both of alice's sessions in acme",
    );
    for s in &ended {
        case.eq(&case.ok(store.get(&s.key).await, "get"), &None, "ended");
    }
    for s in &kept {
        case.eq(
            &case.ok(store.get(&s.key).await, "get"),
            &Some(s.clone()),
            "another subject's, or another tenant's, session stays",
        );
    }
    case.eq(
        &case.ok(store.remove_subject(&acme, &alice).await, "remove_subject"),
        &0,
        "again: nothing left",
    );
    // A new session after the sign-out everywhere is a new session.
    let again = session(h, &acme, &alice, now);
    case.ok(store.insert(&again).await, "insert after remove_subject");
    case.eq(
        &case.ok(store.get(&again.key).await, "get"),
        &Some(again.clone()),
        "a new session of the subject",
    );
}

async fn purge_removes_idle_and_old_sessions(store: &dyn WebSessionStore, h: &Harness) {
    let case = Case::new(SUITE, "purge_removes_idle_and_old_sessions");
    let tenant = h.tenant();
    let alice = subject(case, h, "alice");
    let now = h.now_seconds();
    let idle_before = now - Duration::minutes(30);
    let created_before = now - Duration::hours(12);

    let fresh = session(h, &tenant, &alice, now);
    let mut idle = session(h, &tenant, &alice, now - Duration::hours(1));
    idle.last_seen_at = idle_before - Duration::seconds(1);
    let mut old_but_busy = session(h, &tenant, &alice, created_before - Duration::seconds(1));
    old_but_busy.last_seen_at = now;
    // Exactly on a boundary: not yet past it.
    let mut on_the_idle_edge = session(h, &tenant, &alice, now - Duration::hours(1));
    on_the_idle_edge.last_seen_at = idle_before;
    let on_the_age_edge = {
        let mut s = session(h, &tenant, &alice, created_before);
        s.last_seen_at = now;
        s
    };
    // Idle by its stored last-seen, but touched since: kept.
    let mut touched = session(h, &tenant, &alice, now - Duration::hours(1));
    touched.last_seen_at = idle_before - Duration::minutes(5);
    for s in [
        &fresh,
        &idle,
        &old_but_busy,
        &on_the_idle_edge,
        &on_the_age_edge,
        &touched,
    ] {
        case.ok(store.insert(s).await, "insert");
    }
    case.ok(store.touch(&touched.key, now).await, "touch");

    let purged = case.ok(store.purge(idle_before, created_before).await, "purge");
    case.check(
        purged >= 2,
        format_args!("purge must count the idle and the old session, counted {purged}"),
    );
    for gone in [&idle, &old_but_busy] {
        case.eq(
            &case.ok(store.get(&gone.key).await, "get"),
            &None,
            "a session past a timeout is purged",
        );
    }
    for kept in [&fresh, &on_the_idle_edge, &on_the_age_edge, &touched] {
        case.check(
            case.ok(store.get(&kept.key).await, "get").is_some(),
            "a session within both timeouts stays",
        );
    }
    case.eq(
        &case.ok(
            store.remove_subject(&tenant, &alice).await,
            "remove_subject",
        ),
        &4,
        "purged sessions are gone from the subject too",
    );
    case.eq(
        &case.ok(store.purge(idle_before, created_before).await, "purge"),
        &0,
        "purging again removes nothing",
    );
}

async fn many_sessions(store: &Arc<dyn WebSessionStore>, h: &Harness) {
    let case = Case::new(SUITE, "many_sessions");
    let tenant = h.tenant();
    let alice = subject(case, h, "alice");
    let bob = subject(case, h, "bob");
    let now = h.now_seconds();
    let sessions: Vec<WebSession> = (0..MANY)
        .map(|_| session(h, &tenant, &alice, now))
        .collect();
    let bobs = session(h, &tenant, &bob, now);
    case.ok(store.insert(&bobs).await, "insert");
    let shared = Arc::new(sessions.clone());
    let inserted = concurrently(case, MANY, |i| {
        let (store, sessions) = (store.clone(), shared.clone());
        async move { store.insert(&sessions[i]).await }
    })
    .await;
    for result in inserted {
        case.ok(result, "concurrent insert");
    }
    for s in &sessions {
        case.eq(
            &case.ok(store.get(&s.key).await, "get"),
            &Some(s.clone()),
            "every session is found",
        );
    }
    case.eq(
        &case.ok(
            store.remove_subject(&tenant, &alice).await,
            "remove_subject",
        ),
        &u64::try_from(MANY).unwrap_or(u64::MAX),
        "remove_subject counts every session",
    );
    for s in &sessions {
        case.eq(&case.ok(store.get(&s.key).await, "get"), &None, "all ended");
    }
    case.eq(
        &case.ok(store.get(&bobs.key).await, "get"),
        &Some(bobs.clone()),
        "another subject's session stays",
    );
}
