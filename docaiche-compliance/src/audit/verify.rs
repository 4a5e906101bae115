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
//!
//! A last line without its newline is a write cut short by a crash: it was
//! never acknowledged, so it is reported as [`VerifyReport::torn_tail`], not
//! as tampering. What the chain alone cannot show: records cut off the end
//! after the last checkpoint, and records appended by someone who can
//! compute SHA-256. Checkpoints signed with a key the writer of the trail
//! does not hold close both gaps up to the last checkpoint.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};

use docaiche_core::{Error, Result};

use super::anchor::Anchor;
use super::record::{
    CheckpointKey, Head, LineDefect, MAX_LINE_LEN, ParsedLine, RecordFields, parse_line,
};

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
    /// A checkpoint whose MAC does not verify under the key.
    BadCheckpoint,
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
}

struct Pending {
    line: TrailLine,
    parsed: std::result::Result<ParsedLine, LineDefect>,
}

/// A walk in progress: [`push`](Walk::push) lines in trail order, then
/// [`finish`](Walk::finish).
#[derive(Debug)]
pub struct Walk<'a> {
    verifier: &'a Verifier,
    window: VecDeque<Pending>,
    report: VerifyReport,
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
        self.report
    }

    fn step_front(&mut self, last: bool) -> bool {
        let Some(current) = self.window.pop_front() else {
            return true;
        };
        match self
            .verifier
            .step(&mut self.report, &current, &self.window, last)
        {
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
        for anchor in self.trusted_anchors() {
            report.heads.extend(anchor.streams.clone());
            report.anchored = true;
        }
        Walk {
            verifier: self,
            window: VecDeque::new(),
            report,
        }
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
                None
            }
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
