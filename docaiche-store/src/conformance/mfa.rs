//! The [`MfaStore`] suite.

use std::sync::Arc;

use docaiche_core::mfa::{
    MAX_RECOVERY_CODES, MAX_STEP, MfaEnrolment, MfaState, MfaStore, NewMfaEnrolment,
};
use docaiche_core::{ErrorCode, PrincipalId, TenantId};
use time::Duration;

use super::{Case, Harness, concurrently};

const SUITE: &str = "MfaStore";

/// How many tasks the race cases run at once.
const RACERS: usize = 8;

/// A sealed secret no other enrolment has, with bytes that break naive
/// text handling (NUL, quotes, invalid UTF-8).
fn sealed(h: &Harness) -> Vec<u8> {
    let mut bytes = b"\x00'; DROP TABLE mfa_enrolments; --\xff\xfe".to_vec();
    bytes.extend_from_slice(h.unique("sealed").as_bytes());
    bytes
}

/// A fresh 32-byte recovery-code hash.
fn hash() -> Vec<u8> {
    let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes
}

fn account(case: Case, h: &Harness, label: &str) -> PrincipalId {
    case.ok(PrincipalId::new(h.unique(label)), "account id")
}

fn new(
    case: Case,
    h: &Harness,
    tenant: &TenantId,
    account: &PrincipalId,
    codes: Vec<Vec<u8>>,
) -> NewMfaEnrolment {
    case.ok(
        NewMfaEnrolment::new(
            tenant.clone(),
            account.clone(),
            sealed(h),
            codes,
            h.now_seconds(),
        ),
        "enrolment",
    )
}

async fn get(store: &dyn MfaStore, case: Case, t: &TenantId, a: &PrincipalId) -> MfaEnrolment {
    match case.ok(store.get(t, a).await, "get") {
        Some(enrolment) => enrolment,
        None => case.fail("the enrolment must be there"),
    }
}

/// An active enrolment with `codes`, confirmed at step 1000.
async fn active(
    store: &dyn MfaStore,
    case: Case,
    h: &Harness,
    tenant: &TenantId,
    codes: Vec<Vec<u8>>,
) -> (PrincipalId, NewMfaEnrolment) {
    let who = account(case, h, "active");
    let enrolment = new(case, h, tenant, &who, codes);
    case.ok(store.begin(&enrolment).await, "begin");
    let confirmed = store
        .confirm(
            tenant,
            &who,
            &enrolment.sealed_secret,
            1000,
            h.now_seconds(),
        )
        .await;
    case.eq(&case.ok(confirmed, "confirm"), &true, "confirmed");
    (who, enrolment)
}

/// Run the whole [`MfaStore`] contract against `store`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_mfa_store(store: Arc<dyn MfaStore>, harness: &Harness) {
    begin_then_read_back(&*store, harness).await;
    confirm_activates_the_named_pending_enrolment(&*store, harness).await;
    begin_replaces_a_pending_enrolment_never_an_active_one(&*store, harness).await;
    accepted_steps_only_increase(&*store, harness).await;
    recovery_codes_are_used_once(&*store, harness).await;
    delete_removes_the_enrolment_and_its_codes(&*store, harness).await;
    tenant_isolation(&*store, harness).await;
    out_of_bounds_input_is_refused(&*store, harness).await;
    racing_accepts_of_one_step_succeed_once(&store, harness).await;
    racing_uses_of_one_recovery_code_succeed_once(&store, harness).await;
    racing_begins_leave_one_whole_enrolment(&store, harness).await;
}

async fn begin_then_read_back(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(SUITE, "begin_then_read_back");
    let tenant = h.tenant();
    let who = account(case, h, "alice");
    let enrolment = new(case, h, &tenant, &who, vec![hash(), hash(), hash()]);
    case.ok(store.begin(&enrolment).await, "begin");
    let stored = get(store, case, &tenant, &who).await;
    case.eq(&stored, &MfaEnrolment::pending(&enrolment), "read back");
    case.eq(&stored.state, &MfaState::Pending, "pending");
    case.eq(&stored.recovery_codes_remaining, &3, "three codes");
    case.eq(
        &case.ok(store.get(&tenant, &account(case, h, "nobody")).await, "get"),
        &None,
        "an unknown account",
    );
    // No recovery codes at all is a valid enrolment.
    let bare_account = account(case, h, "bare");
    let bare = new(case, h, &tenant, &bare_account, Vec::new());
    case.ok(store.begin(&bare).await, "begin without codes");
    case.eq(
        &get(store, case, &tenant, &bare_account)
            .await
            .recovery_codes_remaining,
        &0,
        "no codes",
    );
}

async fn confirm_activates_the_named_pending_enrolment(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(SUITE, "confirm_activates_the_named_pending_enrolment");
    let tenant = h.tenant();
    let who = account(case, h, "alice");
    let enrolment = new(case, h, &tenant, &who, vec![hash()]);
    case.ok(store.begin(&enrolment).await, "begin");
    let at = h.now_seconds() + Duration::seconds(5);
    let other_secret = sealed(h);
    case.eq(
        &case.ok(
            store.confirm(&tenant, &who, &other_secret, 7, at).await,
            "confirm",
        ),
        &false,
        "another sealed secret names another enrolment",
    );
    case.eq(
        &get(store, case, &tenant, &who).await.state,
        &MfaState::Pending,
        "still pending",
    );
    case.eq(
        &case.ok(
            store
                .confirm(&tenant, &who, &enrolment.sealed_secret, 7, at)
                .await,
            "confirm",
        ),
        &true,
        "confirmed",
    );
    let stored = get(store, case, &tenant, &who).await;
    let mut expected = MfaEnrolment::pending(&enrolment);
    expected.state = MfaState::Active;
    expected.last_step = Some(7);
    expected.confirmed_at = Some(at);
    case.eq(&stored, &expected, "active, step 7, confirmed at");
    case.check(stored.is_active(), "is_active");
    case.eq(
        &case.ok(
            store
                .confirm(&tenant, &who, &enrolment.sealed_secret, 8, at)
                .await,
            "confirm",
        ),
        &false,
        "an active enrolment is not confirmed again",
    );
    case.eq(
        &case.ok(
            store
                .confirm(
                    &tenant,
                    &account(case, h, "nobody"),
                    &enrolment.sealed_secret,
                    7,
                    at,
                )
                .await,
            "confirm",
        ),
        &false,
        "no enrolment",
    );
}

async fn begin_replaces_a_pending_enrolment_never_an_active_one(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(
        SUITE,
        "begin_replaces_a_pending_enrolment_never_an_active_one",
    );
    let tenant = h.tenant();
    let who = account(case, h, "alice");
    let first_code = hash();
    let first = new(case, h, &tenant, &who, vec![first_code.clone(), hash()]);
    case.ok(store.begin(&first).await, "begin");
    let second_code = hash();
    let second = new(case, h, &tenant, &who, vec![second_code.clone()]);
    case.ok(store.begin(&second).await, "begin again while pending");
    case.eq(
        &get(store, case, &tenant, &who).await,
        &MfaEnrolment::pending(&second),
        "replaced, with the new codes only",
    );
    case.eq(
        &case.ok(
            store
                .confirm(&tenant, &who, &first.sealed_secret, 1, h.now_seconds())
                .await,
            "confirm",
        ),
        &false,
        "the replaced enrolment cannot be confirmed",
    );
    case.eq(
        &case.ok(
            store
                .confirm(&tenant, &who, &second.sealed_secret, 1, h.now_seconds())
                .await,
            "confirm",
        ),
        &true,
        "the new one can",
    );
    case.eq(
        &case.ok(
            store
                .use_recovery_code(&tenant, &who, &first_code, h.now_seconds())
                .await,
            "use",
        ),
        &false,
        "the replaced enrolment's codes are gone",
    );
    let third = new(case, h, &tenant, &who, vec![hash()]);
    case.err(
        store.begin(&third).await,
        ErrorCode::Conflict,
        "begin over an active enrolment",
    );
    let stored = get(store, case, &tenant, &who).await;
    case.eq(&stored.sealed_secret, &second.sealed_secret, "unchanged");
    case.eq(&stored.state, &MfaState::Active, "still active");
    case.eq(&stored.recovery_codes_remaining, &1, "codes unchanged");
    case.eq(
        &case.ok(
            store
                .use_recovery_code(&tenant, &who, &second_code, h.now_seconds())
                .await,
            "use",
        ),
        &true,
        "the active enrolment's code still works",
    );
}

async fn accepted_steps_only_increase(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(SUITE, "accepted_steps_only_increase");
    let tenant = h.tenant();
    let (who, enrolment) = active(store, case, h, &tenant, Vec::new()).await;
    let sealed_secret = &enrolment.sealed_secret;
    for (step, expected, what) in [
        (1000, false, "the confirming step again"),
        (999, false, "an earlier step"),
        (1001, true, "the next step"),
        (1001, false, "the same step twice"),
        (1005, true, "a later step"),
        (1003, false, "back in time"),
        (MAX_STEP, true, "the greatest step"),
        (MAX_STEP, false, "the greatest step twice"),
    ] {
        case.eq(
            &case.ok(
                store.accept_step(&tenant, &who, sealed_secret, step).await,
                "accept_step",
            ),
            &expected,
            what,
        );
    }
    case.eq(
        &get(store, case, &tenant, &who).await.last_step,
        &Some(MAX_STEP),
        "last step",
    );
    // Another sealed secret, a pending enrolment, no enrolment: nothing.
    let (other, other_enrolment) = active(store, case, h, &tenant, Vec::new()).await;
    case.eq(
        &case.ok(
            store
                .accept_step(&tenant, &other, sealed_secret, 2000)
                .await,
            "accept_step",
        ),
        &false,
        "another enrolment's sealed secret",
    );
    case.eq(
        &get(store, case, &tenant, &other).await.last_step,
        &Some(1000),
        "untouched",
    );
    let pending_account = account(case, h, "pending");
    let pending = new(case, h, &tenant, &pending_account, Vec::new());
    case.ok(store.begin(&pending).await, "begin");
    case.eq(
        &case.ok(
            store
                .accept_step(&tenant, &pending_account, &pending.sealed_secret, 5)
                .await,
            "accept_step",
        ),
        &false,
        "a pending enrolment accepts no step",
    );
    case.eq(
        &case.ok(
            store
                .accept_step(
                    &tenant,
                    &account(case, h, "nobody"),
                    &other_enrolment.sealed_secret,
                    5000,
                )
                .await,
            "accept_step",
        ),
        &false,
        "no enrolment",
    );
}

async fn recovery_codes_are_used_once(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(SUITE, "recovery_codes_are_used_once");
    let tenant = h.tenant();
    let codes: Vec<Vec<u8>> = (0..MAX_RECOVERY_CODES).map(|_| hash()).collect();
    let (who, _) = active(store, case, h, &tenant, codes.clone()).await;
    for (used, code) in codes.iter().enumerate() {
        case.eq(
            &case.ok(
                store
                    .use_recovery_code(&tenant, &who, code, h.now_seconds())
                    .await,
                "use",
            ),
            &true,
            "first use",
        );
        case.eq(
            &case.ok(
                store
                    .use_recovery_code(&tenant, &who, code, h.now_seconds())
                    .await,
                "use",
            ),
            &false,
            "second use",
        );
        case.eq(
            &get(store, case, &tenant, &who)
                .await
                .recovery_codes_remaining,
            &(MAX_RECOVERY_CODES - used - 1),
            "remaining",
        );
    }
    case.eq(
        &case.ok(
            store
                .use_recovery_code(&tenant, &who, &hash(), h.now_seconds())
                .await,
            "use",
        ),
        &false,
        "an unknown hash",
    );
    // A pending enrolment's codes do not work yet.
    let pending_account = account(case, h, "pending");
    let code = hash();
    let pending = new(case, h, &tenant, &pending_account, vec![code.clone()]);
    case.ok(store.begin(&pending).await, "begin");
    case.eq(
        &case.ok(
            store
                .use_recovery_code(&tenant, &pending_account, &code, h.now_seconds())
                .await,
            "use",
        ),
        &false,
        "pending",
    );
    case.eq(
        &get(store, case, &tenant, &pending_account)
            .await
            .recovery_codes_remaining,
        &1,
        "still unused",
    );
}

async fn delete_removes_the_enrolment_and_its_codes(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(SUITE, "delete_removes_the_enrolment_and_its_codes");
    let tenant = h.tenant();
    let code = hash();
    let (who, _) = active(store, case, h, &tenant, vec![code.clone()]).await;
    case.eq(
        &case.ok(store.delete(&tenant, &who).await, "delete"),
        &true,
        "deleted",
    );
    case.eq(
        &case.ok(store.get(&tenant, &who).await, "get"),
        &None,
        "gone",
    );
    case.eq(
        &case.ok(store.delete(&tenant, &who).await, "delete"),
        &false,
        "delete again",
    );
    // A new enrolment after a reset starts clean, and the old codes are
    // not among its codes.
    let fresh = new(case, h, &tenant, &who, vec![hash()]);
    case.ok(store.begin(&fresh).await, "begin after a reset");
    case.ok(
        store
            .confirm(&tenant, &who, &fresh.sealed_secret, 3, h.now_seconds())
            .await,
        "confirm",
    );
    case.eq(
        &case.ok(
            store
                .use_recovery_code(&tenant, &who, &code, h.now_seconds())
                .await,
            "use",
        ),
        &false,
        "the old code",
    );
    case.eq(
        &get(store, case, &tenant, &who).await.last_step,
        &Some(3),
        "the new enrolment's step",
    );
}

async fn tenant_isolation(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(SUITE, "tenant_isolation");
    let (tenant, other) = (h.tenant(), h.tenant());
    let code = hash();
    let (who, enrolment) = active(store, case, h, &tenant, vec![code.clone()]).await;
    let sealed_secret = &enrolment.sealed_secret;
    let now = h.now_seconds();
    case.eq(
        &case.ok(store.get(&other, &who).await, "get"),
        &None,
        "get from another tenant must be None",
    );
    case.eq(
        &case.ok(
            store.accept_step(&other, &who, sealed_secret, 5000).await,
            "accept_step",
        ),
        &false,
        "accept_step from another tenant",
    );
    case.eq(
        &case.ok(
            store.use_recovery_code(&other, &who, &code, now).await,
            "use",
        ),
        &false,
        "a recovery code from another tenant",
    );
    case.eq(
        &case.ok(store.delete(&other, &who).await, "delete"),
        &false,
        "delete from another tenant",
    );
    // The same account id in another tenant is another enrolment.
    let theirs = new(case, h, &other, &who, vec![code.clone()]);
    case.ok(store.begin(&theirs).await, "begin in the other tenant");
    case.eq(
        &case.ok(store.get(&other, &who).await, "get"),
        &Some(MfaEnrolment::pending(&theirs)),
        "the other tenant's own",
    );
    let mine = get(store, case, &tenant, &who).await;
    case.eq(&mine.sealed_secret, &enrolment.sealed_secret, "untouched");
    case.eq(&mine.last_step, &Some(1000), "untouched step");
    case.eq(&mine.recovery_codes_remaining, &1, "untouched codes");
    case.ok(store.delete(&other, &who).await, "delete theirs");
    case.check(
        case.ok(store.get(&tenant, &who).await, "get").is_some(),
        "deleting theirs leaves mine",
    );
}

async fn out_of_bounds_input_is_refused(store: &dyn MfaStore, h: &Harness) {
    let case = Case::new(SUITE, "out_of_bounds_input_is_refused");
    let tenant = h.tenant();
    let who = account(case, h, "alice");
    let valid = new(case, h, &tenant, &who, vec![hash()]);
    let mut empty_secret = valid.clone();
    empty_secret.sealed_secret = Vec::new();
    let mut huge_secret = valid.clone();
    huge_secret.sealed_secret = vec![1; docaiche_core::mfa::MAX_SEALED_SECRET_LEN + 1];
    let mut short_hash = valid.clone();
    short_hash.recovery_codes = vec![vec![1; 8]];
    let mut repeated = valid.clone();
    repeated.recovery_codes = vec![vec![2; 32], vec![2; 32]];
    let mut too_many = valid.clone();
    too_many.recovery_codes = (0..=MAX_RECOVERY_CODES).map(|_| hash()).collect();
    for (bad, what) in [
        (empty_secret, "an empty sealed secret"),
        (huge_secret, "an oversized sealed secret"),
        (short_hash, "a short hash"),
        (repeated, "a repeated hash"),
        (too_many, "too many codes"),
    ] {
        case.err(store.begin(&bad).await, ErrorCode::InvalidInput, what);
    }
    case.eq(
        &case.ok(store.get(&tenant, &who).await, "get"),
        &None,
        "nothing stored",
    );
    let (active_account, enrolment) = active(store, case, h, &tenant, vec![hash()]).await;
    case.err(
        store
            .accept_step(
                &tenant,
                &active_account,
                &enrolment.sealed_secret,
                MAX_STEP + 1,
            )
            .await,
        ErrorCode::InvalidInput,
        "a step past MAX_STEP",
    );
    case.err(
        store.accept_step(&tenant, &active_account, &[], 2000).await,
        ErrorCode::InvalidInput,
        "an empty sealed secret",
    );
    case.err(
        store
            .confirm(&tenant, &active_account, &[], 1, h.now_seconds())
            .await,
        ErrorCode::InvalidInput,
        "confirm with an empty sealed secret",
    );
    case.err(
        store
            .use_recovery_code(&tenant, &active_account, &[3; 8], h.now_seconds())
            .await,
        ErrorCode::InvalidInput,
        "a short hash",
    );
    case.eq(
        &get(store, case, &tenant, &active_account).await.last_step,
        &Some(1000),
        "nothing changed",
    );
}

async fn racing_accepts_of_one_step_succeed_once(store: &Arc<dyn MfaStore>, h: &Harness) {
    let case = Case::new(SUITE, "racing_accepts_of_one_step_succeed_once");
    let tenant = h.tenant();
    let (who, enrolment) = active(&**store, case, h, &tenant, Vec::new()).await;
    for step in [1001, 1002, 1003] {
        let results = concurrently(case, RACERS, |_| {
            let (store, tenant, who) = (store.clone(), tenant.clone(), who.clone());
            let sealed_secret = enrolment.sealed_secret.clone();
            async move { store.accept_step(&tenant, &who, &sealed_secret, step).await }
        })
        .await;
        let won = results
            .into_iter()
            .map(|r| case.ok(r, "accept_step"))
            .filter(|&accepted| accepted)
            .count();
        case.eq(&won, &1, "exactly one racer accepts the step");
    }
    case.eq(
        &get(&**store, case, &tenant, &who).await.last_step,
        &Some(1003),
        "last step",
    );
}

async fn racing_uses_of_one_recovery_code_succeed_once(store: &Arc<dyn MfaStore>, h: &Harness) {
    let case = Case::new(SUITE, "racing_uses_of_one_recovery_code_succeed_once");
    let tenant = h.tenant();
    let codes = vec![hash(), hash(), hash()];
    let (who, _) = active(&**store, case, h, &tenant, codes.clone()).await;
    for code in &codes {
        let results = concurrently(case, RACERS, |_| {
            let (store, tenant, who, code) =
                (store.clone(), tenant.clone(), who.clone(), code.clone());
            let at = h.now_seconds();
            async move { store.use_recovery_code(&tenant, &who, &code, at).await }
        })
        .await;
        let won = results
            .into_iter()
            .map(|r| case.ok(r, "use_recovery_code"))
            .filter(|&used| used)
            .count();
        case.eq(&won, &1, "exactly one racer uses the code");
    }
    case.eq(
        &get(&**store, case, &tenant, &who)
            .await
            .recovery_codes_remaining,
        &0,
        "all used",
    );
}

async fn racing_begins_leave_one_whole_enrolment(store: &Arc<dyn MfaStore>, h: &Harness) {
    let case = Case::new(SUITE, "racing_begins_leave_one_whole_enrolment");
    let tenant = h.tenant();
    let who = account(case, h, "alice");
    // Racer i brings i + 1 codes, so the survivor's count names it.
    let enrolments: Vec<NewMfaEnrolment> = (0..RACERS)
        .map(|i| new(case, h, &tenant, &who, (0..=i).map(|_| hash()).collect()))
        .collect();
    let results = concurrently(case, RACERS, |i| {
        let (store, enrolment) = (store.clone(), enrolments[i].clone());
        async move { store.begin(&enrolment).await }
    })
    .await;
    for result in results {
        case.ok(result, "begin");
    }
    let stored = get(&**store, case, &tenant, &who).await;
    let Some(winner) = enrolments
        .iter()
        .find(|e| e.sealed_secret == stored.sealed_secret)
    else {
        case.fail("the stored enrolment is none of the racers'")
    };
    case.eq(
        &stored.recovery_codes_remaining,
        &winner.recovery_codes.len(),
        "the survivor's own codes, no others",
    );
}
