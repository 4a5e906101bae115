//! The byte layout of a chained record and of a signed checkpoint.
//!
//! A trail is a sequence of lines (one JSON object each, `\n`-terminated in
//! files, one row each in PostgreSQL). Two kinds:
//!
//! ```text
//! {"v":1,"stream":"acme","seq":7,"prev":"<64 hex>","event":{…},"hash":"<64 hex>"}
//! {"checkpoint":{"stream":"acme","seq":7,"hash":"<64 hex>","time":"…","key_id":"…"},"mac":"<64 hex>"}
//! ```
//!
//! A record's `hash` is `SHA-256("docaiche-audit-record-v1\n" ‖ prefix)`,
//! where `prefix` is every byte of the line before `,"hash":"`. Hashing the
//! bytes as written, rather than a re-serialisation of the parsed value,
//! means no two byte strings share a hash: flipping any byte, even one that
//! a lenient parser would ignore, breaks the record. The `prev` field holds
//! the hash of the stream's previous record (64 zeros for the first), and
//! `seq` counts from 1 per stream, so a removed, inserted or reordered
//! record breaks the chain at a known place.
//!
//! A third kind, `{"tree_head":"…"}`, holds a stream's signed Merkle tree
//! head ([`TreeHead`] has its format). Leaf `seq - 1` of a stream's tree
//! holds the 32 bytes of record `seq`'s `hash` ([`merkle_leaf`]): that hash
//! already covers every byte of the record as written, so the tree commits
//! to the same bytes as the chain, and a leaf costs one SHA-256 block
//! rather than a second pass over the line.
//!
//! A checkpoint's `mac` is `HMAC-SHA-256(key, "docaiche-audit-checkpoint-v1\n"
//! ‖ body)`, where `body` is the `checkpoint` object's bytes. It vouches for
//! a stream's head: anyone can recompute a SHA-256 chain after rewriting
//! it, nobody without the key can sign the rewritten head.

use serde::Deserialize;

use docaiche_core::audit::AuditEvent;
use docaiche_core::{Error, Result};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::tree_head::TreeHead;

/// The layout version written in every record's `v` field.
pub const RECORD_VERSION: u32 = 1;

/// Longest accepted line, in bytes. Longer input is reported as tampering by
/// `verify` and refused by the sinks, so neither holds unbounded memory.
pub const MAX_LINE_LEN: usize = 1 << 20;

/// Longest accepted checkpoint line, in bytes.
const MAX_CHECKPOINT_LEN: usize = 4096;

/// The stream of events without a tenant. Tenant ids start with a letter or
/// digit, so no tenant can be named `-`.
pub const NO_TENANT_STREAM: &str = "-";

/// The `prev` of a stream's first record.
pub const GENESIS: Hash = Hash([0; 32]);

const RECORD_DOMAIN: &[u8] = b"docaiche-audit-record-v1\n";
const CHECKPOINT_DOMAIN: &[u8] = b"docaiche-audit-checkpoint-v1\n";
const HASH_SUFFIX_START: &[u8] = b",\"hash\":\"";
const CHECKPOINT_PREFIX: &[u8] = b"{\"checkpoint\":";
const MAC_SUFFIX_START: &[u8] = b",\"mac\":\"";
const HEX_LEN: usize = 64;

/// A SHA-256 value (a record hash or a checkpoint MAC).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; 32]);

impl Hash {
    /// A hash from its bytes.
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 lower-case hex digits (only the form written, so that a
    /// hash outside the bytes it covers has one spelling: `A` for `a` is
    /// a changed record).
    ///
    /// # Errors
    /// `InvalidInput` for anything else.
    pub fn from_hex(text: &str) -> Result<Self> {
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(Error::invalid_input(
                "hash must be 64 lower-case hex digits",
            ));
        }
        let mut out = [0; 32];
        hex::decode_to_slice(text, &mut out)
            .map_err(|_| Error::invalid_input("hash must be 64 hex digits"))?;
        Ok(Self(out))
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::fmt::Display for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The stream an event belongs to: its tenant, or [`NO_TENANT_STREAM`].
#[must_use]
pub fn stream_of(event: &AuditEvent) -> &str {
    event
        .tenant
        .as_ref()
        .map_or(NO_TENANT_STREAM, |tenant| tenant.as_str())
}

/// The head of one stream: its last sequence number and record hash
/// (`0` and [`GENESIS`] for an empty stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Head {
    /// Sequence number of the last record.
    pub seq: u64,
    /// Hash of the last record.
    pub hash: Hash,
}

impl Head {
    /// The head of an empty stream.
    pub const EMPTY: Self = Self {
        seq: 0,
        hash: GENESIS,
    };

    /// A head.
    #[must_use]
    pub const fn new(seq: u64, hash: Hash) -> Self {
        Self { seq, hash }
    }
}

/// One encoded record, ready to append.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct EncodedRecord {
    /// The stream (tenant) it extends.
    pub stream: String,
    /// Its sequence number.
    pub seq: u64,
    /// Its hash (the stream's new head).
    pub hash: Hash,
    /// The line, without the trailing newline.
    pub line: Vec<u8>,
}

/// Serialise `event` the way records embed it.
///
/// # Errors
/// `InvalidInput` if the event does not serialise (it always does for the
/// core schema; a custom `details` value could in principle fail).
pub fn event_json(event: &AuditEvent) -> Result<Vec<u8>> {
    serde_json::to_vec(event)
        .map_err(|_| Error::invalid_input("audit event does not serialise to json"))
}

/// Encode the record following `head` in `stream`, embedding `event_json`
/// (the output of [`event_json`]).
///
/// # Errors
/// `InvalidInput` if the line would exceed [`MAX_LINE_LEN`] or `stream` is
/// not a valid stream name.
pub fn encode_record(stream: &str, head: Head, event_json: &[u8]) -> Result<EncodedRecord> {
    let seq = head
        .seq
        .checked_add(1)
        .ok_or_else(|| Error::invalid_input("audit stream sequence exhausted"))?;
    // Written in place, without intermediate strings: this runs on the
    // writer's thread for every record.
    let mut line = Vec::with_capacity(event_json.len() + 200);
    line.extend_from_slice(b"{\"v\":");
    line.extend_from_slice(itoa::Buffer::new().format(RECORD_VERSION).as_bytes());
    line.extend_from_slice(b",\"stream\":");
    serde_json::to_writer(&mut line, stream)
        .map_err(|_| Error::invalid_input("audit stream name does not serialise"))?;
    line.extend_from_slice(b",\"seq\":");
    line.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    line.extend_from_slice(b",\"prev\":\"");
    push_hex(&mut line, &head.hash);
    line.extend_from_slice(b"\",\"event\":");
    line.extend_from_slice(event_json);
    let hash = record_hash(&line);
    line.extend_from_slice(HASH_SUFFIX_START);
    push_hex(&mut line, &hash);
    line.extend_from_slice(b"\"}");
    if line.len() > MAX_LINE_LEN {
        return Err(Error::invalid_input("audit record exceeds the line limit"));
    }
    Ok(EncodedRecord {
        stream: stream.to_owned(),
        seq,
        hash,
        line,
    })
}

/// Append `hash` as 64 lower-case hex digits.
fn push_hex(out: &mut Vec<u8>, hash: &Hash) {
    let mut digits = [0u8; HEX_LEN];
    // 32 bytes always fit 64 digits.
    if hex::encode_to_slice(hash.0, &mut digits).is_ok() {
        out.extend_from_slice(&digits);
    }
}

/// The Merkle leaf hash of the record whose hash is `record_hash`:
/// `SHA-256(0x00 ‖ record_hash)` (RFC 9162 §2.1.1 over the 32 bytes).
#[must_use]
pub fn merkle_leaf(record_hash: &Hash) -> Hash {
    super::merkle::leaf_hash(record_hash.as_bytes())
}

fn record_hash(prefix: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update(RECORD_DOMAIN);
    hasher.update(prefix);
    Hash(hasher.finalize().into())
}

/// A line of a trail, parsed and checked against its own hash or MAC.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ParsedLine {
    /// A chained record.
    Record(RecordFields),
    /// A checkpoint.
    Checkpoint(CheckpointFields),
    /// A signed Merkle tree head (see [`TreeHead`]).
    TreeHead(TreeHead),
}

/// The chain fields of a record whose hash matched its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordFields {
    /// Stream (tenant).
    pub stream: String,
    /// Sequence number in the stream.
    pub seq: u64,
    /// The previous record's hash.
    pub prev: Hash,
    /// This record's hash.
    pub hash: Hash,
}

/// A checkpoint's fields, and whether its MAC was checked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckpointFields {
    /// Stream (tenant).
    pub stream: String,
    /// The sequence number it vouches for.
    pub seq: u64,
    /// The record hash it vouches for.
    pub hash: Hash,
    /// The signing key's name.
    pub key_id: String,
    /// The MAC, as written.
    pub mac: Hash,
    /// The bytes the MAC covers.
    body: Vec<u8>,
}

impl CheckpointFields {
    /// Whether `key` produced this checkpoint's MAC (constant-time compare).
    #[must_use]
    pub fn is_signed_by(&self, key: &CheckpointKey) -> bool {
        key.verify(&self.body, &self.mac)
    }
}

/// Why a line did not parse or did not match its own hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum LineDefect {
    /// Longer than [`MAX_LINE_LEN`].
    TooLong,
    /// Not a record or checkpoint in the documented layout.
    Malformed,
    /// A record whose bytes do not hash to its `hash`.
    HashMismatch,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRecord {
    v: u32,
    stream: String,
    seq: u64,
    prev: String,
    #[allow(dead_code)]
    event: serde::de::IgnoredAny,
    hash: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpointLine {
    checkpoint: RawCheckpoint,
    mac: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCheckpoint {
    stream: String,
    seq: u64,
    hash: String,
    #[allow(dead_code)]
    time: serde::de::IgnoredAny,
    key_id: String,
}

/// Split `line` into its covered prefix and the 64 hex digits after
/// `suffix_start`, if it ends the documented way.
pub(crate) fn split_tail<'a>(line: &'a [u8], suffix_start: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let tail_len = suffix_start.len() + HEX_LEN + 2;
    let cut = line.len().checked_sub(tail_len)?;
    let (prefix, tail) = line.split_at(cut);
    let (start, rest) = tail.split_at(suffix_start.len());
    let (digits, end) = rest.split_at(HEX_LEN);
    (start == suffix_start && end == b"\"}").then_some((prefix, digits))
}

/// Parse one line of a trail and check it against its own hash.
///
/// Checkpoint MACs are not checked here (that needs the key): see
/// [`CheckpointFields::is_signed_by`].
///
/// # Errors
/// The [`LineDefect`] found.
pub fn parse_line(line: &[u8]) -> std::result::Result<ParsedLine, LineDefect> {
    if line.len() > MAX_LINE_LEN {
        return Err(LineDefect::TooLong);
    }
    if TreeHead::is_line(line) {
        return TreeHead::parse_line(line)
            .map(ParsedLine::TreeHead)
            .map_err(|_| LineDefect::Malformed);
    }
    if line.starts_with(CHECKPOINT_PREFIX) {
        // A genuine checkpoint is a few hundred bytes; a bigger one is not
        // kept (the verifier's look-ahead holds parsed checkpoints).
        if line.len() > MAX_CHECKPOINT_LEN {
            return Err(LineDefect::Malformed);
        }
        let (prefix, _) = split_tail(line, MAC_SUFFIX_START).ok_or(LineDefect::Malformed)?;
        let raw: RawCheckpointLine =
            serde_json::from_slice(line).map_err(|_| LineDefect::Malformed)?;
        let body = prefix
            .get(CHECKPOINT_PREFIX.len()..)
            .ok_or(LineDefect::Malformed)?;
        return Ok(ParsedLine::Checkpoint(CheckpointFields {
            stream: raw.checkpoint.stream,
            seq: raw.checkpoint.seq,
            hash: Hash::from_hex(&raw.checkpoint.hash).map_err(|_| LineDefect::Malformed)?,
            key_id: raw.checkpoint.key_id,
            mac: Hash::from_hex(&raw.mac).map_err(|_| LineDefect::Malformed)?,
            body: body.to_vec(),
        }));
    }
    let (prefix, digits) = split_tail(line, HASH_SUFFIX_START).ok_or(LineDefect::Malformed)?;
    let written = std::str::from_utf8(digits)
        .ok()
        .and_then(|text| Hash::from_hex(text).ok())
        .ok_or(LineDefect::Malformed)?;
    if record_hash(prefix) != written {
        return Err(LineDefect::HashMismatch);
    }
    let raw: RawRecord = serde_json::from_slice(line).map_err(|_| LineDefect::Malformed)?;
    let hash = Hash::from_hex(&raw.hash).map_err(|_| LineDefect::Malformed)?;
    if raw.v != RECORD_VERSION || hash != written || raw.seq == 0 {
        return Err(LineDefect::Malformed);
    }
    Ok(ParsedLine::Record(RecordFields {
        stream: raw.stream,
        seq: raw.seq,
        prev: Hash::from_hex(&raw.prev).map_err(|_| LineDefect::Malformed)?,
        hash,
    }))
}

/// Read the event out of a record line (for read-back; the line is not
/// checked, use `verify` for that).
///
/// # Errors
/// `InvalidInput` if the line is not a record.
pub fn event_of(line: &[u8]) -> Result<AuditEvent> {
    #[derive(Deserialize)]
    struct EventOnly {
        event: AuditEvent,
    }
    serde_json::from_slice::<EventOnly>(line)
        .map(|r| r.event)
        .map_err(|_| Error::invalid_input("line is not an audit record"))
}

type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted HMAC key, in bytes.
pub const MIN_KEY_LEN: usize = 32;

/// The key that signs checkpoints (HMAC-SHA-256), loaded from a
/// [`SecretProvider`](docaiche_core::SecretProvider). The verifier needs the
/// same key: give auditors read access to that one secret.
#[derive(Clone)]
pub struct CheckpointKey {
    id: String,
    mac: HmacSha256,
}

impl std::fmt::Debug for CheckpointKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointKey")
            .field("id", &self.id)
            .field("key", &docaiche_core::secret::REDACTED)
            .finish()
    }
}

impl CheckpointKey {
    /// The secret name the sinks load by default.
    pub const DEFAULT_SECRET: &'static str = "audit/checkpoint-key";

    /// A key named `id` (written into each checkpoint) from raw bytes.
    ///
    /// # Errors
    /// `InvalidInput` if the key is shorter than [`MIN_KEY_LEN`] bytes.
    pub fn from_bytes(id: impl Into<String>, key: &docaiche_core::SecretBytes) -> Result<Self> {
        if key.len() < MIN_KEY_LEN {
            return Err(Error::invalid_input(
                "audit checkpoint key must be at least 32 bytes",
            ));
        }
        let mac = HmacSha256::new_from_slice(key.expose_secret())
            .map_err(|_| Error::invalid_input("audit checkpoint key is not usable"))?;
        Ok(Self { id: id.into(), mac })
    }

    /// Load the secret `name` from `provider`.
    ///
    /// # Errors
    /// `Misconfigured` if the provider does not have it, `Unavailable` if the
    /// provider is down, `InvalidInput` if it is too short.
    pub async fn load(provider: &dyn docaiche_core::SecretProvider, name: &str) -> Result<Self> {
        let value = provider
            .get(name)
            .await?
            .ok_or_else(|| Error::misconfigured(name.to_owned(), "secret is not set"))?;
        Self::from_bytes(name, &value.value)
    }

    /// The key's name.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    fn sign(&self, body: &[u8]) -> Hash {
        let mut mac = self.mac.clone();
        mac.update(CHECKPOINT_DOMAIN);
        mac.update(body);
        Hash(mac.finalize().into_bytes().into())
    }

    fn verify(&self, body: &[u8], tag: &Hash) -> bool {
        self.verify_in(CHECKPOINT_DOMAIN, body, tag)
    }

    /// The MAC of `body` under this key, in the separate `domain` (so a MAC
    /// made for one kind of object never verifies as another).
    pub(crate) fn sign_in(&self, domain: &[u8], body: &[u8]) -> Hash {
        let mut mac = self.mac.clone();
        mac.update(domain);
        mac.update(body);
        Hash(mac.finalize().into_bytes().into())
    }

    /// Whether `tag` is the MAC of `body` in `domain` (constant-time).
    pub(crate) fn verify_in(&self, domain: &[u8], body: &[u8], tag: &Hash) -> bool {
        let mut mac = self.mac.clone();
        mac.update(domain);
        mac.update(body);
        mac.verify_slice(&tag.0).is_ok()
    }

    /// Encode a checkpoint line for `stream` at `head`, stamped `time`.
    ///
    /// # Errors
    /// `InvalidInput` if the stream name or time does not serialise.
    pub fn checkpoint(
        &self,
        stream: &str,
        head: Head,
        time: time::OffsetDateTime,
    ) -> Result<Vec<u8>> {
        let time = time
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| Error::invalid_input("checkpoint time does not format"))?;
        let body = serde_json::to_vec(&serde_json::json!({
            "stream": stream,
            "seq": head.seq,
            "hash": head.hash.to_hex(),
            "time": time,
            "key_id": self.id,
        }))
        .map_err(|_| Error::invalid_input("checkpoint does not serialise"))?;
        let mac = self.sign(&body);
        let mut line = Vec::with_capacity(body.len() + 100);
        line.extend_from_slice(CHECKPOINT_PREFIX);
        line.extend_from_slice(&body);
        line.extend_from_slice(MAC_SUFFIX_START);
        line.extend_from_slice(mac.to_hex().as_bytes());
        line.extend_from_slice(b"\"}");
        Ok(line)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use docaiche_core::audit::AuditOutcome;
    use docaiche_core::{RequestContext, TenantId};

    fn event() -> AuditEvent {
        AuditEvent::new(
            "auth.login",
            AuditOutcome::Success,
            time::OffsetDateTime::UNIX_EPOCH,
            &RequestContext::new(),
        )
        .by(TenantId::new("acme").unwrap(), None)
    }

    #[test]
    fn a_record_round_trips_and_every_flipped_byte_is_caught() {
        let e = event();
        let rec = encode_record("acme", Head::EMPTY, &event_json(&e).unwrap()).unwrap();
        let ParsedLine::Record(fields) = parse_line(&rec.line).unwrap() else {
            panic!("a record")
        };
        assert_eq!(fields.seq, 1);
        assert_eq!(fields.prev, GENESIS);
        assert_eq!(fields.hash, rec.hash);
        assert_eq!(event_of(&rec.line).unwrap(), e);
        for i in 0..rec.line.len() {
            for mask in [0x01, 0x20, 0x80] {
                let mut bad = rec.line.clone();
                bad[i] ^= mask;
                assert!(
                    parse_line(&bad).is_err(),
                    "flip {mask:#x} at byte {i} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn the_record_layout_is_byte_for_byte_the_documented_one() {
        let rec = encode_record("ac\"me", Head::new(6, Hash([1; 32])), b"{\"a\":1}").unwrap();
        let prefix = format!(
            "{{\"v\":1,\"stream\":\"ac\\\"me\",\"seq\":7,\"prev\":\"{}\",\"event\":{{\"a\":1}}",
            "01".repeat(32)
        );
        let expected = format!(
            "{prefix},\"hash\":\"{}\"}}",
            record_hash(prefix.as_bytes()).to_hex()
        );
        assert_eq!(String::from_utf8(rec.line).unwrap(), expected);
        assert_eq!(rec.hash, record_hash(prefix.as_bytes()));
    }

    #[test]
    fn a_checkpoint_verifies_only_with_its_key() {
        let key = CheckpointKey::from_bytes("k", &vec![7u8; 32].into()).unwrap();
        let other = CheckpointKey::from_bytes("k", &vec![8u8; 32].into()).unwrap();
        let line = key
            .checkpoint(
                "acme",
                Head::new(3, Hash([1; 32])),
                time::OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap();
        let ParsedLine::Checkpoint(cp) = parse_line(&line).unwrap() else {
            panic!("a checkpoint")
        };
        assert!(cp.is_signed_by(&key));
        assert!(!cp.is_signed_by(&other));
        assert_eq!((cp.seq, cp.hash), (3, Hash([1; 32])));
        assert!(!format!("{key:?}").contains("7, 7"));
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(CheckpointKey::from_bytes("k", &vec![1u8; 16].into()).is_err());
    }
}
