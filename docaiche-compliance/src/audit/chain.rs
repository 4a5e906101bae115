//! The heads of every stream a writer extends, and when to checkpoint.

use std::collections::HashMap;
use std::num::NonZeroU64;

use docaiche_core::Result;
use time::OffsetDateTime;

use super::record::{CheckpointKey, EncodedRecord, Head, encode_record};

/// Sign a checkpoint of a stream every `every` records, with `key`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CheckpointPolicy {
    /// The signing key.
    pub key: CheckpointKey,
    /// Records between two checkpoints of one stream.
    pub every: NonZeroU64,
}

impl CheckpointPolicy {
    /// A checkpoint every `every` records of a stream.
    #[must_use]
    pub const fn new(key: CheckpointKey, every: NonZeroU64) -> Self {
        Self { key, every }
    }
}

/// What appending one event produced.
#[derive(Debug)]
pub(crate) struct Appended {
    pub(crate) record: EncodedRecord,
    pub(crate) checkpoint: Option<Vec<u8>>,
    /// The stream's head before, to undo a failed write.
    pub(crate) previous: Head,
}

/// Stream heads held in memory by a single writer (the file sink's thread).
#[derive(Debug, Default)]
pub(crate) struct Chain {
    heads: HashMap<String, Head>,
    checkpoints: Option<CheckpointPolicy>,
}

impl Chain {
    pub(crate) fn new(checkpoints: Option<CheckpointPolicy>) -> Self {
        Self {
            heads: HashMap::new(),
            checkpoints,
        }
    }

    pub(crate) fn set_head(&mut self, stream: &str, head: Head) {
        self.heads.insert(stream.to_owned(), head);
    }

    pub(crate) fn append(
        &mut self,
        stream: &str,
        event_json: &[u8],
        now: OffsetDateTime,
    ) -> Result<Appended> {
        let previous = self.heads.get(stream).copied().unwrap_or(Head::EMPTY);
        let record = encode_record(stream, previous, event_json)?;
        let head = Head::new(record.seq, record.hash);
        let checkpoint = match &self.checkpoints {
            Some(policy) if record.seq % policy.every.get() == 0 => {
                Some(policy.key.checkpoint(stream, head, now)?)
            }
            _ => None,
        };
        self.heads.insert(stream.to_owned(), head);
        Ok(Appended {
            record,
            checkpoint,
            previous,
        })
    }

    /// Put `stream`'s head back to `head` (undo, newest first).
    pub(crate) fn restore(&mut self, stream: &str, head: Head) {
        if head == Head::EMPTY {
            self.heads.remove(stream);
        } else {
            self.heads.insert(stream.to_owned(), head);
        }
    }
}
