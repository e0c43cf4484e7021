//! API tokens: bearer credentials for the HTTP API. A token is
//! `cordon_<id>_<secret>`; the id finds the row, the secret proves
//! possession. Only the SHA-256 of the secret is stored, so a copy of the
//! database cannot be replayed against the API; the secret is shown once,
//! when the token is created. Storage keeps the token's role as text: the
//! server decides what a role may do.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait as _, Order, Query, SelectStatement};
use sea_orm::{ConnectionTrait, QueryResult};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use crate::audit::{NewEvent, append};
use crate::connect::Store;
use crate::error::StorageError;
use crate::sql::t;

/// Every token starts with this, so scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "cordon_";

/// Random bytes in a token id (shown as hex).
const ID_BYTES: usize = 8;
/// Random bytes in a token secret (shown as hex).
const SECRET_BYTES: usize = 32;

/// A stored token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The public part of the token (hex), its name in lists and audit events.
    pub id: String,
    /// The user the token speaks for.
    pub user: String,
    /// Its API role (`viewer`, `responder`, `approver`, `admin`).
    pub role: String,
    /// What people call it (`ci`, `alice laptop`).
    pub name: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who created it.
    pub created_by: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

/// Whether a token may be used now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenStatus {
    /// It may be used.
    Active,
    /// Its expiry has passed.
    Expired,
    /// Someone revoked it.
    Revoked,
}

impl TokenStatus {
    /// `active`, `expired` or `revoked`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenStatus::Active => "active",
            TokenStatus::Expired => "expired",
            TokenStatus::Revoked => "revoked",
        }
    }
}

impl TokenRecord {
    /// Its status at `now`; a revoked token stays revoked after it expires.
    pub fn status(&self, now: DateTime<Utc>) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }
}

/// A token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The user it speaks for.
    pub user: String,
    /// Its API role.
    pub role: String,
    /// What people call it.
    pub name: String,
    /// When it stops working, if ever.
    pub expires_at: Option<DateTime<Utc>>,
    /// Who creates it (recorded as the audit event's actor, `user:NAME`).
    pub created_by: String,
}

/// A token just created: the record and the only copy of the full token.
#[derive(Clone)]
pub struct IssuedToken {
    /// The stored record.
    pub record: TokenRecord,
    /// `cordon_<id>_<secret>`: show it once, never store or log it.
    pub token: String,
}

impl std::fmt::Debug for IssuedToken {
    // The secret never reaches a log line through `{:?}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("record", &self.record)
            .field("token", &"[secret]")
            .finish()
    }
}

/// What checking a presented token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenCheck {
    /// The token is genuine and may be used.
    Valid(TokenRecord),
    /// Not a token of this database: malformed, unknown id, or wrong secret
    /// (indistinguishable on purpose).
    Invalid,
    /// Genuine, but past its expiry.
    Expired(TokenRecord),
    /// Genuine, but revoked.
    Revoked(TokenRecord),
}

/// What revoking did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The token was active or expired and is now revoked.
    Revoked(TokenRecord),
    /// It had been revoked before; nothing changed.
    AlreadyRevoked(TokenRecord),
}

fn random_hex<const N: usize>() -> Result<String, StorageError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)
        .map_err(|e| StorageError::Corrupt(format!("no randomness for a token: {e}")))?;
    Ok(hex::encode(bytes))
}

/// SHA-256 of the secret text, the only form of it that is stored.
fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Splits `cordon_<id>_<secret>` into its id and secret, if it has that shape.
pub fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let hex_of = |s: &str, bytes: usize| {
        s.len() == bytes * 2 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    (hex_of(id, ID_BYTES) && hex_of(secret, SECRET_BYTES)).then_some((id, secret))
}

const COLUMNS: [&str; 9] = [
    "id",
    "user_name",
    "role",
    "name",
    "created_at",
    "created_by",
    "expires_at",
    "revoked_at",
    "revoked_by",
];

fn select() -> SelectStatement {
    Query::select()
        .columns(COLUMNS.map(t))
        .from(t("api_tokens"))
        .to_owned()
}

fn record(row: &QueryResult) -> Result<TokenRecord, StorageError> {
    Ok(TokenRecord {
        id: row.try_get("", "id")?,
        user: row.try_get("", "user_name")?,
        role: row.try_get("", "role")?,
        name: row.try_get("", "name")?,
        created_at: row.try_get("", "created_at")?,
        created_by: row.try_get("", "created_by")?,
        expires_at: row.try_get("", "expires_at")?,
        revoked_at: row.try_get("", "revoked_at")?,
        revoked_by: row.try_get("", "revoked_by")?,
    })
}

impl Store {
    /// Creates a token and records `token.created` (id, user, role, name,
    /// expiry; never the secret or its hash) in the same transaction.
    /// Returns the full token: it is not retrievable afterwards.
    pub async fn create_token(
        &self,
        new: NewToken,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken, StorageError> {
        let id = random_hex::<ID_BYTES>()?;
        let secret = random_hex::<SECRET_BYTES>()?;
        let record = TokenRecord {
            id: id.clone(),
            user: new.user,
            role: new.role,
            name: new.name,
            created_at: now,
            created_by: new.created_by,
            expires_at: new.expires_at,
            revoked_at: None,
            revoked_by: None,
        };
        let insert = Query::insert()
            .into_table(t("api_tokens"))
            .columns(
                [
                    "id",
                    "user_name",
                    "role",
                    "name",
                    "secret_hash",
                    "created_at",
                    "created_by",
                    "expires_at",
                ]
                .map(t),
            )
            .values_panic([
                record.id.clone().into(),
                record.user.clone().into(),
                record.role.clone().into(),
                record.name.clone().into(),
                hex::encode(secret_hash(&secret)).into(),
                now.into(),
                record.created_by.clone().into(),
                record.expires_at.into(),
            ])
            .to_owned();
        let event = NewEvent {
            actor: format!("user:{}", record.created_by),
            kind: "token.created".into(),
            run: None,
            step: None,
            device: None,
            data: json!({
                "token": record.id, "user": record.user, "role": record.role,
                "name": record.name, "expires_at": record.expires_at,
            }),
        };
        let txn = self.begin_write().await?;
        txn.execute_raw(txn.get_database_backend().build(&insert))
            .await?;
        append(&txn, self.backend(), &[event], now).await?;
        txn.commit().await?;
        Ok(IssuedToken {
            token: format!("{TOKEN_PREFIX}{id}_{secret}"),
            record,
        })
    }

    /// One token by id.
    pub async fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StorageError> {
        let query = select().and_where(Expr::col(t("id")).eq(id)).to_owned();
        let row = self
            .db
            .query_one_raw(self.db.get_database_backend().build(&query))
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// Every token, oldest first (revoked and expired ones included).
    pub async fn tokens(&self) -> Result<Vec<TokenRecord>, StorageError> {
        let query = select()
            .order_by(t("created_at"), Order::Asc)
            .order_by(t("id"), Order::Asc)
            .to_owned();
        let rows = self
            .db
            .query_all_raw(self.db.get_database_backend().build(&query))
            .await?;
        rows.iter().map(record).collect()
    }

    /// Revokes a token for good and records `token.revoked` in the same
    /// transaction. Revoking it again changes nothing and records nothing.
    pub async fn revoke_token(
        &self,
        id: &str,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<Revocation, StorageError> {
        let txn = self.begin_write().await?;
        let db = txn.get_database_backend();
        // Only an unrevoked row changes: two revokers cannot both record it.
        let update = Query::update()
            .table(t("api_tokens"))
            .value(t("revoked_at"), now)
            .value(t("revoked_by"), by)
            .and_where(Expr::col(t("id")).eq(id))
            .and_where(Expr::col(t("revoked_at")).is_null())
            .to_owned();
        let changed = txn.execute_raw(db.build(&update)).await?.rows_affected() == 1;
        let query = select().and_where(Expr::col(t("id")).eq(id)).to_owned();
        let Some(row) = txn.query_one_raw(db.build(&query)).await? else {
            return Err(StorageError::NotFound(format!("token {id}")));
        };
        let token = record(&row)?;
        if !changed {
            txn.commit().await?;
            return Ok(Revocation::AlreadyRevoked(token));
        }
        let event = NewEvent {
            actor: format!("user:{by}"),
            kind: "token.revoked".into(),
            run: None,
            step: None,
            device: None,
            data: json!({"token": token.id, "user": token.user, "role": token.role, "name": token.name}),
        };
        append(&txn, self.backend(), &[event], now).await?;
        txn.commit().await?;
        Ok(Revocation::Revoked(token))
    }

    /// Checks a presented token: its shape, its id, its secret (compared
    /// by hash in constant time), then revocation and expiry. Only a token
    /// whose secret matched is ever reported as expired or revoked, so the
    /// answer tells nothing about ids to someone without a secret.
    pub async fn check_token(
        &self,
        presented: &str,
        now: DateTime<Utc>,
    ) -> Result<TokenCheck, StorageError> {
        let Some((id, secret)) = parse_token(presented) else {
            return Ok(TokenCheck::Invalid);
        };
        let query = Query::select()
            .columns(COLUMNS.map(t))
            .column(t("secret_hash"))
            .from(t("api_tokens"))
            .and_where(Expr::col(t("id")).eq(id))
            .to_owned();
        let row = self
            .db
            .query_one_raw(self.db.get_database_backend().build(&query))
            .await?;
        let presented_hash = secret_hash(secret);
        let Some(row) = row else {
            // The same work as a known id, so timing says little either way.
            let _ = presented_hash.ct_eq(&[0u8; 32]);
            return Ok(TokenCheck::Invalid);
        };
        let stored: String = row.try_get("", "secret_hash")?;
        let stored = hex::decode(&stored)
            .map_err(|e| StorageError::Corrupt(format!("hash of token {id}: {e}")))?;
        if !bool::from(presented_hash.as_slice().ct_eq(stored.as_slice())) {
            return Ok(TokenCheck::Invalid);
        }
        let token = record(&row)?;
        Ok(match token.status(now) {
            TokenStatus::Active => TokenCheck::Valid(token),
            TokenStatus::Expired => TokenCheck::Expired(token),
            TokenStatus::Revoked => TokenCheck::Revoked(token),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse_token;

    #[test]
    fn only_the_exact_shape_parses() {
        let id = "0123456789abcdef";
        let secret = "ab".repeat(32);
        let token = format!("cordon_{id}_{secret}");
        assert_eq!(parse_token(&token), Some((id, secret.as_str())));
        for bad in [
            String::new(),
            format!("cordon_{id}{secret}"),
            format!("xordon_{id}_{secret}"),
            format!("cordon_{id}_{}", &secret[1..]),
            format!("cordon_{}_{secret}", id.to_uppercase()),
            format!("cordon_{id}_{secret}_"),
            format!("cordon_{id}_{secret} "),
        ] {
            assert_eq!(parse_token(&bad), None, "{bad}");
        }
    }
}
