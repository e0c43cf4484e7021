//! Verification of inclusion and consistency proofs (RFC 9162 §2.1.3.2 and
//! §2.1.4.2), in the decomposed form transparency-dev/merkle uses
//! (`proof/verify.go`): the expected proof length is computed from the sizes
//! first, so a proof with a hash too many or too few is refused before any
//! hashing, and every probe of its published test vectors behaves the same
//! here (see `tests/vectors.rs`).
//!
//! A proof binds a leaf (or an old root) to a root *given* the tree size; the
//! size itself is authenticated by the signed checkpoint that names both.

use crate::merkle::{Hash, node_hash};

/// Why a proof could not be generated or did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is outside a tree of {size} leaves")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tree size larger than the leaves at hand.
    #[error("a tree of {size} leaves was asked for, but only {available} leaves are at hand")]
    SizeOutOfRange {
        /// The tree size asked for.
        size: u64,
        /// How many leaves there are.
        available: u64,
    },
    /// The "old" tree is larger than the "new" one.
    #[error("the old tree ({old_size} leaves) is larger than the new tree ({new_size} leaves)")]
    SizeOrder {
        /// The old tree size.
        old_size: u64,
        /// The new tree size.
        new_size: u64,
    },
    /// A consistency proof from the empty tree: every tree extends it, so
    /// there is nothing to prove and RFC 9162 defines no such proof.
    #[error("a consistency proof from the empty tree is meaningless")]
    EmptyOldTree,
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has {got} hashes, but one for these sizes has {want}")]
    WrongProofLength {
        /// Hashes in the proof.
        got: usize,
        /// Hashes a proof for these sizes has.
        want: usize,
    },
    /// The proof leads to a different root than the one expected.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
    /// A consistency proof whose hashes do not rebuild the old root.
    #[error("the proof does not lead to the old tree's root")]
    OldRootMismatch,
}

/// Checks that `leaf` is the leaf at `index` in the tree of `size` leaves
/// whose root is `root`, given its inclusion proof.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if root_from_inclusion_proof(index, size, leaf, proof)? == *root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root that `leaf` at `index` and its inclusion `proof` imply for a tree
/// of `size` leaves.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    let (inner_proof, border_proof) = proof.split_at(inner);
    let node = chain_inner(*leaf, inner_proof, index);
    Ok(chain_border_right(node, border_proof))
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root`, given the consistency
/// proof.
///
/// Equal sizes need the empty proof and equal roots. `old_size == 0` is
/// refused ([`ProofError::EmptyOldTree`]), as transparency-dev/merkle does:
/// such a "proof" proves nothing, and a caller relying on it is mistaken.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if new_size < old_size {
        return Err(ProofError::SizeOrder { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::EmptyOldTree);
    }
    if old_size == new_size {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }

    // The proof is, in effect, the inclusion proof of leaf `old_size - 1` in
    // the new tree, starting above the largest perfect subtree that ends the
    // old tree (`shift` levels up). Its paths to leaves `old_size - 1` and
    // `new_size - 1` split into an inner part and a left-border part.
    let (fork, border) = decompose(old_size - 1, new_size);
    let shift = old_size.trailing_zeros() as usize;
    // `old_size - 1` ends in `shift` one bits and is below `new_size - 1`,
    // so the two differ above bit `shift`: `fork > shift` always.
    let inner = fork.saturating_sub(shift);
    // When the old tree is itself perfect, its root is that subtree's hash
    // and the verifier already has it; otherwise the proof starts with it.
    let old_is_perfect = old_size.is_power_of_two();
    let want = usize::from(!old_is_perfect) + inner + border;
    if proof.len() != want {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    let (seed, rest) = if old_is_perfect {
        (*old_root, proof)
    } else {
        match proof.split_first() {
            Some((first, rest)) => (*first, rest),
            None => return Err(ProofError::WrongProofLength { got: 0, want }),
        }
    };
    let (inner_proof, border_proof) = rest.split_at(inner);
    let mask = (old_size - 1).checked_shr(shift as u32).unwrap_or(0);

    if !old_is_perfect {
        // Rebuild the old root from the proof's left siblings only: the
        // right ones lie beyond the old tree.
        let old = chain_border_right(chain_inner_right(seed, inner_proof, mask), border_proof);
        if old != *old_root {
            return Err(ProofError::OldRootMismatch);
        }
    }
    let new = chain_border_right(chain_inner(seed, inner_proof, mask), border_proof);
    if new == *new_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Splits the inclusion proof of leaf `index` in a tree of `size` leaves at
/// the level where the paths to `index` and to the last leaf diverge:
/// `(inner, border)` hash counts. Inner hashes sit left or right of the path;
/// border hashes are all left siblings, one per level. Requires
/// `index < size`.
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = bit_len(index ^ (size - 1));
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

fn bit_len(x: u64) -> usize {
    (u64::BITS - x.leading_zeros()) as usize
}

fn bit(value: u64, i: usize) -> bool {
    value.checked_shr(i as u32).unwrap_or(0) & 1 == 1
}

/// Climbs from `seed` at position `index` through `proof`: at each level the
/// index bit says whether the node is a right child (sibling on the left).
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |node, (i, sibling)| {
        if bit(index, i) {
            node_hash(sibling, &node)
        } else {
            node_hash(&node, sibling)
        }
    })
}

/// Like [`chain_inner`] but skipping right siblings: what the same subtree
/// hashed to before the leaves right of the path were appended.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |node, (i, sibling)| {
        if bit(index, i) {
            node_hash(sibling, &node)
        } else {
            node
        }
    })
}

/// Climbs the tree's right border, where every sibling is on the left.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof
        .iter()
        .fold(seed, |node, sibling| node_hash(sibling, &node))
}
