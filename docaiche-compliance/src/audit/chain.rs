//! The heads of every stream a writer extends, and when to checkpoint.

use std::collections::HashMap;
use std::num::NonZeroU64;
use std::time::Duration;

use docaiche_core::Result;
use time::OffsetDateTime;

use super::merkle::Frontier;
use super::record::{CheckpointKey, EncodedRecord, Head, encode_record, merkle_leaf};
use super::tree_head::{TreeHead, TreeHeadPolicy};

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

/// One stream's Merkle tree as a writer sees it: enough to append and to
/// sign its head.
#[derive(Debug, Clone)]
struct StreamTree {
    /// `None` when the stream's first records are not in the trail
    /// (retention removed them): its tree cannot be recomputed, and the
    /// writer signs no heads for it.
    frontier: Option<Frontier>,
    /// The size of the last head signed.
    signed_size: u64,
    /// When (monotonic) the last head was signed; `None`: never by this
    /// writer.
    signed_at: Option<Duration>,
    /// The time written in the last head (heads never go back in time,
    /// even when the wall clock does).
    signed_time: Option<OffsetDateTime>,
}

impl StreamTree {
    const NEW: Self = Self {
        frontier: Some(Frontier::new()),
        signed_size: 0,
        signed_at: None,
        signed_time: None,
    };
}

/// The Merkle trees of every stream and the policy signing their heads.
#[derive(Debug)]
struct Trees {
    policy: TreeHeadPolicy,
    streams: HashMap<String, StreamTree>,
    /// The state of each stream touched since [`Chain::commit`], to put
    /// back on [`Chain::rollback`].
    saved: HashMap<String, Option<StreamTree>>,
}

impl Trees {
    fn save(&mut self, stream: &str) {
        if !self.saved.contains_key(stream) {
            self.saved
                .insert(stream.to_owned(), self.streams.get(stream).cloned());
        }
    }
}

/// Stream heads held in memory by a single writer (the file sink's thread).
#[derive(Debug, Default)]
pub(crate) struct Chain {
    heads: HashMap<String, Head>,
    checkpoints: Option<CheckpointPolicy>,
    trees: Option<Trees>,
}

impl Chain {
    pub(crate) fn new(checkpoints: Option<CheckpointPolicy>) -> Self {
        Self {
            heads: HashMap::new(),
            checkpoints,
            trees: None,
        }
    }

    /// Keep a Merkle tree per stream and sign heads under `policy`.
    pub(crate) fn with_tree_heads(mut self, policy: Option<TreeHeadPolicy>) -> Self {
        self.trees = policy.map(|policy| Trees {
            policy,
            streams: HashMap::new(),
            saved: HashMap::new(),
        });
        self
    }

    pub(crate) fn set_head(&mut self, stream: &str, head: Head) {
        self.heads.insert(stream.to_owned(), head);
    }

    /// Recovery: `stream` starts after `head`, its earlier records removed
    /// by retention (an anchor): it has no tree.
    pub(crate) fn set_pruned_start(&mut self, stream: &str, head: Head) {
        self.set_head(stream, head);
        if let Some(trees) = &mut self.trees {
            trees.streams.insert(
                stream.to_owned(),
                StreamTree {
                    frontier: None,
                    ..StreamTree::NEW
                },
            );
        }
    }

    /// Recovery: a record read back from the trail (its seq and hash).
    pub(crate) fn recover_record(&mut self, stream: &str, head: Head) {
        self.set_head(stream, head);
        if let Some(trees) = &mut self.trees {
            let tree = trees
                .streams
                .entry(stream.to_owned())
                .or_insert(StreamTree::NEW);
            if let Some(frontier) = &mut tree.frontier {
                if frontier.size() + 1 == head.seq {
                    frontier.push(merkle_leaf(&head.hash));
                } else {
                    // A gap: the trail does not verify; sign nothing more
                    // for this stream rather than a root over a hole.
                    tree.frontier = None;
                }
            }
        }
    }

    /// Recovery: a tree head read back from the trail.
    pub(crate) fn recover_tree_head(&mut self, head: &TreeHead) {
        if let Some(trees) = &mut self.trees {
            let tree = trees
                .streams
                .entry(head.stream().to_owned())
                .or_insert(StreamTree::NEW);
            tree.signed_size = head.size;
            tree.signed_time = Some(tree.signed_time.map_or(head.time, |t| t.max(head.time)));
        }
    }

    /// Recovery is over: the heads found count as signed `now` (so quiet
    /// streams get their next head an idle interval from now).
    pub(crate) fn recovered(&mut self, monotonic: Duration) {
        if let Some(trees) = &mut self.trees {
            for tree in trees.streams.values_mut() {
                if tree.signed_time.is_some() {
                    tree.signed_at = Some(monotonic);
                }
            }
        }
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
        if let Some(trees) = &mut self.trees {
            trees.save(stream);
            // Look up before inserting: no key allocated for a known stream.
            let tree = match trees.streams.get_mut(stream) {
                Some(tree) => tree,
                None => trees
                    .streams
                    .entry(stream.to_owned())
                    .or_insert(StreamTree::NEW),
            };
            if let Some(frontier) = &mut tree.frontier {
                frontier.push(merkle_leaf(&record.hash));
            }
        }
        match self.heads.get_mut(stream) {
            Some(known) => *known = head,
            None => {
                self.heads.insert(stream.to_owned(), head);
            }
        }
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

    /// The heads that are due, as trail lines: for each stream with a tree,
    /// a head when it has records no head covers and its last head is
    /// `every` old (or it never had one), or when its last head is `idle`
    /// old. Signed at `now`, or just after the stream's last head if the
    /// wall clock went back.
    pub(crate) fn due_tree_heads(
        &mut self,
        now: OffsetDateTime,
        monotonic: Duration,
    ) -> Result<Vec<Vec<u8>>> {
        let Some(Trees {
            policy,
            streams,
            saved,
        }) = &mut self.trees
        else {
            return Ok(Vec::new());
        };
        let mut lines = Vec::new();
        for (stream, tree) in streams.iter_mut() {
            let Some(frontier) = &tree.frontier else {
                continue;
            };
            let age = tree.signed_at.map(|at| monotonic.saturating_sub(at));
            let grown = frontier.size() > tree.signed_size;
            let due = match age {
                None => grown || tree.signed_time.is_none(),
                Some(age) => (grown && age >= policy.every) || age >= policy.idle,
            };
            if !due {
                continue;
            }
            let time = tree.signed_time.map_or(now, |last| now.max(last));
            let head = TreeHead::sign(
                &policy.key,
                &policy.origin_of(stream),
                frontier.size(),
                frontier.root(),
                time,
            )?;
            lines.push(head.to_line());
            if !saved.contains_key(stream) {
                saved.insert(stream.clone(), Some(tree.clone()));
            }
            tree.signed_size = head.size;
            tree.signed_at = Some(monotonic);
            tree.signed_time = Some(time);
        }
        Ok(lines)
    }

    /// The batch reached the trail: forget how to undo it.
    pub(crate) fn commit(&mut self) {
        if let Some(trees) = &mut self.trees {
            trees.saved.clear();
        }
    }

    /// The batch did not reach the trail: put every tree it touched back
    /// (the heads are restored one by one with [`restore`](Self::restore)).
    pub(crate) fn rollback(&mut self) {
        if let Some(trees) = &mut self.trees {
            for (stream, saved) in trees.saved.drain() {
                match saved {
                    Some(tree) => {
                        trees.streams.insert(stream, tree);
                    }
                    None => {
                        trees.streams.remove(&stream);
                    }
                }
            }
        }
    }
}
