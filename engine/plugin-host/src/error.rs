//! Why a plugin did not load. Every case has a stable code; loading checks
//! them in the order the cases are listed, and stops at the first failure.

use thiserror::Error;

/// A plugin component was refused before any of its code ran (or, for
/// `describe` problems, before any of its actions ran).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The system's error.
        message: String,
    },
    /// Bigger than the host accepts (checked before hashing or parsing).
    #[error("component is {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The component's SHA-256 is not the one its signed manifest names.
    #[error(
        "component digest {actual} differs from the manifest's {expected} (tampered or wrong file)"
    )]
    DigestMismatch {
        /// The manifest's digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// The component is not the one the playbook version pinned.
    #[error("component digest {actual} is not the pinned {pinned}")]
    PinMismatch {
        /// The pinned digest.
        pinned: String,
        /// The file's digest.
        actual: String,
    },
    /// No signature file.
    #[error("component is not signed (no {0} next to it)")]
    Unsigned(String),
    /// Signed by a key the operator does not trust.
    #[error("signed by key {0}, which is not among the trusted keys")]
    UntrustedKey(String),
    /// The signature does not verify under the key it names.
    #[error("signature does not verify: {0}")]
    BadSignature(String),
    /// An older release than one already accepted for this plugin.
    #[error(
        "release counter {counter} of {name} is below the accepted floor {floor} (rollback refused)"
    )]
    RolledBack {
        /// The plugin.
        name: String,
        /// This component's release counter.
        counter: u64,
        /// The highest counter accepted so far.
        floor: u64,
    },
    /// The signed manifest has expired.
    #[error("signed manifest expired at {0}")]
    Expired(String),
    /// wasmtime could not compile it (not a valid component).
    #[error("cannot compile component: {0}")]
    Compile(String),
    /// `describe` trapped, or returned a descriptor that breaks the contract.
    #[error("bad descriptor: {0}")]
    Describe(String),
    /// The signed manifest and the component's own descriptor disagree.
    #[error("signed manifest does not match the component's descriptor: {0}")]
    ManifestMismatch(String),
    /// The component imports interfaces it was not granted (or that no
    /// plugin may have, such as the filesystem and sockets).
    #[error("component imports what it was not granted: {}", .0.join(", "))]
    Denied(Vec<String>),
}

impl LoadError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::Io { .. } => "plugin.io",
            LoadError::TooLarge { .. } => "plugin.too_large",
            LoadError::DigestMismatch { .. } => "plugin.digest_mismatch",
            LoadError::PinMismatch { .. } => "plugin.pin_mismatch",
            LoadError::Unsigned(_) => "plugin.unsigned",
            LoadError::UntrustedKey(_) => "plugin.untrusted_key",
            LoadError::BadSignature(_) => "plugin.bad_signature",
            LoadError::RolledBack { .. } => "plugin.rolled_back",
            LoadError::Expired(_) => "plugin.expired",
            LoadError::Compile(_) => "plugin.compile",
            LoadError::Describe(_) => "plugin.describe",
            LoadError::ManifestMismatch(_) => "plugin.manifest_mismatch",
            LoadError::Denied(_) => "plugin.denied",
        }
    }
}
