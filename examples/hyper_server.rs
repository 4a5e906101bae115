//! The same layers in a server that is not axum: plain hyper 1 and a
//! `tower::ServiceBuilder`, proving "any tower-based server".
//!
//! ```text
//! cargo run --example hyper_server             # prints a key, serves 127.0.0.1:8092
//! curl -i 127.0.0.1:8092/                       # 401 problem+json
//! curl -i -H "X-API-Key: $KEY" 127.0.0.1:8092/  # 200 "hello acme/admin"
//! ```
//!
//! The layers only ask that the response body can be built from a
//! `String` (their problem answers); `Full<Bytes>` can.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use docaiche::auth::api_key::{ApiKeyService, NewApiKey, Peppers};
use docaiche::auth::layer::{AuthLayer, CredentialRouter, RequirePermissionLayer, principal_of};
use docaiche::core::SecretBytes;
use docaiche::{AuthMethod, Error, Permission, Principal, PrincipalId, TenantId};
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tower::{Service, ServiceBuilder, service_fn};

/// The application: greets whoever the layers let through.
async fn hello<B>(request: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    let who = principal_of(request.extensions())
        .map(|p| format!("{}/{}", p.tenant, p.id))
        .unwrap_or_default();
    Ok(Response::new(Full::from(format!("hello {who}\n"))))
}

/// The application behind authentication and a permission check.
fn service<B: Send + 'static>(
    keys: Arc<ApiKeyService>,
) -> impl Service<Request<B>, Response = Response<Full<Bytes>>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static {
    ServiceBuilder::new()
        .layer(AuthLayer::new(Arc::new(
            CredentialRouter::new().api_keys(keys),
        )))
        .layer(RequirePermissionLayer::new(Permission::DOCUMENTS_READ))
        .service(service_fn(hello::<B>))
}

/// An API key service with a random pepper, and one key for tenant `acme`.
async fn keys_and_one_key() -> Result<(Arc<ApiKeyService>, String), Error> {
    let pepper = [
        uuid::Uuid::new_v4().into_bytes(),
        uuid::Uuid::new_v4().into_bytes(),
    ]
    .concat();
    let peppers = Peppers::new(1, [(1, SecretBytes::new(pepper))])?;
    let keys = Arc::new(ApiKeyService::new(
        Arc::new(docaiche::store::memory::MemoryApiKeyStore::new()),
        peppers,
    ));
    let tenant = TenantId::new("acme")?;
    let admin = Principal::new(
        PrincipalId::new("admin")?,
        tenant.clone(),
        AuthMethod::Internal,
    )
    .with_permissions(
        [Permission::KEYS_MANAGE, Permission::DOCUMENTS_READ]
            .into_iter()
            .collect(),
    );
    let scopes = [Permission::DOCUMENTS_READ].into_iter().collect();
    let created = keys
        .create(&admin, NewApiKey::new(tenant, "demo").with_scopes(scopes))
        .await?;
    Ok((keys, created.key.expose_secret().clone()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (keys, key) = keys_and_one_key().await?;
    println!("{key}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8092").await?;
    loop {
        let (stream, peer) = listener.accept().await?;
        // The client address, for the failed-authentication tracker.
        let mut inner = service::<Incoming>(Arc::clone(&keys));
        let with_peer = service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert::<SocketAddr>(peer);
            inner.call(request)
        });
        tokio::spawn(async move {
            let io = TokioIo::new(stream);
            let service = TowerToHyperService::new(with_peer);
            if let Err(error) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                eprintln!("connection from {peer}: {error}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use http_body_util::{BodyExt as _, Empty};
    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn answers_401_without_a_key_and_greets_the_keys_principal() {
        let (keys, key) = keys_and_one_key().await.expect("keys");
        let app = service::<Empty<Bytes>>(keys);
        let anonymous = Request::get("/").body(Empty::new()).expect("request");
        let response = app.clone().oneshot(anonymous).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );

        let keyed = Request::get("/")
            .header("x-api-key", key)
            .body(Empty::new())
            .expect("request");
        let response = app.oneshot(keyed).await.expect("infallible");
        assert_eq!(response.status(), StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert_eq!(&body[..], b"hello acme/admin\n");
    }
}
