//! The console's static files: embedded in the binary, served under
//! content-hashed names (`console.<16 hex digits of SHA-256>.css`) with
//! `Cache-Control: immutable`, so a browser fetches each version once and
//! a new build can never be served an old file. The compression layer of
//! the stack gzips or brotli-compresses them on the way out.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use docaiche_core::Error;
use sha2::{Digest as _, Sha256};

/// One embedded file.
#[derive(Debug)]
pub(crate) struct Asset {
    /// The served name, hash included.
    name: LazyLock<String>,
    /// Its `Content-Type`.
    content_type: &'static str,
    /// Its bytes.
    bytes: &'static [u8],
}

impl Asset {
    /// The path the pages link to.
    pub(crate) fn path(&self) -> String {
        format!("/console/assets/{}", *self.name)
    }
}

/// `stem.<hash>.ext` of `bytes`.
fn hashed(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    format!("{stem}.{}.{ext}", hex::encode(&digest[..8]))
}

/// The stylesheet.
pub(crate) static CSS: Asset = Asset {
    name: LazyLock::new(|| hashed("console", "css", CSS_BYTES)),
    content_type: "text/css; charset=utf-8",
    bytes: CSS_BYTES,
};
const CSS_BYTES: &[u8] = include_bytes!("static/console.css");

/// The script: progressive enhancement only (copy buttons, lazily loaded
/// panels); every page reads without it.
pub(crate) static JS: Asset = Asset {
    name: LazyLock::new(|| hashed("console", "js", JS_BYTES)),
    content_type: "text/javascript; charset=utf-8",
    bytes: JS_BYTES,
};
const JS_BYTES: &[u8] = include_bytes!("static/console.js");

/// Every asset.
static ALL: [&Asset; 2] = [&CSS, &JS];

/// `GET /console/assets/{name}`: the asset of that exact (hashed) name.
pub(crate) async fn serve(Path(name): Path<String>) -> Response {
    let Some(asset) = ALL.iter().find(|a| *a.name == name) else {
        return Error::not_found("asset").into_response();
    };
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}
