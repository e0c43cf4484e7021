//! The API's routes, one module per resource, each a `router()` of
//! handlers annotated with `#[utoipa::path]` (so they land in the OpenAPI
//! document by being routed).
#![allow(
    unused_qualifications,
    reason = "utoipa's path macro spells out the paths of `IntoParams` types"
)]

pub(crate) mod approvals;
mod health;
pub(crate) mod hooks;
mod inventory;
mod playbooks;
mod runs;
mod tokens;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Every route under `/api/v1`. The protected ones sit behind the
/// authentication middleware; add a resource's router *before* the
/// `route_layer` line (a route added after it would be unauthenticated),
/// and give each handler an [`crate::auth::Authorized`] argument naming its
/// permission.
pub(crate) fn api(state: &AppState) -> OpenApiRouter<AppState> {
    let protected = OpenApiRouter::new()
        .merge(playbooks::router())
        .merge(runs::router())
        .merge(inventory::router())
        .merge(tokens::router())
        .merge(approvals::router())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::auth::authenticate,
        ));
    OpenApiRouter::new()
        .merge(health::router())
        .merge(protected)
}
