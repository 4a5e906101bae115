//! The spans every store adapter opens around its calls, checked the same
//! way for each backend (mount with `#[path = "support/store_spans.rs"]`
//! beside `#[path = "../../tests/common/spans.rs"] mod spans;`).

use bytes::Bytes;
use docaiche_core::api_key::ApiKeyLookup;
use docaiche_core::document::NewDocument;
use docaiche_core::revocation::IssuedToken;
use docaiche_core::{
    ApiKeyStore, DocumentStore, ErrorCode, PrincipalId, TenantId, TokenRevocationStore,
};
use docaiche_store::encryption::DataKeyStore;
use time::OffsetDateTime;
use tracing::Instrument as _;

use super::spans;

/// Calls on each store, under a `request` span: every call is one `client`
/// span on `system`, child of the request, named `"<operation>
/// <collection>"`; a refused call carries its error code.
pub(crate) async fn assert_store_spans(
    system: &str,
    tenant: &str,
    documents: &dyn DocumentStore,
    api_keys: &dyn ApiKeyStore,
    revocations: &dyn TokenRevocationStore,
    data_keys: &dyn DataKeyStore,
) {
    let (spans, _guard) = spans::capture();
    let tenant = TenantId::new(tenant).expect("tenant");
    let owner = PrincipalId::new("alice").expect("owner");
    let request = tracing::info_span!("request");
    async {
        let document = NewDocument::new(
            owner.clone(),
            "application/pdf",
            "0".repeat(64),
            Bytes::from_static(b"%PDF-1.7"),
        );
        let again = document.clone();
        let meta = documents.put(&tenant, document).await.expect("put");
        let refused = documents.put(&tenant, again).await.expect_err("same id");
        assert_eq!(refused.code(), ErrorCode::Conflict);
        documents.get(&tenant, &meta.id).await.expect("get");
        let lookup = ApiKeyLookup::new("spans0001").expect("lookup");
        api_keys.find_by_lookup(&lookup).await.expect("find");
        let token = IssuedToken::new("jti-spans", &tenant, &owner, OffsetDateTime::now_utc());
        revocations.is_token_revoked(&token).await.expect("check");
        data_keys.get(&tenant, &owner).await.expect("data key");
    }
    .instrument(request)
    .await;

    let all = spans.all();
    let request = all
        .iter()
        .position(|s| s.name == "request")
        .expect("the request span");
    for (name, collection, operation) in [
        ("get documents", "documents", "get"),
        ("find_by_lookup api_keys", "api_keys", "find_by_lookup"),
        (
            "is_token_revoked revoked_tokens",
            "revoked_tokens",
            "is_token_revoked",
        ),
        ("get data_keys", "data_keys", "get"),
    ] {
        let span = spans.one(name);
        assert_eq!(span.name, "backend", "{name}");
        assert_eq!(span.field("otel.kind"), Some("client"), "{name}");
        assert_eq!(span.field("db.system.name"), Some(system), "{name}");
        assert_eq!(span.field("db.collection.name"), Some(collection), "{name}");
        assert_eq!(span.field("db.operation.name"), Some(operation), "{name}");
        assert_eq!(span.field("error.type"), None, "{name}");
        assert_eq!(span.parent, Some(request), "{name} is the request's child");
    }
    let puts = spans.named("put documents");
    assert_eq!(puts.len(), 2, "{all:#?}");
    assert_eq!(puts[0].field("error.type"), None);
    assert_eq!(puts[1].field("otel.status_code"), Some("ERROR"));
    assert_eq!(puts[1].field("error.type"), Some("conflict"));
    assert!(
        spans.named("is_revoked revoked_tokens").is_empty()
            && spans
                .named("subject_revoked_through revoked_subjects")
                .is_empty(),
        "a token check is one span: {all:#?}"
    );
}
