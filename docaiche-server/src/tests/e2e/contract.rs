//! The OpenAPI document served at `/openapi.json` and the server agree,
//! over the wire, on the cases an outside review found them to disagree
//! (issue 16, defect 5): empty and malformed cursors, key names, JSON
//! Schema integers written `50.0`, batch sizes. Each case is judged twice,
//! by the served document's schema and by the server's answer, and the two
//! verdicts must be the same. `scripts/schemathesis.sh` generalises this to
//! every operation.

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::{Server, client, config, send, start};

/// The served document.
async fn served_document(server: &Server) -> Value {
    let (status, _, body) = send(client().get(server.url("/openapi.json"))).await;
    assert_eq!(status, StatusCode::OK);
    serde_json::from_slice(&body).expect("document")
}

/// Whether `value` matches the `pattern` of `schema` (anchored as written).
fn matches(schema: &Value, value: &str) -> bool {
    let pattern = schema["pattern"].as_str().expect("a pattern");
    regex::Regex::new(pattern)
        .unwrap_or_else(|e| panic!("{pattern}: {e}"))
        .is_match(value)
}

/// The schema of query parameter `name` of `GET path`.
fn query_schema<'a>(document: &'a Value, path: &str, name: &str) -> &'a Value {
    document["paths"][path]["get"]["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .find(|p| p["name"] == name)
        .map(|p| &p["schema"])
        .unwrap_or_else(|| panic!("{path} has no {name}"))
}

#[tokio::test]
async fn the_document_and_the_server_agree_on_key_cursors() {
    let server = start(config(|_| {})).await;
    let document = served_document(&server).await;
    let schema = query_schema(&document, "/v1/keys", "after");
    let client = client();
    let id = "01a24ec0-018c-725f-81c9-cd26bf233e66";
    for cursor in [
        String::new(),
        "nope".to_owned(),
        id.to_owned(),
        id.to_uppercase(),
        id.replace('-', ""),
        format!("{{{id}}}"),
        format!("urn:uuid:{id}"),
        format!("{id}x"),
        id[1..].to_owned(),
    ] {
        let url = format!("/v1/keys?after={}&limit=50.0", urlencode(&cursor));
        let (status, _, body) = send(
            client
                .get(server.url(&url))
                .header("x-api-key", &server.key),
        )
        .await;
        let accepted = status == StatusCode::OK;
        assert!(
            accepted || status == StatusCode::BAD_REQUEST,
            "{cursor:?}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(matches(schema, &cursor), accepted, "cursor {cursor:?}");
    }
}

#[tokio::test]
async fn the_document_and_the_server_agree_on_key_names_and_integers() {
    let server = start(config(|_| {})).await;
    let document = served_document(&server).await;
    let name_schema = &document["components"]["schemas"]["CreateKey"]["properties"]["name"];
    let client = client();
    for name in [
        String::new(),
        "  ".to_owned(),
        "reader".to_owned(),
        " padded\t".to_owned(),
        "\u{85}next-line padded\u{3000}".to_owned(),
        "bell\u{7}".to_owned(),
        "c1\u{9a}control".to_owned(),
        "inner space ok".to_owned(),
        "x".repeat(100),
        "x".repeat(101),
        "é".repeat(100),
        format!(" {} ", "x".repeat(100)),
    ] {
        let (status, _, body) = send(
            client
                .post(server.url("/v1/keys"))
                .header("x-api-key", &server.key)
                .header("content-type", "application/json")
                .body(
                    json!({
                        "name": name,
                        "scopes": ["documents:read"],
                        // A JSON Schema integer written as a float.
                        "expires_in_secs": 3600.0,
                    })
                    .to_string(),
                ),
        )
        .await;
        let accepted = status == StatusCode::CREATED;
        assert!(
            accepted || status == StatusCode::BAD_REQUEST,
            "{name:?}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(matches(name_schema, &name), accepted, "name {name:?}");
    }
}

#[tokio::test]
async fn the_document_and_the_server_agree_on_batch_sizes() {
    let server = start(config(|c| c.server.body_limit_bytes = 64 * 1024)).await;
    let document = served_document(&server).await;
    let documents = &document["components"]["schemas"]["BatchRequest"]["properties"]["documents"];
    let min = documents["minItems"].as_u64().expect("minItems");
    let max = documents["maxItems"].as_u64().expect("maxItems");
    assert_eq!((min, max), (1, 16), "the default documents.max_batch");
    let client = client();
    for count in [0, 1, max, max + 1] {
        let items: Vec<Value> = (0..count)
            .map(|_| json!({ "content_base64": "" }))
            .collect();
        let (status, _, body) = send(
            client
                .post(server.url("/v1/documents/batch"))
                .header("x-api-key", &server.key)
                .header("content-type", "application/json")
                .body(json!({ "documents": items }).to_string()),
        )
        .await;
        let documented = (min..=max).contains(&count);
        let accepted = status == StatusCode::OK;
        assert!(
            accepted || status == StatusCode::BAD_REQUEST,
            "{count}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(documented, accepted, "{count} documents");
    }
}

/// `text` percent-encoded for a query value.
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
