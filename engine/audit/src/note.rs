//! Signed notes with Ed25519 keys (c2sp.org/signed-note), the envelope of
//! checkpoints. Byte-compatible with Go's `golang.org/x/mod/sumdb/note`: the
//! tests check its published key, key hash and signature.
//!
//! A note is a text ending in a newline, a blank line, then one or more lines
//! `— <key name> <base64(key hash || signature)>`. The signature is over the
//! text; the key hash (first four bytes of `SHA-256(name || "\n" || 0x01 ||
//! public key)`) lets a reader pick out the signatures of keys it knows and
//! ignore the rest — which is what lets a log rotate keys or gather witness
//! cosignatures without breaking old readers.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

/// The signature type byte of Ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;

/// The prefix of every signature line: an em dash (U+2014) and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// The most signature lines a note may carry. The spec asks readers to
/// accept at least 16; Go's reader stops at 100. A bound keeps a hostile
/// note from costing unbounded signature checks.
pub const MAX_SIGNATURES: usize = 100;

/// What is wrong with a key, a note or a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// A key name that is empty or holds a space, a control character or a
    /// `+`.
    #[error(
        "invalid key name {0:?}: it must be non-empty, without spaces, control characters or '+'"
    )]
    InvalidName(String),
    /// A verifier key that does not parse.
    #[error("malformed verifier key: {0}")]
    BadVerifierKey(String),
    /// A verifier key for another signature algorithm.
    #[error("unsupported signature algorithm {0:#04x} (only Ed25519, 0x01, is supported)")]
    UnsupportedAlgorithm(u8),
    /// Text to sign, or a note, that breaks the signed-note syntax.
    #[error("malformed note: {0}")]
    Malformed(String),
    /// A note whose text is not a checkpoint.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// No signature line names this key.
    #[error("the note has no signature by {name}+{hash:08x}")]
    NoSignature {
        /// The key's name.
        name: String,
        /// The key's hash.
        hash: u32,
    },
    /// A signature line names this key but does not verify.
    #[error("the signature by {name}+{hash:08x} does not verify")]
    InvalidSignature {
        /// The key's name.
        name: String,
        /// The key's hash.
        hash: u32,
    },
}

impl NoteError {
    /// Whether the error is about signatures (as opposed to syntax): the
    /// note names no signature by the key, or that signature is false.
    pub fn is_signature_error(&self) -> bool {
        matches!(
            self,
            NoteError::NoSignature { .. } | NoteError::InvalidSignature { .. }
        )
    }
}

/// Whether `name` may name a key: non-empty, no Unicode space, no `+` (the
/// spec's rule), and no control character (which no note may hold, so a
/// signer with one could only write notes nobody can open).
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
}

/// The signed-note key hash of an Ed25519 key:
/// `SHA-256(name || "\n" || 0x01 || public key)[..4]`, big-endian.
pub fn key_hash(name: &str, key: &VerifyingKey) -> u32 {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([ALG_ED25519])
        .chain_update(key.as_bytes())
        .finalize();
    let [a, b, c, d, ..] = <[u8; 32]>::from(digest);
    u32::from_be_bytes([a, b, c, d])
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(NoteError::InvalidName(name.to_string()))
    }
}

/// Notes must be UTF-8 (a `&str` is) without control characters other than
/// the newline: a carriage return or an escape sequence could make the text
/// a human reads differ from the bytes that were signed.
fn check_characters(text: &str) -> Result<(), NoteError> {
    match text.chars().find(|&c| c < ' ' && c != '\n') {
        Some(c) => Err(NoteError::Malformed(format!(
            "control character U+{:04X}",
            u32::from(c)
        ))),
        None => Ok(()),
    }
}

/// Signs notes with one Ed25519 key under one name.
#[derive(Clone)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
    hash: u32,
}

impl fmt::Debug for NoteSigner {
    // Never print the secret key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NoteSigner")
            .field("name", &self.name)
            .field("hash", &format_args!("{:08x}", self.hash))
            .finish_non_exhaustive()
    }
}

impl NoteSigner {
    /// A signer for `key` under `name` (for a log, its origin). Refuses a
    /// name that could not appear on a signature line.
    pub fn new(name: impl Into<String>, key: SigningKey) -> Result<NoteSigner, NoteError> {
        let name = name.into();
        check_name(&name)?;
        let hash = key_hash(&name, &key.verifying_key());
        Ok(NoteSigner { name, key, hash })
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash on this signer's signature lines.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// The verifier for this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
            hash: self.hash,
        }
    }

    /// Signs `text` (which must end in a newline and hold no control
    /// character but newlines) and returns the note: the text, a blank line
    /// and this key's signature line.
    pub fn sign_note(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the text must end with a newline".into(),
            ));
        }
        check_characters(text)?;
        Ok(self.sign_unchecked(text))
    }

    /// The note for `text`, without checking it: callers guarantee the
    /// syntax or accept a note that readers will refuse.
    pub(crate) fn sign_unchecked(&self, text: &str) -> String {
        let signature = self.key.sign(text.as_bytes());
        let mut payload = Vec::with_capacity(4 + 64);
        payload.extend_from_slice(&self.hash.to_be_bytes());
        payload.extend_from_slice(&signature.to_bytes());
        format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(payload)
        )
    }
}

/// Verifies notes signed by one Ed25519 key under one name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    key: VerifyingKey,
    hash: u32,
}

impl NoteVerifier {
    /// A verifier for `key` under `name`.
    pub fn new(name: impl Into<String>, key: VerifyingKey) -> Result<NoteVerifier, NoteError> {
        let name = name.into();
        check_name(&name)?;
        let hash = key_hash(&name, &key);
        Ok(NoteVerifier { name, key, hash })
    }

    /// Parses a verifier key, `<name>+<hex key hash>+<base64(0x01 || public
    /// key)>`, checking that the key hash matches the name and key.
    pub fn parse(vkey: &str) -> Result<NoteVerifier, NoteError> {
        let bad = |why: &str| NoteError::BadVerifierKey(why.to_string());
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(key_b64)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("expected <name>+<key hash>+<key>"));
        };
        check_name(name)?;
        if hash_hex.len() != 8 || !hash_hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("the key hash must be 8 hex digits"));
        }
        let hash = u32::from_str_radix(hash_hex, 16)
            .map_err(|_| bad("the key hash must be 8 hex digits"))?;
        let key = BASE64
            .decode(key_b64)
            .map_err(|_| bad("the key is not base64"))?;
        let (&alg, public) = key.split_first().ok_or_else(|| bad("the key is empty"))?;
        if alg != ALG_ED25519 {
            return Err(NoteError::UnsupportedAlgorithm(alg));
        }
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| bad("an Ed25519 public key is 32 bytes"))?;
        let key =
            VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 public key"))?;
        let verifier = NoteVerifier::new(name, key)?;
        if verifier.hash != hash {
            return Err(bad("the key hash does not match the name and key"));
        }
        Ok(verifier)
    }

    /// The verifier key in signed-note format (the inverse of
    /// [`NoteVerifier::parse`]).
    pub fn to_vkey(&self) -> String {
        let mut key = Vec::with_capacity(33);
        key.push(ALG_ED25519);
        key.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.hash, BASE64.encode(key))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key hash.
    pub fn key_hash(&self) -> u32 {
        self.hash
    }

    /// The Ed25519 public key.
    pub fn key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Opens a signed note: checks its syntax, requires a valid signature by
    /// this key and returns the signed text.
    ///
    /// Signatures by other keys (another name, or the same name with another
    /// key hash) are ignored, as the spec requires. Every signature line
    /// naming this key must verify: one false signature rejects the note,
    /// even beside a true one.
    pub fn open<'a>(&self, note: &'a str) -> Result<&'a str, NoteError> {
        let malformed = |why: &str| NoteError::Malformed(why.to_string());
        check_characters(note)?;
        // The text ends at the last blank line; it may hold blank lines
        // itself.
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let (text, signatures) = (&note[..=split], &note[split + 2..]);
        let Some(signatures) = signatures.strip_suffix('\n') else {
            return Err(malformed("the signatures must end with a newline"));
        };
        if signatures.is_empty() {
            return Err(malformed("no signature lines"));
        }
        let mut verified = false;
        for (count, line) in signatures.split('\n').enumerate() {
            if count >= MAX_SIGNATURES {
                return Err(malformed("too many signature lines"));
            }
            let (name, hash, signature) = parse_signature_line(line)?;
            if name != self.name || hash != self.hash {
                continue;
            }
            let invalid = || NoteError::InvalidSignature {
                name: self.name.clone(),
                hash: self.hash,
            };
            let signature = Signature::from_slice(&signature).map_err(|_| invalid())?;
            // Strict verification refuses small-order keys and points and
            // non-canonical encodings, so a signature has one valid form.
            self.key
                .verify_strict(text.as_bytes(), &signature)
                .map_err(|_| invalid())?;
            verified = true;
        }
        if verified {
            Ok(text)
        } else {
            Err(NoteError::NoSignature {
                name: self.name.clone(),
                hash: self.hash,
            })
        }
    }
}

/// Splits `— <name> <base64>` into the name, the key hash and the signature
/// bytes, checking the syntax every signature line must have, whoever signed
/// it.
fn parse_signature_line(line: &str) -> Result<(&str, u32, Vec<u8>), NoteError> {
    let malformed = |why: &str| NoteError::Malformed(why.to_string());
    let rest = line
        .strip_prefix(SIG_PREFIX)
        .ok_or_else(|| malformed("a signature line must start with an em dash and a space"))?;
    let (name, encoded) = rest
        .split_once(' ')
        .ok_or_else(|| malformed("a signature line is `— <name> <signature>`"))?;
    if !is_valid_name(name) {
        return Err(malformed("a signature line names an invalid key name"));
    }
    let bytes = BASE64
        .decode(encoded)
        .map_err(|_| malformed("a signature is not base64"))?;
    match bytes.as_slice() {
        [a, b, c, d, signature @ ..] if !signature.is_empty() => Ok((
            name,
            u32::from_be_bytes([*a, *b, *c, *d]),
            signature.to_vec(),
        )),
        _ => Err(malformed("a signature is shorter than its key hash")),
    }
}
