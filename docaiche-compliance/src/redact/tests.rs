use std::borrow::Cow;

use docaiche_core::audit::{AuditEvent, AuditOutcome};
use docaiche_core::secret::SecretBytes;
use docaiche_core::{ManualClock, RequestContext, clock::Clock};

use super::*;

fn kinds(redactor: &Redactor, text: &str) -> Vec<PiiKind> {
    redactor.find(text).into_iter().map(|f| f.kind).collect()
}

#[test]
fn clean_text_is_borrowed() {
    let r = Redactor::new();
    for clean in [
        "GET /v1/documents 200 12ms",
        "2026-11-24T01:15:42.123Z INFO docaiche::server: started in 12:30:45",
        "request_id=0192f3a4-5b6c-7d8e-9f01-23456789abcd version=1.2.3",
    ] {
        assert!(matches!(r.redact(clean), Cow::Borrowed(_)), "{clean}");
    }
}

#[test]
fn each_kind_is_found() {
    let r = Redactor::new();
    let cases = [
        ("mail bob.smith+x@mail.example.co.uk now", PiiKind::Email),
        ("call +44 20 7946 0958 today", PiiKind::Phone),
        ("call (555) 123-4567 today", PiiKind::Phone),
        ("pan 5555555555554444 ok", PiiKind::CardNumber),
        ("iban DE89 3704 0044 0532 0130 00 ok", PiiKind::Iban),
        ("ssn 123-45-6789", PiiKind::NationalId),
        ("nino AB 12 34 56 C", PiiKind::NationalId),
        ("from 192.168.10.20:443", PiiKind::IpAddress),
        (
            "from [2001:db8:85a3::8a2e:370:7334]:443",
            PiiKind::IpAddress,
        ),
        (
            "tok eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
            PiiKind::Jwt,
        ),
        (
            "key dcx_4kTq0ZbW8mNa_Xr3bQ9zLw2Vt7Yp1Ks5Hd8Jf6Gm4Nc0Qa81Z",
            PiiKind::ApiKey,
        ),
        (
            "Authorization: Bearer abc123def456ghi789",
            PiiKind::BearerToken,
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----",
            PiiKind::PrivateKey,
        ),
    ];
    for (text, kind) in cases {
        assert_eq!(kinds(&r, text), [kind], "{text}");
    }
}

#[test]
fn api_keys_keep_their_public_lookup() {
    let r = Redactor::new();
    assert_eq!(
        r.redact("key dcx_4kTq0ZbW8mNa_Xr3bQ9zLw2Vt7Yp1Ks5Hd8Jf6Gm4Nc0Qa81Z used"),
        "key dcx_4kTq0ZbW8mNa_[REDACTED] used"
    );
}

#[test]
fn ip_addresses_are_truncated_by_default() {
    let r = Redactor::new();
    assert_eq!(r.redact("peer 203.0.113.42"), "peer 203.0.113.0");
    assert_eq!(
        r.redact("peer 2001:db8:85a3:1:2:8a2e:370:7334"),
        "peer 2001:db8:85a3::"
    );
}

#[test]
fn kept_addresses_stay_whole_and_others_are_still_truncated() {
    let own: IpAddr = "127.0.0.1".parse().expect("address");
    let own6: IpAddr = "::1".parse().expect("address");
    let r = Redactor::builder()
        .keep_ip_addresses([own, own6])
        .build()
        .expect("valid");
    let line = r#"{"address":"127.0.0.1:18443","client":"127.0.0.9","peer":"203.0.113.42"}"#;
    assert_eq!(
        r.redact(line),
        r#"{"address":"127.0.0.1:18443","client":"127.0.0.0","peer":"203.0.113.0"}"#
    );
    assert!(matches!(
        r.redact("listening on [::1]:8443"),
        Cow::Borrowed(_)
    ));
    assert_eq!(
        r.redact("peer 2001:db8:85a3:1:2:8a2e:370:7334"),
        "peer 2001:db8:85a3::"
    );
    // An address ending in the kept one is another address.
    assert_eq!(r.redact("peer 10.127.0.0.1"), "peer 10.127.0.0.1");
    assert_eq!(r.redact("peer 27.0.0.1"), "peer 27.0.0.0");
    // Masking instead of truncating: the kept address still stays.
    let masked = Redactor::builder()
        .action(PiiKind::IpAddress, Action::Mask)
        .keep_ip_addresses([own])
        .build()
        .expect("valid");
    assert_eq!(
        masked.redact("own 127.0.0.1 peer 203.0.113.42"),
        "own 127.0.0.1 peer [REDACTED:ip_address]"
    );
    // Audit events: a kept client address is kept, others truncated.
    let clock = ManualClock::new();
    let peer: IpAddr = "203.0.113.42".parse().expect("address");
    let peer_net: IpAddr = "203.0.113.0".parse().expect("address");
    for (addr, expected) in [(own, own), (peer, peer_net)] {
        let mut event = AuditEvent::new(
            "auth.login",
            AuditOutcome::Success,
            clock.now(),
            &RequestContext::new().with_client_addr(addr),
        );
        r.redact_event(&mut event);
        assert_eq!(event.client_addr, Some(expected));
    }
}

#[test]
fn hashing_is_stable_and_needs_a_key() {
    let err = Redactor::builder()
        .action(PiiKind::Email, Action::Hash)
        .build()
        .expect_err("hash without a key");
    assert_eq!(err.code(), docaiche_core::ErrorCode::Misconfigured);
    let key = SecretBytes::new(vec![7; 32]);
    let r = Redactor::builder()
        .action(PiiKind::Email, Action::Hash)
        .hash_key(&key)
        .build()
        .expect("valid");
    let a = r.redact("a@example.com");
    let b = r.redact("x a@example.com y");
    assert!(
        a.starts_with("[email:") && a.len() == "[email:]".len() + 12,
        "{a}"
    );
    assert!(b.contains(a.as_ref()));
    assert_ne!(r.redact("b@example.com"), a);
}

#[test]
fn disabled_kinds_are_kept() {
    let r = Redactor::builder()
        .disable(PiiKind::IpAddress)
        .build()
        .expect("valid");
    assert_eq!(r.redact("peer 203.0.113.42"), "peer 203.0.113.42");
}

#[test]
fn a_bearer_jwt_is_reported_once_as_a_jwt() {
    let r = Redactor::new();
    let text = "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl";
    assert_eq!(kinds(&r, text), [PiiKind::Jwt]);
    assert_eq!(r.redact(text), "Authorization: Bearer [REDACTED:jwt]");
}

#[test]
fn audit_event_details_are_redacted() {
    let r = Redactor::new();
    let clock = ManualClock::new();
    let mut event = AuditEvent::new(
        "auth.login",
        AuditOutcome::Failure,
        clock.now(),
        &RequestContext::new().with_client_addr("198.51.100.7".parse().expect("ip")),
    )
    .because("bad password for carol@example.org")
    .with_detail(
        "input",
        serde_json::json!({"email": "carol@example.org", "n": 3, "list": ["+1 202 555 0143"]}),
    );
    let changed = r.redact_event(&mut event);
    assert_eq!(changed, 4);
    let json = serde_json::to_string(&event).expect("serialises");
    assert!(!json.contains("carol@"), "{json}");
    assert!(!json.contains("555 0143"), "{json}");
    assert_eq!(event.client_addr, Some("198.51.100.0".parse().expect("ip")));
}

#[test]
fn hostile_input_stays_linear() {
    let r = Redactor::new();
    let long = "1".repeat(200_000) + &"a@".repeat(50_000) + &":".repeat(100_000);
    let started = std::time::Instant::now();
    let _ = r.redact(&long);
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn custom_patterns_are_validated() {
    assert!(NationalIdFormat::custom("bad", "(").is_err());
    assert!(NationalIdFormat::custom("empty", "x*").is_err());
}

#[test]
fn phone_numbers_inside_uuids_and_longer_tokens_are_not_phone_numbers() {
    let r = Redactor::new();
    // UUIDs whose groups look like national or North American numbers:
    // the review found request ids rewritten as `[REDACTED:phone]`.
    for token in [
        "a1b2c3d4-0201-7946-0958-abcdef012345",
        "0192F3A4-0201-4946-0958-ABCDEF012345",
        "0192f3a4-0201-7946-0958-c0ffee012345",
        "req-020 7946 0958",
        "id_0201-7946-0958",
        "020-7946-0958-ffee",
        "020-7946-0958_x",
        "deadbeef020-7946-0958",
    ] {
        let line = format!("request {token} done");
        assert!(
            !kinds(&r, &line).contains(&PiiKind::Phone),
            "{token}: {:?}",
            r.find(&line)
        );
    }
    // Standing alone, or beside punctuation, they still are.
    for line in [
        "call 020-7946-0958 now",
        "call 020 7946 0958.",
        "tel:020-7946-0958",
        "(555) 123-4567, (555) 123-4568",
    ] {
        assert!(kinds(&r, line).contains(&PiiKind::Phone), "{line}");
    }
}

/// The X-Request-Id grammar of the example server: 1–128 bytes of
/// letters, digits and `-_.:+/=@`.
fn is_request_id(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

#[test]
fn a_kept_json_field_stays_whole_and_nothing_else_does() {
    let r = Redactor::builder()
        .keep_json_field("request_id", is_request_id)
        .build()
        .expect("valid");
    // Whatever the id looks like in part, it stays whole in its field.
    for id in [
        "0192f3a4-5b6c-7d8e-9f01-23456789abcd",
        "client+020-7946-0958",
        "10.0.0.1:4711",
        "ops@acme.example",
    ] {
        let line = format!(r#"{{"span":{{"request_id":"{id}","name":"request"}},"msg":"ok"}}"#);
        assert_eq!(r.redact(&line), line, "{id}");
    }
    // The same values elsewhere in the line are redacted as before.
    let line = r#"{"request_id":"ops@acme.example","user":"ops@acme.example"}"#;
    assert_eq!(
        r.redact(line),
        r#"{"request_id":"ops@acme.example","user":"[REDACTED:email]"}"#
    );
    // A value outside the grammar, or with escapes, gets no pass.
    let line = r#"{"request_id":"call 020 7946 0958","msg":"ok"}"#;
    assert!(r.redact(line).contains("[REDACTED:phone]"));
    let line = r#"{"request_id":"a\"b ops@acme.example","msg":"ok"}"#;
    assert!(r.redact(line).contains("[REDACTED:email]"));
    // A field name inside a value cannot forge the key: its quotes are
    // escaped.
    let forged = r#"{"msg":"\"request_id\":\"ops@acme.example\""}"#;
    assert!(r.redact(forged).contains("[REDACTED:email]"));
    // Without the option, nothing is kept.
    let line = r#"{"request_id":"ops@acme.example"}"#;
    assert!(Redactor::new().redact(line).contains("[REDACTED:email]"));
}

mod properties {
    use proptest::prelude::*;

    use super::super::*;

    /// Pieces of log lines and PII, glued in any order with any separator.
    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("alice@example.com".to_owned()),
            Just("+44 20 7946 0958".to_owned()),
            Just("4111 1111 1111 1111".to_owned()),
            Just("DE89 3704 0044 0532 0130 00".to_owned()),
            Just("123-45-6789".to_owned()),
            Just("203.0.113.42".to_owned()),
            Just("2001:db8::1".to_owned()),
            Just("Bearer abc123def456ghi789".to_owned()),
            Just("12:30:45.123".to_owned()),
            Just("docaiche::server".to_owned()),
            "[ -~]{0,12}",
            "\\PC{0,6}",
        ]
    }

    proptest! {
        #[test]
        fn findings_are_ordered_disjoint_and_on_char_boundaries(
            pieces in prop::collection::vec(piece(), 0..8),
            separator in prop_oneof![Just(" "), Just(", "), Just(" é "), Just("\n")],
        ) {
            let text = pieces.join(separator);
            let redactor = Redactor::new();
            let findings = redactor.find(&text);
            for pair in findings.windows(2) {
                prop_assert!(pair[0].range.end <= pair[1].range.start);
            }
            for f in &findings {
                prop_assert!(text.is_char_boundary(f.range.start) && text.is_char_boundary(f.range.end));
            }
            let once = redactor.redact(&text).into_owned();
            // Redacting again finds nothing new to hide (truncated IPs stay
            // as they are). Pieces are separated: glued together
            // (`a@example.com+44…`), what a finding may touch changes once
            // its neighbour is replaced.
            prop_assert_eq!(redactor.redact(&once).into_owned(), once);
        }

        #[test]
        fn uuids_never_hold_a_phone_number(
            uuid in prop_oneof![
                "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                "[0-9]{8}-[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{12}",
                // Middle groups shaped like `0201-7946-0958`, a UK number.
                "[0-9a-f]{8}-0[1-9][0-9]{2}-[47][0-9]{3}-[0-9]{4}-[a-f][0-9a-f]{11}",
                "[0-9A-F]{8}-0[1-9][0-9]{2}-[0-9]{4}-[0-9]{4}-[A-F][0-9A-F]{11}",
            ],
            at in 0usize..4,
        ) {
            let line = match at {
                0 => uuid.clone(),
                1 => format!("request {uuid} failed"),
                2 => format!("request_id={uuid}"),
                _ => format!(r#"{{"request_id":"{uuid}"}}"#),
            };
            let redactor = Redactor::new();
            let phones: Vec<_> = redactor
                .find(&line)
                .into_iter()
                .filter(|f| f.kind == PiiKind::Phone)
                .collect();
            prop_assert!(phones.is_empty(), "{line}: {phones:?}");
            let kept = Redactor::builder()
                .keep_json_field("request_id", super::is_request_id)
                .build()
                .expect("valid");
            let json = format!(r#"{{"request_id":"{uuid}","msg":"x"}}"#);
            prop_assert_eq!(kept.redact(&json).into_owned(), json);
        }

        #[test]
        fn a_phone_number_glued_into_a_longer_token_is_not_one(
            // Letters where they touch the number: digits there would only
            // make a longer number.
            head in "[0-9A-Za-z]{0,11}[A-Za-z]",
            tail in "[A-Za-z][0-9A-Za-z]{0,11}",
            joint in prop_oneof![Just(""), Just("-"), Just("_")],
            phone in prop_oneof![
                Just("020 7946 0958"),
                Just("020-7946-0958"),
                Just("555-123-4567"),
                Just("01 23 45 67 89"),
                Just("07700 900123"),
            ],
            glue_head in any::<bool>(),
        ) {
            let token = if glue_head {
                format!("{head}{joint}{phone}")
            } else {
                format!("{phone}{joint}{tail}")
            };
            let line = format!("id {token} end");
            let phones: Vec<_> = Redactor::new()
                .find(&line)
                .into_iter()
                .filter(|f| f.kind == PiiKind::Phone)
                .collect();
            prop_assert!(phones.is_empty(), "{line}: {phones:?}");
        }

        #[test]
        fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
            let _ = Redactor::new().redact(&text);
        }
    }
}
