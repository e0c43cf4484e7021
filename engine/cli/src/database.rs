//! Opening Cordon's database from the command line.

use anyhow::anyhow;
use cordon_storage::Store;

use crate::cli::DatabaseArgs;

/// The database URL: `--database`, `CORDON_DATABASE`, or the default file.
pub fn database_url(args: &DatabaseArgs) -> anyhow::Result<String> {
    if let Some(url) = &args.url {
        return Ok(url.clone());
    }
    let home = std::env::var_os("CORDON_HOME").map(Into::into);
    cordon_storage::default_database_url(home, dirs::data_dir())
        .ok_or_else(|| anyhow!("no data directory: set CORDON_HOME or pass --database URL"))
}

/// Runs `work` against the store on a small runtime of its own (the CLI is
/// synchronous elsewhere).
pub fn with_store<T>(
    args: &DatabaseArgs,
    work: impl AsyncFnOnce(&Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let url = database_url(args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let store = Store::open(&url).await?;
        let result = work(&store).await;
        store.close().await?;
        result
    })
}

/// Splits `NAME@VERSION` (the version is optional).
pub fn split_reference(reference: &str) -> (&str, Option<&str>) {
    match reference.rsplit_once('@') {
        Some((name, version)) => (name, Some(version)),
        None => (reference, None),
    }
}
