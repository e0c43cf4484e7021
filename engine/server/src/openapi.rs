//! The OpenAPI document: generated from the handlers' `#[utoipa::path]`
//! annotations as they are routed, served at `GET /openapi.json` without a
//! token (it describes the API; it reveals no data).

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; the paths come from the routers.
#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Cordon",
        description = "Incident-response playbooks for IoT and OT fleets. Every request under /api/v1 (except /healthz and /readyz) needs `Authorization: Bearer <token>`; errors are `{code, message, details}` with stable codes.",
    ),
    modifiers(&BearerToken),
    security(("bearer" = [])),
    tags(
        (name = "health", description = "Liveness and readiness"),
        (name = "playbooks", description = "Validate, publish and read playbook versions"),
        (name = "runs", description = "Start, watch and control runs"),
        (name = "inventory", description = "The device inventory"),
        (name = "tokens", description = "API tokens (admins)"),
    ),
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme every protected operation uses.
#[derive(Debug)]
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}
