//! Opening the database with explicit durability settings.

use std::path::PathBuf;
use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait as _;

use crate::error::StorageError;
use crate::migration::Migrator;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// How long a SQLite writer waits for another writer before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The default database: `cordon.db` in Cordon's data directory
/// (`$CORDON_HOME`, else the platform data directory, e.g. `~/.local/share/cordon`).
pub fn default_database_url(
    cordon_home: Option<PathBuf>,
    data_dir: Option<PathBuf>,
) -> Option<String> {
    let dir = cordon_home.or_else(|| data_dir.map(|d| d.join("cordon")))?;
    Some(format!(
        "sqlite://{}?mode=rwc",
        dir.join("cordon.db").display()
    ))
}

/// What [`Store::readiness`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// Migrations applied to the database.
    pub applied: usize,
    /// Migrations this build knows that the database lacks.
    pub pending: usize,
}

/// An open, migrated database.
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: DatabaseConnection,
    backend: Backend,
}

/// The URL without credentials, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://…@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Opens the database at `url` and applies any pending migrations.
    ///
    /// SQLite gets WAL journaling, `synchronous=FULL` (a committed
    /// transaction survives power loss), foreign keys and a busy timeout;
    /// the parent directory is created if missing.
    pub async fn open(url: &str) -> Result<Store, StorageError> {
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            return Err(StorageError::UnsupportedUrl(redact(url)));
        };
        let unavailable = |source| StorageError::Unavailable {
            url: redact(url),
            source,
        };
        if backend == Backend::Sqlite {
            let path = url
                .trim_start_matches("sqlite://")
                .trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or_default();
            if let Some(parent) = std::path::Path::new(path)
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
            {
                std::fs::create_dir_all(parent).map_err(|e| {
                    unavailable(sea_orm::DbErr::Custom(format!(
                        "cannot create {}: {e}",
                        parent.display()
                    )))
                })?;
            }
        }
        let mut options = ConnectOptions::new(url.to_string());
        options
            // An unreachable database is reported within seconds rather than
            // retried for long: at start-up a clear error beats a hang.
            .connect_timeout(Duration::from_secs(3))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        match backend {
            Backend::Sqlite => {
                // One writer at a time is SQLite's model; a few readers help the API.
                options
                    .max_connections(4)
                    .min_connections(1)
                    .map_sqlx_sqlite_opts(|o| {
                        o.journal_mode(SqliteJournalMode::Wal)
                            .synchronous(SqliteSynchronous::Full)
                            .busy_timeout(SQLITE_BUSY_TIMEOUT)
                            .foreign_keys(true)
                    });
            }
            Backend::Postgres => {
                options.max_connections(16).min_connections(1);
            }
        }
        let db = Database::connect(options).await.map_err(unavailable)?;
        Migrator::up(&db, None).await?;
        Ok(Store { db, backend })
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock at `BEGIN` (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and writes later can fail with "database is locked" when another
    /// writer got there in between, whatever the busy timeout; an immediate
    /// one simply waits its turn.
    pub(crate) async fn begin_write(&self) -> Result<sea_orm::DatabaseTransaction, StorageError> {
        use sea_orm::{SqliteTransactionMode, TransactionOptions, TransactionTrait as _};
        let options = TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        Ok(self.db.begin_with_options(options).await?)
    }

    /// Whether the database answers and every migration this build knows
    /// is applied (a readiness probe: one read, no DDL).
    pub async fn readiness(&self) -> Result<Readiness, StorageError> {
        use sea_orm_migration::MigrationStatus;
        let all = Migrator::get_migration_with_status_read_only(&self.db).await?;
        let applied = all
            .iter()
            .filter(|m| m.status() == MigrationStatus::Applied)
            .count();
        Ok(Readiness {
            applied,
            pending: all.len() - applied,
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(self) -> Result<(), StorageError> {
        self.db.close().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(
            redact("postgres://cordon:hunter2@db:5432/cordon"),
            "postgres://…@db:5432/cordon"
        );
        assert_eq!(
            redact("sqlite:///var/lib/cordon.db"),
            "sqlite:///var/lib/cordon.db"
        );
    }

    #[test]
    fn default_url_prefers_cordon_home() {
        assert_eq!(
            default_database_url(
                Some("/srv/cordon".into()),
                Some("/home/x/.local/share".into())
            )
            .as_deref(),
            Some("sqlite:///srv/cordon/cordon.db?mode=rwc")
        );
        assert_eq!(
            default_database_url(None, Some("/home/x/.local/share".into())).as_deref(),
            Some("sqlite:///home/x/.local/share/cordon/cordon.db?mode=rwc")
        );
    }
}
