//! Property tests of `verify`: over random trails (several interleaved
//! tenant streams), every single edit of each kind is found, at the line
//! where it is, with the right kind.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod audit_common;

use std::collections::HashMap;

use audit_common::{event, fields};
use docaiche_compliance::audit::record::{self, Head};
use docaiche_compliance::audit::{Location, TamperKind, TrailLine, Verifier, VerifyReport};
use proptest::prelude::*;

const TENANTS: [&str; 3] = ["a", "b", "c"];

/// A trail whose i-th record belongs to `TENANTS[owners[i]]`.
fn trail(owners: &[usize]) -> Vec<Vec<u8>> {
    let mut heads: HashMap<&str, Head> = HashMap::new();
    owners
        .iter()
        .enumerate()
        .map(|(i, &owner)| {
            let tenant = TENANTS[owner];
            let head = heads.get(tenant).copied().unwrap_or(Head::EMPTY);
            let json = record::event_json(&event(tenant, i)).unwrap();
            let encoded = record::encode_record(tenant, head, &json).unwrap();
            heads.insert(tenant, Head::new(encoded.seq, encoded.hash));
            encoded.line
        })
        .collect()
}

fn verify(lines: &[Vec<u8>]) -> VerifyReport {
    Verifier::new()
        .verify(lines.iter().enumerate().map(|(i, l)| {
            Ok(TrailLine::complete(
                Location::new("mem", i as u64 + 1),
                l.clone(),
            ))
        }))
        .unwrap()
}

fn at(report: &VerifyReport) -> (TamperKind, usize) {
    let t = report.tamper.as_ref().expect("tampering found");
    (t.kind, t.location.line as usize - 1)
}

fn owners() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..TENANTS.len(), 4..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn untouched_trails_verify(owners in owners()) {
        let report = verify(&trail(&owners));
        prop_assert!(report.is_ok());
        prop_assert_eq!(report.records, owners.len() as u64);
    }

    #[test]
    fn a_flipped_byte_is_modified_at_its_line(owners in owners(), line in any::<prop::sample::Index>(), byte in any::<prop::sample::Index>(), mask in 1u8..) {
        let mut lines = trail(&owners);
        let i = line.index(lines.len());
        let b = byte.index(lines[i].len());
        lines[i][b] ^= mask;
        prop_assert_eq!(at(&verify(&lines)), (TamperKind::Modified, i));
    }

    #[test]
    fn a_deleted_record_is_removed_at_the_next_of_its_stream(owners in owners(), line in any::<prop::sample::Index>()) {
        let mut lines = trail(&owners);
        let i = line.index(lines.len());
        let stream = fields(&lines[i]).stream;
        lines.remove(i);
        let next = lines[i..].iter().position(|l| fields(l).stream == stream);
        let report = verify(&lines);
        match next {
            Some(offset) => prop_assert_eq!(at(&report), (TamperKind::Removed, i + offset)),
            // The last record of a stream leaves no gap: that is what
            // signed checkpoints are for.
            None => prop_assert!(report.is_ok()),
        }
    }

    #[test]
    fn a_copy_inserted_after_its_original_is_inserted_at_the_copy(owners in owners(), from in any::<prop::sample::Index>(), to in any::<prop::sample::Index>()) {
        let mut lines = trail(&owners);
        let i = from.index(lines.len());
        let p = i + 1 + to.index(lines.len() - i);
        lines.insert(p, lines[i].clone());
        prop_assert_eq!(at(&verify(&lines)), (TamperKind::Inserted, p));
    }

    #[test]
    fn a_copy_inserted_before_its_original_is_inserted(owners in owners(), from in any::<prop::sample::Index>(), to in any::<prop::sample::Index>()) {
        let mut lines = trail(&owners);
        let i = from.index(lines.len());
        let p = to.index(i + 1);
        lines.insert(p, lines[i].clone());
        let (kind, line) = at(&verify(&lines));
        prop_assert_eq!(kind, TamperKind::Inserted);
        // Copy and original are the same bytes: either may be named.
        prop_assert!(line == p || line == i + 1, "line {} (copy {}, original {})", line, p, i + 1);
    }

    #[test]
    fn two_records_of_a_stream_swapped_are_reordered_at_the_first(owners in owners(), first in any::<prop::sample::Index>(), second in any::<prop::sample::Index>()) {
        let mut lines = trail(&owners);
        let i = first.index(lines.len());
        let stream = fields(&lines[i]).stream;
        let same: Vec<usize> = (i + 1..lines.len()).filter(|&j| fields(&lines[j]).stream == stream).collect();
        prop_assume!(!same.is_empty());
        let j = same[second.index(same.len())];
        lines.swap(i, j);
        prop_assert_eq!(at(&verify(&lines)), (TamperKind::Reordered, i));
    }
}
