//! The `client` span every adapter opens around one call to its backend
//! (see "Tracing" in the crate docs).

use std::future::Future;

use docaiche_core::Result;
use tracing::{Instrument as _, Span};

/// `$call` (a future of a `Result`) in a `client` span named
/// `"$operation $collection"` on `$system`, with a failure's stable error
/// code recorded; `.await` it.
///
/// The names are literals, so the span costs no allocation when enabled,
/// and a level check and a cached-interest load when no subscriber wants
/// it.
macro_rules! traced {
    ($system:literal, $collection:literal, $operation:literal, $call:expr) => {
        $crate::trace::in_span(
            ::tracing::info_span!(
                "backend",
                otel.name = concat!($operation, " ", $collection),
                otel.kind = "client",
                otel.status_code = ::tracing::field::Empty,
                db.system.name = $system,
                db.collection.name = $collection,
                db.operation.name = $operation,
                error.r#type = ::tracing::field::Empty,
            ),
            $call,
        )
    };
}
pub(crate) use traced;

/// Await `call` in `span`; a failure sets the span's status to error and
/// `error.type` to the error's stable code.
pub(crate) async fn in_span<T>(span: Span, call: impl Future<Output = Result<T>>) -> Result<T> {
    if span.is_disabled() {
        return call.await;
    }
    let result = call.instrument(span.clone()).await;
    if let Err(e) = &result {
        span.record("otel.status_code", "ERROR");
        span.record("error.type", e.code().as_str());
    }
    result
}

#[cfg(test)]
#[path = "../../tests/common/spans.rs"]
mod spans;

#[cfg(test)]
mod tests {
    use docaiche_core::api_key::ApiKeyLookup;
    use docaiche_core::revocation::IssuedToken;
    use docaiche_core::{
        ApiKeyStore, KeyWrapper, PrincipalId, SecretBytes, TenantId, TokenRevocationStore,
    };
    use time::OffsetDateTime;
    use tracing::Instrument as _;

    use crate::{LocalKeyWrapper, MemoryApiKeyStore, MemoryRevocationStore};

    use super::spans;

    #[tokio::test]
    async fn a_memory_store_call_is_a_client_span_under_the_callers_span() {
        let (spans, _guard) = spans::capture();
        let store = MemoryApiKeyStore::new();
        let lookup = ApiKeyLookup::new("abc12345").expect("lookup");
        let request = tracing::info_span!("request");
        let found = store
            .find_by_lookup(&lookup)
            .instrument(request.clone())
            .await
            .expect("find");
        assert!(found.is_none());
        let span = spans.one("find_by_lookup api_keys");
        assert_eq!(span.name, "backend");
        assert_eq!(span.field("otel.kind"), Some("client"));
        assert_eq!(span.field("db.system.name"), Some("memory"));
        assert_eq!(span.field("db.collection.name"), Some("api_keys"));
        assert_eq!(span.field("db.operation.name"), Some("find_by_lookup"));
        assert_eq!(span.field("error.type"), None, "no error on success");
        let parent = span.parent.expect("a parent");
        assert_eq!(spans.all()[parent].name, "request");
    }

    #[tokio::test]
    async fn a_token_check_is_one_span_and_a_refusal_records_its_error_code() {
        let (spans, _guard) = spans::capture();
        let store = MemoryRevocationStore::new();
        let tenant = TenantId::new("acme").expect("tenant");
        let subject = PrincipalId::new("alice").expect("subject");
        let token = IssuedToken::new("jti-1", &tenant, &subject, OffsetDateTime::now_utc());
        assert!(!store.is_token_revoked(&token).await.expect("check"));
        let check = spans.one("is_token_revoked revoked_tokens");
        assert_eq!(check.field("db.system.name"), Some("memory"));
        assert_eq!(spans.all().len(), 1, "no inner spans: {:#?}", spans.all());

        assert!(store.is_revoked("bad\ttoken").await.is_err());
        let refused = spans.one("is_revoked revoked_tokens");
        assert_eq!(refused.field("otel.status_code"), Some("ERROR"));
        assert_eq!(refused.field("error.type"), Some("invalid-input"));
    }

    #[tokio::test]
    async fn the_local_key_wrapper_calls_run_in_client_spans() {
        let (spans, _guard) = spans::capture();
        let wrapper =
            LocalKeyWrapper::from_key_bytes(1, SecretBytes::new(vec![7; 32])).expect("key");
        let key = wrapper.generate_data_key(b"ctx").await.expect("wrap");
        wrapper
            .unwrap_key(&key.wrapped, b"ctx")
            .await
            .expect("unwrap");
        assert!(wrapper.unwrap_key(&key.wrapped, b"other").await.is_err());
        let generated = spans.one("generate_data_key transit");
        assert_eq!(generated.field("db.system.name"), Some("local"));
        let unwraps = spans.named("unwrap_key transit");
        assert_eq!(unwraps.len(), 2);
        assert_eq!(unwraps[0].field("error.type"), None);
        assert!(unwraps[1].field("error.type").is_some());
    }

    #[tokio::test]
    async fn without_a_subscriber_the_calls_work_unchanged() {
        let store = MemoryRevocationStore::new();
        store
            .revoke(
                "jti-2",
                OffsetDateTime::now_utc() + time::Duration::hours(1),
            )
            .await
            .expect("revoke");
        assert!(store.is_revoked("jti-2").await.expect("check"));
    }
}
