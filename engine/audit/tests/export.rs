//! `verify_export` against tampering: a log of 50 events with checkpoints
//! at several sizes verifies untouched, and every kind of tampering fails
//! with its own code.

mod common;

use common::{ORIGIN, SIZES, checkpoint_line, log, partial, signer, verify, whole};
use cordon_audit::{Checkpoint, Event, ExportLine, GENESIS_PREV, Report, VerifyError};
use serde_json::json;

fn code(lines: &[ExportLine]) -> &'static str {
    verify(lines)
        .map(|r| panic!("tampered export verified: {r:?}"))
        .unwrap_or_else(|e| e.code())
}

fn event_mut(lines: &mut [ExportLine], index: usize) -> (&mut Event, &mut String) {
    match &mut lines[index] {
        ExportLine::Event { event, leaf, .. } => (event, leaf),
        ExportLine::Checkpoint { .. } => panic!("line {index} is a checkpoint"),
    }
}

#[test]
fn the_untouched_export_verifies() {
    let events = log(50);
    let report = verify(&whole(&events, &SIZES)).expect("verifies");
    assert_eq!(report.events, 50);
    assert_eq!(report.checkpoints, 5);
    assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(49)));
    assert!(report.complete);
    assert_eq!(report.uncovered, 0);
    assert_eq!(report.latest.map(|c| c.size), Some(50));
}

#[test]
fn through_json_lines_and_back() {
    // Awkward numbers must survive serialisation so leaves still match.
    let mut events = log(12);
    events[3].data = json!({
        "floats": [0.1, 1e21, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 123456.789],
        "ints": [9007199254740991u64, -9007199254740991i64, 0, -1],
        "keys": {"b": 1, "a": 2, "é": 3, "\u{1F600}": 4, "": 5},
    });
    let mut prev = GENESIS_PREV.to_string();
    for e in &mut events {
        e.prev = prev;
        prev = e.next_prev();
    }
    let lines = whole(&events, &[4, 12]);
    let text: String = lines
        .iter()
        .map(|l| serde_json::to_string(l).expect("serialise") + "\n")
        .collect();
    let read: Vec<ExportLine> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("parse"))
        .collect();
    assert_eq!(verify(&read).expect("verifies").events, 12);
    // Canonical bytes are the same after a round trip through storage-style
    // canonical text, too.
    let again: Event = serde_json::from_slice(&events[3].canonical()).expect("parse canonical");
    assert_eq!(again.canonical(), events[3].canonical());
}

#[test]
fn integers_the_canonical_form_would_round_are_refused() {
    // RFC 8785 writes numbers as doubles: 2^53 and 2^53 + 1 hash the same,
    // so an export holding such a number cannot be vouched for.
    let mut a = log(1).remove(0);
    let mut b = a.clone();
    a.data = json!({"amount": 9007199254740992u64});
    b.data = json!({"amount": 9007199254740993u64});
    assert_eq!(a.leaf(), b.leaf());
    assert!(a.check_exact().is_err() && b.check_exact().is_err());
    for data in [
        json!(u64::MAX),
        json!([1, {"x": i64::MIN}]),
        json!({"x": -9007199254740992i64}),
    ] {
        let mut events = log(3);
        events[2].data = data;
        let lines = whole(&events, &[3]);
        let err = verify(&lines).expect_err("refused");
        assert_eq!(err.code(), "audit.malformed");
        assert_eq!(err.line(), 3);
    }
    let mut events = log(3);
    events[2].data = json!([9007199254740991u64, -9007199254740991i64, 1e300, -0.5]);
    assert!(events[2].check_exact().is_ok());
    assert!(verify(&whole(&events, &[3])).is_ok());
    let mut event = log(1).remove(0);
    event.seq = 1 << 53;
    assert!(event.check_exact().is_err());
}

#[test]
fn unknown_fields_are_refused_when_reading() {
    let line = serde_json::to_value(ExportLine::event(log(1).remove(0), None)).expect("json");
    let mut extra = line.clone();
    extra["event"]["unhashed"] = json!("not covered by the leaf");
    assert!(serde_json::from_value::<ExportLine>(extra).is_err());
    let mut extra = line;
    extra["comment"] = json!("not covered either");
    assert!(serde_json::from_value::<ExportLine>(extra).is_err());
}

#[test]
fn events_after_the_last_checkpoint_are_reported_uncovered() {
    let report = verify(&whole(&log(50), &[16, 40])).expect("verifies");
    assert_eq!(report.uncovered, 10);
    let report = verify(&whole(&log(5), &[])).expect("verifies");
    assert_eq!((report.uncovered, report.latest), (5, None));
}

#[test]
fn an_edited_event_is_a_leaf_mismatch() {
    let mut lines = whole(&log(50), &SIZES);
    event_mut(&mut lines, 20).0.data["attempt"] = json!(999);
    let err = verify(&lines).expect_err("edited");
    assert_eq!(err.code(), "audit.leaf_mismatch");
    assert!(
        matches!(
            err,
            VerifyError::LeafMismatch {
                line: 21,
                seq: 20,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_edited_event_with_a_recomputed_leaf_breaks_the_chain() {
    let mut lines = whole(&log(50), &SIZES);
    let (event, leaf) = event_mut(&mut lines, 20);
    event.actor = "user:mallory".into();
    *leaf = event.next_prev();
    let err = verify(&lines).expect_err("edited");
    assert_eq!(err.code(), "audit.broken_chain");
    assert!(
        matches!(err, VerifyError::BrokenChain { seq: 21, .. }),
        "{err}"
    );
}

#[test]
fn a_rewritten_tail_is_a_root_mismatch() {
    // Rewrite event 45 and re-chain everything after it: the chain holds,
    // the signed root at 50 does not.
    let mut events = log(50);
    events[45].kind = "step.skipped".into();
    for seq in 46..50 {
        events[seq].prev = events[seq - 1].next_prev();
    }
    let mut lines = whole(&events, &[]);
    lines.extend(
        SIZES
            .iter()
            .map(|&s| checkpoint_line(&log(50), s, &signer(1))),
    );
    let err = verify(&lines).expect_err("rewritten");
    assert_eq!(err.code(), "audit.root_mismatch");
    assert!(
        matches!(
            err,
            VerifyError::RootMismatch {
                size: 50,
                line: 55,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_deleted_event_breaks_the_chain() {
    let mut lines = whole(&log(50), &SIZES);
    lines.remove(17);
    let err = verify(&lines).expect_err("deleted");
    assert_eq!(err.code(), "audit.broken_chain");
    assert!(
        matches!(
            err,
            VerifyError::BrokenChain {
                seq: 18,
                line: 18,
                ..
            }
        ),
        "{err}"
    );
    // The first events, too.
    let mut lines = whole(&log(50), &SIZES);
    lines.drain(..3);
    assert_eq!(code(&lines), "audit.broken_chain");
}

#[test]
fn swapped_events_break_the_chain() {
    let mut lines = whole(&log(50), &SIZES);
    lines.swap(10, 30);
    assert_eq!(code(&lines), "audit.broken_chain");
    let mut lines = whole(&log(50), &SIZES);
    lines.swap(10, 11);
    assert_eq!(code(&lines), "audit.broken_chain");
}

#[test]
fn inserted_or_repeated_events_break_the_chain() {
    let events = log(50);
    let mut lines = whole(&events, &SIZES);
    lines.insert(25, lines[24].clone());
    assert_eq!(code(&lines), "audit.broken_chain");
    // A forged event that chains to its predecessor and carries its own
    // true leaf: the event after it no longer chains.
    let mut forged = events[24].clone();
    forged.seq = 25;
    forged.prev = events[24].next_prev();
    forged.kind = "approval.granted".into();
    let mut lines = whole(&events, &SIZES);
    lines.insert(25, ExportLine::event(forged, None));
    assert_eq!(code(&lines), "audit.broken_chain");
}

#[test]
fn a_dropped_tail_is_truncated() {
    let mut lines = whole(&log(50), &SIZES);
    lines.drain(40..50);
    let err = verify(&lines).expect_err("truncated");
    assert_eq!(err.code(), "audit.truncated");
    assert!(
        matches!(
            err,
            VerifyError::Truncated {
                size: 50,
                events: 40,
                ..
            }
        ),
        "{err}"
    );
    // A checkpoint but no events at all.
    assert_eq!(code(&lines[40..]), "audit.truncated");
}

#[test]
fn a_forged_checkpoint_at_an_existing_size_is_equivocation() {
    let events = log(50);
    let mut lines = whole(&events, &SIZES);
    let other = Checkpoint {
        origin: ORIGIN.into(),
        size: 33,
        root: cordon_audit::leaf_hash(b"another history"),
    };
    lines.push(ExportLine::Checkpoint {
        note: other.sign(&signer(1)),
    });
    let err = verify(&lines).expect_err("equivocation");
    assert_eq!(err.code(), "audit.equivocation");
    assert!(
        matches!(
            err,
            VerifyError::Equivocation {
                size: 33,
                line: 56,
                first_line: 54
            }
        ),
        "{err}"
    );
    // The same checkpoint twice is fine.
    let mut lines = whole(&events, &SIZES);
    lines.push(lines[53].clone());
    assert!(verify(&lines).is_ok());
    // A forged checkpoint at a new size is caught by recomputation.
    let mut lines = whole(&events, &SIZES);
    lines.push(ExportLine::Checkpoint {
        note: Checkpoint { size: 40, ..other }.sign(&signer(1)),
    });
    assert_eq!(code(&lines), "audit.root_mismatch");
}

#[test]
fn a_checkpoint_signed_by_another_key_is_a_bad_signature() {
    let events = log(50);
    let mut lines = whole(&events, &SIZES);
    lines[52] = checkpoint_line(&events, 16, &signer(2));
    let err = verify(&lines).expect_err("other key");
    assert_eq!(err.code(), "audit.bad_signature");
    assert_eq!(err.line(), 53);
    // The right key's signature, falsified.
    let mut lines = whole(&events, &SIZES);
    if let ExportLine::Checkpoint { note } = &mut lines[52] {
        *note = note.replacen("\n16\n", "\n17\n", 1);
    }
    assert_eq!(code(&lines), "audit.bad_signature");
    // Not a note at all.
    let mut lines = whole(&events, &SIZES);
    lines[52] = ExportLine::Checkpoint {
        note: "garbage".into(),
    };
    assert_eq!(code(&lines), "audit.malformed");
}

#[test]
fn a_partial_export_verifies() {
    let events = log(50);
    let lines = partial(&events, (0..50).step_by(5), 50);
    let report = verify(&lines).expect("verifies");
    assert_eq!(report.events, 10);
    assert_eq!((report.first_seq, report.last_seq), (Some(0), Some(45)));
    assert!(!report.complete);
    assert_eq!(report.uncovered, 0);
    // Starting at seq 0 and contiguous, against a larger checkpoint: still
    // partial, not truncated.
    assert!(verify(&partial(&events, 0..4, 50)).is_ok());
    // Proofs against two checkpoints of the export, and consecutive seqs
    // whose chain is checked.
    let mut lines = partial(&events, [3, 4, 5, 20].into_iter(), 33);
    lines.extend(partial(&events, [40, 41].into_iter(), 50));
    assert!(verify(&lines).is_ok());
}

#[test]
fn a_partial_export_with_a_flipped_proof_byte_fails() {
    let events = log(50);
    let mut lines = partial(&events, (0..50).step_by(5), 50);
    if let ExportLine::Event {
        proof: Some(proof), ..
    } = &mut lines[3]
    {
        let hash = &mut proof.hashes[1];
        let mut bytes = hex::decode(&*hash).expect("hex");
        bytes[7] ^= 0x10;
        *hash = hex::encode(bytes);
    }
    let err = verify(&lines).expect_err("flipped");
    assert_eq!(err.code(), "audit.bad_proof");
    assert!(
        matches!(
            err,
            VerifyError::BadProof {
                line: 4,
                seq: 15,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn partial_exports_refuse_unanchored_events() {
    let events = log(50);
    // A proof against a checkpoint the export does not hold.
    let mut lines = partial(&events, (0..50).step_by(5), 50);
    lines.pop();
    lines.push(checkpoint_line(&events, 33, &signer(1)));
    assert_eq!(code(&lines), "audit.bad_proof");
    // An event without a proof among proven ones.
    let mut lines = partial(&events, (0..50).step_by(5), 50);
    lines.insert(2, ExportLine::event(events[7].clone(), None));
    assert_eq!(code(&lines), "audit.bad_proof");
    // A proof hash that is not hex.
    let mut lines = partial(&events, (0..50).step_by(5), 50);
    if let ExportLine::Event {
        proof: Some(proof), ..
    } = &mut lines[0]
    {
        proof.hashes[0] = "zz".into();
    }
    assert_eq!(code(&lines), "audit.malformed");
    // The proof of another event.
    let mut lines = partial(&events, [10, 20].into_iter(), 50);
    let other = match &lines[1] {
        ExportLine::Event { proof, .. } => proof.clone(),
        ExportLine::Checkpoint { .. } => None,
    };
    if let ExportLine::Event { proof, .. } = &mut lines[0] {
        *proof = other;
    }
    assert_eq!(code(&lines), "audit.bad_proof");
    // Out of order.
    let mut lines = partial(&events, [10, 20].into_iter(), 50);
    lines.swap(0, 1);
    assert_eq!(code(&lines), "audit.broken_chain");
}

#[test]
fn a_forged_event_in_a_partial_export_has_no_valid_proof() {
    let events = log(50);
    let mut lines = partial(&events, [10, 11, 12].into_iter(), 50);
    // Event 13 forged to chain onto 12, with some proof of the right length.
    let mut forged = events[13].clone();
    forged.kind = "approval.granted".into();
    forged.prev = events[12].next_prev();
    let proof = match &lines[0] {
        ExportLine::Event { proof, .. } => proof.clone(),
        ExportLine::Checkpoint { .. } => None,
    };
    lines.insert(3, ExportLine::event(forged, proof));
    assert_eq!(code(&lines), "audit.bad_proof");
    // And an edited proven event breaks the chain of its successor first.
    let mut lines = partial(&events, [10, 11, 12].into_iter(), 50);
    let (event, leaf) = event_mut(&mut lines, 1);
    event.actor = "user:mallory".into();
    *leaf = event.next_prev();
    assert_eq!(code(&lines), "audit.broken_chain");
}

#[test]
fn degenerate_exports() {
    assert_eq!(
        verify(&[]).expect("empty"),
        Report {
            events: 0,
            checkpoints: 0,
            first_seq: None,
            last_seq: None,
            complete: true,
            uncovered: 0,
            latest: None,
        }
    );
    // A size-0 checkpoint is the empty root; it is consistent with anything.
    let events = log(3);
    let report = verify(&whole(&events, &[0, 3])).expect("verifies");
    assert_eq!(report.checkpoints, 2);
    // The first event must start the chain.
    let mut lines = whole(&events, &[3]);
    event_mut(&mut lines, 0).0.prev = "ff".repeat(32);
    if let ExportLine::Event { event, leaf, .. } = &mut lines[0] {
        *leaf = event.next_prev();
    }
    assert_eq!(code(&lines), "audit.broken_chain");
    // A leaf that is not a hash.
    let mut lines = whole(&events, &[3]);
    *event_mut(&mut lines, 1).1 = "xyz".into();
    assert_eq!(code(&lines), "audit.malformed");
}

#[test]
fn codes_are_stable() {
    let line = 1;
    let all = [
        VerifyError::Malformed {
            line,
            reason: String::new(),
        },
        VerifyError::LeafMismatch {
            line,
            seq: 0,
            recorded: String::new(),
            actual: String::new(),
        },
        VerifyError::BrokenChain {
            line,
            seq: 0,
            reason: String::new(),
        },
        VerifyError::RootMismatch {
            line,
            size: 0,
            signed: String::new(),
            computed: String::new(),
        },
        VerifyError::Inconsistent {
            line,
            new_size: 2,
            old_line: 1,
            old_size: 1,
            reason: String::new(),
        },
        VerifyError::Equivocation {
            line,
            first_line: 1,
            size: 1,
        },
        VerifyError::Truncated {
            line,
            size: 1,
            events: 0,
        },
        VerifyError::BadSignature {
            line,
            reason: cordon_audit::NoteError::Malformed(String::new()),
        },
        VerifyError::BadProof {
            line,
            seq: 0,
            reason: String::new(),
        },
    ];
    let codes: Vec<&str> = all.iter().map(VerifyError::code).collect();
    assert_eq!(
        codes,
        [
            "audit.malformed",
            "audit.leaf_mismatch",
            "audit.broken_chain",
            "audit.root_mismatch",
            "audit.inconsistent",
            "audit.equivocation",
            "audit.truncated",
            "audit.bad_signature",
            "audit.bad_proof",
        ]
    );
    assert!(all.iter().all(|e| e.line() == 1));
}
