//! [`Anchor`]: where a trail whose oldest records were removed by retention
//! now begins, signed so that nobody without the key can move it.
//!
//! One line of JSON:
//!
//! ```text
//! {"anchor":{"v":1,"time":"…","removed_through":"…","key_id":"…",
//!   "streams":{"acme":{"seq":41,"hash":"<64 hex>"}},"segments":["audit.jsonl.000001"]},
//!   "mac":"<64 hex>"}
//! ```
//!
//! `mac` is `HMAC-SHA-256(key, "docaiche-audit-anchor-v1\n" ‖ body)` (the
//! checkpoint key, in its own domain: a checkpoint MAC never verifies as an
//! anchor), `body` being the `anchor` object's bytes as written. For each
//! stream, `seq`/`hash` is the last record removed: the stream now starts at
//! `seq + 1` with `prev = hash`. `segments` names every rotated segment of a
//! file trail retention removed (they accumulate: each anchor supersedes the
//! previous one), `removed_through` is the newest event time removed.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use docaiche_core::{Error, Result};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::record::{CheckpointKey, Hash, Head, split_tail};

const ANCHOR_DOMAIN: &[u8] = b"docaiche-audit-anchor-v1\n";
const ANCHOR_PREFIX: &[u8] = b"{\"anchor\":";
const MAC_SUFFIX_START: &[u8] = b",\"mac\":\"";
/// Longest accepted anchor file (a generous bound: one small entry per
/// stream and per removed segment).
const MAX_ANCHOR_LEN: u64 = 64 << 20;
const ANCHOR_VERSION: u32 = 1;

/// The signed start of a pruned trail (the audit module docs describe the
/// format and how a verifier uses it).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Anchor {
    /// Per stream, the last record removed.
    pub streams: BTreeMap<String, Head>,
    /// File names of the rotated segments removed (file trail only).
    pub segments: Vec<String>,
    /// The newest event time among the removed records.
    pub removed_through: OffsetDateTime,
    /// When the anchor was made.
    pub time: OffsetDateTime,
    /// The signing key's name.
    pub key_id: String,
    body: Vec<u8>,
    mac: Hash,
}

impl std::fmt::Debug for Anchor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anchor")
            .field("streams", &self.streams)
            .field("segments", &self.segments)
            .field("removed_through", &self.removed_through)
            .field("time", &self.time)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHead {
    seq: u64,
    hash: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnchor {
    v: u32,
    #[serde(with = "time::serde::rfc3339")]
    time: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    removed_through: OffsetDateTime,
    key_id: String,
    streams: BTreeMap<String, RawHead>,
    segments: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnchorLine {
    anchor: RawAnchor,
    #[allow(dead_code)]
    mac: serde::de::IgnoredAny,
}

fn malformed() -> Error {
    Error::invalid_input("not an audit trail anchor")
}

impl Anchor {
    /// Sign an anchor with `key`.
    ///
    /// # Errors
    /// `InvalidInput` if it does not serialise.
    pub fn sign(
        key: &CheckpointKey,
        streams: BTreeMap<String, Head>,
        segments: Vec<String>,
        removed_through: OffsetDateTime,
        time: OffsetDateTime,
    ) -> Result<Self> {
        let raw = RawAnchor {
            v: ANCHOR_VERSION,
            time,
            removed_through,
            key_id: key.id().to_owned(),
            streams: streams
                .iter()
                .map(|(stream, head)| {
                    (
                        stream.clone(),
                        RawHead {
                            seq: head.seq,
                            hash: head.hash.to_hex(),
                        },
                    )
                })
                .collect(),
            segments: segments.clone(),
        };
        let body = serde_json::to_vec(&raw)
            .map_err(|_| Error::invalid_input("anchor does not serialise"))?;
        let mac = key.sign_in(ANCHOR_DOMAIN, &body);
        Ok(Self {
            streams,
            segments,
            removed_through,
            time,
            key_id: key.id().to_owned(),
            body,
            mac,
        })
    }

    /// Whether `key` signed this anchor (constant-time compare).
    #[must_use]
    pub fn is_signed_by(&self, key: &CheckpointKey) -> bool {
        key.verify_in(ANCHOR_DOMAIN, &self.body, &self.mac)
    }

    /// The anchor's line (without a newline).
    #[must_use]
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = Vec::with_capacity(self.body.len() + 100);
        line.extend_from_slice(ANCHOR_PREFIX);
        line.extend_from_slice(&self.body);
        line.extend_from_slice(MAC_SUFFIX_START);
        line.extend_from_slice(self.mac.to_hex().as_bytes());
        line.extend_from_slice(b"\"}");
        line
    }

    /// Parse an anchor line. The MAC is not checked here: see
    /// [`Anchor::is_signed_by`].
    ///
    /// # Errors
    /// `InvalidInput` if `line` is not an anchor in the documented layout.
    pub fn parse(line: &[u8]) -> Result<Self> {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if !line.starts_with(ANCHOR_PREFIX) {
            return Err(malformed());
        }
        let (prefix, digits) = split_tail(line, MAC_SUFFIX_START).ok_or_else(malformed)?;
        let mac = std::str::from_utf8(digits)
            .ok()
            .and_then(|d| Hash::from_hex(d).ok())
            .ok_or_else(malformed)?;
        let body = prefix.get(ANCHOR_PREFIX.len()..).ok_or_else(malformed)?;
        let raw: RawAnchorLine = serde_json::from_slice(line).map_err(|_| malformed())?;
        let raw = raw.anchor;
        if raw.v != ANCHOR_VERSION {
            return Err(malformed());
        }
        let mut streams = BTreeMap::new();
        for (stream, head) in raw.streams {
            let hash = Hash::from_hex(&head.hash).map_err(|_| malformed())?;
            streams.insert(stream, Head::new(head.seq, hash));
        }
        Ok(Self {
            streams,
            segments: raw.segments,
            removed_through: raw.removed_through,
            time: raw.time,
            key_id: raw.key_id,
            body: body.to_vec(),
            mac,
        })
    }

    /// The anchor file of the file trail at `trail`: `<trail>.anchor`.
    #[must_use]
    pub fn path_for(trail: &Path) -> PathBuf {
        let mut path = trail.as_os_str().to_owned();
        path.push(".anchor");
        PathBuf::from(path)
    }

    /// The anchor of the file trail at `trail`, if it has one.
    ///
    /// # Errors
    /// `Unavailable` if it cannot be read, `InvalidInput` if it is not an
    /// anchor (or implausibly large).
    pub fn load(trail: &Path) -> Result<Option<Self>> {
        let path = Self::path_for(trail);
        let io_err = |e: io::Error| Error::unavailable("audit trail anchor", e);
        match std::fs::metadata(&path) {
            Ok(meta) if meta.len() > MAX_ANCHOR_LEN => return Err(malformed()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(e)),
        }
        let bytes = std::fs::read(&path).map_err(io_err)?;
        Self::parse(&bytes).map(Some)
    }

    /// Store this anchor beside the file trail at `trail`, replacing the
    /// previous one atomically: write a temporary file, fsync it, rename it
    /// over `<trail>.anchor`, fsync the directory.
    ///
    /// # Errors
    /// `Unavailable` if any step fails (the previous anchor is then intact).
    pub fn store(&self, trail: &Path) -> Result<()> {
        let path = Self::path_for(trail);
        let mut temp = path.clone().into_os_string();
        temp.push(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let temp = PathBuf::from(temp);
        let write = || -> io::Result<()> {
            let mut file = super::private_fs::create_new(&temp)?;
            file.write_all(&self.to_line())?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            Error::unavailable("audit trail anchor", e)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(byte: u8) -> CheckpointKey {
        CheckpointKey::from_bytes("k", &vec![byte; 32].into()).unwrap()
    }

    #[test]
    fn an_anchor_round_trips_and_verifies_only_with_its_key() {
        let streams =
            BTreeMap::from([("acme".to_owned(), Head::new(4, Hash::from_bytes([3; 32])))]);
        let anchor = Anchor::sign(
            &key(1),
            streams,
            vec!["audit.jsonl.000001".to_owned()],
            OffsetDateTime::UNIX_EPOCH,
            OffsetDateTime::UNIX_EPOCH,
        )
        .unwrap();
        let parsed = Anchor::parse(&anchor.to_line()).unwrap();
        assert_eq!(parsed, anchor);
        assert!(parsed.is_signed_by(&key(1)));
        assert!(!parsed.is_signed_by(&key(2)));
        let forged = String::from_utf8(anchor.to_line())
            .unwrap()
            .replace("\"seq\":4", "\"seq\":5");
        let forged = Anchor::parse(forged.as_bytes()).unwrap();
        assert_eq!(forged.streams["acme"].seq, 5);
        assert!(!forged.is_signed_by(&key(1)));
    }
}
