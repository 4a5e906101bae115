//! Shared by the audit test binaries: events, and the four tampering
//! scenarios expressed over a trail as a list of lines, so the file and the
//! PostgreSQL suites apply the very same edits.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod mutation;

use docaiche_compliance::audit::record::{self, Head, ParsedLine};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource};
use docaiche_core::{PrincipalId, RequestContext, TenantId};

/// An event of `tenant`, numbered `i`.
pub fn event(tenant: &str, i: usize) -> AuditEvent {
    let context = RequestContext::new()
        .with_request_id(format!("req-{i}"))
        .with_user_agent("audit-test/1.0");
    AuditEvent::new(
        format!("document.read.{i}"),
        AuditOutcome::Success,
        time::OffsetDateTime::from_unix_timestamp(1_700_000_000 + i64::try_from(i).unwrap())
            .unwrap(),
        &context,
    )
    .by(
        TenantId::new(tenant).unwrap(),
        Some(PrincipalId::new("alice").unwrap()),
    )
    .on(AuditResource::new("document", format!("doc-{i}")))
    .with_detail("pages", serde_json::json!(i))
}

/// The fields of a record line (panics on a checkpoint).
pub fn fields(line: &[u8]) -> record::RecordFields {
    match record::parse_line(line).expect("a valid line") {
        ParsedLine::Record(r) => r,
        other => panic!("not a record: {other:?}"),
    }
}

/// Index of the first record line of `stream` with `seq`.
pub fn find(lines: &[Vec<u8>], stream: &str, seq: u64) -> usize {
    lines
        .iter()
        .position(|l| {
            matches!(record::parse_line(l), Ok(ParsedLine::Record(r)) if r.stream == stream && r.seq == seq)
        })
        .expect("record present")
}

/// Flip one byte inside the event of line `at`.
pub fn flip_byte(lines: &mut [Vec<u8>], at: usize) {
    let line = &mut lines[at];
    let pos = line
        .windows(9)
        .position(|w| w == b"document.")
        .expect("an action")
        + 3;
    line[pos] ^= 0x20;
}

/// A record a well-informed forger would write: the next sequence number
/// of `stream` after `head`, linked to it, with a correct hash.
pub fn forge(stream: &str, head: Head, i: usize) -> Vec<u8> {
    let json = record::event_json(&event(stream, i)).unwrap();
    record::encode_record(stream, head, &json).unwrap().line
}
