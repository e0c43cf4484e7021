//! One-time approval links: `/approve/<id>.<signature>`, mailed to one
//! approver. The id is random and stored with its request, approver and
//! expiry; the signature (HMAC-SHA256 under the server's link key, over
//! the id, request, approver and expiry) is never stored, so neither a
//! database reader nor a guesser can make a working link. A link is
//! spent in the same commit as the decision it carries.

use chrono::{DateTime, Utc};
use cordon_storage::{ApprovalLink, Store};
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The server's link key (32 random bytes, kept out of the database).
#[derive(Clone)]
pub struct LinkKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for LinkKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LinkKeys([secret])")
    }
}

/// Why a link does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    /// Not a link this server made (malformed, unknown id or bad signature).
    #[error("this approval link is not valid")]
    Forged,
    /// Already used for a decision.
    #[error("this approval link was already used; each link decides once")]
    Spent,
    /// Past its expiry.
    #[error("this approval link has expired")]
    Expired,
}

impl LinkRefusal {
    /// The stable code.
    pub fn code(self) -> &'static str {
        match self {
            LinkRefusal::Forged => "link_invalid",
            LinkRefusal::Spent => "link_spent",
            LinkRefusal::Expired => "link_expired",
        }
    }
}

impl LinkKeys {
    /// Keys from 32 secret bytes.
    pub fn new(key: [u8; 32]) -> LinkKeys {
        LinkKeys { key }
    }

    fn mac(&self, purpose: &str, parts: &[&str]) -> HmacSha256 {
        // A 32-byte key always fits HMAC: new_from_slice cannot fail here.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(purpose.as_bytes());
        for part in parts {
            mac.update(b"\0");
            mac.update(part.as_bytes());
        }
        mac
    }

    fn link_mac(&self, link: &ApprovalLink) -> HmacSha256 {
        let expires = link.expires_at.timestamp().to_string();
        self.mac(
            "cordon-approval-link/v1",
            &[&link.id, &link.request, &link.user, &expires],
        )
    }

    /// The token of a link: `<id>.<signature>`.
    pub fn token(&self, link: &ApprovalLink) -> String {
        let signature = self.link_mac(link).finalize().into_bytes();
        format!("{}.{}", link.id, hex::encode(signature))
    }

    /// The form token that must come back with a decision on the page a
    /// link opened (a cross-site form cannot know it).
    pub fn csrf(&self, link_id: &str) -> String {
        hex::encode(
            self.mac("cordon-approval-csrf/v1", &[link_id])
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether `given` is the form token for `link_id` (constant time).
    pub fn check_csrf(&self, link_id: &str, given: &str) -> bool {
        hex::decode(given).is_ok_and(|bytes| {
            self.mac("cordon-approval-csrf/v1", &[link_id])
                .verify_slice(&bytes)
                .is_ok()
        })
    }

    /// A MAC under `purpose` as hex, and its constant-time check: the web
    /// pages' session values and form tokens below.
    fn signed(&self, purpose: &str, parts: &[&str]) -> String {
        hex::encode(self.mac(purpose, parts).finalize().into_bytes())
    }

    fn check_signed(&self, purpose: &str, parts: &[&str], given: &str) -> bool {
        hex::decode(given).is_ok_and(|bytes| self.mac(purpose, parts).verify_slice(&bytes).is_ok())
    }

    /// The signature of a web-page session (`web::session`): the API token
    /// it was opened with (its public id) and when. A purpose of its own,
    /// so no link or form token can stand in for a session.
    pub fn session_signature(&self, token_id: &str, issued: &str) -> String {
        self.signed("cordon-web-session/v1", &[token_id, issued])
    }

    /// Whether `given` is the signature of that session (constant time).
    pub fn check_session_signature(&self, token_id: &str, issued: &str, given: &str) -> bool {
        self.check_signed("cordon-web-session/v1", &[token_id, issued], given)
    }

    /// The form token of a web-page session's state-changing forms: derived
    /// from the whole session value, so a cross-site page cannot know it.
    pub fn session_csrf(&self, session: &str) -> String {
        self.signed("cordon-web-csrf/v1", &[session])
    }

    /// Whether `given` is the form token of `session` (constant time).
    pub fn check_session_csrf(&self, session: &str, given: &str) -> bool {
        self.check_signed("cordon-web-csrf/v1", &[session], given)
    }

    /// Opens a link token: genuine, unspent and unexpired, or why not.
    pub async fn open(
        &self,
        store: &Store,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<ApprovalLink, LinkOpenError> {
        let (id, signature) = token.split_once('.').ok_or(LinkRefusal::Forged)?;
        let signature = hex::decode(signature).map_err(|_| LinkRefusal::Forged)?;
        if id.is_empty() || id.len() > 64 {
            return Err(LinkRefusal::Forged.into());
        }
        let link = store.approval_link(id).await?.ok_or(LinkRefusal::Forged)?;
        // Constant-time: a forger learns nothing from how long a refusal takes.
        if self.link_mac(&link).verify_slice(&signature).is_err() {
            return Err(LinkRefusal::Forged.into());
        }
        if link.used_at.is_some() {
            return Err(LinkRefusal::Spent.into());
        }
        if link.expires_at <= now {
            return Err(LinkRefusal::Expired.into());
        }
        Ok(link)
    }
}

/// Why opening a link failed: a refusal, or storage.
#[derive(Debug, thiserror::Error)]
pub enum LinkOpenError {
    /// The link does not open.
    #[error(transparent)]
    Refused(#[from] LinkRefusal),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] cordon_storage::StorageError),
}

/// A new random link id (128 bits, hex).
pub fn new_link_id() -> String {
    hex::encode(uuid::Uuid::new_v4().as_bytes())
}
