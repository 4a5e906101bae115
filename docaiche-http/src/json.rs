//! JSON request bodies: typed field errors as problem+json, unknown fields
//! refused, depth and size limits.
//!
//! [`ValidJson`] (with the `axum` feature) requires `application/json`,
//! reads at most the configured number of bytes, parses with the target
//! type's own rules (put `#[serde(deny_unknown_fields)]` on every body
//! type), then runs its [`Validate`] checks, and answers every failure with
//! a problem naming the offending field:
//!
//! ```text
//! HTTP/1.1 400 Bad Request
//! Content-Type: application/problem+json
//!
//! {"type":"https://docaiche.dev/problems/invalid-input","status":400,
//!  "detail":"invalid input: the JSON body does not match the expected fields",
//!  "errors":[{"pointer":"/scopes/1","detail":"unknown permission ..."}], ...}
//! ```
//!
//! - no or another media type: 415 `unsupported-media-type`;
//! - malformed JSON or trailing bytes: 400 with the pointer of where the
//!   parser was and the line and column;
//! - nesting deeper than 128 arrays or objects (serde_json's recursion
//!   limit, so a hostile body cannot exhaust the stack): 400;
//! - a wrong type, an unknown or a missing field: 400 with the field's
//!   JSON pointer (RFC 6901) — unknown and missing fields point at the
//!   field itself, not at its parent object;
//! - a [`Validate`] failure: 400 with every failing field at once;
//! - a body over the limit ([`JsonBodyLimit`], default
//!   [`DEFAULT_JSON_BODY_LIMIT`]): 413 `payload-too-large` naming the
//!   limit, decided from `Content-Length` before the body is read, or as
//!   soon as a streamed body crosses it.
//!
//! Handlers that read a body by hand get the same answers from
//! [`read_json_body`], [`read_limited`], [`require_json`] and
//! [`from_body`], which need no axum. Client-supplied text is echoed back
//! at most [`MAX_DETAIL`] bytes long.

use bytes::Bytes;
use docaiche_core::Error;
use docaiche_core::error::FieldError;
use http::{HeaderMap, header};
use http_body::Body;
use http_body_util::BodyExt as _;
use serde::de::DeserializeOwned;

/// Longest detail of a field error; serde messages may quote the input.
pub const MAX_DETAIL: usize = 200;

/// The default JSON body limit: 64 KiB, far more than an API's JSON bodies
/// need, and small enough that no JSON route can be made to buffer
/// megabytes.
pub const DEFAULT_JSON_BODY_LIMIT: usize = 64 * 1024;

/// Checks a parsed body beyond what its types express.
///
/// The body is the client's: `validate` must not panic on any value its
/// type admits, and should bound what it echoes ([`truncate`]).
pub trait Validate {
    /// Every problem found, each with the JSON pointer of its field; empty
    /// when the body is valid.
    fn validate(&self) -> Vec<FieldError>;
}

/// A JSON body of type `T`, checked as the [module docs](self) say.
#[derive(Debug, Clone, Copy, Default)]
// A transparent wrapper, destructured in handler signatures.
#[allow(clippy::exhaustive_structs)]
pub struct ValidJson<T>(pub T);

/// The most bytes [`ValidJson`] reads, taken from the router's state
/// (`FromRef`); [`Default`] is [`DEFAULT_JSON_BODY_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonBodyLimit(usize);

impl JsonBodyLimit {
    /// At most `bytes` bytes.
    #[must_use]
    pub const fn new(bytes: usize) -> Self {
        Self(bytes)
    }

    /// The limit, in bytes.
    #[must_use]
    pub const fn bytes(self) -> usize {
        self.0
    }
}

impl Default for JsonBodyLimit {
    fn default() -> Self {
        Self(DEFAULT_JSON_BODY_LIMIT)
    }
}

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
impl<S, T> axum::extract::FromRequest<S> for ValidJson<T>
where
    S: Send + Sync,
    JsonBodyLimit: axum::extract::FromRef<S>,
    T: DeserializeOwned + Validate,
{
    type Rejection = axum::response::Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        use axum::extract::FromRef as _;
        use axum::response::IntoResponse as _;

        let limit = JsonBodyLimit::from_ref(state);
        let (parts, body) = request.into_parts();
        let body = read_json_body(&parts.headers, body, limit.bytes())
            .await
            .map_err(axum::response::IntoResponse::into_response)?;
        parse(&body).map(ValidJson).map_err(|e| e.into_response())
    }
}

/// The body of a request declared as JSON by `headers`, at most `limit`
/// bytes: 415 for another media type (before anything is read), 413
/// naming `limit` for a declared or streamed body over it.
///
/// # Errors
/// [`Error::UnsupportedMediaType`], [`Error::PayloadTooLarge`], or
/// [`Error::InvalidInput`] when the body cannot be read.
pub async fn read_json_body<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Error>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    require_json(headers)?;
    read_limited(headers, body, limit).await
}

/// The body, at most `limit` bytes, whatever its media type (for a
/// handler whose body may also be empty).
///
/// # Errors
/// [`Error::PayloadTooLarge`] over `limit` (declared by `Content-Length`
/// or streamed, including by an outer body limit); [`Error::InvalidInput`]
/// when the body cannot be read.
pub async fn read_limited<B>(headers: &HeaderMap, body: B, limit: usize) -> Result<Bytes, Error>
where
    B: Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let too_large = || Error::PayloadTooLarge {
        limit: u64::try_from(limit).unwrap_or(u64::MAX),
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            // `Limited` stops at `limit` with http-body-util's error; an
            // outer limit (never lower) fails the same way, perhaps
            // wrapped.
            let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&*error);
            let mut over = false;
            while let Some(current) = cause {
                over |= current.is::<http_body_util::LengthLimitError>();
                cause = current.source();
            }
            Err(if over {
                too_large()
            } else {
                Error::invalid_input("the body could not be read")
            })
        }
    }
}

/// `body`, declared by `headers` as JSON, parsed and validated; for
/// handlers that accept an empty body too.
///
/// # Errors
/// As the [module docs](self) say.
pub fn from_body<T: DeserializeOwned + Validate>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, Error> {
    require_json(headers)?;
    parse(body)
}

/// The request declares `application/json` (or a `+json` type), in UTF-8
/// if it names a charset.
///
/// # Errors
/// [`Error::UnsupportedMediaType`] otherwise.
pub fn require_json(headers: &HeaderMap) -> Result<(), Error> {
    let unsupported = || Error::UnsupportedMediaType {
        expected: "application/json".into(),
    };
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unsupported)?;
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
    let json = essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"));
    let utf8 = parts.all(|param| match param.split_once('=') {
        Some((name, value)) if name.trim().eq_ignore_ascii_case("charset") => {
            let value = value.trim().trim_matches('"');
            value.eq_ignore_ascii_case("utf-8") || value.eq_ignore_ascii_case("utf8")
        }
        _ => true,
    });
    if json && utf8 {
        Ok(())
    } else {
        Err(unsupported())
    }
}

/// Parse and validate `body` as `T` (whatever the media type).
///
/// # Errors
/// [`Error::InvalidInput`] naming the offending fields, as the
/// [module docs](self) say.
pub fn parse<T: DeserializeOwned + Validate>(body: &[u8]) -> Result<T, Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let pointer = pointer(e.path());
        into_error(&pointer, e.inner())
    })?;
    deserializer.end().map_err(|e| into_error("", &e))?;
    let fields = value.validate();
    if fields.is_empty() {
        Ok(value)
    } else {
        Err(Error::invalid_fields(
            "the JSON body failed validation",
            fields,
        ))
    }
}

/// The problem for a serde error met at `pointer`.
fn into_error(pointer: &str, error: &serde_json::Error) -> Error {
    use serde_json::error::Category;

    let full = error.to_string();
    let position = format!(" at line {} column {}", error.line(), error.column());
    let message = full.strip_suffix(&position).unwrap_or(&full);
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => Error::invalid_fields(
            "the body is not well-formed JSON",
            vec![FieldError::new(pointer, truncate(&full))],
        ),
        Category::Data => {
            // serde names unknown and missing fields in its message; the
            // path ends at an unknown field but stops at a missing one's
            // parent.
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.split_once('`'))
                .map(|(name, _)| format!("{pointer}/{}", escape(name)));
            Error::invalid_fields(
                "the JSON body does not match the expected fields",
                vec![FieldError::new(
                    missing.unwrap_or_else(|| pointer.to_owned()),
                    truncate(message),
                )],
            )
        }
    }
}

/// The JSON pointer (RFC 6901) of a serde path: `""` for the document.
fn pointer(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;

    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => {
                out.push('/');
                out.push_str(&index.to_string());
            }
            Segment::Map { key } => {
                out.push('/');
                out.push_str(&escape(key));
            }
            // Enum variants and unknown segments have no place in a
            // pointer to the document.
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

/// A pointer reference token: `~` → `~0`, `/` → `~1`.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// `text` cut to at most [`MAX_DETAIL`] bytes, on a character boundary,
/// with `…` when cut: for client-supplied text echoed in a problem.
#[must_use]
pub fn truncate(text: &str) -> String {
    if text.len() <= MAX_DETAIL {
        return text.to_owned();
    }
    let mut end = MAX_DETAIL;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Integers as JSON Schema defines them: `type: integer` admits any number
/// with a zero fractional part, so `3.0` and `3e2` are integers too. serde
/// refuses a float where it expects a `u64`; these deserializers accept
/// what an OpenAPI document promises, and still refuse `3.5`, strings (in
/// JSON) and anything out of the target's range. Hand-written: no crate
/// offers exactly the JSON Schema rule.
pub mod integer {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, Deserializer, Visitor};

    /// An optional integer field of a JSON body: `null` and absence are
    /// `None`.
    ///
    /// # Errors
    /// A number that is not an integer or is out of `T`'s range; any other
    /// JSON type.
    pub fn json<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        deserializer.deserialize_option(OptionVisitor::<T>(false, PhantomData))
    }

    /// An optional integer of a query string (`?limit=50`, `?limit=50.0`).
    ///
    /// # Errors
    /// A value that is not an integer in decimal, or is out of `T`'s range.
    pub fn query<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
        T: TryFrom<u64>,
    {
        deserializer
            .deserialize_any(IntegerVisitor::<T>(true, PhantomData))
            .map(Some)
    }

    /// `None` for `null`, else [`IntegerVisitor`].
    struct OptionVisitor<T>(bool, PhantomData<T>);

    impl<'de, T: TryFrom<u64>> Visitor<'de> for OptionVisitor<T> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(IntegerVisitor::<T>(self.0, PhantomData))
                .map(Some)
        }
    }

    /// A non-negative integer; `strings` admits its decimal text.
    struct IntegerVisitor<T>(bool, PhantomData<T>);

    impl<T: TryFrom<u64>> IntegerVisitor<T> {
        fn fit<E: de::Error>(value: u64) -> Result<T, E> {
            T::try_from(value).map_err(|_| E::custom(format!("{value} is out of range")))
        }
    }

    impl<T: TryFrom<u64>> Visitor<'_> for IntegerVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer")
        }

        fn visit_u64<E: de::Error>(self, value: u64) -> Result<T, E> {
            Self::fit(value)
        }

        fn visit_i64<E: de::Error>(self, value: i64) -> Result<T, E> {
            u64::try_from(value)
                .map_err(|_| E::custom(format!("{value} is out of range")))
                .and_then(Self::fit)
        }

        fn visit_f64<E: de::Error>(self, value: f64) -> Result<T, E> {
            // 2^64 is the first float past u64::MAX; every float below it
            // with a zero fraction converts exactly.
            if value.fract() != 0.0 || !(0.0..18_446_744_073_709_551_616.0).contains(&value) {
                return Err(E::custom(format!("{value} is not an integer in range")));
            }
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Self::fit(value as u64)
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
            if !self.0 {
                return Err(E::invalid_type(de::Unexpected::Str(value), &self));
            }
            // The decimal text of an integer, or of an integral float
            // (`50.0`, `5e1`); never `inf`, `NaN` or `0x10`.
            let numeric = !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
            if let Ok(integer) = value.parse::<u64>() {
                Self::fit(integer)
            } else if let (true, Ok(float)) = (numeric, value.parse::<f64>()) {
                self.visit_f64(float)
            } else {
                Err(E::custom("expected a non-negative integer"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        name: String,
        #[serde(default)]
        tags: Vec<Tag>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Tag {
        #[serde(rename = "a/b")]
        value: u8,
    }

    impl Validate for Body {
        fn validate(&self) -> Vec<FieldError> {
            let mut out = Vec::new();
            if self.name.trim().is_empty() {
                out.push(FieldError::new("/name", "must not be blank"));
            }
            if self.tags.len() > 2 {
                out.push(FieldError::new("/tags", "at most 2 tags"));
            }
            out
        }
    }

    /// The (pointer, detail) pairs of a parse failure.
    fn fields(body: &str) -> (String, Vec<(String, String)>) {
        let Err(Error::InvalidInput { message, fields }) = parse::<Body>(body.as_bytes()) else {
            panic!("{body} should be invalid");
        };
        (
            message.into_owned(),
            fields.into_iter().map(|f| (f.pointer, f.detail)).collect(),
        )
    }

    #[test]
    fn a_valid_body_parses() {
        let body: Body = parse(br#"{"name":"x","tags":[{"a/b":1}]}"#).expect("valid");
        assert_eq!(body.name, "x");
        assert_eq!(body.tags[0].value, 1);
    }

    #[test]
    fn errors_point_at_the_offending_field() {
        let (_, f) = fields(r#"{"name":"x","tags":[{"a/b":1},{"a/b":"no"}]}"#);
        assert_eq!(f[0].0, "/tags/1/a~1b");
        assert!(f[0].1.starts_with("invalid type: string"), "{}", f[0].1);

        let (message, f) = fields(r#"{"name":"x","tenant":"globex"}"#);
        assert_eq!(message, "the JSON body does not match the expected fields");
        assert_eq!(f[0].0, "/tenant");
        assert!(f[0].1.starts_with("unknown field `tenant`"), "{}", f[0].1);

        let (_, f) = fields(r#"{"tags":[]}"#);
        assert_eq!(f[0], ("/name".into(), "missing field `name`".into()));

        let (_, f) = fields(r#"{"name":"x","tags":[{}]}"#);
        assert_eq!(f[0].0, "/tags/0/a~1b");
    }

    #[test]
    fn malformed_json_and_trailing_bytes_are_refused() {
        for body in [
            "",
            "{",
            r#"{"name":"x",}"#,
            r#"{"name":"x"} trailing"#,
            "[1]",
        ] {
            let (_, f) = fields(body);
            assert_eq!(f.len(), 1, "{body}");
        }
        let (message, f) = fields(r#"{"name":"x"} {}"#);
        assert_eq!(message, "the body is not well-formed JSON");
        assert!(f[0].1.contains("trailing characters"), "{}", f[0].1);
    }

    #[test]
    fn deeply_nested_json_is_refused_not_a_stack_overflow() {
        #[derive(Debug, serde::Deserialize)]
        struct Any {
            #[allow(dead_code)]
            name: serde_json::Value,
        }
        impl Validate for Any {
            fn validate(&self) -> Vec<FieldError> {
                Vec::new()
            }
        }
        for depth in [129, 100_000] {
            let body = format!(r#"{{"name":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
            let Err(Error::InvalidInput { message, fields }) = parse::<Any>(body.as_bytes()) else {
                panic!("{depth} levels should be refused");
            };
            assert_eq!(message, "the body is not well-formed JSON");
            assert!(
                fields[0].detail.contains("recursion limit"),
                "{}",
                fields[0].detail
            );
        }
        let shallow = format!(r#"{{"name":{}{}}}"#, "[".repeat(100), "]".repeat(100));
        assert!(parse::<Any>(shallow.as_bytes()).is_ok());
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused_declared_or_streamed() {
        use http_body_util::{Full, StreamBody};

        let json = |length: Option<usize>| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(length) = length {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
            }
            headers
        };
        let body = Full::new(Bytes::from(vec![b' '; 100]));
        // Declared: refused before a byte is read.
        let declared = read_json_body(&json(Some(1_000_000)), body.clone(), 64).await;
        assert!(
            matches!(declared, Err(Error::PayloadTooLarge { limit: 64 })),
            "{declared:?}"
        );
        // Undeclared and streamed: refused once past the limit.
        let chunks = futures_util::stream::iter((0..10).map(|_| {
            Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from_static(
                &[b' '; 16],
            )))
        }));
        let streamed = read_json_body(&json(None), StreamBody::new(chunks), 64).await;
        assert!(
            matches!(streamed, Err(Error::PayloadTooLarge { limit: 64 })),
            "{streamed:?}"
        );
        // Within the limit.
        let fine = read_json_body(&json(Some(100)), body, 100)
            .await
            .expect("within");
        assert_eq!(fine.len(), 100);
        // Another media type: 415 before reading.
        let text = read_json_body(&HeaderMap::new(), Full::new(Bytes::new()), 64).await;
        assert!(
            matches!(text, Err(Error::UnsupportedMediaType { .. })),
            "{text:?}"
        );
    }

    #[test]
    fn validation_reports_every_failing_field() {
        let (message, f) = fields(r#"{"name":" ","tags":[{"a/b":1},{"a/b":2},{"a/b":3}]}"#);
        assert_eq!(message, "the JSON body failed validation");
        let pointers: Vec<&str> = f.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(pointers, ["/name", "/tags"]);
    }

    #[test]
    fn echoed_input_is_bounded() {
        let long = "x".repeat(10_000);
        let (_, f) = fields(&format!(r#"{{"name":"x","{long}":1}}"#));
        assert!(
            f[0].1.len() <= MAX_DETAIL + '…'.len_utf8(),
            "{}",
            f[0].1.len()
        );
    }

    #[test]
    fn integers_are_json_schema_integers() {
        #[derive(Debug, Deserialize)]
        struct Body {
            #[serde(default, deserialize_with = "integer::json")]
            n: Option<u32>,
        }
        #[derive(Debug, Deserialize)]
        struct Query {
            #[serde(default, deserialize_with = "integer::query")]
            n: Option<u32>,
        }
        let body = |json: &str| serde_json::from_str::<Body>(json).map(|b| b.n);
        assert_eq!(body(r#"{"n":365429}"#).ok(), Some(Some(365_429)));
        assert_eq!(body(r#"{"n":365429.0}"#).ok(), Some(Some(365_429)));
        assert_eq!(body(r#"{"n":3e2}"#).ok(), Some(Some(300)));
        assert_eq!(body(r#"{"n":null}"#).ok(), Some(None));
        assert_eq!(body("{}").ok(), Some(None));
        for refused in [
            r#"{"n":1.5}"#,
            r#"{"n":-1}"#,
            r#"{"n":"5"}"#,
            r#"{"n":4294967296}"#,
            r#"{"n":1e300}"#,
            r#"{"n":true}"#,
        ] {
            assert!(body(refused).is_err(), "{refused}");
        }
        let query = |q: &str| {
            let uri: axum::http::Uri = format!("/?{q}").parse().expect("uri");
            axum::extract::Query::<Query>::try_from_uri(&uri).map(|q| q.0.n)
        };
        assert_eq!(query("n=50").ok(), Some(Some(50)));
        assert_eq!(query("n=50.0").ok(), Some(Some(50)));
        assert_eq!(query("").ok(), Some(None));
        for refused in [
            "n=",
            "n=5.5",
            "n=-1",
            "n=abc",
            "n=inf",
            "n=NaN",
            "n=4294967296",
        ] {
            assert!(query(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn only_json_media_types_are_accepted() {
        let headers = |ct: Option<&str>| {
            let mut headers = HeaderMap::new();
            if let Some(ct) = ct {
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(ct).expect("ascii"),
                );
            }
            headers
        };
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(require_json(&headers(Some(ok))).is_ok(), "{ok}");
        }
        for refused in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some("application/json; charset=latin1"),
            Some("text/json+xml"),
        ] {
            let err = require_json(&headers(refused)).expect_err("refused");
            assert!(
                matches!(err, Error::UnsupportedMediaType { .. }),
                "{refused:?}: {err}"
            );
        }
    }
}
