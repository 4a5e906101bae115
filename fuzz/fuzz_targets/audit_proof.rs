//! The audit trail's verifiable-log parsers on arbitrary bytes: tree head
//! notes, tree head trail lines, histories, record proofs (C2SP
//! tlog-proof), consistency proofs, binary Merkle proofs and the RFC 9162
//! verifiers never panic; what parses re-encodes to itself, and nothing
//! made up verifies under a key it never saw (the committed seeds are
//! signed with another key: they exercise the parsers and the Merkle
//! verifiers, not the MAC).

#![no_main]

use std::sync::OnceLock;

use docaiche_compliance::audit::merkle::{
    ConsistencyProof, EMPTY_ROOT, InclusionProof, verify_consistency, verify_inclusion,
};
use docaiche_compliance::audit::record::{ParsedLine, merkle_leaf, parse_line};
use docaiche_compliance::audit::{CheckpointKey, HeadConsistency, RecordProof, TreeHead};
use docaiche_core::SecretBytes;
use libfuzzer_sys::fuzz_target;

fn key() -> &'static CheckpointKey {
    static KEY: OnceLock<CheckpointKey> = OnceLock::new();
    KEY.get_or_init(|| {
        CheckpointKey::from_bytes("audit/checkpoint-key", &SecretBytes::from(vec![42; 32]))
            .expect("a valid key")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);

    if let Ok(head) = TreeHead::parse(&text) {
        assert_eq!(TreeHead::parse(&head.to_note()).ok(), Some(head.clone()));
        assert!(!head.is_signed_by(key()), "a made-up tree head verified");
    }
    if let Ok(head) = TreeHead::parse_line(data) {
        assert_eq!(head.to_line(), data, "a tree head line has one spelling");
    }
    let _ = TreeHead::parse_history(&text);
    let _ = parse_line(data);
    if let Ok(proof) = RecordProof::parse(&text) {
        assert_eq!(RecordProof::parse(&proof.to_text()).ok(), Some(proof.clone()));
        assert!(proof.verify(key(), None).is_err(), "a made-up record proof verified");
        // The Merkle part alone, past the signature check.
        if let Ok(ParsedLine::Record(record)) = parse_line(&proof.record) {
            let head = &proof.tree_head;
            let leaf = merkle_leaf(&record.hash);
            let _ = verify_inclusion(proof.proof.index, head.size, &leaf, &proof.proof.path, &head.root);
        }
    }
    if let Ok(proof) = HeadConsistency::parse(&text) {
        assert_eq!(HeadConsistency::parse(&proof.to_text()).ok(), Some(proof.clone()));
        assert!(proof.verify(key(), None).is_err(), "a made-up consistency proof verified");
        let (old, new) = (&proof.old, &proof.new);
        let _ = verify_consistency(old.size, new.size, &proof.proof.path, &old.root, &new.root);
    }

    if let Ok(proof) = InclusionProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let _ = verify_inclusion(proof.index, proof.size, &EMPTY_ROOT, &proof.path, &EMPTY_ROOT);
    }
    if let Ok(proof) = ConsistencyProof::from_bytes(data) {
        assert_eq!(proof.to_bytes(), data);
        let _ = verify_consistency(proof.first, proof.second, &proof.path, &EMPTY_ROOT, &EMPTY_ROOT);
    }
});
