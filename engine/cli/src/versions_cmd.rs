//! `cordon publish`, `versions`, `show`, `diff`: immutable playbook versions.

use std::fmt::Write as _;
use std::sync::Arc;

use anyhow::{Context as _, anyhow};
use cordon_server::publishing::{self, Publication, PublishError};
use cordon_storage::PublishOutcome;

use crate::cli::{DatabaseArgs, PublishArgs};
use crate::database::{split_reference, with_store};
use crate::{Output, exit};

pub fn publish(args: &PublishArgs, out: &mut Output) -> anyhow::Result<u8> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let by = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".into());
    let file = args.file.display().to_string();
    with_store(&args.database, async |store| {
        // Loading with the store checks release floors, as a node will.
        let loaded = crate::plugins::load(&args.catalog, Some(store)).await?;
        let catalog = cordon_server::Catalog {
            plugins: Arc::new(loaded.catalog),
            components: loaded.components,
        };
        // Sub-playbooks resolve against what is published: a version pins them.
        let publication =
            publishing::publish(store, &catalog, &file, &bytes, &by, chrono::Utc::now()).await;
        let none = Vec::new();
        let diagnostics = match &publication {
            Ok(p) => &p.diagnostics,
            Err(PublishError::Invalid(diagnostics)) => diagnostics,
            Err(PublishError::Storage(_)) => &none,
        };
        for d in diagnostics {
            out.stdout.push_str(&d.render());
        }
        match publication {
            Ok(Publication {
                outcome: PublishOutcome::Published(v),
                ..
            }) => {
                writeln!(
                    out.stdout,
                    "published {}@{} {}",
                    v.name, v.version, v.digest
                )?;
                Ok(exit::OK)
            }
            Ok(Publication {
                outcome: PublishOutcome::AlreadyPublished(v),
                ..
            }) => {
                writeln!(
                    out.stdout,
                    "unchanged: {}@{} is already published with this content ({})",
                    v.name, v.version, v.digest
                )?;
                Ok(exit::OK)
            }
            Err(PublishError::Invalid(_)) => {
                writeln!(out.stderr, "not published: {file} does not validate")?;
                Ok(exit::PROBLEMS)
            }
            Err(PublishError::Storage(
                e @ cordon_storage::StorageError::VersionConflict { .. },
            )) => {
                writeln!(out.stderr, "error: {e}")?;
                Ok(exit::PROBLEMS)
            }
            Err(PublishError::Storage(e)) => Err(e.into()),
        }
    })
}

pub fn versions(name: &str, database: &DatabaseArgs, out: &mut Output) -> anyhow::Result<u8> {
    with_store(database, async |store| {
        let versions = store.versions(name).await?;
        if versions.is_empty() {
            writeln!(out.stderr, "no published versions of `{name}`")?;
            return Ok(exit::PROBLEMS);
        }
        writeln!(
            out.stdout,
            "{:<16} {:<25} {:<16} DIGEST",
            "VERSION", "PUBLISHED", "BY"
        )?;
        for v in versions {
            writeln!(
                out.stdout,
                "{:<16} {:<25} {:<16} {}",
                v.version,
                v.published_at.format("%Y-%m-%d %H:%M:%S UTC"),
                v.published_by,
                v.digest
            )?;
        }
        Ok(exit::OK)
    })
}

pub fn show(reference: &str, database: &DatabaseArgs, out: &mut Output) -> anyhow::Result<u8> {
    let (name, version) = split_reference(reference);
    with_store(database, async |store| {
        let found = match version {
            Some(v) => store.version(name, v).await?,
            None => store.latest(name).await?,
        };
        let Some(v) = found else {
            writeln!(
                out.stderr,
                "error: `{reference}` is not published (see `cordon versions {name}`)"
            )?;
            return Ok(exit::PROBLEMS);
        };
        writeln!(
            out.stdout,
            "# {}@{}\n# digest:       {}\n# published:    {} by {}",
            v.name,
            v.version,
            v.digest,
            v.published_at.format("%Y-%m-%d %H:%M:%S UTC"),
            v.published_by
        )?;
        for (uses, pin) in &v.plugins {
            let digest = pin.digest.as_deref().unwrap_or("(no component digest yet)");
            writeln!(
                out.stdout,
                "# plugin:       {uses} = {} {digest}",
                pin.version
            )?;
        }
        out.stdout.push_str(&v.source);
        Ok(exit::OK)
    })
}

pub fn diff(from: &str, to: &str, database: &DatabaseArgs, out: &mut Output) -> anyhow::Result<u8> {
    let (from_name, from_version) = split_reference(from);
    let (to_name, to_version) = match split_reference(to) {
        (version, None) if from_version.is_some() => (from_name, Some(version)),
        other => other,
    };
    let (Some(from_version), Some(to_version)) = (from_version, to_version) else {
        return Err(anyhow!("give two versions: `cordon diff NAME@A NAME@B`"));
    };
    with_store(database, async |store| {
        let (Some(a), Some(b)) = (
            store.version(from_name, from_version).await?,
            store.version(to_name, to_version).await?,
        ) else {
            writeln!(
                out.stderr,
                "error: both `{from}` and `{to}` must be published"
            )?;
            return Ok(exit::PROBLEMS);
        };
        write!(
            out.stdout,
            "{}",
            cordon_playbook::diff::diff(&a.playbook, &b.playbook)
        )?;
        Ok(exit::OK)
    })
}
