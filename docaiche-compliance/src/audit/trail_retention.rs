//! [`FileTrailRetention`]: the `audit` retention period applied to the file
//! trail, whole rotated segments at a time, behind a signed [`Anchor`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditResource, AuditSink};
use docaiche_core::{Error, RequestContext, Result, TenantId};
use time::OffsetDateTime;

use super::anchor::Anchor;
use super::record::{CheckpointKey, Head, NO_TENANT_STREAM, ParsedLine, event_of, parse_line};
use super::verify::{Verifier, read_lines, trail_segments};
use crate::retention::{
    KindPurge, LegalHoldRegistry, RetentionPolicies, TrailRetention, resource, suspended_event,
};

/// Applies the [`resource::AUDIT`] retention period to the
/// [`JsonlFileSink`](super::JsonlFileSink) trail at `path`.
///
/// Only whole rotated segments go, oldest first, never the active file and
/// never part of a segment: a segment is removed when every record in it is
/// older than the period of its stream's tenant (the default period for
/// events without a tenant), no tenant with a record in it is under an
/// active legal hold on `audit` (or on every kind), and every older segment
/// goes too (streams may only lose a prefix). A segment holding even one
/// younger or held record stays, and so does everything after it.
///
/// Each run:
/// 1. refuses to touch a trail that does not verify (with the key and the
///    current anchor): the evidence of tampering is never purged;
/// 2. records one `retention.purge` event per stream losing records
///    (resource kind `audit`, with the records and segments removed, the
///    last sequence removed and the cutoff) and one `retention.suspended`
///    per tenant a hold kept, through the normal sink (fail closed: if the
///    sink refuses, nothing is removed);
/// 3. stores a new [`Anchor`], signed with the checkpoint key, that moves
///    each affected stream's start past its last removed record and lists
///    every removed segment (it supersedes the previous anchor);
/// 4. deletes the segments. Segments an interrupted run anchored but did
///    not delete are deleted by the next run (the verifier skips them).
#[derive(Debug, Clone)]
pub struct FileTrailRetention {
    path: PathBuf,
    key: CheckpointKey,
}

impl FileTrailRetention {
    /// Retention of the file trail whose active file is `path`, anchors
    /// signed with `key` (the checkpoint key: auditors verify both with it).
    #[must_use]
    pub fn new(path: impl Into<PathBuf>, key: CheckpointKey) -> Self {
        Self {
            path: path.into(),
            key,
        }
    }

    /// The trail's active file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// One stream's records in one segment.
#[derive(Debug, Clone, Copy)]
struct StreamPart {
    records: u64,
    newest: OffsetDateTime,
    last: Head,
}

/// A rotated segment, summarised.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    name: String,
    streams: BTreeMap<String, StreamPart>,
}

/// What the blocking scan found.
#[derive(Debug, Default)]
struct Scan {
    previous: Option<Anchor>,
    /// Segments the previous anchor names that are still there.
    leftovers: Vec<PathBuf>,
    /// Rotated segments not yet anchored, oldest first, up to the first one
    /// that could not be summarised.
    segments: Vec<Segment>,
}

fn file_name(path: &Path) -> Option<String> {
    path.file_name().and_then(|n| n.to_str()).map(str::to_owned)
}

fn scan(path: &Path, key: &CheckpointKey) -> Result<Scan> {
    let previous = Anchor::load(path)?;
    if let Some(anchor) = &previous
        && !anchor.is_signed_by(key)
    {
        return Err(Error::conflict(
            "the audit trail anchor does not verify under the checkpoint key: nothing purged",
        ));
    }
    let all = trail_segments(path)?;
    if all.is_empty() {
        return Ok(Scan::default());
    }
    let mut verifier = Verifier::new().with_key(key.clone());
    if let Some(anchor) = &previous {
        verifier = verifier.with_anchor(anchor.clone());
    }
    let report = verifier.verify_path(path)?;
    if let Some(tamper) = report.tamper {
        tracing::error!(%tamper, "audit trail retention refused: the trail does not verify");
        return Err(Error::conflict(
            "the audit trail does not verify: nothing purged",
        ));
    }
    let anchored: BTreeSet<&str> = previous
        .as_ref()
        .map(|a| a.segments.iter().map(String::as_str).collect())
        .unwrap_or_default();
    let mut out = Scan::default();
    for segment in all {
        if segment == path {
            continue;
        }
        let Some(name) = file_name(&segment) else {
            break;
        };
        if anchored.contains(name.as_str()) {
            out.leftovers.push(segment);
            continue;
        }
        match summarise(&segment)? {
            Some(streams) => out.segments.push(Segment {
                path: segment,
                name,
                streams,
            }),
            None => break,
        }
    }
    out.previous = previous;
    Ok(out)
}

/// Each stream's part of `segment`, or `None` if a line is not a record or
/// checkpoint whose event can be read (such a segment is kept).
fn summarise(segment: &Path) -> Result<Option<BTreeMap<String, StreamPart>>> {
    let mut streams: BTreeMap<String, StreamPart> = BTreeMap::new();
    for line in read_lines(segment)? {
        let line = line?;
        if !line.complete || line.too_long {
            return Ok(None);
        }
        let record = match parse_line(&line.bytes) {
            Ok(ParsedLine::Record(record)) => record,
            Ok(ParsedLine::Checkpoint(_) | ParsedLine::TreeHead(_)) => continue,
            Err(_) => return Ok(None),
        };
        let Ok(event) = event_of(&line.bytes) else {
            return Ok(None);
        };
        let head = Head::new(record.seq, record.hash);
        streams
            .entry(record.stream)
            .and_modify(|part| {
                part.records += 1;
                part.newest = part.newest.max(event.time);
                part.last = head;
            })
            .or_insert(StreamPart {
                records: 1,
                newest: event.time,
                last: head,
            });
    }
    Ok(Some(streams))
}

/// The period and hold state of one stream (a tenant's, or the stream of
/// records without a tenant), for both trail purges (file and PostgreSQL).
#[derive(Debug, Clone)]
pub(super) struct StreamRule {
    pub(super) tenant: Option<TenantId>,
    pub(super) days: Option<u32>,
    pub(super) cutoff: Option<OffsetDateTime>,
    /// The legal hold on the tenant's audit records, if any.
    pub(super) hold: Option<uuid::Uuid>,
}

impl StreamRule {
    /// The rule of `stream` under `policies` and `holds` at `now`.
    pub(super) async fn of(
        stream: &str,
        policies: &RetentionPolicies,
        holds: &dyn LegalHoldRegistry,
        now: OffsetDateTime,
    ) -> Result<Self> {
        let tenant = (stream != NO_TENANT_STREAM)
            .then(|| TenantId::new(stream).ok())
            .flatten();
        let (days, hold) = match &tenant {
            Some(tenant) => {
                let hold = holds.active(tenant).await?.into_iter().find(|h| {
                    h.resource_kind
                        .as_deref()
                        .is_none_or(|k| k == resource::AUDIT)
                });
                (policies.days(tenant, resource::AUDIT), hold.map(|h| h.id))
            }
            None => (policies.default.get(resource::AUDIT).copied(), None),
        };
        Ok(Self {
            tenant,
            days,
            cutoff: days.map(|d| now - time::Duration::days(i64::from(d))),
            hold,
        })
    }
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal_with("audit trail retention task failed", e))?
}

#[async_trait]
impl TrailRetention for FileTrailRetention {
    async fn purge_trail(
        &self,
        policies: &RetentionPolicies,
        holds: &dyn LegalHoldRegistry,
        audit: &dyn AuditSink,
        now: OffsetDateTime,
    ) -> Result<BTreeMap<TenantId, KindPurge>> {
        let (path, key) = (self.path.clone(), self.key.clone());
        let scanned = blocking(move || scan(&path, &key)).await?;

        // The rule of every stream with a record in a candidate segment.
        let mut rules: BTreeMap<String, StreamRule> = BTreeMap::new();
        for stream in scanned.segments.iter().flat_map(|s| s.streams.keys()) {
            if rules.contains_key(stream) {
                continue;
            }
            rules.insert(
                stream.clone(),
                StreamRule::of(stream, policies, holds, now).await?,
            );
        }

        // The removable prefix; what holds kept.
        let mut take = 0;
        let mut held: BTreeMap<String, u64> = BTreeMap::new();
        let mut blocked = false;
        for segment in &scanned.segments {
            let mut removable = true;
            for (stream, part) in &segment.streams {
                let rule = rules.get(stream);
                let expired = rule
                    .and_then(|r| r.cutoff)
                    .is_some_and(|cutoff| part.newest < cutoff);
                if !expired {
                    removable = false;
                } else if rule.is_some_and(|r| r.hold.is_some()) {
                    removable = false;
                    *held.entry(stream.clone()).or_default() += part.records;
                }
            }
            if removable && !blocked {
                take += 1;
            } else {
                blocked = true;
            }
        }
        let removed = &scanned.segments[..take];

        // Per stream: records and segments removed, the new start.
        let mut per_stream: BTreeMap<String, (u64, u64, Head)> = BTreeMap::new();
        let mut removed_through = scanned
            .previous
            .as_ref()
            .map_or(OffsetDateTime::UNIX_EPOCH, |a| a.removed_through);
        for segment in removed {
            for (stream, part) in &segment.streams {
                let entry = per_stream
                    .entry(stream.clone())
                    .or_insert((0, 0, part.last));
                entry.0 += part.records;
                entry.1 += 1;
                entry.2 = part.last;
                removed_through = removed_through.max(part.newest);
            }
        }

        // Record first (fail closed).
        let mut outcomes: BTreeMap<TenantId, KindPurge> = BTreeMap::new();
        for (stream, count) in &held {
            let Some(rule) = rules.get(stream) else {
                continue;
            };
            let (Some(tenant), Some(hold)) = (&rule.tenant, rule.hold) else {
                continue;
            };
            audit
                .record(&suspended_event(tenant, hold, resource::AUDIT, now))
                .await?;
            outcomes.insert(
                tenant.clone(),
                KindPurge {
                    retention_days: rule.days.unwrap_or_default(),
                    held: *count,
                    suspended_by_hold: true,
                    ..KindPurge::default()
                },
            );
        }
        for (stream, (records, segments, last)) in &per_stream {
            let rule = rules.get(stream);
            let mut event = AuditEvent::new(
                "retention.purge",
                AuditOutcome::Success,
                now,
                &RequestContext::new(),
            )
            .on(AuditResource::new(resource::AUDIT, stream.clone()))
            .because("retention_expired")
            .with_detail("records", (*records).into())
            .with_detail("segments", (*segments).into())
            .with_detail("through_seq", last.seq.into());
            if let Some(rule) = rule {
                if let Some(days) = rule.days {
                    event = event.with_detail("retention_days", days.into());
                }
                if let Some(cutoff) = rule.cutoff {
                    event = event.with_detail("cutoff", rfc3339(cutoff).into());
                }
            }
            if let Some(tenant) = rule.and_then(|r| r.tenant.clone()) {
                event = event.by(tenant.clone(), None);
                let outcome = outcomes.entry(tenant).or_default();
                outcome.retention_days = rule.and_then(|r| r.days).unwrap_or_default();
                outcome.purged += records;
            }
            audit.record(&event).await?;
        }
        if removed.is_empty() && scanned.leftovers.is_empty() {
            return Ok(outcomes);
        }

        // Anchor, then delete.
        let mut to_delete: Vec<PathBuf> = scanned.leftovers.clone();
        to_delete.extend(removed.iter().map(|s| s.path.clone()));
        if !removed.is_empty() {
            let (mut streams, mut names) = scanned
                .previous
                .as_ref()
                .map(|a| (a.streams.clone(), a.segments.clone()))
                .unwrap_or_default();
            for (stream, (_, _, last)) in &per_stream {
                streams.insert(stream.clone(), *last);
            }
            names.extend(removed.iter().map(|s| s.name.clone()));
            let anchor = Anchor::sign(&self.key, streams, names, removed_through, now)?;
            let path = self.path.clone();
            blocking(move || anchor.store(&path)).await?;
        }
        let path = self.path.clone();
        blocking(move || {
            for segment in &to_delete {
                match std::fs::remove_file(segment) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::unavailable("audit trail segment", e)),
                }
            }
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| Error::unavailable("audit trail directory", e))?;
            }
            Ok(())
        })
        .await?;
        tracing::info!(
            segments = removed.len(),
            leftovers = scanned.leftovers.len(),
            "audit trail retention removed expired segments"
        );
        Ok(outcomes)
    }
}
