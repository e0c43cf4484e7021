//! RFC 6962 / RFC 9162 Merkle tree: hashing, roots and proof generation.
//!
//! The hashes are domain-separated (`0x00` before a leaf, `0x01` before two
//! children) so a leaf can never be passed off as an interior node. Proof
//! *verification* lives in [`crate::proof`]; it is written from the
//! verifier's side (RFC 9162 §2.1.3.2 and §2.1.4.2, as transparency-dev/merkle
//! implements them), not as a mirror of the generator here, so a bug in one
//! does not hide in the other.

use sha2::{Digest as _, Sha256};

use crate::proof::ProofError;

/// A SHA-256 digest: a leaf hash, an interior node or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The hash of one leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// The Merkle tree hash (MTH) over `leaves`, which are leaf hashes; the empty
/// tree's is [`EMPTY_ROOT`]. O(n) hashing, O(log n) memory.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => EMPTY_ROOT,
        [leaf] => *leaf,
        _ => {
            let (left, right) = leaves.split_at(split(leaves.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// The inclusion proof (RFC 9162 §2.1.3.1) of the leaf at `index` in the tree
/// over all of `leaves`: sibling hashes, bottom up.
///
/// Builds a [`Tree`] first (O(n)); to prove many leaves of one tree, build
/// the [`Tree`] once and ask it.
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let tree = Tree::from_leaves(leaves);
    tree.inclusion_proof(index, tree.size())
}

/// The consistency proof (RFC 9162 §2.1.4.1) that the tree over
/// `leaves[..old_size]` is a prefix of the tree over all of `leaves`.
///
/// `old_size` must be at least 1 (every tree extends the empty one, and
/// there is no proof to give) and at most `leaves.len()`; equal sizes give
/// the empty proof.
pub fn consistency_proof(leaves: &[Hash], old_size: u64) -> Result<Vec<Hash>, ProofError> {
    let tree = Tree::from_leaves(leaves);
    tree.consistency_proof(old_size, tree.size())
}

/// The largest power of two strictly smaller than `n`: where RFC 9162
/// splits a tree of `n >= 2` leaves into its left and right subtrees (1 for
/// smaller `n`, which no caller passes).
fn split(n: usize) -> usize {
    let below = n.saturating_sub(1).max(1);
    1 << (usize::BITS - 1 - below.leading_zeros())
}

/// Converts a caller's 64-bit position into an index into memory.
fn to_index(value: u64, available: usize) -> Result<usize, ProofError> {
    usize::try_from(value).map_err(|_| ProofError::SizeOutOfRange {
        size: value,
        available: available as u64,
    })
}

/// A Merkle tree that keeps every complete subtree hash, so roots and proofs
/// for any earlier size cost O(log² n) instead of rehashing the leaves.
///
/// `levels[h][i]` is the hash of the perfect subtree of `2^h` leaves starting
/// at leaf `i * 2^h`; level 0 holds the leaves. Appending is amortised O(1)
/// hashes. Memory: about two hashes (64 bytes) per leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// The empty tree.
    pub fn new() -> Tree {
        Tree::default()
    }

    /// The tree over `leaves` (leaf hashes), in order.
    pub fn from_leaves(leaves: &[Hash]) -> Tree {
        let mut tree = Tree::new();
        for leaf in leaves {
            tree.push(*leaf);
        }
        tree
    }

    /// Appends one leaf hash, completing every subtree it closes.
    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        let mut height = 0;
        loop {
            if self.levels.len() == height {
                self.levels.push(Vec::new());
            }
            let Some(level) = self.levels.get_mut(height) else {
                return;
            };
            level.push(node);
            // An odd count means the new node has no right sibling yet.
            if level.len() % 2 == 1 {
                return;
            }
            let [.., left, right] = level.as_slice() else {
                return;
            };
            node = node_hash(left, right);
            height += 1;
        }
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.leaves().len() as u64
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The root over all leaves.
    pub fn root(&self) -> Hash {
        self.range(0, self.leaves().len()).unwrap_or(EMPTY_ROOT)
    }

    /// The root the tree had when it held its first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        let end = self.check_size(size)?;
        self.range(0, end).ok_or_else(|| self.out_of_range(size))
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves (RFC 9162 §2.1.3.1 `PATH`), bottom up.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        if index >= size {
            return Err(ProofError::IndexOutOfRange { index, size });
        }
        let end_size = self.check_size(size)?;
        let index = to_index(index, end_size)?;
        // Walk down from the root, taking at each level the subtree that
        // holds `index` and recording the other one; RFC 9162 lists them
        // bottom up, so the walk's order is reversed at the end.
        let (mut start, mut end) = (0, end_size);
        let mut proof = Vec::new();
        while end - start > 1 {
            let mid = start + split(end - start);
            let sibling = if index < mid {
                let sibling = self.range(mid, end);
                end = mid;
                sibling
            } else {
                let sibling = self.range(start, mid);
                start = mid;
                sibling
            };
            proof.push(sibling.ok_or_else(|| self.out_of_range(size))?);
        }
        proof.reverse();
        Ok(proof)
    }

    /// The consistency proof from the tree of the first `old_size` leaves to
    /// the tree of the first `new_size` (RFC 9162 §2.1.4.1 `SUBPROOF`).
    pub fn consistency_proof(&self, old_size: u64, new_size: u64) -> Result<Vec<Hash>, ProofError> {
        if old_size > new_size {
            return Err(ProofError::SizeOrder { old_size, new_size });
        }
        if old_size == 0 {
            return Err(ProofError::EmptyOldTree);
        }
        let end_size = self.check_size(new_size)?;
        let old = to_index(old_size, end_size)?;
        // `whole` is SUBPROOF's flag: true while the range still starts at
        // leaf 0, where the verifier already knows the old root and the old
        // subtree's own hash need not be sent.
        let (mut start, mut end, mut whole) = (0, end_size, true);
        let mut proof = Vec::new();
        loop {
            let n = end - start;
            let m = old - start;
            if m == n {
                if !whole {
                    proof.push(
                        self.range(start, end)
                            .ok_or_else(|| self.out_of_range(new_size))?,
                    );
                }
                break;
            }
            let k = split(n);
            let sibling = if m <= k {
                let sibling = self.range(start + k, end);
                end = start + k;
                sibling
            } else {
                let sibling = self.range(start, start + k);
                start += k;
                whole = false;
                sibling
            };
            proof.push(sibling.ok_or_else(|| self.out_of_range(new_size))?);
        }
        proof.reverse();
        Ok(proof)
    }

    /// `size` as an index, if the tree holds that many leaves.
    fn check_size(&self, size: u64) -> Result<usize, ProofError> {
        let held = self.leaves().len();
        match usize::try_from(size) {
            Ok(size) if size <= held => Ok(size),
            _ => Err(self.out_of_range(size)),
        }
    }

    fn out_of_range(&self, size: u64) -> ProofError {
        ProofError::SizeOutOfRange {
            size,
            available: self.size(),
        }
    }

    /// MTH over leaves `start..end`.
    ///
    /// Every range RFC 9162's recursion visits starts at a multiple of the
    /// smallest power of two not below its length, so a perfect range is one
    /// stored node and any other splits into a stored left half and a
    /// shorter range on the right: O(log n) lookups and hashes. `None` only
    /// if the range is outside the tree, which callers rule out first.
    fn range(&self, start: usize, end: usize) -> Option<Hash> {
        let n = end.checked_sub(start)?;
        if n == 0 {
            return Some(EMPTY_ROOT);
        }
        if n.is_power_of_two() {
            let height = n.trailing_zeros() as usize;
            return self.levels.get(height)?.get(start >> height).copied();
        }
        let mid = start + split(n);
        Some(node_hash(&self.range(start, mid)?, &self.range(mid, end)?))
    }
}
