//! Request ids (`X-Request-Id`): validated, kept, or replaced.
//!
//! A caller's id is kept when it is a plausible id (1–128 bytes of
//! letters, digits and `-_.:+/=@`, sent once), so a request can be
//! followed across services; anything else, or none, is replaced by a
//! random UUID (v4), so a hostile id (a CRLF, a forged JSON log line, a
//! kilobyte of padding) cannot forge log lines or bloat them.
//! [`crate::edge::EdgeLayer`] applies [`ensure_request_id`] to every
//! request and echoes the id on the answer.

use http::{HeaderMap, HeaderName, HeaderValue};

/// The request id header, `x-request-id`.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest caller-chosen request id kept, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request's id: the caller's when it is plausible (see the
/// [module docs](self)), else a new one, written into `headers` either way.
pub fn ensure_request_id(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(REQUEST_ID)
        && is_plausible_id(id.as_bytes())
        && headers.get_all(REQUEST_ID).iter().count() == 1
    {
        return id.clone();
    }
    let id = new_request_id();
    headers.insert(REQUEST_ID, id.clone());
    id
}

/// Whether `id` is a request id this stack keeps or makes: a log
/// redactor may leave such a value whole, so operators can search the
/// logs for it.
#[must_use]
pub fn is_request_id(id: &str) -> bool {
    is_plausible_id(id.as_bytes())
}

/// 1–128 bytes of letters, digits and `-_.:+/=@`.
fn is_plausible_id(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

/// Random bytes for request ids, refilled from the OS when used up.
struct RandomPool {
    bytes: [u8; 4096],
    next: usize,
}

thread_local! {
    static RANDOM_POOL: std::cell::RefCell<RandomPool> = const {
        std::cell::RefCell::new(RandomPool { bytes: [0; 4096], next: 4096 })
    };
}

/// 16 random bytes from this thread's pool; `None` if the OS cannot
/// provide randomness.
fn random_16() -> Option<[u8; 16]> {
    RANDOM_POOL.with_borrow_mut(|pool| {
        if pool.next + 16 > pool.bytes.len() {
            getrandom::fill(&mut pool.bytes).ok()?;
            pool.next = 0;
        }
        let mut out = [0; 16];
        out.copy_from_slice(&pool.bytes[pool.next..pool.next + 16]);
        // Handed out once: forget them.
        pool.bytes[pool.next..pool.next + 16].fill(0);
        pool.next += 16;
        Some(out)
    })
}

/// A new request id: a random UUID (v4), as tower-http's `MakeRequestUuid`
/// makes them, from the operating system's randomness fetched 4 KiB at a
/// time per thread instead of with one `getrandom` call per request.
#[must_use]
pub fn new_request_id() -> HeaderValue {
    let uuid = random_16().map_or_else(uuid::Uuid::new_v4, |bytes| {
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    });
    let mut text = uuid::Uuid::encode_buffer();
    let text = uuid.hyphenated().encode_lower(&mut text);
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("-"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plausible_caller_id_is_kept_and_anything_else_replaced() {
        for kept in [
            "client-chosen-id-42",
            "4bf92f3577b34da6a3ce929d0e0e4736",
            "req_1.2:3+4/5=6@x",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(REQUEST_ID, HeaderValue::from_static(kept));
            assert_eq!(ensure_request_id(&mut headers), kept);
            assert_eq!(headers[REQUEST_ID], kept);
        }
        let long = "a".repeat(MAX_REQUEST_ID_LEN + 1);
        let padded = "b".repeat(200);
        for replaced in [
            "",
            "two words",
            "fake\"} {\"level\":\"ERROR",
            "tab\there",
            "caf\u{e9}",
            long.as_str(),
            padded.as_str(),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(
                REQUEST_ID,
                HeaderValue::from_bytes(replaced.as_bytes()).expect("a header value"),
            );
            let id = ensure_request_id(&mut headers);
            assert_ne!(id, replaced);
            assert_eq!(id.len(), 36, "a UUID replaces {replaced:?}: {id:?}");
            assert_eq!(headers[REQUEST_ID], id, "the request carries the new id");
        }
        // Two ids: neither is believed.
        let mut headers = HeaderMap::new();
        headers.append(REQUEST_ID, HeaderValue::from_static("one"));
        headers.append(REQUEST_ID, HeaderValue::from_static("two"));
        let id = ensure_request_id(&mut headers);
        assert_eq!(id.len(), 36);
        assert_eq!(headers.get_all(REQUEST_ID).iter().count(), 1);
    }

    #[test]
    fn a_crlf_cannot_become_a_request_id() {
        // `http` refuses CR and LF in a value; an obs-text byte it admits
        // is still no plausible id.
        assert!(HeaderValue::from_bytes(b"id\r\nx-injected: 1").is_err());
        assert!(!is_request_id("id\r\nx-injected: 1"));
        let mut headers = HeaderMap::new();
        headers.insert(
            REQUEST_ID,
            HeaderValue::from_bytes(b"id\x80\xff").expect("obs-text"),
        );
        assert_eq!(ensure_request_id(&mut headers).len(), 36);
    }

    #[test]
    fn new_ids_are_distinct_v4_uuids() {
        let ids: std::collections::HashSet<_> = (0..1000)
            .map(|_| new_request_id().to_str().expect("ascii").to_owned())
            .collect();
        assert_eq!(ids.len(), 1000);
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id).expect("a uuid");
            assert_eq!(uuid.get_version_num(), 4);
        }
    }
}
