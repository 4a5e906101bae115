//! The whole system from the crates' public APIs: an axum document API
//! that takes PDFs, extracts their text, keeps them encrypted per tenant and
//! writes every change to a tamper-evident audit trail. The product, with
//! configuration, logins, jobs and metrics, is `cargo run -p docaiche-server`.
//!
//! ```text
//! cargo run --example server              # prints an API key, serves 127.0.0.1:8080
//! KEY=dcx_…                               # the key it printed
//! curl -i 127.0.0.1:8080/health/ready                     # 200 application/health+json
//! curl -i 127.0.0.1:8080/v1/whoami                        # 401 problem+json
//! curl -i -H "X-API-Key: $KEY" 127.0.0.1:8080/v1/whoami   # 200: tenant acme, principal admin
//! curl -i -H "X-API-Key: $KEY" -H "Content-Type: application/pdf" \
//!      --data-binary @letter.pdf 127.0.0.1:8080/v1/documents    # 201, Location: /v1/documents/ID
//! curl -i -H "X-API-Key: $KEY" 127.0.0.1:8080/v1/documents/ID  # 200: metadata and text
//! curl -i -H "X-API-Key: $KEY" --data-binary 'no pdf' 127.0.0.1:8080/v1/documents  # 415
//! ```
//!
//! Another address: `cargo run --example server -- 127.0.0.1:9000` (or
//! `DOCAICHE_EXAMPLE_ADDR`). Each start makes new key material and a fresh
//! directory under the system's temporary one (printed on stderr) holding
//! the SQLite database and `audit.jsonl`.
//!
//! A request meets, outermost first: the secure stack (`docaiche-http`),
//! authentication (`docaiche-auth`), the rate limit (`docaiche-ratelimit`),
//! the route's permission, then its handler; [`app`] wires them in that
//! order and the handlers follow.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CONTENT_TYPE, LOCATION};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use docaiche::auth::api_key::{ApiKeyService, NewApiKey, Peppers};
use docaiche::auth::layer::{AuthLayer, Authenticated, CredentialRouter, RequirePermissionLayer};
use docaiche::compliance::audit::{FileSinkConfig, JsonlFileSink};
use docaiche::core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche::core::document::{DocumentText, NewDocument};
use docaiche::core::extract::{ExtractInput, ExtractOptions};
use docaiche::core::health::{HEALTH_JSON, HealthRegistry};
use docaiche::core::{SecretBytes, SystemClock};
use docaiche::extract::{Limits, PdfExtractor};
use docaiche::ratelimit::{layer::RateLimitLayer, local::LocalRateLimiter};
use docaiche::store::sqlite::{SqliteConfig, SqliteStore};
use docaiche::store::{encryption::EncryptedDocumentStore, key_wrapper::LocalKeyWrapper};
use docaiche::{AuditSink, AuthMethod, DocumentId, DocumentStore, Error, Extractor, Permission};
use docaiche::{Principal, PrincipalId, RequestContext, TenantId};
use docaiche_http::{SecurityPolicy, cors::CorsPolicy, rejection::Path, secure_stack};
use serde_json::{Value, json};
use tower::ServiceBuilder;

/// Requests a minute per API key (also the burst).
const REQUESTS_PER_MINUTE: u32 = 30;

/// What the handlers share, opened once at start.
#[derive(Debug, Clone)]
struct System {
    keys: Arc<ApiKeyService>,
    documents: Arc<dyn DocumentStore>,
    extractor: Arc<PdfExtractor>,
    audit: Arc<dyn AuditSink>,
    health: HealthRegistry,
}

impl System {
    /// Open the database and the audit trail in `dir`, with key material
    /// made now: a pepper for API-key hashes and a key-encryption key.
    async fn start(dir: &std::path::Path) -> Result<Self, Error> {
        std::fs::create_dir_all(dir).map_err(|e| Error::misconfigured("dir", e.to_string()))?;
        let db = SqliteConfig::file(dir.join("docaiche.db").to_string_lossy());
        let sqlite = SqliteStore::connect(&db).await?;
        let trail = JsonlFileSink::open(FileSinkConfig::new(dir.join("audit.jsonl")))?;
        let audit: Arc<dyn AuditSink> = Arc::new(trail);
        let pepper = [uuid::Uuid::new_v4(), uuid::Uuid::new_v4()].map(uuid::Uuid::into_bytes);
        let peppers = Peppers::new(1, [(1, SecretBytes::new(pepper.concat()))])?;
        let keys = ApiKeyService::new(Arc::new(sqlite.api_keys()), peppers);
        // Envelope encryption: a data key per tenant and owner, wrapped by the KEK.
        let documents = EncryptedDocumentStore::new(
            Arc::new(sqlite.documents()),
            Arc::new(sqlite.data_keys()),
            Arc::new(LocalKeyWrapper::generate()),
        );
        let health = HealthRegistry::new(Duration::from_secs(2));
        Ok(Self {
            keys: Arc::new(keys.with_audit(Arc::clone(&audit))),
            documents: Arc::new(documents),
            extractor: Arc::new(PdfExtractor::new(Limits::default())),
            audit,
            health: health.with_check(Arc::new(sqlite.health_check())),
        })
    }

    /// A new API key of `tenant`'s `admin` that may read and upload
    /// documents (its creation goes on the audit trail).
    async fn issue_key(&self, tenant: &str) -> Result<String, Error> {
        let (tenant, id) = (TenantId::new(tenant)?, PrincipalId::new("admin")?);
        let scopes = || [Permission::DOCUMENTS_READ, Permission::DOCUMENTS_WRITE].into_iter();
        let admin = Principal::new(id, tenant.clone(), AuthMethod::Internal)
            .with_permissions(scopes().chain([Permission::KEYS_MANAGE]).collect());
        let request = NewApiKey::new(tenant, "example").with_scopes(scopes().collect());
        let created = self.keys.create(&admin, request).await?;
        Ok(created.key.expose_secret().clone())
    }
}

/// The request path, outermost layer first.
fn app(system: System) -> Result<Router, Error> {
    // 1. Security headers, request id, CORS, every error as problem+json,
    //    2 MiB bodies, 30 s deadline; no HTTPS enforcement on loopback.
    let origin = HeaderValue::from_static("http://localhost:3000");
    let policy = SecurityPolicy::new().with_cors(CorsPolicy::new().allow_origins([origin]));
    let limits = serde_json::from_value::<docaiche::ratelimit::policy::RateLimitConfig>(json!({
        "policies": { "default": { "limits": [
            { "key": "api_key", "limit": REQUESTS_PER_MINUTE, "period_secs": 60 } ] } } }))
    .map_err(|e| Error::misconfigured("rate_limit", e.to_string()))?;
    let limiter = Arc::new(LocalRateLimiter::new(Arc::new(SystemClock::new())));
    let credentials = CredentialRouter::new().api_keys(system.keys.clone());
    // 4. The route's permission, else 403.
    let read = RequirePermissionLayer::new(Permission::DOCUMENTS_READ);
    let write = RequirePermissionLayer::new(Permission::DOCUMENTS_WRITE);
    let api = Router::new()
        .route("/v1/whoami", get(whoami))
        .route("/v1/documents", post(upload).route_layer(write))
        .route("/v1/documents/{id}", get(document).route_layer(read))
        .layer(
            ServiceBuilder::new()
                // 2. An API key becomes a `Principal` in the request extensions, else 401.
                .layer(AuthLayer::new(Arc::new(credentials)))
                // 3. The key's budget, else 429 with `Retry-After`.
                .layer(RateLimitLayer::new(limiter, limits.build()?, "default")?),
        );
    Ok(Router::new()
        .route("/health/ready", get(ready))
        .merge(api)
        .with_state(system)
        .layer(secure_stack(&policy)))
}

/// `GET /health/ready`, public: 200 while the database answers, else 503.
async fn ready(State(system): State<System>) -> impl IntoResponse {
    let report = system.health.check_all().await;
    let status = match report.status.is_ready() {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = report.to_health_json().to_string();
    (status, [(CONTENT_TYPE, HEALTH_JSON)], body)
}

/// `GET /v1/whoami`: the principal the authentication layer found.
async fn whoami(Authenticated(caller): Authenticated) -> Json<Principal> {
    Json(caller)
}

/// `POST /v1/documents`: a raw PDF body, checked, extracted, stored
/// encrypted in the caller's tenant, and audited.
async fn upload(
    State(system): State<System>,
    Authenticated(caller): Authenticated,
    Extension(context): Extension<RequestContext>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse, Error> {
    let (extractor, store) = (&system.extractor, &system.documents);
    let declared = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok());
    // Intake before any parser: size, `%PDF-` magic, declared type, truncation, nesting.
    let intake = docaiche::extract::validate(&body, declared, None, extractor.limits())?;
    // Extraction under limits (objects, bytes, pages, time), off the async threads.
    let mut input = ExtractInput::new(body.clone());
    input.declared_content_type = declared.map(str::to_owned);
    let extraction = extractor.extract(input, &ExtractOptions::default()).await?;
    let new = NewDocument::new(caller.id.clone(), "application/pdf", intake.sha256, body);
    let mut meta = store.put(&caller.tenant, new).await?;
    // The risk flags (JavaScript, launch actions, …) are stored with the text.
    let text = DocumentText::new(extraction.pages).with_risks(extraction.risks);
    store.put_text(&caller.tenant, &meta.id, &text).await?;
    meta.has_text = true;
    meta.risks = text.risks;
    // On the tenant's hash chain, on disk before the 201.
    let now = time::OffsetDateTime::now_utc();
    let event = AuditEvent::new("document.create", AuditOutcome::Success, now, &context)
        .by(caller.tenant, Some(caller.id))
        .on(AuditResource::new("document", meta.id.to_string()));
    system.audit.record(&event).await?;
    let location = [(LOCATION, format!("/v1/documents/{}", meta.id))];
    let body = json!({ "document": meta, "info": extraction.info });
    Ok((StatusCode::CREATED, location, Json(body)))
}

/// `GET /v1/documents/{id}`: metadata and text. Another tenant's document
/// is a 404, exactly like one that does not exist.
async fn document(
    State(system): State<System>,
    Authenticated(caller): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, Error> {
    let (id, store) = (id.parse::<DocumentId>()?, &system.documents);
    let meta = store.head(&caller.tenant, &id).await?;
    let meta = meta.ok_or(Error::not_found("document"))?;
    let text = store.get_text(&caller.tenant, &id).await?;
    let pages = text.unwrap_or_default().pages;
    Ok(Json(json!({ "document": meta, "pages": pages })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Warnings and errors (a 500's cause) go to stderr, the key alone to stdout.
    let log = tracing_subscriber::fmt().with_writer(std::io::stderr);
    log.with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
        .init();
    let addr = std::env::var("DOCAICHE_EXAMPLE_ADDR").ok();
    let addr = std::env::args().nth(1).or(addr);
    let addr: SocketAddr = addr.as_deref().unwrap_or("127.0.0.1:8080").parse()?;
    let dir = std::env::temp_dir().join(format!("docaiche-example-{}", uuid::Uuid::new_v4()));
    let system = System::start(&dir).await?;
    println!("{}", system.issue_key("acme").await?);
    eprintln!("listening on http://{addr}, files in {}", dir.display());
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let app = app(system)?.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;

    /// The app over a fresh directory, and a key of tenant `acme`.
    async fn started() -> (Router, System, String) {
        let dir = std::env::temp_dir().join(format!("docaiche-example-{}", uuid::Uuid::new_v4()));
        let system = System::start(&dir).await.expect("system");
        let key = system.issue_key("acme").await.expect("key");
        (app(system.clone()).expect("app"), system, key)
    }

    /// Status, headers and JSON body (`Null` when not JSON).
    async fn send(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let response = app.clone().oneshot(request).await.expect("infallible");
        let (head, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or_default();
        (head.status, head.headers, json)
    }

    fn with_key(method: &str, path: &str, key: &str, body: Vec<u8>) -> Request<Body> {
        let request = Request::builder().method(method).uri(path);
        let request = request.header("x-api-key", key).body(Body::from(body));
        request.expect("a request")
    }

    fn is_problem(headers: &HeaderMap) -> bool {
        headers[CONTENT_TYPE] == "application/problem+json"
    }

    #[tokio::test]
    async fn answers_401_without_a_key_and_whoami_with_the_printed_one() {
        let (app, _, key) = started().await;
        let anonymous = Request::get("/v1/whoami").body(Body::empty());
        let (status, headers, _) = send(&app, anonymous.expect("a request")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(is_problem(&headers));
        let (status, _, body) = send(&app, with_key("GET", "/v1/whoami", &key, vec![])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["tenant"], "acme");
        assert_eq!(body["id"], "admin");
    }

    #[tokio::test]
    async fn every_answer_has_security_headers_and_a_fresh_id_for_a_forged_one() {
        let (app, _, key) = started().await;
        for path in ["/health/ready", "/v1/whoami", "/nowhere"] {
            let mut request = with_key("GET", path, &key, vec![]);
            let forged = HeaderValue::from_static("a\tforged log line");
            request.headers_mut().insert("x-request-id", forged);
            let (_, headers, _) = send(&app, request).await;
            assert_eq!(headers["x-content-type-options"], "nosniff");
            assert_eq!(headers["x-request-id"].len(), 36, "a fresh UUID");
        }
    }

    #[tokio::test]
    async fn stores_a_real_pdf_and_gives_its_text_back_to_its_tenant_only() {
        let (app, system, key) = started().await;
        let corpus = format!("{}/../shared/corpus/pdf", env!("CARGO_MANIFEST_DIR"));
        let pdf = std::fs::read(format!("{corpus}/groff__letter.pdf")).expect("the corpus");
        let mut request = with_key("POST", "/v1/documents", &key, pdf);
        let pdf_type = HeaderValue::from_static("application/pdf");
        request.headers_mut().insert(CONTENT_TYPE, pdf_type);
        let (status, headers, body) = send(&app, request).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["info"]["page_count"], 1);
        let location = headers[LOCATION].to_str().expect("ascii");
        let (status, _, body) = send(&app, with_key("GET", location, &key, vec![])).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["document"]["tenant"], "acme");
        let text = body["pages"][0].as_str().unwrap_or_default();
        assert!(text.contains("Minidoux Corporation"), "{text}");
        let other = system.issue_key("globex").await.expect("key");
        let (status, headers, _) = send(&app, with_key("GET", location, &other, vec![])).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(is_problem(&headers));
        let (status, _, _) = send(&app, with_key("GET", "/v1/documents/x", &key, vec![])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn refuses_what_is_not_a_pdf_with_a_problem() {
        let (app, _, key) = started().await;
        let (media_type, unprocessable) = (415, 422);
        for (body, expected) in [
            (b"PK\x03\x04 a zip renamed .pdf".to_vec(), media_type),
            ((0..=255).collect(), media_type),
            (b"%PDF-1.4 and no end".to_vec(), unprocessable),
            (vec![], unprocessable),
        ] {
            let request = with_key("POST", "/v1/documents", &key, body);
            let (status, headers, _) = send(&app, request).await;
            assert_eq!(status.as_u16(), expected);
            assert!(is_problem(&headers));
        }
    }

    #[tokio::test]
    async fn answers_429_with_retry_after_past_the_keys_budget() {
        let (app, _, key) = started().await;
        let whoami = || with_key("GET", "/v1/whoami", &key, vec![]);
        for _ in 0..REQUESTS_PER_MINUTE {
            assert_eq!(send(&app, whoami()).await.0, StatusCode::OK);
        }
        let (status, headers, _) = send(&app, whoami()).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(is_problem(&headers) && headers.contains_key("retry-after"));
    }
}
