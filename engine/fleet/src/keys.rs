//! Ed25519 key files, in the text forms the rest of Cordon uses:
//! `ed25519:<64 hex digits>` (public) and `ed25519-secret:<64 hex digits>`.

pub use ed25519_dalek::{SigningKey, VerifyingKey};

/// A key file is not what it should be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad key: {0}")]
pub struct KeyError(pub String);

fn hex32(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = hex::decode(text.trim()).map_err(|e| KeyError(e.to_string()))?;
    bytes
        .try_into()
        .map_err(|_| KeyError("expected 32 bytes (64 hex digits)".into()))
}

/// Parses `ed25519:<hex>`.
pub fn parse_public(text: &str) -> Result<VerifyingKey, KeyError> {
    let hex = text
        .trim()
        .strip_prefix("ed25519:")
        .ok_or_else(|| KeyError("a public key starts with `ed25519:`".into()))?;
    VerifyingKey::from_bytes(&hex32(hex)?).map_err(|e| KeyError(e.to_string()))
}

/// Parses `ed25519-secret:<hex>`.
pub fn parse_secret(text: &str) -> Result<SigningKey, KeyError> {
    let hex = text
        .trim()
        .strip_prefix("ed25519-secret:")
        .ok_or_else(|| KeyError("a secret key starts with `ed25519-secret:`".into()))?;
    Ok(SigningKey::from_bytes(&hex32(hex)?))
}

/// The text of a public key file.
pub fn public_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}\n", hex::encode(key.as_bytes()))
}

/// The text of a secret key file.
pub fn secret_text(key: &SigningKey) -> String {
    format!("ed25519-secret:{}\n", hex::encode(key.to_bytes()))
}

/// A short, stable name for a public key: the first 8 bytes of its SHA-256,
/// in hex. Signed objects carry it so a verifier can tell "signed by another
/// key" from "signature broken".
pub fn key_id(key: &VerifyingKey) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(key.as_bytes())[..8])
}

/// A fresh key from the operating system's randomness.
#[cfg(feature = "random")]
pub fn generate() -> Result<SigningKey, KeyError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| KeyError(format!("no randomness: {e}")))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// `n` random bytes as hex (nonces).
#[cfg(feature = "random")]
pub fn random_hex(n: usize) -> Result<String, KeyError> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).map_err(|e| KeyError(format!("no randomness: {e}")))?;
    Ok(hex::encode(bytes))
}

#[cfg(all(test, feature = "random"))]
mod tests {
    use super::*;

    #[test]
    fn key_texts_round_trip() {
        let key = generate().expect("key");
        let back = parse_secret(&secret_text(&key)).expect("secret");
        assert_eq!(back.to_bytes(), key.to_bytes());
        let public = parse_public(&public_text(&key.verifying_key())).expect("public");
        assert_eq!(public, key.verifying_key());
        assert_eq!(key_id(&public).len(), 16);
        assert!(parse_public("ed25519:00").is_err());
        assert!(parse_secret(&public_text(&public)).is_err());
    }
}
