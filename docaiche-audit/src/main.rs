//! `docaiche-audit`: check a DocAIche audit trail, a proof or a history of
//! signed tree heads offline, without the server.
//!
//! ```text
//! docaiche-audit verify trail audit.jsonl --key-file checkpoint.key --origin audit.example/eu \
//!     --history kept-heads.txt
//! docaiche-audit verify proof record-42.tlog-proof --key-file checkpoint.key
//! docaiche-audit verify checkpoints kept-heads.txt --key-file checkpoint.key --trail audit.jsonl
//! docaiche-audit heads audit.jsonl > kept-heads.txt
//! docaiche-audit prove record audit.jsonl acme 42 > record-42.tlog-proof
//! docaiche-audit prove consistency audit.jsonl acme 1000 > acme-1000.proof
//! ```
//!
//! - `verify trail` walks a file trail (every rotated segment, then the
//!   active file): each record against its own hash and its stream's chain,
//!   each JSON checkpoint and each tree head against the key, each tree head
//!   against the stream's Merkle tree rebuilt from the records. With
//!   `--history` (tree heads kept earlier, say by `heads`), it also shows a
//!   trail cut back or rewritten since: every kept head must still be in
//!   the trail and match its tree. A retention anchor beside the trail
//!   (`<trail>.anchor`) is used when its signature verifies.
//! - `verify proof` checks a record proof (C2SP `tlog-proof`, the record
//!   inside) or a consistency proof between two tree heads, made by
//!   `prove` or served by the API.
//! - `verify checkpoints` checks a history of tree heads: signatures, and
//!   per stream sizes and times that never go back and one root per size;
//!   with `--trail`, that the trail holds every one of them.
//!
//! The key is the trail's checkpoint key (HMAC-SHA-256), read byte for
//! byte from `--key-file` as the server's `file:` secret source reads it,
//! under the name `--key-name` (default `audit/checkpoint-key`, the name
//! written in each signature). Without a key, `verify trail` checks
//! everything but signatures, and says so.
//!
//! Exit status: 0 when everything verified, 1 when tampering was found or a
//! proof was refused, 2 when the command could not run (usage, unreadable
//! files).

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use docaiche_compliance::audit::{
    Anchor, CheckpointKey, HeadConsistency, RecordProof, TrailTrees, TreeHead, Verifier,
    VerifyReport, history_to_text,
};
use docaiche_core::{Error, SecretBytes};
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Parser)]
#[command(
    name = "docaiche-audit",
    version,
    about = "Verify DocAIche audit trails, Merkle proofs and tree head histories offline"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify a trail, a proof or a history of tree heads.
    Verify {
        #[command(subcommand)]
        what: Verify,
    },
    /// Make a proof from a file trail (print it).
    Prove {
        #[command(subcommand)]
        what: Prove,
    },
    /// Print the signed tree heads of a file trail: a history to keep.
    Heads {
        /// The trail's active file.
        trail: PathBuf,
        /// Only this stream's heads.
        #[arg(long)]
        stream: Option<String>,
    },
}

#[derive(Debug, Args)]
struct KeyArgs {
    /// The checkpoint key, read byte for byte.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// The key's name, as written in signatures.
    #[arg(long, value_name = "NAME", default_value = CheckpointKey::DEFAULT_SECRET)]
    key_name: String,
    /// Require tree heads of this trail origin.
    #[arg(long)]
    origin: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Verify {
    /// Walk a file trail.
    Trail {
        /// The trail's active file (rotated segments beside it are read
        /// first).
        trail: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// Tree heads kept earlier (notes one after another): each must be
        /// in the trail and match its tree.
        #[arg(long, value_name = "FILE")]
        history: Option<PathBuf>,
        /// Accept streams that start after record 1 without an anchor.
        #[arg(long)]
        allow_pruned_start: bool,
    },
    /// Check a record proof or a consistency proof.
    Proof {
        /// The proof's text.
        proof: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
    },
    /// Check a history of tree heads.
    Checkpoints {
        /// The heads, one note after another.
        history: PathBuf,
        #[command(flatten)]
        key: KeyArgs,
        /// Also check that this file trail holds every one of them.
        #[arg(long, value_name = "TRAIL")]
        trail: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum Prove {
    /// That a record is in a signed tree head of its stream.
    Record {
        /// The trail's active file.
        trail: PathBuf,
        /// The stream (tenant).
        stream: String,
        /// The record's sequence number.
        seq: u64,
        /// The size of the head to prove against (default: the newest).
        #[arg(long)]
        size: Option<u64>,
    },
    /// That a newer tree head of a stream extends an older one.
    Consistency {
        /// The trail's active file.
        trail: PathBuf,
        /// The stream (tenant).
        stream: String,
        /// The older head's size.
        old: u64,
        /// The newer head's size (default: the newest).
        new: Option<u64>,
    },
}

/// How a command ended.
enum Outcome {
    /// Everything verified (or the output was made).
    Verified(String),
    /// Tampering was found or a proof refused.
    Refused(String),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(Outcome::Verified(out)) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Ok(Outcome::Refused(out)) => {
            print!("{out}");
            ExitCode::from(1)
        }
        Err(error) => {
            eprintln!("docaiche-audit: {error}");
            ExitCode::from(2)
        }
    }
}

/// A command's failure to run: what could not be done.
type Failure = String;

fn run(command: Command) -> Result<Outcome, Failure> {
    match command {
        Command::Verify {
            what:
                Verify::Trail {
                    trail,
                    key,
                    history,
                    allow_pruned_start,
                },
        } => verify_trail(&trail, &key, history.as_deref(), allow_pruned_start),
        Command::Verify {
            what: Verify::Proof { proof, key },
        } => verify_proof(&proof, &key),
        Command::Verify {
            what:
                Verify::Checkpoints {
                    history,
                    key,
                    trail,
                },
        } => verify_checkpoints(&history, &key, trail.as_deref()),
        Command::Prove {
            what:
                Prove::Record {
                    trail,
                    stream,
                    seq,
                    size,
                },
        } => prove_record(&trail, &stream, seq, size),
        Command::Prove {
            what:
                Prove::Consistency {
                    trail,
                    stream,
                    old,
                    new,
                },
        } => prove_consistency(&trail, &stream, old, new),
        Command::Heads { trail, stream } => heads(&trail, stream.as_deref()),
    }
}

fn failed(what: &str, error: &Error) -> Failure {
    format!("{what}: {}", error.log_chain())
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn load_key(args: &KeyArgs) -> Result<Option<CheckpointKey>, Failure> {
    let Some(file) = &args.key_file else {
        return Ok(None);
    };
    let bytes =
        std::fs::read(file).map_err(|e| format!("cannot read the key {}: {e}", file.display()))?;
    CheckpointKey::from_bytes(args.key_name.clone(), &SecretBytes::from(bytes))
        .map(Some)
        .map_err(|e| failed("the key", &e))
}

fn require_key(args: &KeyArgs) -> Result<CheckpointKey, Failure> {
    load_key(args)?.ok_or_else(|| "a proof is checked with the key: give --key-file".to_owned())
}

fn verifier(key: Option<&CheckpointKey>, args: &KeyArgs) -> Verifier {
    let mut verifier = Verifier::new();
    if let Some(key) = key {
        verifier = verifier.with_key(key.clone());
    }
    if let Some(origin) = &args.origin {
        verifier = verifier.with_origin(origin.clone());
    }
    verifier
}

fn verdict(mut out: String, report: &VerifyReport, signed: bool) -> Outcome {
    if !signed {
        out.push_str("signatures: not checked (no --key-file)\n");
    }
    match &report.tamper {
        None => {
            out.push_str("verdict: verified\n");
            Outcome::Verified(out)
        }
        Some(tamper) => {
            let _ = writeln!(out, "verdict: TAMPERED: {tamper}");
            Outcome::Refused(out)
        }
    }
}

fn verify_trail(
    trail: &Path,
    args: &KeyArgs,
    history: Option<&Path>,
    allow_pruned_start: bool,
) -> Result<Outcome, Failure> {
    let key = load_key(args)?;
    let mut verifier = verifier(key.as_ref(), args).allow_pruned_start(allow_pruned_start);
    let mut kept = 0;
    if let Some(history) = history {
        let heads =
            TreeHead::parse_history(&read_text(history)?).map_err(|e| failed("the history", &e))?;
        kept = heads.len();
        verifier = verifier.with_history(heads);
    }
    let anchor = Anchor::load(trail).map_err(|e| failed("the trail's anchor", &e))?;
    if let Some(anchor) = anchor {
        verifier = verifier.with_anchor(anchor);
    }
    let report = verifier
        .verify_path(trail)
        .map_err(|e| failed(&format!("the trail {}", trail.display()), &e))?;
    let mut out = String::new();
    let _ = writeln!(out, "trail: {}", trail.display());
    let _ = writeln!(out, "records: {}", report.records);
    let _ = writeln!(
        out,
        "checkpoints: {} ({} signatures verified)",
        report.checkpoints, report.checkpoints_verified
    );
    let _ = writeln!(
        out,
        "tree heads: {} ({} signatures verified, {} of streams retention cut)",
        report.tree_heads, report.tree_heads_verified, report.tree_heads_pruned
    );
    if history.is_some() {
        let _ = writeln!(
            out,
            "history: {} of {kept} kept tree heads in the trail",
            report.history_matched
        );
    }
    if report.anchored {
        out.push_str("anchor: the trail starts at a signed retention anchor\n");
    }
    for (stream, head) in &report.heads {
        let _ = writeln!(out, "stream {stream}: {} records", head.seq);
    }
    if let Some(torn) = &report.torn_tail {
        let _ = writeln!(
            out,
            "torn tail: the last line ({torn}) was cut by a crash (never acknowledged)"
        );
    }
    Ok(verdict(out, &report, key.is_some()))
}

fn verify_proof(path: &Path, args: &KeyArgs) -> Result<Outcome, Failure> {
    let key = require_key(args)?;
    let text = read_text(path)?;
    let origin = args.origin.as_deref();
    let mut out = String::new();
    let checked = if text.starts_with("c2sp.org/tlog-proof@v1\n") {
        let proof = RecordProof::parse(&text).map_err(|e| failed("the proof", &e))?;
        let head = &proof.tree_head;
        let _ = writeln!(
            out,
            "record proof: stream {}, index {}, tree head of {} records signed {}",
            head.stream(),
            proof.proof.index,
            head.size,
            head.time.format(&Rfc3339).unwrap_or_default()
        );
        proof.verify(&key, origin).map(|fields| {
            let _ = writeln!(
                out,
                "record {} of stream {} is in the tree (origin {})",
                fields.seq, fields.stream, head.origin
            );
        })
    } else {
        let proof = HeadConsistency::parse(&text).map_err(|e| failed("the proof", &e))?;
        let _ = writeln!(
            out,
            "consistency proof: {} from {} to {} records",
            proof.old.origin, proof.old.size, proof.new.size
        );
        proof.verify(&key, origin).map(|()| {
            out.push_str("the newer tree extends the older one\n");
        })
    };
    Ok(match checked {
        Ok(()) => {
            out.push_str("verdict: verified\n");
            Outcome::Verified(out)
        }
        Err(error) => {
            let _ = writeln!(out, "verdict: REFUSED: {}", error.log_chain());
            Outcome::Refused(out)
        }
    })
}

fn verify_checkpoints(
    history: &Path,
    args: &KeyArgs,
    trail: Option<&Path>,
) -> Result<Outcome, Failure> {
    let key = load_key(args)?;
    let heads =
        TreeHead::parse_history(&read_text(history)?).map_err(|e| failed("the history", &e))?;
    let verifier = verifier(key.as_ref(), args);
    let report = verifier.verify_history(&heads);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "history: {} tree heads ({} signatures verified)",
        heads.len(),
        report.tree_heads_verified
    );
    for (origin, head) in &report.heads {
        let _ = writeln!(out, "log {origin}: newest head of {} records", head.seq);
    }
    if report.tamper.is_some() {
        return Ok(verdict(out, &report, key.is_some()));
    }
    let Some(trail) = trail else {
        return Ok(verdict(out, &report, key.is_some()));
    };
    let mut verifier = verifier.with_history(heads);
    if let Some(anchor) = Anchor::load(trail).map_err(|e| failed("the trail's anchor", &e))? {
        verifier = verifier.with_anchor(anchor);
    }
    let report = verifier
        .verify_path(trail)
        .map_err(|e| failed(&format!("the trail {}", trail.display()), &e))?;
    let _ = writeln!(
        out,
        "trail {}: {} of the heads found, {} records",
        trail.display(),
        report.history_matched,
        report.records
    );
    Ok(verdict(out, &report, key.is_some()))
}

fn trees(trail: &Path) -> Result<TrailTrees, Failure> {
    TrailTrees::from_path(trail).map_err(|e| failed(&format!("the trail {}", trail.display()), &e))
}

/// `stream`'s newest head of `size` (or its newest head).
fn head_of<'a>(
    trees: &'a TrailTrees,
    stream: &str,
    size: Option<u64>,
) -> Result<&'a TreeHead, Failure> {
    let heads = trees.heads(stream);
    match size {
        Some(size) => heads.iter().rev().find(|h| h.size == size),
        None => heads.last(),
    }
    .ok_or_else(|| match size {
        Some(size) => format!("stream {stream} has no signed tree head of {size} records"),
        None => format!("stream {stream} has no signed tree head"),
    })
}

fn prove_record(
    trail: &Path,
    stream: &str,
    seq: u64,
    size: Option<u64>,
) -> Result<Outcome, Failure> {
    let trees = trees(trail)?;
    let head = head_of(&trees, stream, size)?;
    if head.size < seq {
        return Err(format!(
            "the newest signed head of stream {stream} covers {} records, not yet record {seq}",
            head.size
        ));
    }
    let proof = trees
        .prove_record(trail, stream, seq, head)
        .map_err(|e| failed("the proof", &e))?;
    Ok(Outcome::Verified(proof.to_text()))
}

fn prove_consistency(
    trail: &Path,
    stream: &str,
    old: u64,
    new: Option<u64>,
) -> Result<Outcome, Failure> {
    let trees = trees(trail)?;
    let old = head_of(&trees, stream, Some(old))?;
    let new = head_of(&trees, stream, new)?;
    let proof = trees
        .prove_consistency(old, new)
        .map_err(|e| failed("the proof", &e))?;
    Ok(Outcome::Verified(proof.to_text()))
}

fn heads(trail: &Path, stream: Option<&str>) -> Result<Outcome, Failure> {
    let trees = trees(trail)?;
    let text = match stream {
        Some(stream) => history_to_text(trees.heads(stream)),
        None => history_to_text(trees.all_heads()),
    };
    Ok(Outcome::Verified(text))
}
