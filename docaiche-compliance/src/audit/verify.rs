//! Walking a trail: the first record that was modified, removed, inserted
//! or reordered.
//!
//! The walk is one pass with a bounded look-ahead ([`LOOK_AHEAD`] lines),
//! so memory stays bounded however long the trail: a record is classified
//! by what the chain expects next in its stream and by what follows it.
//!
//! | what the walk sees at a record | verdict |
//! |---|---|
//! | bytes do not hash to its `hash`, or not a record at all | [`TamperKind::Modified`] |
//! | the expected `seq` but a `prev` that is not the previous record's hash | `Modified` (or `Inserted` when the genuine record follows) |
//! | the expected `seq` twice, this one not linked to by the next record | [`TamperKind::Inserted`] |
//! | a `seq` already passed | `Inserted` |
//! | a `seq` past the expected one, the expected one further on | [`TamperKind::Reordered`] |
//! | a `seq` past the expected one, the expected one nowhere | [`TamperKind::Removed`] |
//! | a checkpoint whose MAC does not verify | [`TamperKind::BadCheckpoint`] |
//! | a checkpoint naming a head the chain does not have | `Modified` (the chain was rewritten) or `Removed` |
//! | a tree head whose signature does not verify, or of another trail's origin | `BadCheckpoint` |
//! | a tree head larger than its stream, or whose root the records do not hash to | `Removed`, `Modified` |
//! | a tree head smaller than its stream, or older than the stream's last one | [`TamperKind::Replayed`] |
//! | a tree head of the auditor's history ([`Verifier::with_history`]) missing from the trail, or whose root the trail's tree at that size does not have | `Removed`, `Modified` |
//!
//! A last line without its newline is a write cut short by a crash: it was
//! never acknowledged, so it is reported as [`VerifyReport::torn_tail`], not
//! as tampering. What the chain alone cannot show: records cut off the end
//! after the last checkpoint, and records appended by someone who can
//! compute SHA-256. Checkpoints signed with a key the writer of the trail
//! does not hold close both gaps up to the last checkpoint; the tree heads
//! an auditor kept ([`Verifier::with_history`]) close the first for good: a
//! trail cut back before any of them, or rewritten and re-signed, no longer
//! holds it.
//!
//! Tree heads are checked against a Merkle tree the walk keeps per stream
//! (a [`Frontier`]: at most 64 hashes a stream): leaf `seq - 1` holds
//! record `seq`'s hash ([`merkle_leaf`](super::record::merkle_leaf)). A stream whose first records retention removed
//! has no tree to check against; its heads count in
//! [`VerifyReport::tree_heads_pruned`] (their signatures are still
//! checked, and its chain starts at the signed anchor).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use docaiche_core::{Error, Result};

use time::OffsetDateTime;

use super::anchor::Anchor;
use super::merkle::{EMPTY_ROOT, Frontier};
use super::record::{
    CheckpointKey, Head, LineDefect, MAX_LINE_LEN, ParsedLine, RecordFields, merkle_leaf,
    parse_line,
};
use super::tree_head::TreeHead;

/// How many lines the walk looks ahead to tell a reordering from a removal
/// and a genuine record from an inserted copy.
pub const LOOK_AHEAD: usize = 4096;

/// Where a line is: a file and 1-based line number, or a table and row id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Location {
    /// File path or `postgres:<table>`.
    pub source: String,
    /// 1-based line number, or the row id.
    pub line: u64,
}

impl Location {
    /// A location.
    pub fn new(source: impl Into<String>, line: u64) -> Self {
        Self {
            source: source.into(),
            line,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.source, self.line)
    }
}

/// One line of a trail, as read.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TrailLine {
    /// Where it is.
    pub location: Location,
    /// Its bytes, without the newline.
    pub bytes: Vec<u8>,
    /// Whether it ended with a newline (rows always do).
    pub complete: bool,
    /// Whether it was longer than [`MAX_LINE_LEN`] (then `bytes` is empty).
    pub too_long: bool,
}

impl TrailLine {
    /// A complete line (a row, or a newline-terminated line).
    pub fn complete(location: Location, bytes: Vec<u8>) -> Self {
        Self {
            location,
            bytes,
            complete: true,
            too_long: false,
        }
    }
}

/// The kind of tampering found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TamperKind {
    /// The record's bytes were changed (or it is not a record).
    Modified,
    /// Records before this one are missing (a gap in the sequence).
    Removed,
    /// This record does not belong: a copy, or a forgery beside the genuine one.
    Inserted,
    /// This record is out of place: one it should follow comes later.
    Reordered,
    /// A checkpoint or tree head whose MAC does not verify under the key,
    /// or a tree head of another trail.
    BadCheckpoint,
    /// A tree head older than one already seen: smaller than its stream,
    /// or signed earlier than the stream's previous head.
    Replayed,
}

impl TamperKind {
    /// A stable snake-case name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Modified => "modified",
            Self::Removed => "removed",
            Self::Inserted => "inserted",
            Self::Reordered => "reordered",
            Self::BadCheckpoint => "bad_checkpoint",
            Self::Replayed => "replayed",
        }
    }
}

impl fmt::Display for TamperKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The first problem found in a trail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Tamper {
    /// What kind.
    pub kind: TamperKind,
    /// Where the first bad line is.
    pub location: Location,
    /// The stream (tenant), when the line could be read.
    pub stream: Option<String>,
    /// The sequence number the line claims, when it could be read.
    pub seq: Option<u64>,
    /// A human explanation.
    pub detail: String,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} record at {}", self.kind, self.location)?;
        if let (Some(stream), Some(seq)) = (&self.stream, self.seq) {
            write!(f, " (stream {stream}, seq {seq})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// What a walk found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Records read up to the first problem (or all).
    pub records: u64,
    /// Checkpoints read.
    pub checkpoints: u64,
    /// Checkpoints whose MAC was checked and verified.
    pub checkpoints_verified: u64,
    /// Tree heads read (each matched its stream's tree, unless counted in
    /// [`tree_heads_pruned`](Self::tree_heads_pruned)).
    pub tree_heads: u64,
    /// Tree heads whose signature was checked and verified.
    pub tree_heads_verified: u64,
    /// Tree heads of streams whose start retention removed: their root
    /// could not be recomputed.
    pub tree_heads_pruned: u64,
    /// Tree heads of the history given with [`Verifier::with_history`]
    /// found in the trail.
    pub history_matched: u64,
    /// The head of each stream reached.
    pub heads: BTreeMap<String, Head>,
    /// A last line cut short by a crash (never acknowledged; not tampering).
    pub torn_tail: Option<Location>,
    /// Whether the walk started from a retention [`Anchor`] whose MAC
    /// verified under the key (an anchor that does not verify is ignored:
    /// its streams then start at genesis, and a pruned start is reported
    /// as [`TamperKind::Removed`]).
    pub anchored: bool,
    /// The first problem, if any.
    pub tamper: Option<Tamper>,
}

impl VerifyReport {
    /// Whether no tampering was found.
    #[must_use]
    pub const fn is_ok(&self) -> bool {
        self.tamper.is_none()
    }
}

/// Walks trails. Without a key, checkpoint MACs are not checked (only
/// whether they agree with the chain), and the report says so through
/// [`VerifyReport::checkpoints_verified`].
#[derive(Debug, Clone, Default)]
pub struct Verifier {
    key: Option<CheckpointKey>,
    allow_pruned_start: bool,
    anchors: Vec<Anchor>,
    anchor_key: Option<CheckpointKey>,
    origin: Option<String>,
    history: Vec<TreeHead>,
}

struct Pending {
    line: TrailLine,
    parsed: std::result::Result<ParsedLine, LineDefect>,
}

/// A stream's Merkle tree as the walk rebuilds it.
#[derive(Debug)]
struct StreamTree {
    /// `None` when the stream's start is not in the trail.
    frontier: Option<Frontier>,
    /// Size and time of the stream's last head.
    last_head: Option<(u64, OffsetDateTime)>,
}

/// What the walk keeps to check tree heads.
#[derive(Debug, Default)]
struct Trees {
    streams: BTreeMap<String, StreamTree>,
    /// The trail's origin: the verifier's, or the first head's.
    origin: Option<String>,
    /// Per stream and size, the history heads (by index) to check there.
    wanted: BTreeMap<String, BTreeMap<u64, Vec<usize>>>,
    /// Which history heads the trail holds.
    seen: Vec<bool>,
    /// The last line read (where a missing history head is reported).
    last_location: Option<Location>,
}

/// A walk in progress: [`push`](Walk::push) lines in trail order, then
/// [`finish`](Walk::finish).
#[derive(Debug)]
pub struct Walk<'a> {
    verifier: &'a Verifier,
    window: VecDeque<Pending>,
    report: VerifyReport,
    trees: Trees,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending")
            .field("location", &self.line.location)
            .finish()
    }
}

impl Walk<'_> {
    /// Add the next line. Returns `false` once tampering was found (further
    /// lines change nothing).
    pub fn push(&mut self, mut line: TrailLine) -> bool {
        if self.report.tamper.is_some() {
            return false;
        }
        let parsed = if line.too_long {
            Err(LineDefect::TooLong)
        } else {
            parse_line(&line.bytes)
        };
        // The look-ahead keeps what was parsed, not the bytes.
        line.bytes = Vec::new();
        self.trees.last_location = Some(line.location.clone());
        self.window.push_back(Pending { line, parsed });
        while self.window.len() > LOOK_AHEAD {
            if !self.step_front(false) {
                return false;
            }
        }
        true
    }

    /// The end of the trail: classify what is left and report.
    #[must_use]
    pub fn finish(mut self) -> VerifyReport {
        while !self.window.is_empty() {
            let last = self.window.len() == 1;
            if !self.step_front(last) {
                break;
            }
        }
        if self.report.tamper.is_none() {
            self.report.tamper = self.verifier.missing_history(&self.trees, &self.report);
        }
        self.report
    }

    fn step_front(&mut self, last: bool) -> bool {
        let Some(current) = self.window.pop_front() else {
            return true;
        };
        match self.verifier.step(
            &mut self.report,
            &mut self.trees,
            &current,
            &self.window,
            last,
        ) {
            Some(tamper) => {
                self.report.tamper = Some(tamper);
                self.window.clear();
                false
            }
            None => true,
        }
    }
}

impl Verifier {
    /// A verifier that does not check checkpoint MACs.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Check checkpoint MACs with `key`.
    #[must_use]
    pub fn with_key(mut self, key: CheckpointKey) -> Self {
        self.key = Some(key);
        self
    }

    /// Accept streams that start after sequence 1 (the older records were
    /// removed by retention). Off by default: a missing start is reported
    /// as [`TamperKind::Removed`].
    #[must_use]
    pub const fn allow_pruned_start(mut self, allow: bool) -> Self {
        self.allow_pruned_start = allow;
        self
    }

    /// Start streams where `anchor` says retention cut them (the record
    /// after `anchor`'s head, linked to its hash), provided the anchor's
    /// MAC verifies under the key given with [`Verifier::with_key`]. An
    /// anchor without a key, or with a MAC that does not verify, is ignored:
    /// the walk is then what it would be without one, so a forged anchor
    /// hides nothing. With a file trail, [`Verifier::verify_path`] also
    /// skips the segments the anchor names (left over by a purge
    /// interrupted before it deleted them). May be given more than once
    /// (the PostgreSQL trail keeps one anchor per stream); a later anchor
    /// naming a stream wins.
    #[must_use]
    pub fn with_anchor(mut self, anchor: Anchor) -> Self {
        self.anchors.push(anchor);
        self
    }

    /// Check the anchor's MAC with `key`, without checking checkpoint MACs
    /// (for a reader that trusts checkpoints less than it must trust the
    /// anchor, such as a report made where the checkpoint key may have
    /// changed). Without it, the [`Verifier::with_key`] key checks both.
    #[must_use]
    pub fn with_anchor_key(mut self, key: CheckpointKey) -> Self {
        self.anchor_key = Some(key);
        self
    }

    /// Require every tree head to belong to the trail called `origin` (the
    /// [`TreeHeadPolicy::origin`](super::TreeHeadPolicy::origin) it was
    /// written with). Without it, the first head's trail origin is the one
    /// every later head must have.
    #[must_use]
    pub fn with_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Check the trail against tree heads an auditor kept (exported from
    /// the trail or the API earlier): each must be signed by the key (when
    /// one is given), must be in the trail, and the trail's tree at its
    /// size must have its root. A trail cut back, or rewritten and
    /// re-signed, after the heads were taken fails here even when it is
    /// consistent in itself. Heads of a stream at or before where retention
    /// cut it are skipped.
    #[must_use]
    pub fn with_history(mut self, heads: Vec<TreeHead>) -> Self {
        self.history = heads;
        self
    }

    /// The anchors given whose MAC verifies under the key.
    fn trusted_anchors(&self) -> impl Iterator<Item = &Anchor> {
        let key = self.anchor_key.as_ref().or(self.key.as_ref());
        self.anchors
            .iter()
            .filter(move |a| key.is_some_and(|key| a.is_signed_by(key)))
    }

    /// Walk `lines`, in trail order.
    ///
    /// # Errors
    /// Whatever reading a line fails with; tampering is not an error but the
    /// report's [`VerifyReport::tamper`].
    pub fn verify<I>(&self, lines: I) -> Result<VerifyReport>
    where
        I: IntoIterator<Item = Result<TrailLine>>,
    {
        let mut walk = self.walk();
        for line in lines {
            if !walk.push(line?) {
                break;
            }
        }
        Ok(walk.finish())
    }

    /// A walk fed one line at a time (for trails read page by page, such as
    /// a table).
    #[must_use]
    pub fn walk(&self) -> Walk<'_> {
        let mut report = VerifyReport::default();
        let mut trees = Trees {
            origin: self.origin.clone(),
            seen: vec![false; self.history.len()],
            ..Trees::default()
        };
        for anchor in self.trusted_anchors() {
            report.heads.extend(anchor.streams.clone());
            report.anchored = true;
            for stream in anchor.streams.keys() {
                trees.streams.insert(
                    stream.clone(),
                    StreamTree {
                        frontier: None,
                        last_head: None,
                    },
                );
            }
        }
        for (index, head) in self.history.iter().enumerate() {
            if let Some(key) = &self.key
                && !head.is_signed_by(key)
            {
                report.tamper = Some(Tamper {
                    kind: TamperKind::BadCheckpoint,
                    location: Location::new("history", index as u64 + 1),
                    stream: Some(head.stream().to_owned()),
                    seq: Some(head.size),
                    detail: "a tree head of the history does not verify under the key".to_owned(),
                });
            }
            if head.size == 0 && head.root != EMPTY_ROOT {
                report.tamper.get_or_insert_with(|| Tamper {
                    kind: TamperKind::Modified,
                    location: Location::new("history", index as u64 + 1),
                    stream: Some(head.stream().to_owned()),
                    seq: Some(0),
                    detail: "a tree head of size 0 with a root other than the empty tree's"
                        .to_owned(),
                });
            }
            trees
                .wanted
                .entry(head.stream().to_owned())
                .or_default()
                .entry(head.size)
                .or_default()
                .push(index);
        }
        Walk {
            verifier: self,
            window: VecDeque::new(),
            report,
            trees,
        }
    }

    /// Check a history of tree heads on its own (no trail): each is signed
    /// by the key (when one is given) and belongs to the origin (when one
    /// is given), and per stream, in the order given, sizes and times never
    /// go back and two heads of one size have one root. What this cannot
    /// tell without the trail or consistency proofs: that a larger head's
    /// tree extends a smaller one's (see [`Verifier::with_history`] and
    /// [`merkle::verify_consistency`](super::merkle::verify_consistency)).
    #[must_use]
    pub fn verify_history(&self, heads: &[TreeHead]) -> VerifyReport {
        let mut report = VerifyReport::default();
        let mut last: BTreeMap<&str, &TreeHead> = BTreeMap::new();
        for (index, head) in heads.iter().enumerate() {
            let bad = |kind, detail: String| Tamper {
                kind,
                location: Location::new("history", index as u64 + 1),
                stream: Some(head.stream().to_owned()),
                seq: Some(head.size),
                detail,
            };
            if let Some(key) = &self.key {
                if !head.is_signed_by(key) {
                    report.tamper = Some(bad(
                        TamperKind::BadCheckpoint,
                        "tree head signature does not verify under the key".to_owned(),
                    ));
                    break;
                }
                report.tree_heads_verified += 1;
            }
            if let Some(origin) = &self.origin
                && head.trail_origin() != origin
            {
                report.tamper = Some(bad(
                    TamperKind::BadCheckpoint,
                    format!(
                        "tree head of another trail (origin {:?})",
                        head.trail_origin()
                    ),
                ));
                break;
            }
            if head.size == 0 && head.root != EMPTY_ROOT {
                report.tamper = Some(bad(
                    TamperKind::Modified,
                    "a tree head of size 0 with a root other than the empty tree's".to_owned(),
                ));
                break;
            }
            if let Some(previous) = last.get(head.origin.as_str()) {
                let problem = if head.size < previous.size {
                    Some((TamperKind::Replayed, "smaller than the one before it"))
                } else if head.time < previous.time {
                    Some((TamperKind::Replayed, "signed before the one before it"))
                } else if head.size == previous.size && head.root != previous.root {
                    Some((
                        TamperKind::Modified,
                        "the same size as the one before it with another root: the log forked",
                    ))
                } else {
                    None
                };
                if let Some((kind, why)) = problem {
                    report.tamper = Some(bad(kind, format!("tree head {why}")));
                    break;
                }
            }
            last.insert(&head.origin, head);
            report.tree_heads += 1;
            report
                .heads
                .insert(head.origin.clone(), Head::new(head.size, head.root));
        }
        report
    }

    /// The first history head the trail does not hold (after a complete
    /// walk), as tampering: the trail lost records or heads it had.
    fn missing_history(&self, trees: &Trees, report: &VerifyReport) -> Option<Tamper> {
        let (index, head) = self
            .history
            .iter()
            .enumerate()
            .filter(|(index, _)| !trees.seen[*index])
            .find(|(_, head)| {
                // Before a trusted anchor's cut: retention removed it.
                !self.trusted_anchors().any(|a| {
                    a.streams
                        .get(head.stream())
                        .is_some_and(|h| head.size <= h.seq)
                })
            })?;
        let reached = report.heads.get(head.stream()).map_or(0, |h| h.seq);
        let detail = if reached < head.size {
            format!(
                "the trail ends at record {reached} of stream {}, before the {} records a kept tree head (history entry {}) vouches for: its tail was cut",
                head.stream(),
                head.size,
                index + 1
            )
        } else {
            format!(
                "a kept tree head (history entry {}) is not in the trail",
                index + 1
            )
        };
        Some(Tamper {
            kind: TamperKind::Removed,
            location: trees
                .last_location
                .clone()
                .unwrap_or_else(|| Location::new("trail", 0)),
            stream: Some(head.stream().to_owned()),
            seq: Some(head.size),
            detail,
        })
    }

    /// Walk the file trail at `path`: its rotated segments
    /// (`path.000001`, …) in order, then `path` itself.
    ///
    /// # Errors
    /// `Unavailable` if a segment cannot be read, `NotFound` if there is no
    /// trail at `path`.
    pub fn verify_path(&self, path: &Path) -> Result<VerifyReport> {
        let mut segments = trail_segments(path)?;
        if segments.is_empty() {
            return Err(Error::not_found("audit trail"));
        }
        let removed: Vec<&str> = self
            .trusted_anchors()
            .flat_map(|a| a.segments.iter().map(String::as_str))
            .collect();
        segments.retain(|segment| {
            segment == path
                || !segment
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| removed.contains(&n))
        });
        let lines = segments
            .into_iter()
            .map(|segment| read_lines(&segment))
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .flatten();
        self.verify(lines)
    }

    fn step(
        &self,
        report: &mut VerifyReport,
        trees: &mut Trees,
        current: &Pending,
        ahead: &VecDeque<Pending>,
        last: bool,
    ) -> Option<Tamper> {
        let location = &current.line.location;
        let tamper = |kind, stream: Option<&str>, seq, detail: &str| Tamper {
            kind,
            location: location.clone(),
            stream: stream.map(str::to_owned),
            seq,
            detail: detail.to_owned(),
        };
        if !current.line.complete {
            if last {
                report.torn_tail = Some(location.clone());
                return None;
            }
            return Some(tamper(
                TamperKind::Modified,
                None,
                None,
                "line is not newline-terminated and is not the last",
            ));
        }
        let parsed = match &current.parsed {
            Ok(parsed) => parsed,
            Err(defect) => {
                let detail = match defect {
                    LineDefect::TooLong => "line exceeds the length limit",
                    LineDefect::HashMismatch => "record bytes do not match its hash",
                    LineDefect::Malformed => "not a record in the trail layout",
                };
                return Some(tamper(TamperKind::Modified, None, None, detail));
            }
        };
        match parsed {
            ParsedLine::Record(r) => {
                let kind = self.check_record(report, r, ahead);
                if let Some((kind, detail)) = kind {
                    return Some(tamper(kind, Some(&r.stream), Some(r.seq), &detail));
                }
                report.records += 1;
                report
                    .heads
                    .insert(r.stream.clone(), Head::new(r.seq, r.hash));
                let tree = trees
                    .streams
                    .entry(r.stream.clone())
                    .or_insert_with(|| StreamTree {
                        // A stream met first past its first record (an
                        // allowed pruned start) has no tree to rebuild.
                        frontier: (r.seq == 1).then(Frontier::new),
                        last_head: None,
                    });
                if let Some(frontier) = &mut tree.frontier {
                    frontier.push(merkle_leaf(&r.hash));
                    if let Some(indices) = trees
                        .wanted
                        .get(&r.stream)
                        .and_then(|sizes| sizes.get(&frontier.size()))
                    {
                        let root = frontier.root();
                        if indices.iter().any(|&i| self.history[i].root != root) {
                            return Some(tamper(
                                TamperKind::Modified,
                                Some(&r.stream),
                                Some(r.seq),
                                "the records up to here do not hash to the root a kept tree head signs: they were rewritten",
                            ));
                        }
                    }
                }
                None
            }
            ParsedLine::TreeHead(h) => self.check_tree_head(report, trees, h, location),
            ParsedLine::Checkpoint(c) => {
                let bad =
                    |kind, detail: &str| Some(tamper(kind, Some(&c.stream), Some(c.seq), detail));
                if let Some(key) = &self.key {
                    if !c.is_signed_by(key) {
                        return bad(
                            TamperKind::BadCheckpoint,
                            "checkpoint MAC does not verify under the key",
                        );
                    }
                    report.checkpoints_verified += 1;
                }
                report.checkpoints += 1;
                let head = report.heads.get(&c.stream).copied().unwrap_or(Head::EMPTY);
                if c.seq > head.seq {
                    return bad(
                        TamperKind::Removed,
                        "checkpoint vouches for records the trail does not have",
                    );
                }
                if c.seq < head.seq {
                    return bad(
                        TamperKind::Reordered,
                        "checkpoint is not next to the record it vouches for",
                    );
                }
                if c.hash != head.hash {
                    return bad(
                        TamperKind::Modified,
                        "the chain does not end where the checkpoint says: records up to it were rewritten",
                    );
                }
                None
            }
        }
    }

    fn check_tree_head(
        &self,
        report: &mut VerifyReport,
        trees: &mut Trees,
        h: &TreeHead,
        location: &Location,
    ) -> Option<Tamper> {
        let stream = h.stream();
        let bad = |kind, detail: &str| {
            Some(Tamper {
                kind,
                location: location.clone(),
                stream: Some(stream.to_owned()),
                seq: Some(h.size),
                detail: detail.to_owned(),
            })
        };
        if let Some(key) = &self.key {
            if !h.is_signed_by(key) {
                return bad(
                    TamperKind::BadCheckpoint,
                    "tree head signature does not verify under the key",
                );
            }
            report.tree_heads_verified += 1;
        }
        report.tree_heads += 1;
        match &trees.origin {
            Some(origin) if origin != h.trail_origin() => {
                return bad(
                    TamperKind::BadCheckpoint,
                    &format!(
                        "tree head of another trail (origin {:?}, this trail's is {origin:?})",
                        h.trail_origin()
                    ),
                );
            }
            Some(_) => {}
            None => trees.origin = Some(h.trail_origin().to_owned()),
        }
        let head = report.heads.get(stream).copied().unwrap_or(Head::EMPTY);
        if h.size > head.seq {
            return bad(
                TamperKind::Removed,
                "tree head vouches for records the trail does not have",
            );
        }
        if h.size < head.seq {
            return bad(
                TamperKind::Replayed,
                "tree head older than the records before it",
            );
        }
        let tree = trees
            .streams
            .entry(stream.to_owned())
            .or_insert_with(|| StreamTree {
                frontier: (head.seq == 0).then(Frontier::new),
                last_head: None,
            });
        if let Some((_, time)) = tree.last_head
            && h.time < time
        {
            return bad(
                TamperKind::Replayed,
                "tree head signed before the stream's previous one",
            );
        }
        match &tree.frontier {
            Some(frontier) if frontier.root() != h.root => {
                return bad(
                    TamperKind::Modified,
                    "the records up to this tree head do not hash to its root: they were rewritten",
                );
            }
            Some(_) => {}
            None => report.tree_heads_pruned += 1,
        }
        tree.last_head = Some((h.size, h.time));
        if let Some(indices) = trees.wanted.get(stream).and_then(|s| s.get(&h.size)) {
            for &index in indices {
                let kept = &self.history[index];
                if !trees.seen[index]
                    && (&kept.origin, kept.root, kept.time) == (&h.origin, h.root, h.time)
                {
                    trees.seen[index] = true;
                    report.history_matched += 1;
                }
            }
        }
        None
    }

    fn check_record(
        &self,
        report: &VerifyReport,
        r: &RecordFields,
        ahead: &VecDeque<Pending>,
    ) -> Option<(TamperKind, String)> {
        let head = match report.heads.get(&r.stream) {
            Some(head) => *head,
            None if self.allow_pruned_start => Head::new(r.seq - 1, r.prev),
            None => Head::EMPTY,
        };
        let expected = head.seq + 1;
        let records_ahead = || {
            ahead.iter().filter_map(|p| match &p.parsed {
                Ok(ParsedLine::Record(other)) if other.stream == r.stream => Some(other),
                _ => None,
            })
        };
        if r.seq == expected {
            let twin = records_ahead().find(|other| other.seq == r.seq);
            let next = records_ahead().find(|other| other.seq == r.seq + 1);
            if r.prev != head.hash {
                if twin.is_some_and(|t| t.prev == head.hash) {
                    return Some((
                        TamperKind::Inserted,
                        "a second record with this sequence number, not linked to the chain"
                            .to_owned(),
                    ));
                }
                return Some((
                    TamperKind::Modified,
                    "prev does not match the previous record's hash".to_owned(),
                ));
            }
            if let (Some(twin), Some(next)) = (twin, next)
                && next.prev != r.hash
                && next.prev == twin.hash
            {
                return Some((
                    TamperKind::Inserted,
                    "a record with a duplicate sequence number that the chain does not link to"
                        .to_owned(),
                ));
            }
            return None;
        }
        if r.seq > expected {
            if records_ahead().any(|other| other.seq == r.seq && other.hash == r.hash) {
                return Some((TamperKind::Inserted, "a copy of a later record".to_owned()));
            }
            if records_ahead().any(|other| other.seq == expected) {
                return Some((
                    TamperKind::Reordered,
                    format!("sequence {expected} comes after this record"),
                ));
            }
            let missing = if r.seq - expected == 1 {
                format!("record {expected} is missing")
            } else {
                format!("records {expected} to {} are missing", r.seq - 1)
            };
            return Some((TamperKind::Removed, missing));
        }
        Some((
            TamperKind::Inserted,
            format!(
                "sequence {} was already passed (the stream is at {})",
                r.seq, head.seq
            ),
        ))
    }
}

/// The segments of the file trail at `path`, oldest first: rotated ones
/// (`<path>.<6+ digits>`, by number), then `path` if it exists.
///
/// # Errors
/// `Unavailable` if the directory cannot be listed.
pub fn trail_segments(path: &Path) -> Result<Vec<PathBuf>> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(Error::invalid_input("audit trail path has no file name"));
    };
    let mut rotated: Vec<(u64, PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::unavailable("audit trail directory", e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::unavailable("audit trail directory", e))?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        if let Some(number) = file_name
            .strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('.'))
            .filter(|digits| digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u64>().ok())
        {
            rotated.push((number, entry.path()));
        }
    }
    rotated.sort();
    let mut segments: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    if path.exists() {
        segments.push(path.to_path_buf());
    }
    Ok(segments)
}

/// The lines of one file, each at most [`MAX_LINE_LEN`] bytes held.
///
/// # Errors
/// `Unavailable` if the file cannot be opened; read errors come per line.
pub fn read_lines(path: &Path) -> Result<LineReader> {
    let file = File::open(path).map_err(|e| Error::unavailable("audit trail file", e))?;
    Ok(LineReader {
        reader: BufReader::with_capacity(64 * 1024, file),
        source: path.display().to_string(),
        line: 0,
        done: false,
    })
}

/// An iterator over a file's lines with a bound on line length.
#[derive(Debug)]
pub struct LineReader {
    reader: BufReader<File>,
    source: String,
    line: u64,
    done: bool,
}

impl LineReader {
    fn next_line(&mut self) -> io::Result<Option<TrailLine>> {
        let mut bytes = Vec::new();
        let mut too_long = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                if bytes.is_empty() && !too_long {
                    return Ok(None);
                }
                self.line += 1;
                return Ok(Some(self.make(bytes, false, too_long)));
            }
            let (chunk, found) = match available.iter().position(|&b| b == b'\n') {
                Some(at) => (&available[..at], Some(at)),
                None => (available, None),
            };
            if !too_long {
                if bytes.len() + chunk.len() > MAX_LINE_LEN {
                    too_long = true;
                    bytes = Vec::new();
                } else {
                    bytes.extend_from_slice(chunk);
                }
            }
            let consumed = found.map_or(chunk.len(), |at| at + 1);
            self.reader.consume(consumed);
            if found.is_some() {
                self.line += 1;
                return Ok(Some(self.make(bytes, true, too_long)));
            }
        }
    }

    fn make(&self, bytes: Vec<u8>, complete: bool, too_long: bool) -> TrailLine {
        TrailLine {
            location: Location::new(self.source.clone(), self.line),
            bytes,
            complete,
            too_long,
        }
    }
}

impl Iterator for LineReader {
    type Item = Result<TrailLine>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_line() {
            Ok(Some(line)) => Some(Ok(line)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(Error::unavailable("audit trail file", e)))
            }
        }
    }
}
