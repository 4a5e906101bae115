//! JSON request bodies: `docaiche_http`'s [`ValidJson`] and body readers
//! (see [`docaiche_http::json`]), read under `server.json_body_limit_bytes`
//! (default 64 KiB; JSON bodies are small, so they get a limit of their
//! own, well under the upload limit `server.body_limit_bytes`, which only
//! the uploads and the base64 batch upload keep). Every body type of the
//! server is `deny_unknown_fields`.
//!
//! The token endpoints (`routes/auth.rs`) read their bodies through
//! [`read_json_body`], so they answer 415 and 413 exactly like these.

use axum::extract::FromRef;
use docaiche_http::json::JsonBodyLimit;

pub(crate) use docaiche_http::json::{
    DEFAULT_JSON_BODY_LIMIT, ValidJson, Validate, from_body, integer, read_json_body, read_limited,
    require_json,
};

/// [`ValidJson`] reads at most the JSON limit, never above the server's
/// body limit.
impl FromRef<crate::state::AppState> for JsonBodyLimit {
    fn from_ref(state: &crate::state::AppState) -> Self {
        Self::new(state.http.json_body_limit())
    }
}

/// A body type `T` whose JSON holds objects and scalars only, never an
/// array: serde's derived `Deserialize` of a struct also accepts an array
/// of its fields in order, which the schema of an object refuses (a body
/// of optional fields would otherwise take `[null, null]`, at the top or
/// in a nested object). Only for body types whose schema has no array
/// anywhere. Validated as `T`.
#[derive(Debug)]
pub(crate) struct ObjectsOnly<T>(pub(crate) T);

impl<'de, T: serde::de::DeserializeOwned> serde::Deserialize<'de> for ObjectsOnly<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let object = serde_json::Map::<String, serde_json::Value>::deserialize(deserializer)?;
        let mut pending: Vec<&serde_json::Value> = object.values().collect();
        while let Some(value) = pending.pop() {
            match value {
                serde_json::Value::Array(_) => {
                    return Err(D::Error::custom(
                        "expected an object or a scalar, found an array",
                    ));
                }
                serde_json::Value::Object(inner) => pending.extend(inner.values()),
                _ => {}
            }
        }
        serde_json::from_value(serde_json::Value::Object(object))
            .map(Self)
            .map_err(D::Error::custom)
    }
}

impl<T: Validate> Validate for ObjectsOnly<T> {
    fn validate(&self) -> Vec<docaiche_core::error::FieldError> {
        self.0.validate()
    }
}
