//! [`TreeHead`]: a stream's Merkle tree size and root, signed with the
//! checkpoint key, as a C2SP checkpoint (`c2sp.org/tlog-checkpoint`, a
//! `c2sp.org/signed-note`); [`TreeHeadPolicy`]: when a writer signs them.
//!
//! ```text
//! example.com/audit/acme
//! 1042
//! 3q2+7wX0nVqJ8M1f0w0nq6Hq3E1u8bYtY0iYbq1l8vU=
//! time 2025-06-01T12:00:00Z
//!
//! — audit/checkpoint-key q0mL1Xw1…
//! ```
//!
//! - The **origin** line is the trail's origin (configured per trail, see
//!   [`TreeHeadPolicy::new`]), a slash, and the stream (tenant) name: each
//!   stream is its own log. Stream names never hold a slash, so the stream
//!   is what follows the last one.
//! - **Size** and **root** are the stream's RFC 9162 tree over its records
//!   in sequence order: leaf `seq - 1` holds the 32 bytes of record `seq`'s
//!   hash, which covers the record line as written, so the leaf hash is
//!   `SHA-256(0x00 ‖ record hash)` ([`merkle_leaf`](super::record::merkle_leaf)).
//! - The one extension line, `time`, is when the head was signed (RFC 3339,
//!   UTC): a verifier refuses a stream's heads going back in time, which is
//!   how a replayed old head shows.
//! - The **signature** line is `— <key name> base64(key ID ‖ MAC)`: the key
//!   ID is the first 4 bytes of `SHA-256(key name ‖ 0x0A ‖ 0xFF ‖
//!   "docaiche-audit-hmac-sha256")` (0xFF: a signature type the signed-note
//!   spec leaves to applications), the MAC is `HMAC-SHA-256(key,
//!   "docaiche-audit-tree-head-v1\n" ‖ note text)`. Signatures of other keys
//!   (a witness's cosignature) are kept and ignored, as the spec requires.
//!
//! In a trail, a head is one line, `{"tree_head":"<the note, as a JSON
//! string>"}`, written right after the record it covers, and accepted only
//! in exactly the spelling a writer produces.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use docaiche_core::{Error, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::record::{CheckpointKey, Hash};

const TREE_HEAD_DOMAIN: &[u8] = b"docaiche-audit-tree-head-v1\n";
const SIGNATURE_TYPE: &[u8] = b"\xffdocaiche-audit-hmac-sha256";
const LINE_PREFIX: &[u8] = b"{\"tree_head\":";
const TIME_PREFIX: &str = "time ";
const SIGNATURE_PREFIX: &str = "\u{2014} ";
/// Longest accepted note, in bytes (16 signatures of post-quantum size
/// would not fit; ours and a few witnesses' do).
pub(crate) const MAX_NOTE_LEN: usize = 16 * 1024;
/// Most signature lines accepted on one note (the signed-note minimum).
const MAX_SIGNATURES: usize = 16;

/// When a writer signs tree heads, and with what.
///
/// ```
/// use std::time::Duration;
/// use docaiche_compliance::audit::{CheckpointKey, FileSinkConfig, TreeHeadPolicy};
///
/// let key = CheckpointKey::from_bytes("audit/checkpoint-key", &vec![7u8; 32].into())?;
/// let policy = TreeHeadPolicy::new(key, "audit.example/eu")?
///     .with_idle(Duration::from_secs(30));
/// let config = FileSinkConfig::new("/var/lib/docaiche/audit.jsonl").with_tree_heads(policy);
/// # let _ = config;
/// # Ok::<(), docaiche_core::Error>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TreeHeadPolicy {
    /// The signing key (the checkpoint key).
    pub key: CheckpointKey,
    /// The trail's origin, the first part of every head's origin line
    /// (such as `audit.example.com/eu-1`): unique per trail, so that a head
    /// of one trail never passes for another's. No spaces, no `+`, no
    /// control characters.
    pub origin: String,
    /// A stream with records no head covers yet gets one as soon as its
    /// last head is this old (under load, one head a stream per interval).
    /// Default 1 s.
    pub every: Duration,
    /// A stream without new records gets a fresh head (same size and root,
    /// a new time) once its last head is this old, so a verifier can tell a
    /// quiet trail from one whose tail was cut. Default 60 s.
    pub idle: Duration,
}

impl TreeHeadPolicy {
    /// Heads for the trail called `origin`, signed with `key`, every second
    /// under load and every minute when idle.
    ///
    /// # Errors
    /// `InvalidInput` if `origin` is empty or holds a space, `+` or a
    /// control character, or the key's name holds a space or `+` (the
    /// signed-note format forbids them in key names).
    pub fn new(key: CheckpointKey, origin: impl Into<String>) -> Result<Self> {
        let origin = origin.into();
        if origin.is_empty()
            || origin
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '+')
        {
            return Err(Error::invalid_input(
                "tree head origin must be non-empty, without spaces, `+` or control characters",
            ));
        }
        check_key_name(key.id())?;
        Ok(Self {
            key,
            origin,
            every: Duration::from_secs(1),
            idle: Duration::from_secs(60),
        })
    }

    /// Sign a stream with new records once its last head is `every` old.
    #[must_use]
    pub const fn with_every(mut self, every: Duration) -> Self {
        self.every = every;
        self
    }

    /// Re-sign a quiet stream once its last head is `idle` old.
    #[must_use]
    pub const fn with_idle(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// How often the writer looks for heads that are due: a quarter of the
    /// shorter interval, at least 10 ms.
    pub(crate) fn tick(&self) -> Duration {
        (self.every.min(self.idle) / 4).max(Duration::from_millis(10))
    }

    /// The origin line of `stream`'s heads.
    pub(crate) fn origin_of(&self, stream: &str) -> String {
        format!("{}/{stream}", self.origin)
    }
}

fn check_key_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c == '+') {
        return Err(Error::invalid_input(
            "a tree head key name must be non-empty, without spaces or `+`",
        ));
    }
    Ok(())
}

/// The signed-note key ID of an HMAC checkpoint key named `name`.
fn key_id(name: &str) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update(SIGNATURE_TYPE);
    let digest: [u8; 32] = hasher.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Signature {
    name: String,
    id: [u8; 4],
    /// The signature bytes after the key ID.
    bytes: Vec<u8>,
}

/// A signed tree head (the module docs describe the format).
///
/// ```
/// use docaiche_compliance::audit::merkle::{MerkleTree, leaf_hash};
/// use docaiche_compliance::audit::{CheckpointKey, TreeHead};
///
/// let key = CheckpointKey::from_bytes("audit/checkpoint-key", &vec![7u8; 32].into())?;
/// let tree = MerkleTree::from_leaves([leaf_hash(b"a"), leaf_hash(b"b")]);
/// let head = TreeHead::sign(&key, "audit.example/eu/acme", tree.size(), tree.root(),
///                           time::OffsetDateTime::UNIX_EPOCH)?;
/// let note = head.to_note(); // what an auditor keeps
/// assert!(note.starts_with("audit.example/eu/acme\n2\n"));
///
/// let kept = TreeHead::parse(&note)?;
/// assert!(kept.is_signed_by(&key));
/// assert_eq!((kept.trail_origin(), kept.stream(), kept.size), ("audit.example/eu", "acme", 2));
/// # Ok::<(), docaiche_core::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeHead {
    /// The origin line: the trail's origin, `/`, the stream.
    pub origin: String,
    /// The number of records the tree holds.
    pub size: u64,
    /// The tree's root.
    pub root: Hash,
    /// When it was signed.
    pub time: OffsetDateTime,
    /// The note text the signatures cover.
    text: String,
    signatures: Vec<Signature>,
}

impl std::fmt::Debug for TreeHead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TreeHead")
            .field("origin", &self.origin)
            .field("size", &self.size)
            .field("root", &self.root)
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

fn malformed(why: &'static str) -> Error {
    Error::invalid_input(format!("not a signed tree head: {why}"))
}

impl TreeHead {
    /// Sign the head of the log `origin` at `size` leaves with `root`.
    ///
    /// # Errors
    /// `InvalidInput` if `origin` holds a control character or the key's
    /// name is not a valid signed-note key name.
    pub fn sign(
        key: &CheckpointKey,
        origin: &str,
        size: u64,
        root: Hash,
        time: OffsetDateTime,
    ) -> Result<Self> {
        if origin.is_empty() || origin.chars().any(char::is_control) {
            return Err(malformed("origin is empty or holds control characters"));
        }
        check_key_name(key.id())?;
        let time = time.to_offset(time::UtcOffset::UTC);
        let stamp = time
            .format(&Rfc3339)
            .map_err(|_| Error::invalid_input("tree head time does not format"))?;
        let text = format!(
            "{origin}\n{size}\n{}\n{TIME_PREFIX}{stamp}\n",
            STANDARD.encode(root.as_bytes())
        );
        let mac = key.sign_in(TREE_HEAD_DOMAIN, text.as_bytes());
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            time,
            text,
            signatures: vec![Signature {
                name: key.id().to_owned(),
                id: key_id(key.id()),
                bytes: mac.as_bytes().to_vec(),
            }],
        })
    }

    /// The stream: what follows the origin's last `/` (the whole origin if
    /// it has none).
    #[must_use]
    pub fn stream(&self) -> &str {
        self.origin
            .rsplit_once('/')
            .map_or(self.origin.as_str(), |(_, stream)| stream)
    }

    /// The trail's origin: what precedes the origin's last `/` (empty if it
    /// has none).
    #[must_use]
    pub fn trail_origin(&self) -> &str {
        self.origin.rsplit_once('/').map_or("", |(trail, _)| trail)
    }

    /// Whether `key` signed this head: a signature under the key's name and
    /// ID is present and every such signature verifies (constant-time
    /// compare). Signatures of other keys are ignored.
    #[must_use]
    pub fn is_signed_by(&self, key: &CheckpointKey) -> bool {
        let id = key_id(key.id());
        let mut ours = self
            .signatures
            .iter()
            .filter(|s| s.name == key.id() && s.id == id)
            .peekable();
        ours.peek().is_some()
            && ours.all(|s| {
                <[u8; 32]>::try_from(s.bytes.as_slice()).is_ok_and(|mac| {
                    key.verify_in(
                        TREE_HEAD_DOMAIN,
                        self.text.as_bytes(),
                        &Hash::from_bytes(mac),
                    )
                })
            })
    }

    /// The note: text, a blank line, the signature lines.
    #[must_use]
    pub fn to_note(&self) -> String {
        let mut note = self.text.clone();
        note.push('\n');
        for signature in &self.signatures {
            let mut bytes = signature.id.to_vec();
            bytes.extend_from_slice(&signature.bytes);
            note.push_str(SIGNATURE_PREFIX);
            note.push_str(&signature.name);
            note.push(' ');
            note.push_str(&STANDARD.encode(bytes));
            note.push('\n');
        }
        note
    }

    /// Parse a note. Signatures are not checked here: see
    /// [`is_signed_by`](Self::is_signed_by).
    ///
    /// # Errors
    /// `InvalidInput` if `note` is not a tree head in the documented format.
    pub fn parse(note: &str) -> Result<Self> {
        if note.len() > MAX_NOTE_LEN {
            return Err(malformed("longer than the limit"));
        }
        if note.chars().any(|c| c.is_control() && c != '\n') {
            return Err(malformed("holds control characters"));
        }
        let (text, signatures) = note
            .rsplit_once("\n\n")
            .ok_or(malformed("no blank line before the signatures"))?;
        let text = format!("{text}\n");
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or(malformed("does not end with a newline"))?
            .split('\n')
            .map(parse_signature)
            .collect::<Result<Vec<_>>>()?;
        if signatures.len() > MAX_SIGNATURES {
            return Err(malformed("too many signatures"));
        }
        let mut lines = text.strip_suffix('\n').unwrap_or(&text).split('\n');
        let mut next = || lines.next().ok_or(malformed("fewer than four lines"));
        let origin = next()?.to_owned();
        let size = next()?;
        let root = next()?;
        let stamp = next()?
            .strip_prefix(TIME_PREFIX)
            .ok_or(malformed("the fourth line is not its time"))?;
        if lines.next().is_some() {
            return Err(malformed("more than four lines"));
        }
        if origin.is_empty() {
            return Err(malformed("empty origin"));
        }
        let size = parse_decimal(size).ok_or(malformed("size is not a decimal number"))?;
        let root = STANDARD
            .decode(root)
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes.as_slice()).ok())
            .map(Hash::from_bytes)
            .ok_or(malformed("root is not 32 bytes of base64"))?;
        let time = OffsetDateTime::parse(stamp, &Rfc3339).map_err(|_| malformed("bad time"))?;
        Ok(Self {
            origin,
            size,
            root,
            time,
            text,
            signatures,
        })
    }

    /// Parse a history: notes one after another, each separated from the
    /// next by a blank line (what [`history_to_text`] writes).
    ///
    /// # Errors
    /// `InvalidInput` if one of them does not parse.
    pub fn parse_history(text: &str) -> Result<Vec<Self>> {
        let mut heads = Vec::new();
        let mut note = String::new();
        let mut in_signatures = false;
        for line in text.split_inclusive('\n') {
            if line == "\n" {
                if in_signatures {
                    heads.push(Self::parse(&note)?);
                    note.clear();
                    in_signatures = false;
                } else {
                    in_signatures = true;
                    note.push_str(line);
                }
                continue;
            }
            if note.len() + line.len() > MAX_NOTE_LEN {
                return Err(malformed("longer than the limit"));
            }
            note.push_str(line);
        }
        if !note.is_empty() {
            heads.push(Self::parse(&note)?);
        }
        Ok(heads)
    }

    /// The trail line holding this head (without a newline).
    #[must_use]
    pub fn to_line(&self) -> Vec<u8> {
        serde_json::to_vec(&TreeHeadLine {
            tree_head: self.to_note(),
        })
        .unwrap_or_default()
    }

    /// Whether `line` looks like a tree head line (its prefix only).
    pub(crate) fn is_line(line: &[u8]) -> bool {
        line.starts_with(LINE_PREFIX)
    }

    /// Parse a trail line holding a head, refusing any spelling but the
    /// writer's (so that no byte of the line goes unchecked).
    ///
    /// # Errors
    /// `InvalidInput` if it is not one.
    pub fn parse_line(line: &[u8]) -> Result<Self> {
        if line.len() > 2 * MAX_NOTE_LEN {
            return Err(malformed("longer than the limit"));
        }
        let raw: TreeHeadLine =
            serde_json::from_slice(line).map_err(|_| malformed("not a tree head line"))?;
        let head = Self::parse(&raw.tree_head)?;
        if head.to_line() != line {
            return Err(malformed("not in the canonical spelling"));
        }
        Ok(head)
    }
}

/// The text of a history of heads (see [`TreeHead::parse_history`]).
#[must_use]
pub fn history_to_text<'a>(heads: impl IntoIterator<Item = &'a TreeHead>) -> String {
    heads
        .into_iter()
        .map(TreeHead::to_note)
        .collect::<Vec<_>>()
        .join("\n")
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TreeHeadLine {
    tree_head: String,
}

fn parse_signature(line: &str) -> Result<Signature> {
    let rest = line
        .strip_prefix(SIGNATURE_PREFIX)
        .ok_or(malformed("a signature line does not start with an em dash"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or(malformed("a signature line has no key name"))?;
    if name.is_empty() || name.contains('+') {
        return Err(malformed("bad key name"));
    }
    let bytes = STANDARD
        .decode(b64)
        .map_err(|_| malformed("a signature is not base64"))?;
    if bytes.len() < 5 {
        return Err(malformed("a signature is too short"));
    }
    let (id, bytes) = bytes.split_at(4);
    Ok(Signature {
        name: name.to_owned(),
        id: [id[0], id[1], id[2], id[3]],
        bytes: bytes.to_vec(),
    })
}

/// ASCII decimal without leading zeros (`0` alone is fine).
fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty()
        || !text.bytes().all(|b| b.is_ascii_digit())
        || (text.len() > 1 && text.starts_with('0'))
    {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::audit::merkle::{EMPTY_ROOT, leaf_hash};

    fn key(byte: u8) -> CheckpointKey {
        CheckpointKey::from_bytes("audit/checkpoint-key", &vec![byte; 32].into()).unwrap()
    }

    fn head() -> TreeHead {
        TreeHead::sign(
            &key(1),
            "audit.example/eu/acme",
            42,
            leaf_hash(b"r"),
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap()
    }

    #[test]
    fn a_head_round_trips_as_note_and_line_and_verifies_only_with_its_key() {
        let head = head();
        let note = head.to_note();
        assert!(note.starts_with("audit.example/eu/acme\n42\n"));
        assert!(note.contains("\ntime 1970-01-01T00:00:00Z\n\n\u{2014} audit/checkpoint-key "));
        let parsed = TreeHead::parse(&note).unwrap();
        assert_eq!(parsed, head);
        assert_eq!(
            (parsed.stream(), parsed.trail_origin()),
            ("acme", "audit.example/eu")
        );
        assert!(parsed.is_signed_by(&key(1)));
        assert!(!parsed.is_signed_by(&key(2)));
        let other_name = CheckpointKey::from_bytes("other", &vec![1u8; 32].into()).unwrap();
        assert!(
            !parsed.is_signed_by(&other_name),
            "no signature under that name"
        );
        assert_eq!(TreeHead::parse_line(&head.to_line()).unwrap(), head);
    }

    #[test]
    fn every_flipped_byte_of_a_line_is_refused_or_fails_the_mac() {
        let line = head().to_line();
        for i in 0..line.len() {
            for mask in [0x01, 0x20, 0x80] {
                let mut bad = line.clone();
                bad[i] ^= mask;
                if let Ok(parsed) = TreeHead::parse_line(&bad) {
                    assert!(
                        !parsed.is_signed_by(&key(1)),
                        "flip {mask:#x} at {i} verified"
                    );
                }
            }
        }
    }

    #[test]
    fn unknown_signatures_are_ignored_and_a_bad_one_of_ours_fails() {
        let head = head();
        let note = head.to_note();
        let witness = "\u{2014} witness.example AAAAAAAAAAA=\n";
        let cosigned = TreeHead::parse(&format!("{note}{witness}")).unwrap();
        assert!(cosigned.is_signed_by(&key(1)));
        // A second signature under our name and ID that does not verify.
        let ours = note.lines().last().unwrap();
        let mut forged = ours.to_owned();
        forged.pop();
        forged.push(if ours.ends_with('A') { 'B' } else { 'A' });
        let doubled = TreeHead::parse(&format!("{note}{forged}\n")).unwrap();
        assert!(!doubled.is_signed_by(&key(1)));
    }

    #[test]
    fn malformed_notes_are_refused() {
        let good = head().to_note();
        for bad in [
            String::new(),
            good.replace("\n42\n", "\n042\n"),
            good.replace("\n42\n", "\n-1\n"),
            good.replace("time ", "tame "),
            good.replace("\n\n", "\n"),
            good.replace("\u{2014}", "-"),
            good.trim_end().to_owned(),
            good.replacen('\n', "\nextra\n", 3),
            good.replace("audit.example/eu/acme", "audit\u{7}/acme"),
            format!("{}{}", good, "\u{2014} w AAAA\n"),
            "a\n1\nAAAA\ntime 1970-01-01T00:00:00Z\n\n".to_owned(),
            "x".repeat(MAX_NOTE_LEN + 1),
        ] {
            assert!(TreeHead::parse(&bad).is_err(), "accepted {bad:?}");
        }
        // The same head spelled differently in JSON is not a trail line.
        let line = String::from_utf8(head().to_line()).unwrap();
        let respelled = line.replace('\u{2014}', "\\u2014");
        assert!(TreeHead::parse_line(respelled.as_bytes()).is_err());
        assert!(TreeHead::parse_line(b"{\"tree_head\":\"\"}").is_err());
    }

    #[test]
    fn histories_round_trip() {
        let heads = vec![
            head(),
            TreeHead::sign(&key(1), "o/b", 0, EMPTY_ROOT, OffsetDateTime::UNIX_EPOCH).unwrap(),
        ];
        let text = history_to_text(&heads);
        assert_eq!(TreeHead::parse_history(&text).unwrap(), heads);
        assert!(TreeHead::parse_history("").unwrap().is_empty());
        assert!(TreeHead::parse_history("garbage\n").is_err());
    }

    #[test]
    fn policies_refuse_origins_and_key_names_a_note_cannot_hold() {
        assert!(TreeHeadPolicy::new(key(1), "audit.example/eu").is_ok());
        for origin in ["", "a b", "a+b", "a\nb"] {
            assert!(TreeHeadPolicy::new(key(1), origin).is_err(), "{origin:?}");
        }
        let spaced = CheckpointKey::from_bytes("my key", &vec![1u8; 32].into()).unwrap();
        assert!(TreeHeadPolicy::new(spaced, "o").is_err());
    }
}
