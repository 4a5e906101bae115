//! The [`SecretProvider`] suite.

use std::sync::Arc;

use docaiche_core::ErrorCode;
use docaiche_core::secret_provider::SecretProvider;

use super::{Case, Harness, concurrently};

const SUITE: &str = "SecretProvider";

/// Run the [`SecretProvider`] contract against `provider`, which must hold
/// exactly the secrets listed in `known` (name, value) among others: seed
/// them before calling (write the files, set the Vault keys, …). Values of
/// at least 8 bytes let the suite check they never appear in `Debug` or
/// `describe` output.
///
/// # Panics
/// On the first broken promise, naming the case.
pub async fn run_secret_provider(
    provider: Arc<dyn SecretProvider>,
    known: &[(&str, &[u8])],
    harness: &Harness,
) {
    known_secrets_are_returned_exactly(&*provider, known).await;
    missing_secrets_are_none(&*provider, harness).await;
    invalid_names_are_refused(&*provider).await;
    values_never_print(&*provider, known).await;
    concurrent_reads(&provider, known).await;
}

async fn known_secrets_are_returned_exactly(
    provider: &dyn SecretProvider,
    known: &[(&str, &[u8])],
) {
    let case = Case::new(SUITE, "known_secrets_are_returned_exactly");
    for (name, value) in known {
        let got = case.ok(provider.get(name).await, name);
        let got =
            got.unwrap_or_else(|| case.fail(format_args!("{name}: a seeded secret returned None")));
        case.check(
            got.value.expose_secret().as_slice() == *value,
            format_args!("{name}: value differs from the seeded one"),
        );
        let again = case.ok(provider.get(name).await, name);
        case.check(
            again.is_some(),
            format_args!("{name}: a second read returned None"),
        );
    }
}

async fn missing_secrets_are_none(provider: &dyn SecretProvider, h: &Harness) {
    let case = Case::new(SUITE, "missing_secrets_are_none");
    for name in [
        h.unique("conformance/missing"),
        format!("{}/deeper/still", h.unique("missing")),
    ] {
        case.check(
            case.ok(provider.get(&name).await, &name).is_none(),
            format_args!("{name}: an absent secret must be Ok(None)"),
        );
    }
}

async fn invalid_names_are_refused(provider: &dyn SecretProvider) {
    let case = Case::new(SUITE, "invalid_names_are_refused");
    let too_long = "a".repeat(129);
    for bad in [
        "",
        "../etc/passwd",
        "jwt/../../etc/passwd",
        "/etc/passwd",
        "./jwt",
        "jwt/",
        "jwt//key",
        "..",
        "JWT/Signing-Key",
        "jwt key",
        "jwt\0key",
        "jwt\\..\\key",
        "%2e%2e/passwd",
        "jwt:key",
        "ünï",
        too_long.as_str(),
    ] {
        case.err(
            provider.get(bad).await.map(|v| v.map(|_| ())),
            ErrorCode::InvalidInput,
            &format!("get({bad:?})"),
        );
    }
}

async fn values_never_print(provider: &dyn SecretProvider, known: &[(&str, &[u8])]) {
    let case = Case::new(SUITE, "values_never_print");
    let printed = [
        format!("{provider:?}"),
        format!("{provider:#?}"),
        provider.describe(),
    ];
    for (name, value) in known {
        if value.len() < 8 {
            continue;
        }
        let text = String::from_utf8_lossy(value);
        for out in &printed {
            case.check(
                !out.contains(text.as_ref()),
                format_args!("{name}: its value appears in Debug or describe output"),
            );
        }
        let got = case.ok(provider.get(name).await, name);
        case.check(
            !format!("{got:?}").contains(text.as_ref()),
            format_args!("{name}: its value appears in the Debug output of the returned secret"),
        );
    }
}

async fn concurrent_reads(provider: &Arc<dyn SecretProvider>, known: &[(&str, &[u8])]) {
    let case = Case::new(SUITE, "concurrent_reads");
    let Some((name, value)) = known.first() else {
        return;
    };
    let results = concurrently(case, 16, |_| {
        let (provider, name) = (provider.clone(), (*name).to_owned());
        async move { provider.get(&name).await }
    })
    .await;
    for r in results {
        let got = case.ok(r, "concurrent get");
        case.check(
            got.is_some_and(|v| v.value.expose_secret().as_slice() == *value),
            "concurrent reads return the seeded value",
        );
    }
}
