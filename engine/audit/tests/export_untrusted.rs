//! The export verifier reads untrusted files: random damage to valid
//! exports (seqs, proof sizes and hashes, cut notes, removed, repeated and
//! swapped lines) never makes it panic, and whatever it accepts, it reports
//! consistently.

mod common;

use common::{log, partial, verify, whole};
use cordon_audit::ExportLine;
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Mutation {
    Seq(usize, u64),
    ProofSize(usize, u64),
    ProofHashes(usize, usize),
    CutNote(usize, usize),
    Remove(usize),
    Duplicate(usize),
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = 0usize..40;
    let big = prop_oneof![0u64..60, any::<u64>(), Just(u64::MAX)];
    prop_oneof![
        (at.clone(), big.clone()).prop_map(|(i, v)| Mutation::Seq(i, v)),
        (at.clone(), big).prop_map(|(i, v)| Mutation::ProofSize(i, v)),
        (at.clone(), 0usize..80).prop_map(|(i, n)| Mutation::ProofHashes(i, n)),
        (at.clone(), 0usize..400).prop_map(|(i, n)| Mutation::CutNote(i, n)),
        at.clone().prop_map(Mutation::Remove),
        at.clone().prop_map(Mutation::Duplicate),
        (at.clone(), at).prop_map(|(i, j)| Mutation::Swap(i, j)),
    ]
}

fn apply(lines: &mut Vec<ExportLine>, m: &Mutation) {
    let len = lines.len();
    if len == 0 {
        return;
    }
    match *m {
        Mutation::Seq(i, v) => {
            if let ExportLine::Event { event, .. } = &mut lines[i % len] {
                event.seq = v;
            }
        }
        Mutation::ProofSize(i, v) => {
            if let ExportLine::Event { proof: Some(p), .. } = &mut lines[i % len] {
                p.size = v;
            }
        }
        Mutation::ProofHashes(i, n) => {
            if let ExportLine::Event {
                proof: Some(p),
                leaf,
                ..
            } = &mut lines[i % len]
            {
                p.hashes = vec![leaf.clone(); n];
            }
        }
        Mutation::CutNote(i, n) => {
            if let ExportLine::Checkpoint { note } = &mut lines[i % len] {
                let cut = (0..=n.min(note.len()))
                    .rev()
                    .find(|&c| note.is_char_boundary(c))
                    .unwrap_or(0);
                note.truncate(cut);
            }
        }
        Mutation::Remove(i) => {
            lines.remove(i % len);
        }
        Mutation::Duplicate(i) => {
            let line = lines[i % len].clone();
            lines.insert(i % len, line);
        }
        Mutation::Swap(i, j) => lines.swap(i % len, j % len),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever a file says, the verifier answers: no panic, no hang;
    /// and any change it accepts leaves a consistent report.
    #[test]
    fn the_verifier_never_panics(partial_export: bool, mutations in prop::collection::vec(mutation(), 1..6)) {
        let events = log(20);
        let mut lines = if partial_export {
            let mut lines = partial(&events, (0..15).step_by(3), 15);
            lines.extend(partial(&events, [16, 19].into_iter(), 20));
            lines
        } else {
            whole(&events, &[4, 13, 20])
        };
        for m in &mutations {
            apply(&mut lines, m);
        }
        if let Ok(report) = verify(&lines) {
            let proven = lines.iter().any(|l| matches!(l, ExportLine::Event { proof: Some(_), .. }));
            prop_assert!(report.events as usize <= lines.len());
            prop_assert_eq!(report.complete, !proven);
        }
    }
}
