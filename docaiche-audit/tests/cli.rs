//! The binary as an auditor runs it: on a trail the file sink wrote, every
//! command verifies what is intact (exit 0) and refuses what was altered
//! (exit 1); what cannot run exits 2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use docaiche_compliance::audit::{
    CheckpointKey, FileSinkConfig, FsyncPolicy, JsonlFileSink, TreeHeadPolicy,
};
use docaiche_core::audit::{AuditEvent, AuditOutcome, AuditSink};
use docaiche_core::clock::{Clock, ManualClock};
use docaiche_core::{RequestContext, SecretBytes, TenantId};

const ORIGIN: &str = "audit.test/cli";
const KEY: [u8; 32] = [5; 32];

struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("docaiche-audit-cli-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two tenants, ten events each, a second apart: a head per event.
async fn write_trail(path: &Path) {
    let key = CheckpointKey::from_bytes(
        CheckpointKey::DEFAULT_SECRET,
        &SecretBytes::from(KEY.to_vec()),
    )
    .unwrap();
    let clock = ManualClock::new();
    let sink = JsonlFileSink::open_with_clock(
        FileSinkConfig::new(path)
            .with_fsync(FsyncPolicy::Never)
            .with_tree_heads(TreeHeadPolicy::new(key, ORIGIN).unwrap()),
        Arc::new(clock.clone()),
    )
    .unwrap();
    for i in 0..20 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        let event = AuditEvent::new(
            format!("document.read.{i}"),
            AuditOutcome::Success,
            clock.now(),
            &RequestContext::new(),
        )
        .by(TenantId::new(tenant).unwrap(), None);
        sink.record(&event).await.unwrap();
        clock.advance(Duration::from_millis(600));
    }
    clock.advance(Duration::from_secs(1));
    sink.flush().await.unwrap();
}

/// Run the binary; its exit code and standard output.
fn run(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_docaiche-audit"))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap(),
    )
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[tokio::test]
async fn an_auditor_verifies_a_trail_its_proofs_and_its_history_and_catches_tampering() {
    let dir = TempDir::new();
    let (trail, key) = (dir.path("audit.jsonl"), dir.path("checkpoint.key"));
    write_trail(&trail).await;
    std::fs::write(&key, KEY).unwrap();
    let keyed = ["--key-file", s(&key), "--origin", ORIGIN];

    let (code, out) = run(&[&["verify", "trail", s(&trail)][..], &keyed].concat());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("records: 20"), "{out}");
    assert!(out.contains("verdict: verified"), "{out}");

    // Without the key: verified but says the signatures were not checked.
    let (code, out) = run(&["verify", "trail", s(&trail)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("signatures: not checked"), "{out}");

    // The history, kept, checks on its own and against the trail.
    let (code, history) = run(&["heads", s(&trail)]);
    assert_eq!(code, 0, "{history}");
    let kept = dir.path("kept-heads.txt");
    std::fs::write(&kept, &history).unwrap();
    let (code, out) = run(&[
        &["verify", "checkpoints", s(&kept), "--trail", s(&trail)][..],
        &keyed,
    ]
    .concat());
    assert_eq!(code, 0, "{out}");

    // A record proof and a consistency proof, each verified.
    let (code, proof) = run(&["prove", "record", s(&trail), "acme", "3"]);
    assert_eq!(code, 0, "{proof}");
    assert!(proof.starts_with("c2sp.org/tlog-proof@v1\n"), "{proof}");
    let record_proof = dir.path("record.tlog-proof");
    std::fs::write(&record_proof, &proof).unwrap();
    let (code, out) = run(&[&["verify", "proof", s(&record_proof)][..], &keyed].concat());
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("record 3 of stream acme is in the tree"),
        "{out}"
    );

    let (code, proof) = run(&["prove", "consistency", s(&trail), "globex", "2"]);
    assert_eq!(code, 0, "{proof}");
    let consistency = dir.path("consistency.proof");
    std::fs::write(&consistency, &proof).unwrap();
    let (code, out) = run(&[&["verify", "proof", s(&consistency)][..], &keyed].concat());
    assert_eq!(code, 0, "{out}");

    // A proof checked with another key, or altered, is refused.
    let other_key = dir.path("other.key");
    std::fs::write(&other_key, [6u8; 32]).unwrap();
    let (code, out) = run(&[
        "verify",
        "proof",
        s(&record_proof),
        "--key-file",
        s(&other_key),
    ]);
    assert_eq!(code, 1, "{out}");
    let text = std::fs::read_to_string(&record_proof).unwrap();
    let lines: Vec<&str> = text.split('\n').collect();
    let mut altered: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    altered[3] = altered[4].clone(); // the first path hash replaced
    std::fs::write(&record_proof, altered.join("\n")).unwrap();
    let (code, out) = run(&[&["verify", "proof", s(&record_proof)][..], &keyed].concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("REFUSED"), "{out}");

    // The trail's tail cut: consistent in itself, but not with the history.
    let bytes = std::fs::read(&trail).unwrap();
    let cut = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap();
    std::fs::write(&trail, &bytes[..=cut]).unwrap();
    let (code, out) = run(&[&["verify", "trail", s(&trail)][..], &keyed].concat());
    assert_eq!(code, 0, "{out}");
    let (code, out) = run(&[
        &["verify", "trail", s(&trail), "--history", s(&kept)][..],
        &keyed,
    ]
    .concat());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("TAMPERED"), "{out}");

    // A flipped byte.
    let mut flipped = bytes.clone();
    flipped[100] ^= 1;
    std::fs::write(&trail, &flipped).unwrap();
    let (code, out) = run(&[&["verify", "trail", s(&trail)][..], &keyed].concat());
    assert_eq!(code, 1, "{out}");
}

#[test]
fn what_cannot_run_exits_2() {
    assert_eq!(run(&["verify", "trail", "/nonexistent/audit.jsonl"]).0, 2);
    assert_eq!(
        run(&["verify", "proof", "/nonexistent.proof"]).0,
        2,
        "no key"
    );
    assert_eq!(run(&["frobnicate"]).0, 2);
}
