//! Crash safety: a writer killed with SIGKILL mid-stream loses no
//! acknowledged event, and the trail it leaves verifies and continues.
//!
//! The parent test re-runs this test binary with
//! `DOCAICHE_AUDIT_CRASH_CHILD=<path>`; in that process `child_writer`
//! writes events from several tasks and prints `ACK <tenant> <seq> <id>`
//! for every receipt, until it is killed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod audit_common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;

use audit_common::event;
use docaiche_compliance::audit::record::{self, ParsedLine};
use docaiche_compliance::audit::{
    FileSinkConfig, JsonlFileSink, Verifier, read_lines, trail_segments,
};
use docaiche_core::audit::AuditSink;

const CHILD_VAR: &str = "DOCAICHE_AUDIT_CRASH_CHILD";

/// Only does something in the child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn child_writer() {
    let Some(path) = std::env::var_os(CHILD_VAR) else {
        return;
    };
    let sink = Arc::new(JsonlFileSink::open(FileSinkConfig::new(PathBuf::from(path))).unwrap());
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let sink = sink.clone();
            tokio::spawn(async move {
                let tenant = ["a", "b", "c"][task % 3];
                for i in 0.. {
                    let e = event(tenant, task * 1_000_000 + i);
                    let receipt = sink.record(&e).await.unwrap();
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "ACK {tenant} {} {}", receipt.sequence.unwrap(), e.id).unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test]
async fn a_killed_writer_loses_no_acknowledged_event() {
    if std::env::var_os(CHILD_VAR).is_some() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("docaiche-audit-crash-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");

    let mut acked: HashMap<(String, u64), String> = HashMap::new();
    for round in 0..2 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_writer",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_VAR, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = stdout.lines();
        let mut this_round = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(ack) = line.strip_prefix("ACK ") {
                let mut parts = ack.split(' ');
                let (tenant, seq, id) = (
                    parts.next().unwrap().to_owned(),
                    parts.next().unwrap().parse::<u64>().unwrap(),
                    parts.next().unwrap().to_owned(),
                );
                assert!(
                    acked.insert((tenant, seq), id).is_none(),
                    "a sequence number was acknowledged twice"
                );
                this_round += 1;
                if this_round == 400 {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        // Acknowledgements already in the pipe count too.
        for line in lines {
            let Ok(line) = line else { break };
            if let Some(ack) = line.strip_prefix("ACK ") {
                let mut parts = ack.split(' ');
                let tenant = parts.next().unwrap().to_owned();
                let Some(Ok(seq)) = parts.next().map(str::parse::<u64>) else {
                    continue; // cut mid-line by the kill
                };
                if let Some(id) = parts.next().filter(|id| id.len() == 36) {
                    acked.insert((tenant, seq), id.to_owned());
                }
            }
        }
        child.wait().unwrap();

        let report = Verifier::new().verify_path(&path).unwrap();
        assert!(report.is_ok(), "round {round}: {:?}", report.tamper);
    }

    // Restart: a torn tail (if any) is cut, and the chain continues.
    let sink = JsonlFileSink::open(FileSinkConfig::new(&path)).unwrap();
    let receipt = sink.record(&event("a", 0)).await.unwrap();
    sink.flush().await.unwrap();
    let report = Verifier::new().verify_path(&path).unwrap();
    assert!(report.is_ok() && report.torn_tail.is_none(), "{report:?}");
    assert_eq!(receipt.sequence, Some(report.heads["a"].seq));

    let mut stored: HashMap<(String, u64), String> = HashMap::new();
    for segment in trail_segments(&path).unwrap() {
        for line in read_lines(&segment).unwrap() {
            let line = line.unwrap();
            if let Ok(ParsedLine::Record(r)) = record::parse_line(&line.bytes) {
                let e = record::event_of(&line.bytes).unwrap();
                stored.insert((r.stream, r.seq), e.id.to_string());
            }
        }
    }
    assert!(acked.len() >= 800, "{} acknowledgements", acked.len());
    for (key, id) in &acked {
        assert_eq!(stored.get(key), Some(id), "acknowledged event {key:?} lost");
    }
    drop(sink);
    let _ = std::fs::remove_dir_all(dir);
}
