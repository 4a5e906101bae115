//! The mutation suite of a verifiable trail, over its lines (file lines or
//! table rows alike): every way of altering it that the issue names, each
//! of which the verifier, given the key, the trail's origin and the tree
//! heads an auditor kept, must detect.

use docaiche_compliance::audit::record::{self, ParsedLine};
use docaiche_compliance::audit::{CheckpointKey, TreeHead};
use docaiche_core::SecretBytes;

/// The kinds of alteration, as the issue names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mutation {
    ByteFlip,
    DeletedRecord,
    ReorderedRecords,
    TruncatedTail,
    SplicedTrails,
    ReplayedCheckpoint,
    ForgedCheckpointSignature,
}

/// One altered trail.
#[derive(Debug, Clone)]
pub struct Mutant {
    pub mutation: Mutation,
    pub what: String,
    pub lines: Vec<Vec<u8>>,
}

fn parsed(line: &[u8]) -> Option<ParsedLine> {
    record::parse_line(line).ok()
}

fn record_of(line: &[u8]) -> Option<(String, u64)> {
    match parsed(line)? {
        ParsedLine::Record(r) => Some((r.stream, r.seq)),
        _ => None,
    }
}

fn tree_head_of(line: &[u8]) -> Option<TreeHead> {
    match parsed(line)? {
        ParsedLine::TreeHead(h) => Some(h),
        _ => None,
    }
}

/// Every byte of the first line of each kind (records, JSON checkpoints,
/// tree heads) flipped, then every `stride`-th byte of the whole trail, the
/// bit flipped turning with the position so every bit position is tried.
fn byte_flips(lines: &[Vec<u8>], stride: usize) -> Vec<Mutant> {
    let mut out = Vec::new();
    let mut kinds_done = Vec::new();
    let mut offset = 0;
    for (i, line) in lines.iter().enumerate() {
        let kind = match parsed(line) {
            Some(ParsedLine::Record(_)) => "record",
            Some(ParsedLine::Checkpoint(_)) => "checkpoint",
            Some(ParsedLine::TreeHead(_)) => "tree head",
            _ => "other",
        };
        let every = !kinds_done.contains(&kind);
        kinds_done.push(kind);
        for pos in 0..line.len() {
            if every || (offset + pos) % stride == 0 {
                let mut altered = lines.to_vec();
                altered[i][pos] ^= 1 << ((offset + pos) % 8);
                out.push(Mutant {
                    mutation: Mutation::ByteFlip,
                    what: format!("{kind} line {}, byte {pos}", i + 1),
                    lines: altered,
                });
            }
        }
        offset += line.len() + 1;
    }
    out
}

/// Each record removed, one at a time.
fn deleted_records(lines: &[Vec<u8>]) -> Vec<Mutant> {
    (0..lines.len())
        .filter(|&i| record_of(&lines[i]).is_some())
        .map(|i| {
            let mut altered = lines.to_vec();
            altered.remove(i);
            Mutant {
                mutation: Mutation::DeletedRecord,
                what: format!("record line {} deleted", i + 1),
                lines: altered,
            }
        })
        .collect()
}

/// Each record swapped with the next record of its stream, and each record
/// moved past the next tree head of its stream.
fn reordered_records(lines: &[Vec<u8>]) -> Vec<Mutant> {
    let mut out = Vec::new();
    for i in 0..lines.len() {
        let Some((stream, seq)) = record_of(&lines[i]) else {
            continue;
        };
        if let Some(j) = (i + 1..lines.len())
            .find(|&j| record_of(&lines[j]).is_some_and(|(s, q)| s == stream && q == seq + 1))
        {
            let mut altered = lines.to_vec();
            altered.swap(i, j);
            out.push(Mutant {
                mutation: Mutation::ReorderedRecords,
                what: format!("records {stream}#{seq} and #{} swapped", seq + 1),
                lines: altered,
            });
        }
        if let Some(j) = (i + 1..lines.len())
            .find(|&j| tree_head_of(&lines[j]).is_some_and(|h| h.stream() == stream))
        {
            let mut altered = lines.to_vec();
            let moved = altered.remove(i);
            altered.insert(j, moved);
            out.push(Mutant {
                mutation: Mutation::ReorderedRecords,
                what: format!("record {stream}#{seq} moved past its stream's next tree head"),
                lines: altered,
            });
        }
    }
    out
}

/// The trail cut after each of its lines but the last, and each tree head
/// line removed.
fn truncated_tails(lines: &[Vec<u8>]) -> Vec<Mutant> {
    let mut out: Vec<Mutant> = (0..lines.len())
        .map(|keep| Mutant {
            mutation: Mutation::TruncatedTail,
            what: format!("cut after line {keep}"),
            lines: lines[..keep].to_vec(),
        })
        .collect();
    for i in 0..lines.len() {
        if tree_head_of(&lines[i]).is_some() {
            let mut altered = lines.to_vec();
            altered.remove(i);
            out.push(Mutant {
                mutation: Mutation::TruncatedTail,
                what: format!("tree head line {} removed", i + 1),
                lines: altered,
            });
        }
    }
    out
}

/// The head of this trail followed by the tail of `other`, at several
/// points of each, and the whole of `other` in place of this trail.
fn spliced(lines: &[Vec<u8>], other: &[Vec<u8>], label: &str) -> Vec<Mutant> {
    let mut out = Vec::new();
    let step_a = (lines.len() / 6).max(1);
    let step_b = (other.len() / 6).max(1);
    for cut_a in (0..=lines.len()).step_by(step_a) {
        for cut_b in (0..other.len()).step_by(step_b) {
            let mut altered = lines[..cut_a].to_vec();
            altered.extend_from_slice(&other[cut_b..]);
            if altered == lines {
                continue;
            }
            out.push(Mutant {
                mutation: Mutation::SplicedTrails,
                what: format!(
                    "{cut_a} lines of this trail, then {label} from line {}",
                    cut_b + 1
                ),
                lines: altered,
            });
        }
    }
    out
}

/// Each tree head copied after the next record of its stream, and after
/// the stream's next head (a later one of the same size: an idle head),
/// and at the end of the trail when it is not the stream's last.
fn replayed_heads(lines: &[Vec<u8>]) -> Vec<Mutant> {
    let mut out = Vec::new();
    for i in 0..lines.len() {
        let Some(head) = tree_head_of(&lines[i]) else {
            continue;
        };
        let stream = head.stream().to_owned();
        let next_record =
            (i + 1..lines.len()).find(|&j| record_of(&lines[j]).is_some_and(|(s, _)| s == stream));
        let next_head = (i + 1..lines.len())
            .find(|&j| tree_head_of(&lines[j]).is_some_and(|h| h.stream() == stream));
        for (after, why) in [
            (next_record, "after the next record of its stream"),
            (next_head, "after the next tree head of its stream"),
            (
                next_record.or(next_head).map(|_| lines.len() - 1),
                "at the end",
            ),
        ] {
            if let Some(after) = after {
                let mut altered = lines.to_vec();
                altered.insert(after + 1, lines[i].clone());
                out.push(Mutant {
                    mutation: Mutation::ReplayedCheckpoint,
                    what: format!("tree head line {} replayed {why}", i + 1),
                    lines: altered,
                });
            }
        }
    }
    out
}

/// Another key, of the same name.
pub fn forger_key() -> CheckpointKey {
    CheckpointKey::from_bytes("audit/checkpoint-key", &SecretBytes::from(vec![0x66u8; 32])).unwrap()
}

/// Each tree head and checkpoint with its signature forged: re-signed by
/// another key under the same name, its MAC's bytes changed, and a head
/// with another root signed by the other key.
fn forged_signatures(lines: &[Vec<u8>]) -> Vec<Mutant> {
    let mut out = Vec::new();
    let forger = forger_key();
    for i in 0..lines.len() {
        if let Some(head) = tree_head_of(&lines[i]) {
            let resigned =
                TreeHead::sign(&forger, &head.origin, head.size, head.root, head.time).unwrap();
            let mut other_root = *head.root.as_bytes();
            other_root[0] ^= 1;
            let rerooted = TreeHead::sign(
                &forger,
                &head.origin,
                head.size,
                record::Hash::from_bytes(other_root),
                head.time,
            )
            .unwrap();
            // The MAC is the last 32 bytes of the signature: change a
            // base64 digit near the end of the line.
            let mut tweaked = lines[i].clone();
            let at = tweaked.len() - 6;
            tweaked[at] = if tweaked[at] == b'A' { b'B' } else { b'A' };
            for (what, line) in [
                ("re-signed with another key", resigned.to_line()),
                (
                    "with another root, signed with another key",
                    rerooted.to_line(),
                ),
                ("with a changed MAC", tweaked),
            ] {
                let mut altered = lines.to_vec();
                altered[i] = line;
                out.push(Mutant {
                    mutation: Mutation::ForgedCheckpointSignature,
                    what: format!("tree head line {} {what}", i + 1),
                    lines: altered,
                });
            }
        }
        if matches!(parsed(&lines[i]), Some(ParsedLine::Checkpoint(_))) {
            let mut altered = lines.to_vec();
            let line = &mut altered[i];
            let at = line.len() - 4;
            line[at] = if line[at] == b'0' { b'1' } else { b'0' };
            out.push(Mutant {
                mutation: Mutation::ForgedCheckpointSignature,
                what: format!("checkpoint line {} with a changed MAC", i + 1),
                lines: altered,
            });
        }
    }
    out
}

/// The whole suite over `lines`, with `other` (another trail) and
/// `same_origin_other` (a different trail written under this trail's
/// origin and key) to splice from.
pub fn mutants(
    lines: &[Vec<u8>],
    other: &[Vec<u8>],
    same_origin_other: &[Vec<u8>],
    flip_stride: usize,
) -> Vec<Mutant> {
    let mut out = byte_flips(lines, flip_stride);
    out.extend(deleted_records(lines));
    out.extend(reordered_records(lines));
    out.extend(truncated_tails(lines));
    out.extend(spliced(lines, other, "another trail"));
    out.extend(spliced(
        lines,
        same_origin_other,
        "another trail of the same origin",
    ));
    out.extend(replayed_heads(lines));
    out.extend(forged_signatures(lines));
    out
}

/// The tree heads a trail holds, in order: what an auditor exports.
pub fn tree_heads(lines: &[Vec<u8>]) -> Vec<TreeHead> {
    lines.iter().filter_map(|l| tree_head_of(l)).collect()
}
