//! The published RFC 6962 test data of transparency-dev/merkle, run against
//! this crate: every inclusion and consistency probe in `tests/vectors/`
//! (see its README), and the fixed leaf, node and root hashes of
//! `rfc6962/rfc6962_test.go` and `testonly/constants.go`.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cordon_audit::{
    EMPTY_ROOT, Hash, Tree, consistency_proof, inclusion_proof, leaf_hash, node_hash, root,
    verify_consistency, verify_inclusion,
};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct InclusionProbe {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ConsistencyProbe {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

fn vectors(kind: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read vector dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/vectors")
            .join(kind),
        &mut out,
    );
    out.sort();
    out
}

/// A base64 root or proof hash. Go compares roots as byte strings and hashes
/// proof elements as they come, so the edge-case and garbage probes use
/// values that are not 32 bytes (`""`, "don't care 1"); the Rust API takes
/// `[u8; 32]`, so such a value maps to a stand-in hash that keeps equality,
/// the one thing a verifier can observe about it, and the probe still
/// reaches the verifier.
fn any_hash(b64: &str) -> Hash {
    let bytes = BASE64.decode(b64).expect("probe base64");
    Hash::try_from(bytes.as_slice()).unwrap_or_else(|_| {
        Sha256::new()
            .chain_update(b"not a 32-byte hash:")
            .chain_update(&bytes)
            .finalize()
            .into()
    })
}

/// A base64 leaf hash, if it is 32 bytes. One that is not can never reach
/// the Rust API (the caller's conversion to `[u8; 32]` fails), just as Go's
/// verifier refuses a leaf hash of the wrong size first thing.
fn strict_hash(b64: &str) -> Option<Hash> {
    Hash::try_from(BASE64.decode(b64).expect("probe base64").as_slice()).ok()
}

fn hashes(list: &Option<Vec<String>>) -> Vec<Hash> {
    list.iter().flatten().map(|h| any_hash(h)).collect()
}

/// Marks a probe refused at the type boundary.
#[derive(Debug)]
struct NotAHash;

#[test]
fn inclusion_probes() {
    let files = vectors("inclusion");
    let (mut happy, mut refused, mut boundary) = (0, 0, 0);
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read probe");
        let p: InclusionProbe = serde_json::from_str(&text).expect("parse probe");
        let result = match strict_hash(&p.leaf_hash) {
            Some(leaf) => verify_inclusion(
                p.leaf_idx,
                p.tree_size,
                &leaf,
                &hashes(&p.proof),
                &any_hash(&p.root),
            )
            .map_err(|e| format!("{e}")),
            None => Err(format!("{NotAHash:?}")),
        };
        match (p.want_err, result) {
            (false, Ok(())) => happy += 1,
            (true, Err(e)) if e == format!("{NotAHash:?}") => boundary += 1,
            (true, Err(_)) => refused += 1,
            (want_err, result) => wrong.push(format!(
                "{} ({}): want_err={want_err}, got {result:?}",
                file.display(),
                p.desc
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(files.len(), 98, "every inclusion probe file is run");
    println!(
        "inclusion: {happy} happy probes verified, {refused} refused by the verifier, {boundary} by the type"
    );
    assert_eq!(happy, 6, "one happy path per tree directory");
}

#[test]
fn consistency_probes() {
    let files = vectors("consistency");
    let (mut happy, mut refused, mut boundary) = (0, 0, 0);
    let mut wrong = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read probe");
        let p: ConsistencyProbe = serde_json::from_str(&text).expect("parse probe");
        let result = verify_consistency(
            p.size1,
            p.size2,
            &any_hash(&p.root1),
            &any_hash(&p.root2),
            &hashes(&p.proof),
        )
        .map_err(|e| format!("{e}"));
        match (p.want_err, result) {
            (false, Ok(())) => happy += 1,
            (true, Err(e)) if e == format!("{NotAHash:?}") => boundary += 1,
            (true, Err(_)) => refused += 1,
            (want_err, result) => wrong.push(format!(
                "{} ({}): want_err={want_err}, got {result:?}",
                file.display(),
                p.desc
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(files.len(), 98, "every consistency probe file is run");
    println!(
        "consistency: {happy} happy probes verified, {refused} refused by the verifier, {boundary} by the type"
    );
    assert_eq!(happy, 6, "one happy path per tree directory");
}

/// The leaves of RFC 6962's test tree (`testonly.LeafInputs`).
fn rfc_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| leaf_hash(&hex::decode(h).expect("hex")))
    .collect()
}

fn h(text: &str) -> Hash {
    let mut out = [0; 32];
    hex::decode_to_slice(text, &mut out).expect("hex hash");
    out
}

/// `testonly.RootHashes`: the root of the tree of the first n leaves.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

#[test]
fn fixed_roots_of_trees_of_zero_to_eight_leaves() {
    let leaves = rfc_leaves();
    let tree = Tree::from_leaves(&leaves);
    for (n, want) in ROOTS.iter().enumerate() {
        assert_eq!(root(&leaves[..n]), h(want), "root of {n} leaves");
        assert_eq!(
            tree.root_at(n as u64).expect("root_at"),
            h(want),
            "Tree root_at {n}"
        );
        assert_eq!(
            Tree::from_leaves(&leaves[..n]).root(),
            h(want),
            "Tree of {n} leaves"
        );
    }
}

#[test]
fn fixed_node_hashes() {
    // `testonly.NodeHashes`: every complete subtree, level by level.
    let levels: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];
    let leaves = rfc_leaves();
    for (height, level) in levels.iter().enumerate() {
        let width = 1 << height;
        for (i, want) in level.iter().enumerate() {
            assert_eq!(
                root(&leaves[i * width..(i + 1) * width]),
                h(want),
                "node {height}/{i}"
            );
        }
    }
}

#[test]
fn fixed_leaf_and_empty_hashes() {
    // rfc6962_test.go: the empty root, the empty leaf, leaf "L123456".
    assert_eq!(
        EMPTY_ROOT,
        h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(root(&[]), EMPTY_ROOT);
    assert_eq!(<Hash>::from(Sha256::digest(b"")), EMPTY_ROOT);
    assert_eq!(
        leaf_hash(b""),
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    );
    assert_eq!(
        leaf_hash(b"L123456"),
        h("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56")
    );
    // Domain separation: a node is not the leaf of its children's bytes,
    // and order matters.
    let (a, b) = (leaf_hash(b"Hello"), leaf_hash(b"World"));
    assert_ne!(node_hash(&a, &b), leaf_hash(&[a, b].concat()));
    assert_ne!(node_hash(&a, &b), node_hash(&b, &a));
}

#[test]
fn generated_proofs_match_the_happy_path_probes() {
    // The happy probes were made from the RFC 6962 test tree; proofs
    // generated here from the same leaves must be those very hashes.
    let leaves = rfc_leaves();
    let mut checked = 0;
    for file in vectors("inclusion") {
        let p: InclusionProbe =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("parse");
        if p.want_err || p.tree_size > 8 || p.tree_size == 0 {
            continue;
        }
        let leaves = &leaves[..p.tree_size as usize];
        if strict_hash(&p.leaf_hash) != Some(leaves[p.leaf_idx as usize]) {
            continue;
        }
        let proof = inclusion_proof(leaves, p.leaf_idx).expect("proof");
        assert_eq!(proof, hashes(&p.proof), "{}", file.display());
        checked += 1;
    }
    for file in vectors("consistency") {
        let p: ConsistencyProbe =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("parse");
        if p.want_err
            || p.size2 > 8
            || p.size1 == 0
            || any_hash(&p.root2) != root(&leaves[..p.size2 as usize])
        {
            continue;
        }
        let proof = consistency_proof(&leaves[..p.size2 as usize], p.size1).expect("proof");
        assert_eq!(proof, hashes(&p.proof), "{}", file.display());
        checked += 1;
    }
    println!("{checked} happy probes regenerated hash for hash");
    assert!(checked >= 8, "only {checked} happy probes were regenerated");
}
