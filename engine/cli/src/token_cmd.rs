//! `cordon token create|list|revoke`: API tokens, straight in the database,
//! so an operator can make the first admin token before any exists.

use std::fmt::Write as _;

use anyhow::anyhow;
use cordon_storage::{NewToken, Revocation, StorageError};

use crate::cli::TokenCommand;
use crate::database::with_store;
use crate::node::actor;
use crate::{Output, exit};

pub fn run(command: &TokenCommand, out: &mut Output) -> anyhow::Result<u8> {
    match command {
        TokenCommand::Create {
            user,
            role,
            name,
            expires,
            by,
            database,
        } => {
            let now = chrono::Utc::now();
            let expires_at = expires
                .map(|d| {
                    chrono::Duration::from_std(d.get())
                        .ok()
                        .and_then(|d| now.checked_add_signed(d))
                        .ok_or_else(|| anyhow!("--expires {d} is too far away"))
                })
                .transpose()?;
            with_store(database, async |store| {
                let issued = store
                    .create_token(
                        NewToken {
                            user: user.clone(),
                            role: role.as_str().to_string(),
                            name: name.clone().unwrap_or_else(|| user.clone()),
                            expires_at,
                            created_by: actor(by.as_deref()),
                        },
                        now,
                    )
                    .await?;
                // The token alone on stdout, for `TOKEN=$(cordon token create …)`.
                writeln!(out.stdout, "{}", issued.token)?;
                let until = issued.record.expires_at.map_or_else(
                    || "until revoked".to_string(),
                    |t| format!("until {}", t.to_rfc3339()),
                );
                writeln!(
                    out.stderr,
                    "token {} for {} ({}), valid {until}; it is shown only now: only its hash is stored",
                    issued.record.id, issued.record.user, issued.record.role
                )?;
                Ok(exit::OK)
            })
        }
        TokenCommand::List { json, database } => with_store(database, async |store| {
            let now = chrono::Utc::now();
            let tokens = store.tokens().await?;
            if *json {
                let views: Vec<_> = tokens
                    .iter()
                    .map(|t| cordon_server::views::TokenView::new(t, now))
                    .collect();
                writeln!(out.stdout, "{}", serde_json::to_string_pretty(&views)?)?;
                return Ok(exit::OK);
            }
            if tokens.is_empty() {
                writeln!(
                    out.stderr,
                    "no tokens (`cordon token create --user U --role R`)"
                )?;
                return Ok(exit::OK);
            }
            writeln!(
                out.stdout,
                "{:<16}  {:<16} {:<10} {:<8} {:<20} {:<20} NAME",
                "ID", "USER", "ROLE", "STATUS", "CREATED", "EXPIRES"
            )?;
            for t in &tokens {
                writeln!(
                    out.stdout,
                    "{:<16}  {:<16} {:<10} {:<8} {:<20} {:<20} {}",
                    t.id,
                    t.user,
                    t.role,
                    t.status(now).as_str(),
                    t.created_at.format("%Y-%m-%d %H:%M:%S"),
                    t.expires_at.map_or_else(
                        || "-".to_string(),
                        |e| e.format("%Y-%m-%d %H:%M:%S").to_string()
                    ),
                    t.name
                )?;
            }
            Ok(exit::OK)
        }),
        TokenCommand::Revoke { id, by, database } => {
            with_store(database, async |store| {
                match store
                    .revoke_token(id, &actor(by.as_deref()), chrono::Utc::now())
                    .await
                {
                    Ok(Revocation::Revoked(t)) => {
                        writeln!(out.stderr, "token {} of {} revoked", t.id, t.user)?;
                        Ok(exit::OK)
                    }
                    Ok(Revocation::AlreadyRevoked(t)) => {
                        writeln!(out.stderr, "token {} was already revoked", t.id)?;
                        Ok(exit::OK)
                    }
                    Err(StorageError::NotFound(_)) => {
                        writeln!(
                            out.stderr,
                            "error: no token `{id}` (see `cordon token list`)"
                        )?;
                        Ok(exit::USAGE)
                    }
                    Err(e) => Err(e.into()),
                }
            })
        }
    }
}
