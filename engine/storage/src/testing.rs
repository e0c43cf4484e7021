//! Test support: a fresh, migrated store on each backend. Compiled only with
//! the `test-util` feature, for this crate's tests and its callers' tests.

use crate::{StorageError, Store};

/// A store that removes what it created when dropped (the SQLite file's
/// directory, or the PostgreSQL database).
#[derive(Debug)]
pub struct TestStore {
    /// The open store.
    pub store: Store,
    /// Its URL, for processes that open it too.
    pub url: String,
    /// What to remove afterwards.
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(std::path::PathBuf),
    Database { admin_url: String, name: String },
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

/// The PostgreSQL server tests use: `$CORDON_TEST_POSTGRES`, or the
/// machine's `postgres://postgres@127.0.0.1:5432/test` (`tests/run` sets
/// the variable, starting a throwaway server where none runs).
pub fn postgres_admin_url() -> String {
    std::env::var("CORDON_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

impl TestStore {
    /// A fresh SQLite file in a new temporary directory.
    pub async fn sqlite() -> Result<TestStore, StorageError> {
        let dir =
            std::env::temp_dir().join(format!("cordon-test-{}", uuid::Uuid::new_v4().simple()));
        let url = format!("sqlite://{}?mode=rwc", dir.join("cordon.db").display());
        let store = Store::open(&url).await?;
        Ok(TestStore {
            store,
            url,
            cleanup: Cleanup::Dir(dir),
        })
    }

    /// A fresh database on the test PostgreSQL server.
    pub async fn postgres() -> Result<TestStore, StorageError> {
        use sea_orm::ConnectionTrait as _;
        let admin_url = postgres_admin_url();
        let name = format!("cordon_t_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&admin_url)
            .await
            .map_err(|source| StorageError::Unavailable {
                url: admin_url.clone(),
                source,
            })?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await?;
        admin.close().await?;
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        let store = Store::open(&url).await?;
        Ok(TestStore {
            store,
            url,
            cleanup: Cleanup::Database { admin_url, name },
        })
    }

    /// Closes the store and removes what it created.
    pub async fn destroy(self) -> Result<(), StorageError> {
        use sea_orm::ConnectionTrait as _;
        self.store.close().await?;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Database { admin_url, name } => {
                let admin = sea_orm::Database::connect(&admin_url).await?;
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                admin.close().await?;
            }
        }
        Ok(())
    }
}

impl TestStore {
    /// The value of a SQLite pragma on one of the store's connections.
    pub async fn sqlite_pragma(&self, name: &str) -> Result<String, StorageError> {
        use sea_orm::{ConnectionTrait as _, Statement};
        let row = self
            .store
            .db
            .query_one_raw(Statement::from_string(
                sea_orm::DatabaseBackend::Sqlite,
                format!("PRAGMA {name}"),
            ))
            .await?
            .ok_or_else(|| StorageError::Corrupt(format!("PRAGMA {name} returned nothing")))?;
        if let Ok(text) = row.try_get_by_index::<String>(0) {
            return Ok(text);
        }
        Ok(row.try_get_by_index::<i64>(0)?.to_string())
    }
}

/// Runs one async test body, `|store: Store| async move { … }`, against a
/// fresh SQLite store and a fresh PostgreSQL database, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let store = $crate::testing::TestStore::sqlite().await.expect("sqlite store");
                ($body)(store.store.clone()).await;
                store.destroy().await.expect("cleanup");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let store = $crate::testing::TestStore::postgres().await.expect(
                    "PostgreSQL for tests (run tests/run, or set CORDON_TEST_POSTGRES to a server where databases can be created)",
                );
                ($body)(store.store.clone()).await;
                store.destroy().await.expect("cleanup");
            }
        }
    };
}

impl Store {
    /// Edits a stored audit event's body in place, as an attacker with
    /// database access would (the leaf and the chain are left as they were).
    pub async fn tamper_with_audit_event_for_tests(&self, seq: u64) -> Result<(), StorageError> {
        use sea_orm::ConnectionTrait as _;
        use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, Query};
        let update = Query::update()
            .table(Alias::new("audit_events"))
            .value(
                Alias::new("body"),
                Expr::cust("REPLACE(body, 'run.created', 'run.forged')"),
            )
            .and_where(Expr::col(Alias::new("seq")).eq(i64::try_from(seq).unwrap_or(i64::MAX)))
            .to_owned();
        self.db
            .execute_raw(self.db.get_database_backend().build(&update))
            .await?;
        Ok(())
    }
}
