//! What every handler can reach.

use std::sync::Arc;

use cordon_runtime::Engine;
use cordon_storage::Store;

use crate::config::{Directory, ServerConfig};
use crate::publishing::Catalog;

/// The server's shared state, built by whoever starts the server (the
/// CLI's `cordon serve`). Cloning is cheap: every part is shared.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The run engine of this node (starts and controls runs; the node's
    /// work loop drives them).
    pub engine: Engine,
    /// Who may hold tokens, with their groups and roles.
    pub directory: Arc<Directory>,
    /// The server's own settings.
    pub config: Arc<ServerConfig>,
    /// Plugin descriptors and pinned components, for validating and publishing.
    pub catalog: Arc<Catalog>,
    /// The key that signs mailed one-time approval links (`None`: no mailed links).
    pub links: Option<Arc<crate::mail::links::LinkKeys>>,
    /// The monitoring sources allowed to `POST /hooks/{source}`.
    pub webhooks: Arc<crate::hooks::Webhooks>,
}
