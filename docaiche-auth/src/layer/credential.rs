//! Reading credentials and request facts from untrusted headers.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use docaiche_core::{AuthFailure, Credential, RequestContext, SecretString};
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{Extensions, HeaderMap, HeaderName, HeaderValue};

/// `X-Request-Id`, parsed once (a name given as text is parsed on every
/// lookup).
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A credential read from a request, with the public prefix of an API key
/// (for failure tracking).
pub(crate) struct Presented {
    pub(crate) credential: Credential,
}

impl Presented {
    /// The public prefix of an API key, for failure tracking (read from
    /// the key when needed: most requests never need it).
    pub(crate) fn key_prefix(&self) -> Option<&str> {
        match &self.credential {
            Credential::ApiKey(key) => crate::api_key::public_prefix(key.expose_secret()),
            _ => None,
        }
    }
}

/// Read the one credential of a request.
///
/// Header values are attacker-controlled: anything but printable ASCII
/// (control characters, DEL, obs-text), an oversized value, an empty
/// token, a token with spaces, an unknown scheme, a repeated header or a
/// request carrying both `Authorization` and the API-key header is
/// `Malformed`; no header at all is `Missing`.
pub(crate) fn extract(
    headers: &HeaderMap,
    api_key_header: &HeaderName,
    max_len: usize,
) -> Result<Presented, AuthFailure> {
    let (authorization, api_key) = credential_headers(headers, api_key_header)?;
    match (authorization, api_key) {
        (None, None) => Err(AuthFailure::Missing),
        (Some(_), Some(_)) => Err(AuthFailure::Malformed),
        (Some(value), None) => {
            let value = printable(value, max_len)?;
            let (scheme, token) = value.split_once(' ').ok_or(AuthFailure::Malformed)?;
            let token = token.trim_start_matches(' ');
            let token = valid_token(token)?;
            if scheme.eq_ignore_ascii_case("bearer") {
                Ok(Presented {
                    credential: Credential::Bearer(SecretString::from(token)),
                })
            } else if scheme.eq_ignore_ascii_case("apikey") {
                Ok(api_key_credential(token))
            } else {
                Err(AuthFailure::Malformed)
            }
        }
        (None, Some(value)) => {
            let token = valid_token(printable(value, max_len)?)?;
            Ok(api_key_credential(token))
        }
    }
}

fn api_key_credential(token: &str) -> Presented {
    Presented {
        credential: Credential::ApiKey(SecretString::from(token)),
    }
}

/// The `Authorization` and API-key header values, in one pass over the
/// request's headers; either repeated is `Malformed`.
fn credential_headers<'a>(
    headers: &'a HeaderMap,
    api_key_header: &HeaderName,
) -> Result<(Option<&'a HeaderValue>, Option<&'a HeaderValue>), AuthFailure> {
    let (mut authorization, mut api_key) = (None, None);
    for (name, value) in headers {
        let slot = if name == AUTHORIZATION {
            &mut authorization
        } else if name == api_key_header {
            &mut api_key
        } else {
            continue;
        };
        if slot.replace(value).is_some() {
            return Err(AuthFailure::Malformed);
        }
    }
    Ok((authorization, api_key))
}

fn printable(value: &HeaderValue, max_len: usize) -> Result<&str, AuthFailure> {
    let bytes = value.as_bytes();
    if bytes.len() > max_len || !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
        return Err(AuthFailure::Malformed);
    }
    value.to_str().map_err(|_| AuthFailure::Malformed)
}

fn valid_token(token: &str) -> Result<&str, AuthFailure> {
    if token.is_empty() || token.contains(' ') {
        return Err(AuthFailure::Malformed);
    }
    Ok(token)
}

/// The request facts for the authenticator and the audit trail: an
/// upstream layer's [`RequestContext`] extension if there is one, else the
/// socket peer (axum's `ConnectInfo<SocketAddr>` with the `axum` feature,
/// or a plain `SocketAddr` extension), `X-Request-Id` and `User-Agent`.
///
/// The client address never comes from a header such as
/// `X-Forwarded-For`: behind a proxy, put a [`RequestContext`] with the
/// address your trusted proxy reported into the extensions first.
pub(crate) fn request_context(extensions: &Extensions, headers: &HeaderMap) -> RequestContext {
    if let Some(context) = extensions.get::<RequestContext>() {
        return context.clone();
    }
    if let Some(context) = extensions.get::<Arc<RequestContext>>() {
        return (**context).clone();
    }
    let mut context = RequestContext::new();
    if let Some(addr) = peer_addr(extensions) {
        context = context.with_client_addr(addr);
    }
    if let Some(id) = headers
        .get(REQUEST_ID)
        .and_then(|v| printable(v, 128).ok())
        .filter(|v| !v.is_empty())
    {
        context = context.with_request_id(id);
    }
    if let Some(ua) = headers.get(USER_AGENT).and_then(|v| v.to_str().ok()) {
        context = context.with_user_agent(ua);
    }
    context
}

fn peer_addr(extensions: &Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).expect("name"),
                HeaderValue::from_bytes(value).expect("value"),
            );
        }
        map
    }

    fn read(pairs: &[(&str, &[u8])]) -> Result<Presented, AuthFailure> {
        extract(&headers(pairs), &HeaderName::from_static("x-api-key"), 64)
    }

    #[test]
    fn reads_bearer_and_api_key_forms() {
        let bearer = read(&[("authorization", b"Bearer abc.def")]).expect("ok");
        assert!(
            matches!(bearer.credential, Credential::Bearer(ref t) if t.expose_secret() == "abc.def")
        );
        let scheme = read(&[("authorization", b"ApiKey dcx_abc_def")]).expect("ok");
        assert!(matches!(scheme.credential, Credential::ApiKey(_)));
        assert_eq!(scheme.key_prefix(), Some("dcx_abc"));
        let header = read(&[("x-api-key", b"dcx_abc_def")]).expect("ok");
        assert!(matches!(header.credential, Credential::ApiKey(_)));
    }

    #[test]
    fn rejects_hostile_headers() {
        let long = format!("Bearer {}", "a".repeat(64));
        let cases: &[&[(&str, &[u8])]] = &[
            &[("authorization", b"Bearer a\tb")],
            &[("authorization", b"Bearer \xff\xfe")],
            &[("authorization", b"Bearer")],
            &[("authorization", b"Bearer ")],
            &[("authorization", b"Bearer a b")],
            &[("authorization", b"Basic dXNlcjpwYXNz")],
            &[("authorization", long.as_bytes())],
            &[
                ("authorization", b"Bearer a"),
                ("authorization", b"Bearer b"),
            ],
            &[("x-api-key", b"a"), ("x-api-key", b"b")],
            &[("authorization", b"Bearer a"), ("x-api-key", b"b")],
            &[("x-api-key", b"")],
        ];
        for case in cases {
            assert_eq!(read(case).err(), Some(AuthFailure::Malformed), "{case:?}");
        }
        assert_eq!(read(&[]).err(), Some(AuthFailure::Missing));
    }
}
