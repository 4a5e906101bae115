//! The [`CustomRoleStore`] suite.

use std::sync::Arc;

use docaiche_core::custom_role::{CustomRole, CustomRoleStore, MAX_CUSTOM_ROLES};
use docaiche_core::{ErrorCode, Grant, Permission, TenantId};
use time::Duration;

use super::{Case, Harness, concurrently};

const SUITE: &str = "CustomRoleStore";

fn role(h: &Harness, case: Case, tenant: &TenantId, name: &str) -> CustomRole {
    case.ok(
        CustomRole::new(
            tenant.clone(),
            name,
            [Permission::DOCUMENTS_READ, Permission::JOBS_READ],
            h.now_seconds(),
        ),
        "role",
    )
    .with_description(Some("Reads 'documents'; -- and jobs %_".into()))
}

/// Run the whole [`CustomRoleStore`] contract against `store`.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_custom_role_store(store: Arc<dyn CustomRoleStore>, harness: &Harness) {
    put_then_read_back(&*store, harness).await;
    replace_keeps_the_creation_time(&*store, harness).await;
    hostile_names_match_nothing(&*store, harness).await;
    invalid_roles_are_refused(&*store, harness).await;
    tenant_isolation(&*store, harness).await;
    list_is_ordered_by_name(&*store, harness).await;
    the_bound_holds_when_creations_race(&store, harness).await;
}

async fn put_then_read_back(store: &dyn CustomRoleStore, h: &Harness) {
    let case = Case::new(SUITE, "put_then_read_back");
    let tenant = h.tenant();
    let editor = role(h, case, &tenant, "editor");
    case.eq(&case.ok(store.put(&editor).await, "put"), &true, "created");
    case.eq(
        &case.ok(store.get(&tenant, "editor").await, "get"),
        &Some(editor.clone()),
        "get",
    );
    case.eq(
        &case.ok(store.list(&tenant).await, "list"),
        &vec![editor.clone()],
        "list",
    );
    case.eq(
        &case.ok(store.get(&tenant, "nobody").await, "get"),
        &None,
        "unknown name",
    );
    case.eq(
        &case.ok(store.delete(&tenant, "editor").await, "delete"),
        &true,
        "delete",
    );
    case.eq(
        &case.ok(store.delete(&tenant, "editor").await, "delete"),
        &false,
        "delete again",
    );
    case.eq(
        &case.ok(store.get(&tenant, "editor").await, "get"),
        &None,
        "gone",
    );
    let empty = case.ok(
        CustomRole::new(tenant.clone(), "empty", [], h.now_seconds()),
        "role",
    );
    case.ok(store.put(&empty).await, "a role without permissions");
    case.eq(
        &case.ok(store.get(&tenant, "empty").await, "get"),
        &Some(empty),
        "empty role",
    );
}

async fn replace_keeps_the_creation_time(store: &dyn CustomRoleStore, h: &Harness) {
    let case = Case::new(SUITE, "replace_keeps_the_creation_time");
    let tenant = h.tenant();
    let first = role(h, case, &tenant, "auditor");
    case.ok(store.put(&first).await, "put");
    let later = h.now_seconds() + Duration::seconds(60);
    let mut second = case
        .ok(
            CustomRole::new(tenant.clone(), "auditor", [Permission::AUDIT_READ], later),
            "role",
        )
        .with_description(None);
    second.created_at = later;
    case.eq(
        &case.ok(store.put(&second).await, "put"),
        &false,
        "a replacement is not a creation",
    );
    case.ok(store.put(&second).await, "put is idempotent");
    let stored = case.ok(store.get(&tenant, "auditor").await, "get");
    let mut expected = second.clone();
    expected.created_at = first.created_at;
    case.eq(
        &stored,
        &Some(expected),
        "new permissions, old creation time",
    );
}

async fn hostile_names_match_nothing(store: &dyn CustomRoleStore, h: &Harness) {
    let case = Case::new(SUITE, "hostile_names_match_nothing");
    let tenant = h.tenant();
    case.ok(store.put(&role(h, case, &tenant, "editor")).await, "put");
    let mut probes: Vec<String> = h.hostile_strings();
    probes.extend(
        [
            "%",
            "edit%",
            "edit_r",
            "EDITOR",
            "editor ",
            "' OR 1=1 --",
            "editor\0",
        ]
        .map(str::to_owned),
    );
    for probe in &probes {
        case.eq(
            &case.ok(store.get(&tenant, probe).await, "get"),
            &None,
            &format!("get {probe:?}"),
        );
        case.eq(
            &case.ok(store.delete(&tenant, probe).await, "delete"),
            &false,
            &format!("delete {probe:?}"),
        );
    }
    case.eq(
        &case.ok(store.list(&tenant).await, "list").len(),
        &1,
        "the role survives every probe",
    );
}

async fn invalid_roles_are_refused(store: &dyn CustomRoleStore, h: &Harness) {
    let case = Case::new(SUITE, "invalid_roles_are_refused");
    let tenant = h.tenant();
    let valid = role(h, case, &tenant, "valid");
    let mut bad_name = valid.clone();
    bad_name.name = "'; DROP TABLE custom_roles; --".into();
    let mut wildcard = valid.clone();
    wildcard.name = "wild".into();
    wildcard.permissions = [case.ok(Grant::parse("documents:*"), "grant")]
        .into_iter()
        .collect();
    let mut everything = valid.clone();
    everything.name = "everything".into();
    everything.permissions = [Grant::Everything].into_iter().collect();
    let mut cross = valid.clone();
    cross.name = "cross".into();
    cross.permissions = [Permission::TENANTS_CROSS].into_iter().collect();
    let mut described = valid.clone();
    described.name = "described".into();
    described.description = Some("nul \0 inside".into());
    for (bad, what) in [
        (bad_name, "an invalid name"),
        (wildcard, "a wildcard"),
        (everything, "*:*"),
        (cross, "tenants:cross"),
        (described, "a control character in the description"),
    ] {
        case.err(store.put(&bad).await, ErrorCode::InvalidInput, what);
    }
    case.eq(
        &case.ok(store.list(&tenant).await, "list"),
        &Vec::new(),
        "nothing stored",
    );
}

async fn tenant_isolation(store: &dyn CustomRoleStore, h: &Harness) {
    let case = Case::new(SUITE, "tenant_isolation");
    let (tenant, other) = (h.tenant(), h.tenant());
    let mine = role(h, case, &tenant, "editor");
    case.ok(store.put(&mine).await, "put");
    case.eq(
        &case.ok(store.get(&other, "editor").await, "get"),
        &None,
        "get from another tenant must be None",
    );
    case.eq(
        &case.ok(store.list(&other).await, "list"),
        &Vec::new(),
        "another tenant's list",
    );
    case.eq(
        &case.ok(store.delete(&other, "editor").await, "delete"),
        &false,
        "delete from another tenant",
    );
    // The same name in another tenant is another role.
    let theirs = case.ok(
        CustomRole::new(
            other.clone(),
            "editor",
            [Permission::AUDIT_READ],
            h.now_seconds(),
        ),
        "role",
    );
    case.eq(&case.ok(store.put(&theirs).await, "put"), &true, "created");
    case.eq(
        &case.ok(store.get(&tenant, "editor").await, "get"),
        &Some(mine),
        "untouched by the other tenant's role",
    );
}

async fn list_is_ordered_by_name(store: &dyn CustomRoleStore, h: &Harness) {
    let case = Case::new(SUITE, "list_is_ordered_by_name");
    let tenant = h.tenant();
    let names = ["zeta", "a-b", "a_b", "alpha", "a1", "m"];
    for name in names {
        case.ok(store.put(&role(h, case, &tenant, name)).await, "put");
    }
    let listed: Vec<String> = case
        .ok(store.list(&tenant).await, "list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    let mut expected: Vec<String> = names.map(str::to_owned).to_vec();
    expected.sort_unstable();
    case.eq(&listed, &expected, "bytewise by name");
}

async fn the_bound_holds_when_creations_race(store: &Arc<dyn CustomRoleStore>, h: &Harness) {
    let case = Case::new(SUITE, "the_bound_holds_when_creations_race");
    let tenant = h.tenant();
    for i in 0..MAX_CUSTOM_ROLES - 4 {
        case.ok(
            store
                .put(&role(h, case, &tenant, &format!("r{i:03}")))
                .await,
            "fill",
        );
    }
    let results = concurrently(case, 12, |i| {
        let store = store.clone();
        let r = role(h, case, &tenant, &format!("racer{i:02}"));
        async move { store.put(&r).await }
    })
    .await;
    let created = results.iter().filter(|r| matches!(r, Ok(true))).count();
    let refused = results
        .iter()
        .filter(|r| r.as_ref().is_err_and(|e| e.code() == ErrorCode::Conflict))
        .count();
    case.check(
        created == 4 && refused == 8,
        format_args!("expected 4 created and 8 Conflict, got {created} and {refused}"),
    );
    case.eq(
        &case.ok(store.list(&tenant).await, "list").len(),
        &MAX_CUSTOM_ROLES,
        "exactly the bound",
    );
    // Replacing an existing role at the bound is still allowed.
    case.eq(
        &case.ok(store.put(&role(h, case, &tenant, "r000")).await, "replace"),
        &false,
        "a replacement at the bound",
    );
}
