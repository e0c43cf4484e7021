//! Signed notes and checkpoints: Go's `golang.org/x/mod/sumdb/note` test
//! keys and signatures byte for byte, the C2SP spec's example, round trips,
//! and every way a note or checkpoint must be refused.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use cordon_audit::note::{MAX_SIGNATURES, key_hash};
use cordon_audit::{Checkpoint, NoteError, NoteSigner, NoteVerifier, leaf_hash, open_checkpoint};
use ed25519_dalek::SigningKey;

// From golang.org/x/mod/sumdb/note/note_test.go.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const TEXT: &str = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

/// Go's private-key format: `PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed)`.
fn go_signer(skey: &str) -> NoteSigner {
    let parts: Vec<&str> = skey.splitn(5, '+').collect();
    let [_, _, name, _, key] = parts.as_slice() else {
        panic!("skey format");
    };
    let bytes = BASE64.decode(key).expect("base64");
    let (alg, seed) = bytes.split_first().expect("key bytes");
    assert_eq!(*alg, 0x01, "Ed25519");
    let seed: [u8; 32] = seed.try_into().expect("32-byte seed");
    NoteSigner::new(*name, SigningKey::from_bytes(&seed)).expect("signer")
}

fn signer(name: &str, seed: u8) -> NoteSigner {
    NoteSigner::new(name, SigningKey::from_bytes(&[seed; 32])).expect("signer")
}

fn checkpoint(size: u64) -> Checkpoint {
    Checkpoint {
        origin: "cordon.example/audit".into(),
        size,
        root: leaf_hash(&size.to_be_bytes()),
    }
}

#[test]
fn go_sumdb_note_key_hash_vkey_and_signature_byte_for_byte() {
    let peter = go_signer(PETER_SKEY);
    assert_eq!(peter.key_hash(), 0xc74f20a3);
    assert_eq!(peter.verifier().to_vkey(), PETER_VKEY);
    assert_eq!(key_hash("PeterNeumann", peter.verifier().key()), 0xc74f20a3);
    // Ed25519 is deterministic: the very note Go's TestSign expects.
    assert_eq!(
        peter.sign_note(TEXT).expect("sign"),
        format!("{TEXT}\n{PETER_SIG}")
    );
    let parsed = NoteVerifier::parse(PETER_VKEY).expect("vkey");
    assert_eq!(parsed, peter.verifier());
}

#[test]
fn go_sumdb_note_open_cases() {
    let peter = NoteVerifier::parse(PETER_VKEY).expect("peter");
    let enoch = NoteVerifier::parse(ENOCH_VKEY).expect("enoch");
    assert_eq!(enoch.key_hash(), 0xaf0cfe78);
    let both = format!("{TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    // Each key finds its own signature and ignores the other.
    assert_eq!(peter.open(&both), Ok(TEXT));
    assert_eq!(enoch.open(&both), Ok(TEXT));
    // Too many signatures.
    let many = format!("{TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
    assert!(matches!(peter.open(&many), Err(NoteError::Malformed(_))));
    assert_eq!(
        peter.open(&format!("{TEXT}\n{}", PETER_SIG.repeat(16))),
        Ok(TEXT)
    );
    // A corrupted signature by the known key rejects the note.
    let corrupt = format!("{TEXT}\n{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    assert!(matches!(
        peter.open(&corrupt),
        Err(NoteError::InvalidSignature { .. })
    ));
    // Go's malformed messages.
    let bad = [
        TEXT.to_string(),
        format!("{TEXT}\n"),
        format!("{TEXT}\n{}", &PETER_SIG[..PETER_SIG.len() - 1]),
        format!("\x01{TEXT}\n{PETER_SIG}"),
        format!(
            "{TEXT}\n— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
        ),
        format!("{TEXT}\n{PETER_SIG}Unexpected line.\n"),
    ];
    for note in &bad {
        assert!(
            matches!(peter.open(note), Err(NoteError::Malformed(_))),
            "accepted {note:?}"
        );
    }
    // A signature under another name, or the right name with another hash:
    // someone else's key, ignored; with nothing else, no signature.
    let renamed = format!(
        "{TEXT}\n{}",
        PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    );
    assert!(matches!(
        peter.open(&renamed),
        Err(NoteError::NoSignature { .. })
    ));
    let rehashed = format!("{TEXT}\n{}", PETER_SIG.replace("x08g", "xxxx"));
    assert!(matches!(
        peter.open(&rehashed),
        Err(NoteError::NoSignature { .. })
    ));
}

#[test]
fn go_sumdb_note_vkey_manglings_are_refused() {
    assert!(NoteVerifier::parse(PETER_VKEY).is_ok());
    let bytes = PETER_VKEY.as_bytes();
    for i in 0..=bytes.len() {
        for j in i + 1..=bytes.len() {
            if (i, j) != (0, bytes.len()) {
                let part = &PETER_VKEY[i..j];
                assert!(NoteVerifier::parse(part).is_err(), "accepted {part:?}");
            }
        }
    }
    for i in 0..bytes.len() {
        let mut b = bytes.to_vec();
        b[i] += 1;
        let mangled = String::from_utf8(b).expect("ascii");
        assert!(
            NoteVerifier::parse(&mangled).is_err(),
            "accepted {mangled:?}"
        );
    }
    // Wrong key length, unknown algorithm (each with a matching key hash).
    assert!(matches!(
        NoteVerifier::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(NoteError::BadVerifierKey(_))
    ));
    assert_eq!(
        NoteVerifier::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(NoteError::UnsupportedAlgorithm(0x65))
    );
}

#[test]
fn c2sp_signed_note_example() {
    // c2sp.org/signed-note, "Verifier keys" example.
    let verifier = NoteVerifier::parse(
        "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
    )
    .expect("vkey");
    let note = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
    assert_eq!(verifier.open(note), Ok("This is an example message.\n"));
    assert!(
        verifier
            .open(&note.replace("example message", "exemplary message"))
            .is_err()
    );
}

#[test]
fn c2sp_checkpoint_body_format() {
    // c2sp.org/tlog-checkpoint's example body.
    let root = BASE64
        .decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        .expect("base64");
    let checkpoint = Checkpoint {
        origin: "example.com/behind-the-sofa".into(),
        size: 20852163,
        root: root.try_into().expect("32 bytes"),
    };
    assert_eq!(
        checkpoint.body(),
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

#[test]
fn checkpoint_round_trip() {
    let log = signer("cordon.example/audit", 1);
    for size in [0, 1, 7, u64::MAX] {
        let note = checkpoint(size).sign(&log);
        assert!(note.starts_with(&checkpoint(size).body()));
        assert!(note.contains("\n\n\u{2014} cordon.example/audit "));
        assert_eq!(
            open_checkpoint(&note, &log.verifier()),
            Ok(checkpoint(size))
        );
    }
}

#[test]
fn a_note_signed_by_another_key_is_refused() {
    let log = signer("cordon.example/audit", 1);
    // Same name, other key: another key hash, so no signature by ours.
    let impostor = signer("cordon.example/audit", 2);
    let note = checkpoint(5).sign(&impostor);
    let err = open_checkpoint(&note, &log.verifier()).expect_err("refused");
    assert!(matches!(err, NoteError::NoSignature { .. }) && err.is_signature_error());
    // The impostor's signature bytes under our name and key hash: verified,
    // and false.
    let ours = checkpoint(5).sign(&log);
    let theirs_line = note.lines().last().expect("signature line");
    let mut payload = BASE64
        .decode(theirs_line.rsplit(' ').next().expect("b64"))
        .expect("base64");
    payload[..4].copy_from_slice(&log.key_hash().to_be_bytes());
    let forged = format!(
        "{}\n— cordon.example/audit {}\n",
        checkpoint(5).body(),
        BASE64.encode(&payload)
    );
    assert_ne!(forged, ours);
    assert!(matches!(
        open_checkpoint(&forged, &log.verifier()),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn unknown_signatures_are_ignored() {
    let log = signer("cordon.example/audit", 1);
    let witness = signer("witness.example/w1", 3);
    let body = checkpoint(9).body();
    let witness_line = witness.sign_note(&body).expect("sign");
    let witness_line = witness_line.rsplit_once("\n\n").expect("split").1;
    // Before and after ours.
    let ours = checkpoint(9).sign(&log);
    for note in [
        format!("{ours}{witness_line}"),
        format!(
            "{body}\n{witness_line}{}",
            ours.rsplit_once("\n\n").expect("split").1
        ),
    ] {
        assert_eq!(open_checkpoint(&note, &log.verifier()), Ok(checkpoint(9)));
        assert_eq!(
            open_checkpoint(&note, &witness.verifier()),
            Ok(checkpoint(9))
        );
    }
    // Only the witness: not ours.
    assert!(matches!(
        open_checkpoint(&format!("{body}\n{witness_line}"), &log.verifier()),
        Err(NoteError::NoSignature { .. })
    ));
}

#[test]
fn a_tampered_body_is_refused() {
    let log = signer("cordon.example/audit", 1);
    let note = checkpoint(12).sign(&log);
    for tampered in [
        note.replacen("\n12\n", "\n13\n", 1),
        note.replacen("cordon.example/audit\n", "cordon.example/other\n", 1),
        note.replacen("\n12\n", "\n12\n\n", 1),
    ] {
        assert_ne!(tampered, note);
        assert!(
            open_checkpoint(&tampered, &log.verifier()).is_err(),
            "accepted {tampered:?}"
        );
    }
    let root_flipped = {
        let mut c = checkpoint(12);
        c.root[0] ^= 1;
        note.replacen(
            &BASE64.encode(checkpoint(12).root),
            &BASE64.encode(c.root),
            1,
        )
    };
    assert!(matches!(
        open_checkpoint(&root_flipped, &log.verifier()),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn malformed_checkpoint_bodies_are_refused_even_when_signed() {
    let log = signer("cordon.example/audit", 1);
    let root = BASE64.encode([7u8; 32]);
    let bad = [
        format!("cordon.example/audit\n012\n{root}\n"),
        format!("cordon.example/audit\n-1\n{root}\n"),
        format!("cordon.example/audit\n+1\n{root}\n"),
        format!("cordon.example/audit\n 1\n{root}\n"),
        format!("cordon.example/audit\n1a\n{root}\n"),
        format!("cordon.example/audit\n\n{root}\n"),
        format!("cordon.example/audit\n18446744073709551616\n{root}\n"),
        format!("cordon.example/audit\n5\n{}\n", BASE64.encode([7u8; 31])),
        format!("cordon.example/audit\n5\n{}\n", BASE64.encode([7u8; 33])),
        "cordon.example/audit\n5\nnot base64!\n".to_string(),
        format!("cordon.example/audit\n5\n{}\n", hex::encode([7u8; 32])),
        format!("cordon.example/audit\n5\n{root}\nextension line\n"),
        format!("\n5\n{root}\n"),
        "cordon.example/audit\n5\n".to_string(),
    ];
    for body in &bad {
        let note = log.sign_note(body).expect("sign");
        assert!(
            matches!(
                open_checkpoint(&note, &log.verifier()),
                Err(NoteError::MalformedCheckpoint(_))
            ),
            "accepted {body:?}"
        );
    }
    // An origin that cannot be a line gives a note that does not open.
    let broken = Checkpoint {
        origin: "two\nlines".into(),
        ..checkpoint(3)
    };
    assert!(!Checkpoint::is_valid_origin(&broken.origin));
    assert!(open_checkpoint(&broken.sign(&log), &log.verifier()).is_err());
    assert!(Checkpoint::is_valid_origin("cordon.example/audit"));
}

#[test]
fn names_and_texts_that_cannot_be_signed() {
    let key = SigningKey::from_bytes(&[1; 32]);
    for name in [
        "",
        "has space",
        "has+plus",
        "tab\there",
        "nbsp\u{a0}",
        "bell\x07",
    ] {
        assert!(
            matches!(
                NoteSigner::new(name, key.clone()),
                Err(NoteError::InvalidName(_))
            ),
            "{name:?}"
        );
        assert!(
            NoteVerifier::new(name, key.verifying_key()).is_err(),
            "{name:?}"
        );
    }
    let log = signer("cordon.example/audit", 1);
    assert!(log.sign_note("no newline").is_err());
    assert!(log.sign_note("carriage\r\nreturn\n").is_err());
    assert!(log.sign_note("escape \x1b[31m\n").is_err());
    // The signer's Debug output never shows the secret.
    let debug = format!("{log:?}");
    assert!(debug.contains("cordon.example/audit") && !debug.contains("SigningKey"));
}

#[test]
fn vkey_round_trip() {
    for (name, seed) in [("cordon.example/audit", 1), ("a", 2), ("ünïcode/ok", 3)] {
        let verifier = signer(name, seed).verifier();
        let vkey = verifier.to_vkey();
        assert_eq!(NoteVerifier::parse(&vkey), Ok(verifier.clone()));
        assert_eq!(
            vkey.split('+').nth(1),
            Some(format!("{:08x}", verifier.key_hash()).as_str())
        );
    }
}
