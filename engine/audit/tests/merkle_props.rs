//! Property tests of the Merkle tree: for random trees of up to 300 leaves,
//! every generated proof verifies, matches the RFC 9162 definition computed
//! naively, and fails once mutated. The verifier is also compared with the
//! RFC's own step-by-step verification algorithms on the mutated inputs.

use cordon_audit::{
    Hash, ProofError, Tree, consistency_proof, inclusion_proof, leaf_hash, node_hash, root,
    verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

fn leaves(n: usize, seed: u64) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| leaf_hash(&[seed.to_be_bytes(), i.to_be_bytes()].concat()))
        .collect()
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 9162 §2.1.3.1 `PATH(m, D[n])`, literally.
fn reference_path(m: usize, d: &[Hash]) -> Vec<Hash> {
    if d.len() <= 1 {
        return Vec::new();
    }
    let k = split(d.len());
    if m < k {
        let mut p = reference_path(m, &d[..k]);
        p.push(root(&d[k..]));
        p
    } else {
        let mut p = reference_path(m - k, &d[k..]);
        p.push(root(&d[..k]));
        p
    }
}

/// RFC 9162 §2.1.4.1 `SUBPROOF(m, D[n], b)`, literally.
fn reference_subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
    if m == d.len() {
        return if b { Vec::new() } else { vec![root(d)] };
    }
    let k = split(d.len());
    if m <= k {
        let mut p = reference_subproof(m, &d[..k], b);
        p.push(root(&d[k..]));
        p
    } else {
        let mut p = reference_subproof(m - k, &d[k..], false);
        p.push(root(&d[..k]));
        p
    }
}

/// RFC 9162 §2.1.3.2, step by step.
fn rfc_verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// RFC 9162 §2.1.4.2, step by step (with the equal-size and empty-tree
/// cases as transparency-dev handles them).
fn rfc_verify_consistency(
    first: u64,
    second: u64,
    first_hash: &Hash,
    second_hash: &Hash,
    proof: &[Hash],
) -> bool {
    if first == 0 || first > second {
        return false;
    }
    if first == second {
        return proof.is_empty() && first_hash == second_hash;
    }
    if proof.is_empty() {
        return false;
    }
    let mut path = proof.to_vec();
    if first.is_power_of_two() {
        path.insert(0, *first_hash);
    }
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *first_hash && sr == *second_hash && s == 0
}

fn flip(proof: &[Hash], element: usize, bit: usize) -> Vec<Hash> {
    let mut p = proof.to_vec();
    p[element][bit / 8] ^= 1 << (bit % 8);
    p
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn inclusion_proofs_verify_and_mutations_fail(n in 1usize..=300, seed: u64, pick: prop::sample::Index) {
        let leaves = leaves(n, seed);
        let tree = Tree::from_leaves(&leaves);
        let size = n as u64;
        let top = tree.root();
        prop_assert_eq!(top, root(&leaves));

        // Every proof verifies.
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).expect("proof");
            let leaf = &leaves[index as usize];
            prop_assert_eq!(verify_inclusion(index, size, leaf, &proof, &top), Ok(()));
            prop_assert!(rfc_verify_inclusion(index, size, leaf, &proof, &top));
        }

        // One leaf, examined closely.
        let index = pick.index(n);
        let leaf = leaves[index];
        let proof = inclusion_proof(&leaves, index as u64).expect("proof");
        prop_assert_eq!(&proof, &reference_path(index, &leaves));
        // Any bit of any element flipped: refused.
        for element in 0..proof.len() {
            for bit in 0..256 {
                let bad = flip(&proof, element, bit);
                prop_assert!(verify_inclusion(index as u64, size, &leaf, &bad, &top).is_err());
            }
        }
        // Any other index (in range or not): refused.
        for other in (0..size + 3).filter(|&i| i != index as u64) {
            prop_assert!(verify_inclusion(other, size, &leaf, &proof, &top).is_err(), "index {} accepted", other);
        }
        // Another size: refused whenever a proof for that size has another
        // length, and in every case exactly when RFC 9162's own algorithm
        // refuses. (A size whose path has the very same shape is accepted
        // by every RFC 9162 verifier: the proof binds the path, and the
        // signed checkpoint binds the size to the root.)
        let bigger = Tree::from_leaves(&self::leaves(2 * n + 2, seed));
        for other in (1..=2 * size + 2).filter(|&s| s != size) {
            let ours = verify_inclusion(index as u64, other, &leaf, &proof, &top);
            prop_assert_eq!(ours.is_ok(), rfc_verify_inclusion(index as u64, other, &leaf, &proof, &top), "size {}", other);
            if (index as u64) < other {
                let want = bigger.inclusion_proof(index as u64, other).expect("proof").len();
                if want != proof.len() {
                    let wrong_length = matches!(ours, Err(ProofError::WrongProofLength { .. }));
                    prop_assert!(wrong_length, "size {} accepted", other);
                }
            }
        }
        // Another leaf, a hash too many or too few: refused.
        prop_assert!(verify_inclusion(index as u64, size, &leaf_hash(b"forged"), &proof, &top).is_err());
        let mut longer = proof.clone();
        longer.push(leaf);
        prop_assert!(verify_inclusion(index as u64, size, &leaf, &longer, &top).is_err());
        if let Some((_, shorter)) = proof.split_last() {
            prop_assert!(verify_inclusion(index as u64, size, &leaf, shorter, &top).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_mutations_fail(n in 1usize..=300, seed: u64, pick: prop::sample::Index) {
        let leaves = leaves(n, seed);
        let tree = Tree::from_leaves(&leaves);
        let size = n as u64;
        let top = tree.root();
        let roots: Vec<Hash> = (0..=size).map(|m| tree.root_at(m).expect("root")).collect();

        // Every proof verifies.
        for old in 1..=size {
            let proof = tree.consistency_proof(old, size).expect("proof");
            let old_root = &roots[old as usize];
            prop_assert_eq!(verify_consistency(old, size, old_root, &top, &proof), Ok(()));
            prop_assert!(rfc_verify_consistency(old, size, old_root, &top, &proof));
        }

        // One old size, examined closely.
        let old = pick.index(n) + 1;
        let old_root = roots[old];
        let proof = consistency_proof(&leaves, old as u64).expect("proof");
        prop_assert_eq!(&proof, &reference_subproof(old, &leaves, true));
        prop_assert_eq!(root(&leaves[..old]), old_root);
        for element in 0..proof.len() {
            for bit in 0..256 {
                let bad = flip(&proof, element, bit);
                prop_assert!(verify_consistency(old as u64, size, &old_root, &top, &bad).is_err());
            }
        }
        // Other sizes, with the same roots or the true roots of those
        // sizes: exactly what RFC 9162's algorithm accepts, and refused
        // whenever a proof for those sizes has another length.
        for other_old in (0..=size + 2).filter(|&m| m != old as u64) {
            for claimed in [old_root, roots.get(other_old as usize).copied().unwrap_or(old_root)] {
                let ours = verify_consistency(other_old, size, &claimed, &top, &proof);
                prop_assert_eq!(ours.is_ok(), rfc_verify_consistency(other_old, size, &claimed, &top, &proof));
                if (1..=size).contains(&other_old) && tree.consistency_proof(other_old, size).expect("proof").len() != proof.len() {
                    prop_assert!(ours.is_err(), "old size {} accepted", other_old);
                }
            }
        }
        for other_new in (1..=2 * size + 2).filter(|&s| s != size) {
            let ours = verify_consistency(old as u64, other_new, &old_root, &top, &proof);
            prop_assert_eq!(ours.is_ok(), rfc_verify_consistency(old as u64, other_new, &old_root, &top, &proof), "new size {}", other_new);
        }
        // Swapped or forged roots: refused.
        if old < n {
            prop_assert!(verify_consistency(old as u64, size, &top, &old_root, &proof).is_err());
            prop_assert!(verify_consistency(old as u64, size, &old_root, &leaf_hash(b"x"), &proof).is_err());
            prop_assert!(verify_consistency(old as u64, size, &leaf_hash(b"x"), &top, &proof).is_err());
        }
    }

    #[test]
    fn incremental_tree_matches_every_prefix(n in 0usize..=300, seed: u64) {
        let leaves = leaves(n, seed);
        let mut tree = Tree::new();
        for (i, leaf) in leaves.iter().enumerate() {
            tree.push(*leaf);
            prop_assert_eq!(tree.size(), i as u64 + 1);
        }
        prop_assert_eq!(&tree, &Tree::from_leaves(&leaves));
        prop_assert_eq!(tree.leaves(), leaves.as_slice());
        for m in (0..=n).step_by(7).chain([n]) {
            prop_assert_eq!(tree.root_at(m as u64).expect("root"), root(&leaves[..m]));
        }
        prop_assert!(tree.root_at(n as u64 + 1).is_err());
    }

    /// The verifier reads untrusted input: no size, index or proof makes it
    /// panic or loop.
    #[test]
    fn verifiers_never_panic(
        index in prop_oneof![0u64..600, any::<u64>(), Just(u64::MAX), Just(u64::MAX - 1)],
        size in prop_oneof![0u64..600, any::<u64>(), Just(u64::MAX), Just(1u64 << 63)],
        proof in prop::collection::vec(any::<[u8; 32]>(), 0..70),
        a: [u8; 32],
        b: [u8; 32],
    ) {
        let _ = verify_inclusion(index, size, &a, &proof, &b);
        let _ = verify_consistency(index, size, &a, &b, &proof);
        let _ = verify_consistency(size, index, &a, &b, &proof);
    }
}

#[test]
fn generation_refuses_impossible_requests() {
    let leaves = leaves(5, 1);
    assert_eq!(
        inclusion_proof(&leaves, 5),
        Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        inclusion_proof(&[], 0),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(consistency_proof(&leaves, 0), Err(ProofError::EmptyOldTree));
    assert_eq!(
        consistency_proof(&leaves, 6),
        Err(ProofError::SizeOrder {
            old_size: 6,
            new_size: 5
        })
    );
    assert_eq!(consistency_proof(&leaves, 5), Ok(Vec::new()));
    let tree = Tree::from_leaves(&leaves);
    assert_eq!(
        tree.inclusion_proof(2, 9),
        Err(ProofError::SizeOutOfRange {
            size: 9,
            available: 5
        })
    );
    assert_eq!(
        tree.consistency_proof(2, u64::MAX),
        Err(ProofError::SizeOutOfRange {
            size: u64::MAX,
            available: 5
        })
    );
    assert!(tree.root_at(u64::MAX).is_err());
}

/// Why the property tests compare size mutations with RFC 9162's algorithm
/// instead of demanding failure: a proof fixes the path from the leaf to
/// the root, and different sizes can share a path. The proof of leaf 0 in
/// the 3-leaf tree `((A B) C)` is `[B, C]`, and leaf 0 of a 4-leaf tree
/// climbs the same way, so both verifiers accept it "for size 4" against
/// the 3-leaf root. What binds the size is the checkpoint, which signs size
/// and root together; `verify_export` always takes both from one.
#[test]
fn a_proof_binds_the_path_and_the_checkpoint_binds_the_size() {
    let leaves = leaves(3, 7);
    let top = root(&leaves);
    let proof = inclusion_proof(&leaves, 0).expect("proof");
    assert_eq!(proof, vec![leaves[1], leaves[2]]);
    assert_eq!(verify_inclusion(0, 3, &leaves[0], &proof, &top), Ok(()));
    assert_eq!(verify_inclusion(0, 4, &leaves[0], &proof, &top), Ok(()));
    assert!(rfc_verify_inclusion(0, 4, &leaves[0], &proof, &top));
    // The size-4 tree over these leaves and any fourth has another root.
    let four = [leaves.as_slice(), &[leaf_hash(b"d")]].concat();
    assert!(verify_inclusion(0, 4, &leaves[0], &proof, &root(&four)).is_err());
}
