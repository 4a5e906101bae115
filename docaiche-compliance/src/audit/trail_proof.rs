//! Proofs about a trail that a third party checks without it: a record's
//! inclusion in a signed tree head ([`RecordProof`]), a later head's
//! extension of an earlier one ([`HeadConsistency`]), and the trees of a
//! file trail to make them from ([`TrailTrees`]).
//!
//! A [`RecordProof`] is a C2SP `tlog-proof` (`c2sp.org/tlog-proof@v1`): the
//! record line itself as the `extra` data (base64; the verifier checks it
//! against its own hash, whose 32 bytes are the leaf), its leaf index
//! (`seq - 1`), the inclusion path, and the tree head, self-contained:
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra eyJ2IjoxLCJzdHJlYW0iOiJhY21lIiwic2VxIjo0Miwi…
//! index 41
//! <base64 hash, lowest level first, one a line>
//!
//! <the tree head note>
//! ```
//!
//! A [`HeadConsistency`] has no C2SP format; it follows the same layout,
//! its two heads one after the other, so that sizes and roots always come
//! from signed heads, never from the proof:
//!
//! ```text
//! docaiche.audit/consistency-proof@v1
//! <base64 hash, RFC 9162 order, one a line>
//!
//! <the older tree head note>
//!
//! <the newer tree head note>
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use docaiche_core::{Error, Result};

use super::merkle::{
    ConsistencyProof, EMPTY_ROOT, Hash, InclusionProof, MerkleTree, verify_consistency,
    verify_inclusion,
};
use super::record::{CheckpointKey, ParsedLine, RecordFields, merkle_leaf, parse_line};
use super::tree_head::{MAX_NOTE_LEN, TreeHead};
use super::verify::{TrailLine, read_lines, trail_segments};

const TLOG_PROOF: &str = "c2sp.org/tlog-proof@v1";
const CONSISTENCY_PROOF: &str = "docaiche.audit/consistency-proof@v1";
/// Longest accepted proof text: a record line, 65 hashes, two notes.
const MAX_PROOF_TEXT: usize = 2 * super::record::MAX_LINE_LEN + 4 * MAX_NOTE_LEN;

fn malformed(why: &'static str) -> Error {
    Error::invalid_input(format!("not an audit proof: {why}"))
}

fn refused(why: impl Into<String>) -> Error {
    Error::invalid_input(format!("proof refused: {}", why.into()))
}

fn hash_lines(path: &[Hash]) -> String {
    path.iter()
        .map(|h| format!("{}\n", STANDARD.encode(h.as_bytes())))
        .collect()
}

fn parse_hash(line: &str) -> Result<Hash> {
    STANDARD
        .decode(line)
        .ok()
        .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
        .map(Hash::from_bytes)
        .ok_or(malformed("a path line is not 32 bytes of base64"))
}

/// Split `text` at its first blank line: what precedes it (lines) and the
/// rest.
fn split_header(text: &str) -> Result<(Vec<&str>, &str)> {
    let (header, rest) = text
        .split_once("\n\n")
        .ok_or(malformed("no blank line after the proof"))?;
    Ok((header.split('\n').collect(), rest))
}

/// That a record is in a signed tree head (the module docs give the text
/// form).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> docaiche_core::Result<()> {
/// use docaiche_compliance::audit::{
///     CheckpointKey, FileSinkConfig, JsonlFileSink, RecordProof, TrailTrees, TreeHeadPolicy,
/// };
/// use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditSink};
/// use docaiche_core::{RequestContext, TenantId};
///
/// # let dir = std::env::temp_dir().join(format!("proof-doc-{}", uuid::Uuid::new_v4()));
/// let path = dir.join("audit.jsonl");
/// let key = CheckpointKey::from_bytes("audit/checkpoint-key", &vec![7u8; 32].into())?;
/// let sink = JsonlFileSink::open(FileSinkConfig::new(&path)
///     .with_tree_heads(TreeHeadPolicy::new(key.clone(), "audit.example/eu")?))?;
/// let event = AuditEvent::new("document.read", AuditOutcome::Success,
///         time::OffsetDateTime::now_utc(), &RequestContext::new())
///     .by(TenantId::new("acme")?, None);
/// sink.record(&event).await?; // a new stream's first record is signed at once
/// drop(sink);
///
/// let trees = TrailTrees::from_path(&path)?;
/// let head = trees.latest_head("acme").expect("a signed head");
/// let proof = trees.prove_record(&path, "acme", 1, head)?;
/// let received = RecordProof::parse(&proof.to_text())?;
/// let fields = received.verify(&key, Some("audit.example/eu"))?;
/// assert_eq!((fields.stream.as_str(), fields.seq), ("acme", 1));
/// # std::fs::remove_dir_all(dir).ok(); Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordProof {
    /// The record line, as written.
    pub record: Vec<u8>,
    /// Its inclusion path in the head's tree.
    pub proof: InclusionProof,
    /// The signed head.
    pub tree_head: TreeHead,
}

impl RecordProof {
    /// A proof from its parts (not checked: see [`verify`](Self::verify)).
    #[must_use]
    pub const fn new(record: Vec<u8>, proof: InclusionProof, tree_head: TreeHead) -> Self {
        Self {
            record,
            proof,
            tree_head,
        }
    }

    /// The proof's text (C2SP `tlog-proof`).
    #[must_use]
    pub fn to_text(&self) -> String {
        format!(
            "{TLOG_PROOF}\nextra {}\nindex {}\n{}\n{}",
            STANDARD.encode(&self.record),
            self.proof.index,
            hash_lines(&self.proof.path),
            self.tree_head.to_note()
        )
    }

    /// Parse a proof's text. Nothing is verified here: see
    /// [`verify`](Self::verify).
    ///
    /// # Errors
    /// `InvalidInput` if `text` is not in the format.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_PROOF_TEXT {
            return Err(malformed("longer than the limit"));
        }
        let (header, note) = split_header(text)?;
        let mut lines = header.into_iter();
        if lines.next() != Some(TLOG_PROOF) {
            return Err(malformed("the first line is not c2sp.org/tlog-proof@v1"));
        }
        let record = lines
            .next()
            .and_then(|l| l.strip_prefix("extra "))
            .and_then(|b64| STANDARD.decode(b64).ok())
            .ok_or(malformed("no record in the extra line"))?;
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or(malformed("no index line"))?;
        let path = lines.map(parse_hash).collect::<Result<Vec<_>>>()?;
        if path.len() > super::merkle::MAX_PROOF_HASHES {
            return Err(malformed("more hashes than any proof holds"));
        }
        let tree_head = TreeHead::parse(note)?;
        Ok(Self {
            record,
            proof: InclusionProof::new(index, tree_head.size, path),
            tree_head,
        })
    }

    /// Verify the proof: the head is signed by `key` (and of the trail
    /// `origin`, if given), the record is intact (its own hash), belongs to
    /// the head's stream at the proof's index, and the path leads from it
    /// to the head's root. Returns the record's fields.
    ///
    /// # Errors
    /// `InvalidInput` naming the first check that failed.
    pub fn verify(&self, key: &CheckpointKey, origin: Option<&str>) -> Result<RecordFields> {
        let head = &self.tree_head;
        if !head.is_signed_by(key) {
            return Err(refused("the tree head's signature does not verify"));
        }
        if let Some(origin) = origin
            && head.trail_origin() != origin
        {
            return Err(refused(format!(
                "the tree head is of the trail {:?}, not {origin:?}",
                head.trail_origin()
            )));
        }
        let Ok(ParsedLine::Record(fields)) = parse_line(&self.record) else {
            return Err(refused(
                "the record was altered (it does not match its hash)",
            ));
        };
        if fields.stream != head.stream() {
            return Err(refused(
                "the record is of another stream than the tree head",
            ));
        }
        if fields.seq.checked_sub(1) != Some(self.proof.index) || self.proof.size != head.size {
            return Err(refused(
                "the record's sequence number is not the proof's index",
            ));
        }
        verify_inclusion(
            self.proof.index,
            head.size,
            &merkle_leaf(&fields.hash),
            &self.proof.path,
            &head.root,
        )
        .map_err(|e| refused(e.to_string()))?;
        Ok(fields)
    }
}

/// That a later tree head of a stream extends an earlier one (the module
/// docs give the text form).
///
/// ```no_run
/// use docaiche_compliance::audit::{CheckpointKey, HeadConsistency, TrailTrees};
/// # fn main() -> docaiche_core::Result<()> {
/// # let key = CheckpointKey::from_bytes("audit/checkpoint-key", &vec![7u8; 32].into())?;
/// let trees = TrailTrees::from_path("/var/lib/docaiche/audit.jsonl".as_ref())?;
/// let heads = trees.heads("acme");
/// let (kept, latest) = (&heads[0], &heads[heads.len() - 1]);
/// let text = trees.prove_consistency(kept, latest)?.to_text();
/// // Whoever kept the older head checks that the log only grew since:
/// HeadConsistency::parse(&text)?.verify(&key, Some("audit.example/eu"))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeadConsistency {
    /// The older head.
    pub old: TreeHead,
    /// The newer head.
    pub new: TreeHead,
    /// The consistency path (sizes from the heads).
    pub proof: ConsistencyProof,
}

impl HeadConsistency {
    /// The proof's text.
    #[must_use]
    pub fn to_text(&self) -> String {
        format!(
            "{CONSISTENCY_PROOF}\n{}\n{}\n{}",
            hash_lines(&self.proof.path),
            self.old.to_note(),
            self.new.to_note()
        )
    }

    /// Parse a proof's text. Nothing is verified here: see
    /// [`verify`](Self::verify).
    ///
    /// # Errors
    /// `InvalidInput` if `text` is not in the format.
    pub fn parse(text: &str) -> Result<Self> {
        if text.len() > MAX_PROOF_TEXT {
            return Err(malformed("longer than the limit"));
        }
        let (header, notes) = split_header(text)?;
        let mut lines = header.into_iter();
        if lines.next() != Some(CONSISTENCY_PROOF) {
            return Err(malformed(
                "the first line is not docaiche.audit/consistency-proof@v1",
            ));
        }
        let path = lines.map(parse_hash).collect::<Result<Vec<_>>>()?;
        if path.len() > super::merkle::MAX_PROOF_HASHES {
            return Err(malformed("more hashes than any proof holds"));
        }
        let mut heads = TreeHead::parse_history(notes)?.into_iter();
        let (Some(old), Some(new), None) = (heads.next(), heads.next(), heads.next()) else {
            return Err(malformed("not exactly two tree heads"));
        };
        Ok(Self {
            proof: ConsistencyProof::new(old.size, new.size, path),
            old,
            new,
        })
    }

    /// Verify the proof: both heads are signed by `key`, of one log (and of
    /// the trail `origin`, if given), in time order, and the newer tree
    /// extends the older one (RFC 9162 §2.1.4).
    ///
    /// # Errors
    /// `InvalidInput` naming the first check that failed.
    pub fn verify(&self, key: &CheckpointKey, origin: Option<&str>) -> Result<()> {
        let (old, new) = (&self.old, &self.new);
        if !old.is_signed_by(key) || !new.is_signed_by(key) {
            return Err(refused("a tree head's signature does not verify"));
        }
        if old.origin != new.origin {
            return Err(refused("the tree heads are of two different logs"));
        }
        if let Some(origin) = origin
            && old.trail_origin() != origin
        {
            return Err(refused(format!(
                "the tree heads are of the trail {:?}, not {origin:?}",
                old.trail_origin()
            )));
        }
        if new.time < old.time {
            return Err(refused(
                "the newer tree head was signed before the older one",
            ));
        }
        if self.proof.first != old.size || self.proof.second != new.size {
            return Err(refused("the proof's sizes are not the tree heads'"));
        }
        if old.size == 0 {
            // Every tree extends the empty one.
            return if old.root == EMPTY_ROOT && self.proof.path.is_empty() {
                Ok(())
            } else {
                Err(refused("an empty tree head with a root or a proof"))
            };
        }
        verify_consistency(old.size, new.size, &self.proof.path, &old.root, &new.root)
            .map_err(|e| refused(e.to_string()))
    }
}

/// One stream's tree and heads, as read from a trail.
#[derive(Debug, Default)]
struct StreamTrees {
    /// `None` once the stream is found not to start at 1 (pruned) or to
    /// have a gap.
    tree: Option<MerkleTree>,
    heads: Vec<TreeHead>,
}

/// The Merkle tree and the signed heads of every stream of a trail, read
/// once (64 bytes a record), to make proofs from. Lines are taken as they
/// are: verify the trail first ([`Verifier`](super::Verifier)); a stream
/// that does not start at record 1 or has a gap has no tree.
#[derive(Debug, Default)]
pub struct TrailTrees {
    streams: BTreeMap<String, StreamTrees>,
}

impl TrailTrees {
    /// The trees of `lines`, in trail order.
    ///
    /// # Errors
    /// Whatever reading a line fails with.
    pub fn from_lines<I>(lines: I) -> Result<Self>
    where
        I: IntoIterator<Item = Result<TrailLine>>,
    {
        let mut trees = Self::default();
        for line in lines {
            let line = line?;
            if !line.complete {
                continue;
            }
            match parse_line(&line.bytes) {
                Ok(ParsedLine::Record(r)) => {
                    let stream = trees
                        .streams
                        .entry(r.stream)
                        .or_insert_with(|| StreamTrees {
                            tree: (r.seq == 1).then(MerkleTree::new),
                            heads: Vec::new(),
                        });
                    if let Some(tree) = &mut stream.tree {
                        if tree.size() + 1 == r.seq {
                            tree.push(merkle_leaf(&r.hash));
                        } else {
                            stream.tree = None;
                        }
                    }
                }
                Ok(ParsedLine::TreeHead(head)) => {
                    trees
                        .streams
                        .entry(head.stream().to_owned())
                        .or_insert_with(|| StreamTrees {
                            tree: Some(MerkleTree::new()),
                            heads: Vec::new(),
                        })
                        .heads
                        .push(head);
                }
                _ => {}
            }
        }
        Ok(trees)
    }

    /// The trees of the file trail at `path` (every segment, oldest first).
    ///
    /// # Errors
    /// `NotFound` if there is no trail, `Unavailable` if it cannot be read.
    pub fn from_path(path: &Path) -> Result<Self> {
        let segments = trail_segments(path)?;
        if segments.is_empty() {
            return Err(Error::not_found("audit trail"));
        }
        let lines = segments
            .iter()
            .map(|segment| read_lines(segment))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten();
        Self::from_lines(lines)
    }

    /// The streams, in name order.
    pub fn streams(&self) -> impl Iterator<Item = &str> {
        self.streams.keys().map(String::as_str)
    }

    /// `stream`'s tree, if it could be rebuilt.
    #[must_use]
    pub fn tree(&self, stream: &str) -> Option<&MerkleTree> {
        self.streams.get(stream)?.tree.as_ref()
    }

    /// `stream`'s heads, in trail order.
    #[must_use]
    pub fn heads(&self, stream: &str) -> &[TreeHead] {
        self.streams.get(stream).map_or(&[], |s| s.heads.as_slice())
    }

    /// Every head of every stream, in stream then trail order (a history
    /// to keep).
    pub fn all_heads(&self) -> impl Iterator<Item = &TreeHead> {
        self.streams.values().flat_map(|s| s.heads.iter())
    }

    /// `stream`'s newest head.
    #[must_use]
    pub fn latest_head(&self, stream: &str) -> Option<&TreeHead> {
        self.heads(stream).last()
    }

    /// The proof that record `seq` of `stream` is in `head`'s tree, with
    /// the record line read back from the file trail at `path`.
    ///
    /// # Errors
    /// `NotFound` if the stream has no tree or the record is not in the
    /// trail, `InvalidInput` if `head` is not of `stream`, is too small for
    /// `seq` or does not match the trail's tree.
    pub fn prove_record(
        &self,
        path: &Path,
        stream: &str,
        seq: u64,
        head: &TreeHead,
    ) -> Result<RecordProof> {
        let tree = self.checked_tree(stream, head)?;
        let index = seq
            .checked_sub(1)
            .ok_or_else(|| Error::invalid_input("sequence numbers start at 1"))?;
        let proof = tree.inclusion_proof(index, head.size)?;
        let (record, hash) = find_record(path, stream, seq)?;
        if tree.leaf(index) != Some(merkle_leaf(&hash)) {
            return Err(Error::conflict(
                "the trail changed while the proof was made",
            ));
        }
        Ok(RecordProof {
            record,
            proof,
            tree_head: head.clone(),
        })
    }

    /// The proof that `new` extends `old` (two heads of one stream).
    ///
    /// # Errors
    /// `InvalidInput` if they are of different streams, out of order, or
    /// do not match the trail's tree; `NotFound` if the stream has no tree.
    pub fn prove_consistency(&self, old: &TreeHead, new: &TreeHead) -> Result<HeadConsistency> {
        if old.origin != new.origin {
            return Err(Error::invalid_input(
                "the tree heads are of two different logs",
            ));
        }
        let tree = self.checked_tree(new.stream(), new)?;
        self.checked_tree(old.stream(), old)?;
        let proof = if old.size == 0 {
            ConsistencyProof::new(0, new.size, Vec::new())
        } else {
            tree.consistency_proof(old.size, new.size)?
        };
        Ok(HeadConsistency {
            old: old.clone(),
            new: new.clone(),
            proof,
        })
    }

    /// `stream`'s tree, once `head` is known to be of that stream and to
    /// match it.
    fn checked_tree(&self, stream: &str, head: &TreeHead) -> Result<&MerkleTree> {
        if head.stream() != stream {
            return Err(Error::invalid_input("the tree head is of another stream"));
        }
        let tree = self
            .tree(stream)
            .ok_or_else(|| Error::not_found("a rebuilt tree of that audit stream"))?;
        if tree.root_at(head.size)? != head.root {
            return Err(Error::invalid_input(
                "the tree head does not match the trail's tree",
            ));
        }
        Ok(tree)
    }
}

/// The line and hash of record `seq` of `stream` in the file trail at
/// `path`.
fn find_record(path: &Path, stream: &str, seq: u64) -> Result<(Vec<u8>, Hash)> {
    for segment in trail_segments(path)? {
        for line in read_lines(&segment)? {
            let line = line?;
            if let Ok(ParsedLine::Record(r)) = parse_line(&line.bytes)
                && r.stream == stream
                && r.seq == seq
            {
                return Ok((line.bytes, r.hash));
            }
        }
    }
    Err(Error::not_found("audit record"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audit::record::{Head, encode_record};
    use crate::audit::verify::Location;

    fn key(byte: u8) -> CheckpointKey {
        CheckpointKey::from_bytes("audit/checkpoint-key", &vec![byte; 32].into()).unwrap()
    }

    /// Lines of one stream `s` of `n` records, with a head after each.
    fn trail(n: u64) -> Vec<Vec<u8>> {
        let mut head = Head::EMPTY;
        let mut tree = MerkleTree::new();
        let mut lines = Vec::new();
        for i in 0..n {
            let record = encode_record("s", head, format!("{{\"i\":{i}}}").as_bytes()).unwrap();
            head = Head::new(record.seq, record.hash);
            tree.push(merkle_leaf(&record.hash));
            lines.push(record.line);
            let at = time::OffsetDateTime::UNIX_EPOCH
                + time::Duration::seconds(i64::try_from(i).unwrap());
            let signed = TreeHead::sign(&key(1), "o/s", tree.size(), tree.root(), at).unwrap();
            lines.push(signed.to_line());
        }
        lines
    }

    fn trees(lines: &[Vec<u8>]) -> TrailTrees {
        TrailTrees::from_lines(lines.iter().enumerate().map(|(i, l)| {
            Ok(TrailLine::complete(
                Location::new("mem", i as u64),
                l.clone(),
            ))
        }))
        .unwrap()
    }

    #[test]
    fn record_proofs_round_trip_and_verify_only_as_made() {
        let lines = trail(9);
        let trees = trees(&lines);
        let head = trees.latest_head("s").unwrap().clone();
        let tree = trees.tree("s").unwrap();
        let proof = RecordProof {
            record: lines[2 * 4].clone(),
            proof: tree.inclusion_proof(4, head.size).unwrap(),
            tree_head: head.clone(),
        };
        let parsed = RecordProof::parse(&proof.to_text()).unwrap();
        assert_eq!(parsed, proof);
        assert_eq!(parsed.verify(&key(1), Some("o")).unwrap().seq, 5);
        assert!(parsed.verify(&key(2), None).is_err());
        assert!(parsed.verify(&key(1), Some("other")).is_err());
        let mut other_record = parsed.clone();
        other_record.record = lines[2 * 5].clone();
        assert!(other_record.verify(&key(1), None).is_err());
        let mut moved = parsed.clone();
        moved.proof.index = 3;
        assert!(moved.verify(&key(1), None).is_err());
        let mut altered = parsed;
        altered.record[20] ^= 1;
        assert!(altered.verify(&key(1), None).is_err());
    }

    #[test]
    fn consistency_proofs_round_trip_and_verify_only_as_made() {
        let lines = trail(9);
        let trees = trees(&lines);
        let heads = trees.heads("s");
        for old in heads {
            for new in heads.iter().filter(|h| h.size >= old.size) {
                let proof = trees.prove_consistency(old, new).unwrap();
                let parsed = HeadConsistency::parse(&proof.to_text()).unwrap();
                assert_eq!(parsed, proof);
                parsed.verify(&key(1), Some("o")).unwrap();
                assert!(parsed.verify(&key(2), None).is_err());
                if old.size < new.size {
                    let swapped = HeadConsistency {
                        old: new.clone(),
                        new: old.clone(),
                        proof: parsed.proof.clone(),
                    };
                    assert!(swapped.verify(&key(1), None).is_err());
                }
            }
        }
    }

    #[test]
    fn malformed_proof_texts_are_refused() {
        for bad in [
            "",
            "c2sp.org/tlog-proof@v1\n",
            "c2sp.org/tlog-proof@v1\nextra !!\nindex 0\n\nx\n\n\u{2014} k AAAAAA==\n",
            "c2sp.org/tlog-proof@v1\nextra AA==\nindex -1\n\n",
            "docaiche.audit/consistency-proof@v1\nAA==\n\n",
            "docaiche.audit/consistency-proof@v1\n\n",
        ] {
            assert!(RecordProof::parse(bad).is_err(), "{bad:?}");
            assert!(HeadConsistency::parse(bad).is_err(), "{bad:?}");
        }
    }
}
